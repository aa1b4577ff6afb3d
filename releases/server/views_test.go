package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// A deployer reporting a promotion of the version prod already serves is not held at prod's gate:
// there is nothing for a person to approve. A new version still waits.
func TestNoApprovalWhenTheTargetServesTheVersion(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("prod", "abalone", 4, 2)
	prod := e.Client("prod")
	same, err := prod.StartRelease(context.Background(), releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote,
		Version: releases.Version{Number: 4}, PreviousVersion: &releases.Version{Number: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if same.Status != releases.StatusRunning || same.NeedsApproval {
		t.Fatalf("promotion of v4 into prod serving v4: %s, needs approval %v; want running without approval", same.Status, same.NeedsApproval)
	}
	var list struct{ Releases []releases.Release }
	e.Do(http.MethodGet, "/api/v1/approvals", e.Admin(), nil).JSON(t, &list)
	if len(list.Releases) != 0 {
		t.Fatalf("approvals asked: %+v", list.Releases)
	}
	if _, err := prod.FinishRelease(context.Background(), same.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
	next, err := prod.StartRelease(context.Background(), releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote,
		Version: releases.Version{Number: 5}, PreviousVersion: &releases.Version{Number: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if next.Status != releases.StatusPending || !next.NeedsApproval {
		t.Fatalf("promotion of v5 into prod serving v4: %s, needs approval %v; want pending at the gate", next.Status, next.NeedsApproval)
	}
}

// BenchmarkOverview200Models measures the overview with 200 models in three environments, the
// page a team with many models opens first, and the same page filtered to a few models.
//
//	go test -run '^$' -bench Overview200 -benchtime 100x ./releases/server/
func BenchmarkOverview200Models(b *testing.B) {
	e := servertest.Start(b, servertest.Options{Environments: []releases.Environment{
		{Name: "dev", Kind: "local", Position: 0}, {Name: "staging", Kind: "sagemaker", Region: "eu-west-1", Position: 1},
		{Name: "prod", Kind: "sagemaker", Region: "eu-west-1", Position: 2, RequiresApproval: true},
	}})
	for m := range 200 {
		for _, env := range []string{"dev", "staging", "prod"} {
			e.Deploy(env, fmt.Sprintf("bulk%d", m), 1, 2)
		}
	}
	id := "bench-overview-session"
	now := e.Store.Now()
	if err := e.Store.CreateSession(context.Background(), store.Session{IDHash: server.HashToken(id), Username: "admin", CSRF: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	s := seeded{url: e.URL, cookie: &http.Cookie{Name: "sagedeploy_session", Value: id}}
	for _, page := range []string{"/", "/?q=bulk19"} {
		b.Run(page, func(b *testing.B) {
			b.ReportMetric(measure(b, s, page, b.N), "p95-ms")
		})
	}
}

// The approvals API shows, for each release at a gate, what its environment serves now (version,
// endpoint configuration of the last successful release, instances) and what it would serve.
func TestApprovalsAPIComparesNowAndProposed(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	prod := e.Client("prod")
	r, err := prod.StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 4},
		EndpointName: "abalone-prod", EndpointConfigName: "abalone-prod-v4", InstanceType: "ml.m5.large", InstanceCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Approve(ctx, r.ID, "servertest"); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &releases.Version{Number: 4}, EndpointStatus: "InService", InstanceType: "ml.m5.large", InstanceCount: 2}); err != nil {
		t.Fatal(err)
	}
	next, err := prod.StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: releases.Version{Number: 5},
		PreviousVersion: &releases.Version{Number: 4}, EndpointConfigName: "abalone-prod-v5", InstanceType: "ml.c5.xlarge", InstanceCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	type side struct {
		Version        *releases.Version `json:"version"`
		EndpointConfig string            `json:"endpoint_config"`
		InstanceType   string            `json:"instance_type"`
		InstanceCount  int               `json:"instance_count"`
	}
	var got struct {
		Releases []struct {
			ID       string `json:"id"`
			Now      side   `json:"now"`
			Proposed side   `json:"proposed"`
		} `json:"releases"`
	}
	res := e.Do(http.MethodGet, "/api/v1/approvals", e.Admin(), nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/approvals: %d %s", res.Status, res.Body)
	}
	res.JSON(t, &got)
	if len(got.Releases) != 1 || got.Releases[0].ID != next.ID {
		t.Fatalf("approvals: %s", res.Body)
	}
	now, proposed := got.Releases[0].Now, got.Releases[0].Proposed
	if now.Version == nil || now.Version.Number != 4 || now.EndpointConfig != "abalone-prod-v4" || now.InstanceCount != 2 || now.InstanceType != "ml.m5.large" {
		t.Errorf("now: %+v", now)
	}
	if proposed.Version == nil || proposed.Version.Number != 5 || proposed.EndpointConfig != "abalone-prod-v5" || proposed.InstanceCount != 3 || proposed.InstanceType != "ml.c5.xlarge" {
		t.Errorf("proposed: %+v", proposed)
	}
}

// The dashboard's live stream needs a session, says nothing while nothing changes since the
// state the page was rendered at, and speaks once a deploy changes what the pages show.
func TestLiveStreamSpeaksOnChange(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Server: server.Options{StreamPoll: 50 * time.Millisecond}})
	if res := e.Do(http.MethodGet, "/live", nil, nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("/live without a session: %d", res.Status)
	}
	id := "live-session"
	now := e.Store.Now()
	if err := e.Store.CreateSession(context.Background(), store.Session{IDHash: server.HashToken(id), Username: "admin", CSRF: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := liveEvents(t, ctx, e.URL+"/live", id)
	first := <-events // no ?state=: the stream starts by saying what it is
	if first == "" {
		t.Fatal("the stream ended before its first state")
	}
	// The same state, as a page rendered now would pass it: nothing to say until a change.
	again := liveEvents(t, ctx, e.URL+"/live?state="+first, id)
	e.Deploy("dev", "abalone", 1, 1)
	changed := <-again
	if changed == "" || changed == first {
		t.Fatalf("after a deploy the stream said %q (it started at %q)", changed, first)
	}
}

// liveEvents reads the states of a dashboard live stream's "change" events.
func liveEvents(t *testing.T, ctx context.Context, url, session string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.AddCookie(&http.Cookie{Name: "sagedeploy_session", Value: session})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		change := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "event: change":
				change = true
			case change && strings.HasPrefix(line, "data: "):
				var d struct{ State string }
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
				out <- d.State
				change = false
			}
		}
	}()
	return out
}
