package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

var bg = context.Background()

// apiErr asserts err is an API error with status and a message containing every part.
func apiErr(t *testing.T, err error, status int, parts ...string) {
	t.Helper()
	var ae *releases.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v; want an API error with HTTP %d", err, status)
	}
	if ae.StatusCode != status {
		t.Fatalf("HTTP %d (%s); want %d", ae.StatusCode, ae.Message, status)
	}
	for _, p := range parts {
		if !strings.Contains(ae.Message, p) {
			t.Fatalf("message %q does not mention %q", ae.Message, p)
		}
	}
}

// wantResp asserts an API answer's status and that its error message mentions every part.
func wantResp(t *testing.T, r servertest.Response, status int, parts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("HTTP %d %s; want %d", r.Status, r.Body, status)
	}
	for _, p := range parts {
		if !strings.Contains(r.Error(), p) {
			t.Fatalf("error %q does not mention %q", r.Error(), p)
		}
	}
}

func TestDeployerReportsReleaseAndComponentFollows(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client("dev")
	v := releases.Version{Number: 3, ModelPackageARN: "arn:aws:sagemaker:eu-west-1:1:model-package/abalone/3", Commit: "deadbeef", PipelineID: "p-77"}
	r, err := c.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v,
		EndpointName: "abalone-dev", InstanceType: "ml.m5.large", InstanceCount: 2, Trigger: releases.Trigger{Type: "pipeline", PipelineID: "p-77"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != releases.StatusRunning || r.ID == "" {
		t.Fatalf("start: %+v", r)
	}
	for i, msg := range []string{"created model", "created endpoint config", "endpoint Creating"} {
		ev, err := c.AddEvent(bg, r.ID, releases.Event{Phase: "endpoint", Message: msg, Seq: 99})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != i+1 {
			t.Fatalf("event %d got seq %d; the server assigns 1, 2, 3", i, ev.Seq)
		}
	}
	fin, err := c.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &v, EndpointStatus: "InService", InstanceCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if fin.Status != releases.StatusSucceeded || fin.FinishedAt == nil {
		t.Fatalf("finish: %+v", fin)
	}
	got, err := c.Release(bg, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 3 || got.Events[2].Message != "endpoint Creating" {
		t.Fatalf("events = %+v", got.Events)
	}

	var detail server.ComponentDetail
	resp := e.Do("GET", "/api/v1/components/dev/abalone", e.Admin(), nil)
	wantResp(t, resp, 200)
	resp.JSON(t, &detail)
	comp := detail.Component
	if comp.CurrentVersion == nil || comp.CurrentVersion.Number != 3 || comp.CurrentVersion.Commit != "deadbeef" || comp.InstanceCount != 2 ||
		comp.EndpointStatus != "InService" || comp.ConsoleURL != "http://127.0.0.1:4566" {
		t.Fatalf("component = %+v", comp)
	}
	if len(detail.Versions) != 1 || !detail.Versions[0].Current || len(detail.Releases) != 1 {
		t.Fatalf("detail = %+v", detail)
	}
	// A SageMaker environment links to the AWS console.
	e.Deploy("prod", "abalone", 3, 1)
	resp = e.Do("GET", "/api/v1/components/prod/abalone", e.Admin(), nil)
	resp.JSON(t, &detail)
	if want := "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/endpoints/abalone-prod"; detail.Component.ConsoleURL != want {
		t.Fatalf("console URL = %q, want %q", detail.Component.ConsoleURL, want)
	}
}

func TestListReleasesFiltersAndPages(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	for i := 1; i <= 7; i++ {
		e.Deploy("dev", "abalone", i, 1)
		if i <= 3 {
			e.Deploy("dev", "iris", i, 1)
		}
	}
	e.Deploy("prod", "abalone", 7, 1)
	var page store.ReleasePage
	resp := e.Do("GET", "/api/v1/releases?environment=dev&model=abalone&limit=3", e.Admin(), nil)
	wantResp(t, resp, 200)
	resp.JSON(t, &page)
	if len(page.Releases) != 3 || page.Releases[0].Version.Number != 7 || page.Older == "" {
		t.Fatalf("page 1 = %d releases, first v%d, older=%q", len(page.Releases), page.Releases[0].Version.Number, page.Older)
	}
	var seen []int
	for cursor := ""; ; {
		var p store.ReleasePage
		e.Do("GET", "/api/v1/releases?environment=dev&model=abalone&limit=3&before="+cursor, e.Admin(), nil).JSON(t, &p)
		for _, r := range p.Releases {
			seen = append(seen, r.Version.Number)
		}
		if p.Older == "" {
			break
		}
		cursor = p.Older
	}
	if len(seen) != 7 || seen[0] != 7 || seen[6] != 1 {
		t.Fatalf("paged versions = %v; want 7..1", seen)
	}
	// A token lists only its own environment.
	var tp store.ReleasePage
	e.Do("GET", "/api/v1/releases", servertest.Bearer(e.Token("prod")), nil).JSON(t, &tp)
	if len(tp.Releases) != 1 || tp.Releases[0].Environment != "prod" {
		t.Fatalf("prod token listed %+v", tp.Releases)
	}
	wantResp(t, e.Do("GET", "/api/v1/releases?environment=dev", servertest.Bearer(e.Token("prod")), nil), 403, "prod", "dev")
	wantResp(t, e.Do("GET", "/api/v1/releases?limit=5000", e.Admin(), nil), 400, "limit")
	wantResp(t, e.Do("GET", "/api/v1/releases?before=%21%21", e.Admin(), nil), 400, "cursor")
}

func TestTokenScopedToItsEnvironment(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("dev", "abalone", 2, 1)
	e.Deploy("prod", "abalone", 1, 1)
	e.Deploy("prod", "abalone", 2, 1)
	dev, prod := e.Client("dev"), e.Client("prod")
	devTok := servertest.Bearer(e.Token("dev"))

	// Cannot report to prod.
	_, err := dev.StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 3}})
	apiErr(t, err, 403, "environment dev", "prod")
	pr, err := prod.StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindScale, InstanceCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dev.AddEvent(bg, pr.ID, releases.Event{Message: "sneaky"})
	apiErr(t, err, 403, "prod")
	_, err = dev.FinishRelease(bg, pr.ID, releases.ReleaseFinish{Status: releases.StatusFailed})
	apiErr(t, err, 403, "prod")
	_, err = dev.Release(bg, pr.ID)
	apiErr(t, err, 403, "prod")
	if r, _ := prod.Release(bg, pr.ID); r.Status != releases.StatusRunning || len(r.Events) != 0 {
		t.Fatalf("prod release changed by a dev token: %+v", r)
	}
	if _, err := prod.FinishRelease(bg, pr.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, InstanceCount: 2}); err != nil {
		t.Fatal(err)
	}

	// Cannot command prod, directly or by promoting into it.
	wantResp(t, e.Do("POST", "/api/v1/components/prod/abalone/scale", devTok, map[string]int{"instances": 3}), 403, "dev", "prod")
	wantResp(t, e.Do("POST", "/api/v1/components/prod/abalone/rollback", devTok, nil), 403, "dev", "prod")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/promote", devTok, nil), 403, "dev", "prod")
	// Can command its own environment.
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/scale", devTok, map[string]int{"instances": 3}), 202)

	// Cannot read prod's commands: a prod command never reaches a dev agent.
	resp := e.Do("POST", "/api/v1/components/prod/abalone/scale", e.Admin(), map[string]int{"instances": 4})
	wantResp(t, resp, 202)
	var created struct {
		Command store.CommandRecord `json:"command"`
	}
	resp.JSON(t, &created)
	cmd, err := dev.NextCommand(bg, 0)
	if err != nil || cmd == nil || cmd.Environment != "dev" {
		t.Fatalf("dev agent got %+v, %v; want only its dev command", cmd, err)
	}
	if cmd, err := dev.NextCommand(bg, 0); err != nil || cmd != nil {
		t.Fatalf("dev agent got a second command %+v, %v; the other one belongs to prod", cmd, err)
	}
	wantResp(t, e.Do("GET", "/api/v1/commands/"+created.Command.ID, devTok, nil), 403, "prod")
	wantResp(t, e.Do("GET", "/api/v1/commands?environment=prod", devTok, nil), 403, "prod")
	err = dev.CompleteCommand(bg, created.Command.ID, releases.CommandResult{Status: releases.StatusSucceeded})
	apiErr(t, err, 404, created.Command.ID)
	pc, err := prod.NextCommand(bg, 0)
	if err != nil || pc == nil || pc.ID != created.Command.ID {
		t.Fatalf("prod agent got %+v, %v", pc, err)
	}
	// Tokens cannot approve.
	wantResp(t, e.Do("POST", "/api/v1/releases/"+pr.ID+"/approve", devTok, nil), 403, "token")
}

func TestTokenIsStoredOnlyHashedAndRevocable(t *testing.T) {
	dir := t.TempDir()
	e := servertest.Start(t, servertest.Options{DataDir: dir})
	resp := e.Do("POST", "/api/v1/tokens", e.Admin(), map[string]string{"environment": "dev", "name": "circleci"})
	wantResp(t, resp, 201)
	var nt server.NewToken
	resp.JSON(t, &nt)
	if !strings.HasPrefix(nt.Secret, "sdt_") || len(nt.Secret) < 40 || nt.Environment != "dev" {
		t.Fatalf("new token = %+v", nt)
	}
	c := releases.NewClient(e.URL, nt.Secret, nil)
	if _, err := c.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 1}}); err != nil {
		t.Fatalf("fresh token rejected: %v", err)
	}

	// Neither the listing nor the database file holds the secret; the database holds its SHA-256.
	list := e.Do("GET", "/api/v1/tokens", e.Admin(), nil)
	if strings.Contains(string(list.Body), nt.Secret) {
		t.Fatal("token listing shows the secret")
	}
	sum := sha256.Sum256([]byte(nt.Secret))
	var raw []byte
	for _, f := range []string{store.SQLiteFile, store.SQLiteFile + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		raw = append(raw, b...)
	}
	if strings.Contains(string(raw), nt.Secret) || strings.Contains(string(raw), nt.Secret[4:]) {
		t.Fatal("the token is stored in plain text in the database")
	}
	if !strings.Contains(string(raw), hex.EncodeToString(sum[:])) {
		t.Fatal("the database does not hold the token's SHA-256 (is it stored at all?)")
	}

	wantResp(t, e.Do("POST", "/api/v1/tokens/"+nt.ID+"/revoke", e.Admin(), nil), 200)
	_, err := c.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 2}})
	apiErr(t, err, 401, "revoked")
	_, err = c.NextCommand(bg, 0)
	apiErr(t, err, 401, "revoked")
	wantResp(t, e.Do("POST", "/api/v1/tokens/"+nt.ID+"/revoke", e.Admin(), nil), 409, "already revoked")
	wantResp(t, e.Do("POST", "/api/v1/tokens", e.Admin(), map[string]string{"environment": "qa"}), 404, `"qa"`)
	// Only admins manage tokens.
	pw := e.AddUser("dora", store.RoleDeployer)
	wantResp(t, e.Do("POST", "/api/v1/tokens", servertest.Basic("dora", pw), map[string]string{"environment": "dev"}), 403, "admin")
}

func TestApprovalGateForDeployerReleases(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Server: server.Options{StreamPoll: 50 * time.Millisecond}})
	e.Deploy("dev", "abalone", 5, 1)
	prod := e.Client("prod")
	r, err := prod.StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: releases.Version{Number: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != releases.StatusPending {
		t.Fatalf("promotion into gated prod answered %s, want pending", r.Status)
	}
	var approvals struct {
		Releases []store.ReleaseRecord `json:"releases"`
	}
	e.Do("GET", "/api/v1/approvals", e.Admin(), nil).JSON(t, &approvals)
	if len(approvals.Releases) != 1 || approvals.Releases[0].ID != r.ID {
		t.Fatalf("approvals = %+v", approvals.Releases)
	}
	viewerPW := e.AddUser("vic", store.RoleViewer)
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/approve", servertest.Basic("vic", viewerPW), nil), 403, "viewer", "deployer")

	type result struct {
		r   releases.Release
		err error
	}
	done := make(chan result, 1)
	go func() {
		rr, err := prod.WaitApproval(bg, r.ID, 20*time.Millisecond)
		done <- result{rr, err}
	}()
	pw := e.AddUser("carol", store.RoleDeployer)
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/approve", servertest.Basic("carol", pw), nil), 200)
	select {
	case res := <-done:
		if res.err != nil || res.r.Status != releases.StatusRunning || res.r.ApprovedBy != "carol" {
			t.Fatalf("WaitApproval = %+v, %v; want running, approved by carol", res.r, res.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("WaitApproval did not return after the approval")
	}
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/approve", servertest.Basic("carol", pw), nil), 409, "already approved by carol")

	// Rejection.
	r2, err := prod.StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "iris", Kind: releases.KindDeploy, Version: releases.Version{Number: 1}})
	if err != nil {
		t.Fatal(err)
	}
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r2.ID+"/reject", servertest.Basic("carol", pw), map[string]string{"reason": "not on a Friday"}), 200)
	_, err = prod.WaitApproval(bg, r2.ID, 10*time.Millisecond)
	if !errors.Is(err, releases.ErrRejected) || !strings.Contains(err.Error(), "carol") {
		t.Fatalf("WaitApproval after rejection: %v", err)
	}
	got, _ := prod.Release(bg, r2.ID)
	if got.Status != releases.StatusCanceled || !strings.Contains(got.FailureReason, "not on a Friday") {
		t.Fatalf("rejected release: %+v", got)
	}
	// Both decisions are in the audit log.
	var audit struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	e.Do("GET", "/api/v1/audit", e.Admin(), nil).JSON(t, &audit)
	actions := map[string]string{}
	for _, a := range audit.Entries {
		actions[a.Action+"/"+a.Actor] = a.Outcome
	}
	if actions["release.approve/carol"] == "" || actions["release.reject/carol"] != "ok" || !strings.Contains(actions["release.approve/vic"], "viewer") {
		t.Fatalf("audit = %v", actions)
	}
}

// wantAudit asserts the audit log has an entry of action by actor whose outcome and detail
// mention every part.
func wantAudit(t *testing.T, e *servertest.Env, action, actor string, parts ...string) {
	t.Helper()
	var audit struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	e.Do("GET", "/api/v1/audit", e.Admin(), nil).JSON(t, &audit)
	for _, a := range audit.Entries {
		text := a.Outcome + " " + a.Detail
		if a.Action == action && a.Actor == actor && containsAll(text, parts) {
			return
		}
	}
	t.Fatalf("no audit entry %s by %s mentioning %q in %+v", action, actor, parts, audit.Entries)
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// commandResp is the answer to a command.
type commandResp struct {
	Command store.CommandRecord `json:"command"`
	Release server.ReleaseView  `json:"release"`
}

func TestEveryCommandPath(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("dev", "abalone", 2, 1)
	e.Deploy("dev", "abalone", 3, 2)
	pw := e.AddUser("dan", store.RoleDeployer)
	dan := servertest.Basic("dan", pw)
	dev, prod := e.Client("dev"), e.Client("prod")

	// run plays the agent and deployer for the command the dev or prod agent receives next.
	run := func(c *releases.Client, want commandResp, serving int, instances int) releases.Release {
		t.Helper()
		cmd, err := c.NextCommand(bg, 5*time.Second)
		if err != nil || cmd == nil || cmd.ID != want.Command.ID || cmd.ReleaseID != want.Release.ID {
			t.Fatalf("agent got %+v, %v; want command %s", cmd, err, want.Command.ID)
		}
		r, err := c.StartRelease(bg, releases.ReleaseStart{ID: cmd.ReleaseID, Environment: cmd.Environment, Model: cmd.Model, Kind: want.Release.Kind, Version: want.Release.Version})
		if err != nil || r.Status != releases.StatusRunning {
			t.Fatalf("start command release: %+v %v", r, err)
		}
		v := releases.Version{Number: serving}
		if _, err := c.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &v, InstanceCount: instances}); err != nil {
			t.Fatal(err)
		}
		if err := c.CompleteCommand(bg, cmd.ID, releases.CommandResult{Status: releases.StatusSucceeded}); err != nil {
			t.Fatal(err)
		}
		r, _ = c.Release(bg, r.ID)
		return r
	}
	component := func(env string) store.ComponentView {
		var d server.ComponentDetail
		e.Do("GET", "/api/v1/components/"+env+"/abalone", dan, nil).JSON(t, &d)
		return d.Component
	}

	// Restore.
	var cr commandResp
	resp := e.Do("POST", "/api/v1/components/dev/abalone/restore", dan, map[string]int{"version": 1})
	wantResp(t, resp, 202)
	resp.JSON(t, &cr)
	if cr.Command.Kind != releases.CommandRestore || cr.Command.Version != 1 || cr.Command.RequestedBy != "dan" || cr.Release.Kind != releases.KindRestore ||
		cr.Release.Status != releases.StatusPending || cr.Release.Version.Number != 1 || cr.Release.PreviousVersion.Number != 3 || cr.Release.Trigger.User != "dan" {
		t.Fatalf("restore: %+v", cr)
	}
	// While it is queued, a second command on the component is refused.
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/scale", dan, map[string]int{"instances": 5}), 409, cr.Release.ID)
	run(dev, cr, 1, 0)
	if c := component("dev"); c.CurrentVersion.Number != 1 {
		t.Fatalf("after restore dev serves v%d", c.CurrentVersion.Number)
	}

	// Rollback goes to the version served before the current one (v3).
	resp = e.Do("POST", "/api/v1/components/dev/abalone/rollback", dan, nil)
	wantResp(t, resp, 202)
	resp.JSON(t, &cr)
	if cr.Command.Kind != releases.CommandRollback || cr.Release.Version.Number != 3 || cr.Command.Version != 3 {
		t.Fatalf("rollback: %+v", cr)
	}
	run(dev, cr, 3, 0)
	if c := component("dev"); c.CurrentVersion.Number != 3 {
		t.Fatalf("after rollback dev serves v%d", c.CurrentVersion.Number)
	}

	// Scale.
	resp = e.Do("POST", "/api/v1/components/dev/abalone/scale", dan, map[string]int{"instances": 4})
	wantResp(t, resp, 202)
	resp.JSON(t, &cr)
	if cr.Command.Instances != 4 || cr.Release.Kind != releases.KindScale || cr.Release.InstanceCount != 4 {
		t.Fatalf("scale: %+v", cr)
	}
	run(dev, cr, 3, 4)
	if c := component("dev"); c.InstanceCount != 4 || c.CurrentVersion.Number != 3 {
		t.Fatalf("after scale: %d instances, v%d", c.InstanceCount, c.CurrentVersion.Number)
	}

	// Promote dev's v3 into gated prod: waits for approval before any agent sees it.
	resp = e.Do("POST", "/api/v1/components/dev/abalone/promote", dan, nil)
	wantResp(t, resp, 202)
	resp.JSON(t, &cr)
	if cr.Command.Environment != "prod" || cr.Command.FromEnvironment != "dev" || cr.Command.Version != 3 || cr.Release.Environment != "prod" ||
		!cr.Release.AwaitingApproval || cr.Command.State != store.CommandAwaitingApproval {
		t.Fatalf("promote: %+v", cr)
	}
	if cmd, err := prod.NextCommand(bg, 300*time.Millisecond); err != nil || cmd != nil {
		t.Fatalf("prod agent received an unapproved promotion: %+v %v", cmd, err)
	}
	// Approve wakes a waiting agent.
	got := make(chan *releases.Command, 1)
	go func() {
		cmd, _ := prod.NextCommand(bg, 20*time.Second)
		got <- cmd
	}()
	// Four eyes: dan asked for the promotion, so dan may not approve it; another deployer may.
	wantResp(t, e.Do("POST", "/api/v1/releases/"+cr.Release.ID+"/approve", dan, nil), 403, "four-eyes rule of environment prod", "dan requested release")
	erin := servertest.Basic("erin", e.AddUser("erin", store.RoleDeployer))
	wantResp(t, e.Do("POST", "/api/v1/releases/"+cr.Release.ID+"/approve", erin, nil), 200)
	wantAudit(t, e, "release.approve", "dan", "four-eyes rule")
	wantAudit(t, e, "release.approve", "erin", "ok", "requested by dan")
	select {
	case cmd := <-got:
		if cmd == nil || cmd.ID != cr.Command.ID || cmd.Kind != releases.CommandPromote {
			t.Fatalf("prod agent got %+v after approval", cmd)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("approved promotion never reached the waiting prod agent")
	}
	r, err := prod.StartRelease(bg, releases.ReleaseStart{ID: cr.Release.ID, Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: releases.Version{Number: 3}})
	if err != nil || r.Status != releases.StatusRunning || r.ApprovedBy != "erin" {
		t.Fatalf("start approved promotion: %+v %v", r, err)
	}
	three := releases.Version{Number: 3}
	prod.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &three, InstanceCount: 1})
	if c := component("prod"); c.CurrentVersion == nil || c.CurrentVersion.Number != 3 {
		t.Fatalf("after promotion prod serves %+v", c.CurrentVersion)
	}

	// Reject a promotion: the command is canceled and never delivered.
	e.Deploy("dev", "abalone", 4, 1)
	resp = e.Do("POST", "/api/v1/components/dev/abalone/promote", dan, map[string]string{"to": "prod"})
	wantResp(t, resp, 202)
	resp.JSON(t, &cr)
	wantResp(t, e.Do("POST", "/api/v1/releases/"+cr.Release.ID+"/reject", dan, map[string]string{"reason": "canary failed"}), 200)
	var cmdNow store.CommandRecord
	e.Do("GET", "/api/v1/commands/"+cr.Command.ID, dan, nil).JSON(t, &cmdNow)
	if cmdNow.State != store.CommandCanceled {
		t.Fatalf("command after rejection: %s", cmdNow.State)
	}
	if cmd, _ := prod.NextCommand(bg, 200*time.Millisecond); cmd != nil {
		t.Fatalf("rejected promotion delivered: %+v", cmd)
	}

	// Every command attempt is audited.
	var audit struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	e.Do("GET", "/api/v1/audit", dan, nil).JSON(t, &audit)
	n := map[string]int{}
	for _, a := range audit.Entries {
		if a.Actor == "dan" && a.Outcome == "ok" {
			n[a.Action]++
		}
	}
	// dan's own approval was refused (four eyes); his rejection of his own request is allowed.
	for _, a := range []string{"command.restore", "command.rollback", "command.scale", "command.promote", "release.reject"} {
		if n[a] == 0 {
			t.Errorf("no audit entry for %s by dan (have %v)", a, n)
		}
	}
}

func TestBadInputGetsActionableErrors(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	dev := e.Client("dev")
	admin := e.Admin()
	devTok := servertest.Bearer(e.Token("dev"))

	_, err := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: "explode", Version: releases.Version{Number: 1}})
	apiErr(t, err, 400, "explode", "deploy, promote, restore, rollback or scale")
	_, err = dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Kind: releases.KindDeploy})
	apiErr(t, err, 400, "missing model")
	_, err = dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy})
	apiErr(t, err, 400, "version.number")
	_, err = dev.FinishRelease(bg, "no-such-release", releases.ReleaseFinish{Status: releases.StatusSucceeded})
	apiErr(t, err, 404, "no-such-release")
	_, err = dev.Release(bg, "nope")
	apiErr(t, err, 404, "release nope does not exist")

	r, _ := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 2}})
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/events", devTok, `{"message": "half`), 400, "not valid JSON")
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/events", devTok, `{"phase": "wait"}`), 400, "missing message")
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/events", devTok, `{"mesage": "typo"}`), 400, `unknown field "mesage"`)
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/finish", devTok, `{"status": "done"}`), 400, "succeeded, failed or canceled")
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/finish", devTok, `{"status": "failed", "instance_count": "two"}`), 400, "instance_count", "number")
	wantResp(t, e.Do("POST", "/api/v1/releases/"+r.ID+"/finish", devTok, nil), 400, "no body")
	dev.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: "boom"})
	_, err = dev.AddEvent(bg, r.ID, releases.Event{Message: "late"})
	apiErr(t, err, 409, "already ended")

	// Commands.
	wantResp(t, e.Do("POST", "/api/v1/components/staging/abalone/scale", admin, map[string]int{"instances": 2}), 404, `"staging"`, "dev, prod", "server env add")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/iris/scale", admin, map[string]int{"instances": 2}), 404, "iris", "dev", "sagedeploy deploy")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/restore", admin, map[string]int{"version": 9}), 404, "version 9", "abalone", "known versions: 2, 1")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/restore", admin, nil), 400, "version", "abalone", "dev")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/restore", admin, map[string]int{"version": 1}), 409, "already serves version 1")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/rollback", admin, nil), 409, "no earlier version", "abalone", "dev")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/scale", admin, map[string]int{"instances": 0}), 400, "instance count from 1")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/scale", admin, map[string]int{"instances": 1}), 409, "already runs 1")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/scale", admin, `{"instances": 2`), 400, "not valid JSON")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/scale", admin, `{"count": 2}`), 400, `unknown field "count"`)
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/explode", admin, nil), 404, "restore, rollback, scale or promote")
	wantResp(t, e.Do("POST", "/api/v1/components/prod/abalone/promote", admin, nil), 404, "abalone", "prod")
	e.Deploy("prod", "abalone", 1, 1)
	wantResp(t, e.Do("POST", "/api/v1/components/prod/abalone/promote", admin, nil), 404, "last one", "no next environment")
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/promote", admin, nil), 409, "prod already serves version 1")
	vpw := e.AddUser("val", store.RoleViewer)
	wantResp(t, e.Do("POST", "/api/v1/components/dev/abalone/scale", servertest.Basic("val", vpw), map[string]int{"instances": 2}), 403, "viewer", "deployer")

	// Authentication and routing.
	wantResp(t, e.Do("GET", "/api/v1/components", nil, nil), 401, "integration token", "sign in")
	wantResp(t, e.Do("GET", "/api/v1/components", servertest.Bearer("sdt_wrong"), nil), 401, "unknown or was revoked")
	wantResp(t, e.Do("GET", "/api/v1/components", servertest.Basic("admin", "wrong-password"), nil), 401, "wrong user name or password")
	wantResp(t, e.Do("GET", "/api/v1/nothing", admin, nil), 404, "no API route")
	wantResp(t, e.Do("DELETE", "/api/v1/releases", admin, nil), 405, "not supported")
	wantResp(t, e.Do("POST", "/api/v1/environments", admin, map[string]any{"name": "qa"}), 400, "missing kind")
	wantResp(t, e.Do("POST", "/api/v1/environments", admin, map[string]any{"name": "qa", "kind": "azure"}), 400, "sagemaker", "local")
	wantResp(t, e.Do("POST", "/api/v1/users", admin, map[string]any{"name": "x", "role": "root"}), 400, "viewer, deployer or admin")
	wantResp(t, e.Do("POST", "/api/v1/users", admin, map[string]any{"name": "x", "role": "viewer", "password": "short"}), 400, "too short")
	wantResp(t, e.Do("GET", "/api/v1/agent/commands/next?wait=soon", devTok, nil), 400, "wait", "30s")
	wantResp(t, e.Do("GET", "/api/v1/agent/commands/next", admin, nil), 403, "integration token")

	// Nothing half-made: none of the refused commands left a release behind.
	var page store.ReleasePage
	e.Do("GET", "/api/v1/releases?environment=dev", admin, nil).JSON(t, &page)
	for _, r := range page.Releases {
		if r.Kind != releases.KindDeploy {
			t.Fatalf("a refused command left release %+v", r)
		}
	}
}

func TestSweepNotesUnclaimedCommandsAndFailsStuckReleases(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	e := servertest.Start(t, servertest.Options{Now: clk.Now, Server: server.Options{CommandTimeout: time.Minute, RunningTimeout: 10 * time.Minute, SweepInterval: time.Hour}})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("dev", "iris", 1, 1)
	dev := e.Client("dev")
	resp := e.Do("POST", "/api/v1/components/dev/abalone/scale", e.Admin(), map[string]int{"instances": 2})
	var cr commandResp
	resp.JSON(t, &cr)
	stuck, _ := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "iris", Kind: releases.KindDeploy, Version: releases.Version{Number: 2}})

	clk.Advance(2 * time.Minute)
	if err := e.Server.Sweep(bg); err != nil {
		t.Fatal(err)
	}
	var view server.ReleaseView
	e.Do("GET", "/api/v1/releases/"+cr.Release.ID, e.Admin(), nil).JSON(t, &view)
	if view.Status != releases.StatusPending || view.Command == nil || view.Command.State != store.CommandQueued || !strings.Contains(view.Command.Note, "No agent took this command") || !strings.Contains(view.Command.Note, "sagedeploy agent") {
		t.Fatalf("unclaimed command after the timeout: %+v / %+v", view.Release, view.Command)
	}
	if r, _ := dev.Release(bg, stuck.ID); r.Status != releases.StatusRunning {
		t.Fatalf("release failed too early: %s", r.Status)
	}
	// The command is still delivered to an agent that starts late.
	if cmd, _ := dev.NextCommand(bg, 0); cmd == nil || cmd.ID != cr.Command.ID {
		t.Fatalf("late agent got %+v", cmd)
	}

	clk.Advance(11 * time.Minute)
	if err := e.Server.Sweep(bg); err != nil {
		t.Fatal(err)
	}
	r, _ := dev.Release(bg, stuck.ID)
	if r.Status != releases.StatusFailed || !strings.Contains(r.FailureReason, "No progress was reported for 10m0s") {
		t.Fatalf("stuck release after the timeout: %s %q", r.Status, r.FailureReason)
	}
	// The dispatched command whose agent never started it fails as well.
	e.Do("GET", "/api/v1/releases/"+cr.Release.ID, e.Admin(), nil).JSON(t, &view)
	if view.Status != releases.StatusFailed || view.Command.State != store.CommandFailed {
		t.Fatalf("abandoned command: release %s, command %s", view.Status, view.Command.State)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestReleaseStreamDeliversEventsLive(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Server: server.Options{StreamPoll: time.Hour}})
	dev := e.Client("dev")
	r, _ := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 1}})
	dev.AddEvent(bg, r.ID, releases.Event{Phase: "model", Message: "before subscribing"})

	req, _ := http.NewRequest("GET", e.URL+"/api/v1/releases/"+r.ID+"/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.Token("dev"))
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitFor := func(substr string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %q", substr)
				}
				if strings.Contains(l, substr) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q on the stream", substr)
			}
		}
	}
	waitFor("before subscribing")
	// The stream's store poll is an hour: this arrives only because reporting wakes the stream.
	dev.AddEvent(bg, r.ID, releases.Event{Phase: "wait", Message: "endpoint Updating", EndpointStatus: "Updating"})
	waitFor("endpoint Updating")
	one := releases.Version{Number: 1}
	dev.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &one})
	waitFor(`"status":"succeeded"`)
	waitFor("event: end")
	// A prod token cannot open dev's stream.
	wantResp(t, e.Do("GET", "/api/v1/releases/"+r.ID+"/stream", servertest.Bearer(e.Token("prod")), nil), 403, "dev")
}

func TestHealthAndMetrics(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	dev := e.Client("dev")
	failed, _ := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 2}})
	dev.FinishRelease(bg, failed.ID, releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: "x"})
	resp := e.Do("POST", "/api/v1/components/dev/abalone/scale", e.Admin(), map[string]int{"instances": 3})
	var cr commandResp
	resp.JSON(t, &cr)
	cmd, _ := dev.NextCommand(bg, 0)
	dev.StartRelease(bg, releases.ReleaseStart{ID: cmd.ReleaseID, Environment: "dev", Model: "abalone", Kind: releases.KindScale})
	dev.FinishRelease(bg, cmd.ReleaseID, releases.ReleaseFinish{Status: releases.StatusSucceeded, InstanceCount: 3})
	dev.CompleteCommand(bg, cmd.ID, releases.CommandResult{Status: releases.StatusSucceeded})

	h := e.Do("GET", "/healthz", nil, nil)
	if h.Status != 200 || !strings.Contains(string(h.Body), `"ok"`) {
		t.Fatalf("healthz: %d %s", h.Status, h.Body)
	}
	m := e.Do("GET", "/metrics", nil, nil)
	body := string(m.Body)
	for _, want := range []string{
		`sagedeploy_releases{status="succeeded"} 2`,
		`sagedeploy_releases{status="failed"} 1`,
		`sagedeploy_release_duration_seconds_count{kind="deploy",status="succeeded"} 1`,
		`sagedeploy_release_duration_seconds_count{kind="deploy",status="failed"} 1`,
		`sagedeploy_command_latency_seconds_count{kind="scale",stage="pickup"} 1`,
		`sagedeploy_command_latency_seconds_count{kind="scale",stage="complete"} 1`,
		`sagedeploy_http_requests_total{code="201",method="POST",route="POST /api/v1/releases"}`,
		`sagedeploy_http_request_duration_seconds_bucket{route="POST /api/v1/releases/{id}/finish"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grep(body, "sagedeploy_"))
	}
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestSessionRequestsNeedCSRFHeader(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	b := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	// Reads work with the cookie alone.
	if r := b.do("GET", "/api/v1/components", "", nil); r.StatusCode != 200 {
		t.Fatalf("GET with session: %d", r.StatusCode)
	}
	// A state change without the header is refused; with it, accepted.
	if r := b.do("POST", "/api/v1/components/dev/abalone/scale", `{"instances": 2}`, nil); r.StatusCode != 403 {
		t.Fatalf("POST with session but no CSRF header: %d, want 403", r.StatusCode)
	}
	if r := b.do("POST", "/api/v1/components/dev/abalone/scale", `{"instances": 2}`, map[string]string{"X-CSRF-Token": b.csrf}); r.StatusCode != 202 {
		t.Fatalf("POST with session and CSRF header: %d, want 202", r.StatusCode)
	}
	// A dashboard form without the token is refused and changes nothing.
	r := b.form("/components/dev/abalone/scale", "instances=5")
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 403 || !strings.Contains(string(body), "CSRF") {
		t.Fatalf("forged form: %d %s", r.StatusCode, body)
	}
}
