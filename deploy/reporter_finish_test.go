package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"sync"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// reportEdge is the release server behind a handler that counts the reports reaching it (by
// route: events, finish, heartbeat) and the events each finish carries. While hold is open it
// holds every report; the first failFinish finishes get a 503, before the server sees them or,
// with loseAnswer, after the server recorded them (the answer is lost on the way back).
type reportEdge struct {
	h          http.Handler
	held       chan struct{} // a report is being held
	hold       chan struct{} // closed: reports go through
	mu         sync.Mutex
	posts      map[string]int
	carried    []int // events carried by each finish the server saw
	failFinish int
	loseAnswer bool
}

// serve starts the edge in front of e's server and returns its URL.
func (g *reportEdge) serve(t *testing.T, e *servertest.Env) string {
	g.h, g.held, g.hold, g.posts = e.Server.Handler(), make(chan struct{}, 1), make(chan struct{}), map[string]int{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := path.Base(r.URL.Path)
		if r.Method != http.MethodPost || (route != "events" && route != "finish" && route != "heartbeat") {
			g.h.ServeHTTP(w, r)
			return
		}
		select {
		case g.held <- struct{}{}:
		default:
		}
		select {
		case <-g.hold:
		case <-r.Context().Done():
			return
		}
		data, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		fail, lose := g.record(t, route, data)
		if lose {
			rec := httptest.NewRecorder()
			g.h.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Errorf("the finish whose answer is lost was refused: %d %s", rec.Code, rec.Body)
			}
		}
		if fail {
			http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		g.h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close() })
	return hs.URL
}

// record counts a report and says whether it fails, and whether the server sees it anyway.
func (g *reportEdge) record(t *testing.T, route string, body []byte) (fail, lose bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if route == "finish" {
		fail = g.failFinish > 0
		g.failFinish--
		lose = fail && g.loseAnswer
	}
	if fail && !lose {
		return fail, lose
	}
	g.posts[route]++
	if route == "finish" {
		var f releases.ReleaseFinish
		if err := json.Unmarshal(body, &f); err != nil {
			t.Errorf("decode the finish: %v", err)
		}
		g.carried = append(g.carried, len(f.Events))
	}
	return fail, lose
}

func (g *reportEdge) counts() (posts map[string]int, carried []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.posts), slices.Clone(g.carried)
}

// edgeRelease starts a release server behind a reportEdge and a running release of abalone in dev.
func edgeRelease(t *testing.T) (*reportEdge, *releases.Client, string) {
	t.Helper()
	e := servertest.Start(t, servertest.Options{})
	g := &reportEdge{}
	c := releases.NewClient(g.serve(t, e), e.Token("dev"), nil)
	return g, c, devRelease(t, c)
}

func wantRelease(t *testing.T, c *releases.Client, id string, status releases.Status, events string) {
	t.Helper()
	r, err := c.Release(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventMessages(t, c, id); r.Status != status || got != events {
		t.Fatalf("release %s with events %q\nwant %s with %q", r.Status, got, status, events)
	}
}

func wantPosts(t *testing.T, g *reportEdge, events, finishes int, carried []int) {
	t.Helper()
	posts, got := g.counts()
	if posts["events"] != events || posts["finish"] != finishes || !slices.Equal(got, carried) {
		t.Fatalf("the server got %d event reports and %d finishes carrying %v events; want %d, %d carrying %v", posts["events"], posts["finish"], got, events, finishes, carried)
	}
}

var succeeded = releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: "InService"}

// The events queued behind a report the server is busy with go inside the finish queued after
// them: one request fewer than an events batch followed by the finish, and the release shows
// them, in order, before its outcome.
func TestReporterSendsTheLastEventsInsideTheFinish(t *testing.T) {
	g, c, id := edgeRelease(t)
	rep := newTestReporter(c, id)
	queueEvents(rep, 1)
	<-g.held
	rep.addEvent(releases.Event{Phase: releases.PhaseWait, Message: "endpoint is InService", EndpointStatus: "InService"})
	rep.addEvent(releases.Event{Phase: releases.PhaseVerify, Message: "verified"})
	rep.addFinish(succeeded)
	close(g.hold)
	if dropped := rep.close(DefaultReportFlush); dropped != 0 {
		t.Fatalf("%d reports dropped, want none", dropped)
	}
	wantPosts(t, g, 1, 1, []int{2})
	wantRelease(t, c, id, releases.StatusSucceeded, "step 0, endpoint is InService, verified")
}

// A finish carries at most maxBatch events; the ones before go as batches ahead of it, in order.
func TestReporterBoundsTheEventsAFinishCarries(t *testing.T) {
	g, c, id := edgeRelease(t)
	rep := newTestReporter(c, id)
	queueEvents(rep, 1)
	<-g.held
	queueEvents(rep, maxBatch+50)
	rep.addFinish(succeeded)
	close(g.hold)
	if dropped := rep.close(DefaultReportFlush); dropped != 0 {
		t.Fatalf("%d reports dropped, want none", dropped)
	}
	wantPosts(t, g, 2, 1, []int{50})
	wantRelease(t, c, id, releases.StatusSucceeded, "step 0, "+wantSteps(maxBatch+50))
}

// A finish the server could not answer is sent again; when the server had recorded it (only the
// answer was lost), the retry finds the release ended and adds none of its events twice.
func TestReporterRetriesAFinishWithItsEventsOnce(t *testing.T) {
	for _, lose := range []bool{false, true} {
		t.Run(fmt.Sprintf("server recorded the first attempt: %v", lose), func(t *testing.T) {
			g, c, id := edgeRelease(t)
			g.failFinish, g.loseAnswer = 2, lose
			rep := newTestReporter(c, id)
			queueEvents(rep, 1)
			<-g.held
			queueEvents(rep, 3)
			rep.addFinish(succeeded)
			close(g.hold)
			if dropped := rep.close(DefaultReportFlush); dropped != 0 {
				t.Fatalf("%d reports dropped, want none", dropped)
			}
			carried := []int{3}
			if lose {
				carried = []int{3, 3, 3} // two answers lost, then the one that gets through
			}
			wantPosts(t, g, 1, len(carried), carried)
			wantRelease(t, c, id, releases.StatusSucceeded, "step 0, "+wantSteps(3))
		})
	}
}

// A finish the server refuses counts as dropped with the events it carried.
func TestReporterCountsTheEventsOfADroppedFinish(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	g := &reportEdge{}
	c := releases.NewClient(g.serve(t, e), e.Token("dev"), nil)
	id := devRelease(t, c)
	rep := newTestReporter(c, id)
	queueEvents(rep, 1)
	<-g.held
	queueEvents(rep, 3)
	rep.addFinish(succeeded)
	// Meanwhile the release ended otherwise (canceled from the dashboard, say): it takes no more
	// events and cannot succeed.
	if _, err := e.Store.FinishRelease(context.Background(), id, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonFailed}); err != nil {
		t.Fatal(err)
	}
	close(g.hold)
	if dropped := rep.close(DefaultReportFlush); dropped != 5 {
		t.Fatalf("dropped %d, want 5: the first event, then the finish and the 3 events it carried", dropped)
	}
	wantPosts(t, g, 1, 1, []int{3})
	wantRelease(t, c, id, releases.StatusFailed, "")
}

// A deploy's tracker queues its outcome behind the events it has not sent yet, so that they go
// in the outcome's request.
func TestTrackerFinishCarriesTheEventsNotSentYet(t *testing.T) {
	g, c, _ := edgeRelease(t)
	d, err := New(context.Background(), Options{EndpointURL: "http://127.0.0.1:9", Releases: c, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tr := d.newTracker()
	id, gated, err := tr.start(context.Background(), releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 2}, EndpointName: "abalone-dev"}, nil)
	if err != nil || gated {
		t.Fatalf("start the release: gated %v, %v", gated, err)
	}
	tr.sink(Event{Phase: releases.PhaseEndpoint, Message: "updating endpoint", EndpointStatus: "Updating"})
	<-g.held
	tr.sink(Event{Phase: releases.PhaseWait, Message: "endpoint is InService", EndpointStatus: "InService"})
	tr.sink(Event{Phase: releases.PhaseVerify, Message: "verified"})
	tr.queueFinish(succeeded)
	close(g.hold)
	tr.flush()
	if n := tr.reportsDropped(); n != 0 {
		t.Fatalf("%d reports dropped, want none", n)
	}
	wantPosts(t, g, 1, 1, []int{2})
	wantRelease(t, c, id, releases.StatusSucceeded, "updating endpoint, endpoint is InService, verified")
}
