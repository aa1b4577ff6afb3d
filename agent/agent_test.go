package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/agent"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// deployerLike is an Executor that reports through the real releases.Client the way the deployer
// does: start the command's release, report progress, finish with what the endpoint serves.
type deployerLike struct {
	ran      atomic.Int32
	failWith error // returned after starting the release, without finishing it
}

func (d *deployerLike) Execute(ctx context.Context, c *releases.Client, cmd releases.Command) error {
	d.ran.Add(1)
	if c == nil {
		return errors.New("no release client given")
	}
	kind := map[releases.CommandKind]releases.Kind{releases.CommandRestore: releases.KindRestore, releases.CommandRollback: releases.KindRestore,
		releases.CommandScale: releases.KindScale, releases.CommandPromote: releases.KindPromote}[cmd.Kind]
	start := releases.ReleaseStart{ID: cmd.ReleaseID, Environment: cmd.Environment, Model: cmd.Model, Kind: kind, EndpointName: cmd.Model + "-" + cmd.Environment,
		Trigger: releases.Trigger{Type: "agent"}}
	if cmd.Version > 0 {
		start.Version = releases.Version{Number: cmd.Version}
	}
	r, err := c.StartRelease(ctx, start)
	if err != nil {
		return err
	}
	if r.Status != releases.StatusRunning {
		return fmt.Errorf("release %s is %s, not running", r.ID, r.Status)
	}
	for _, ev := range []releases.Event{
		{Phase: "endpoint-config", Message: "created endpoint config " + cmd.Model + "-" + cmd.Environment + "-x"},
		{Phase: "wait", Message: "endpoint Updating", EndpointStatus: "Updating"},
	} {
		if _, err := c.AddEvent(ctx, r.ID, ev); err != nil {
			return err
		}
	}
	if d.failWith != nil {
		return d.failWith
	}
	fin := releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: "InService", InstanceCount: cmd.Instances}
	if cmd.Version > 0 {
		fin.ServingVersion = &releases.Version{Number: cmd.Version}
	}
	_, err = c.FinishRelease(ctx, r.ID, fin)
	return err
}

// runAgent runs an agent until the test ends and returns a channel with Run's result.
func runAgent(t *testing.T, ex agent.Executor, clients ...*releases.Client) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		done <- agent.Run(ctx, agent.Options{Clients: clients, Executor: ex, Logger: servertest.TestLogger(t), PollWait: 5 * time.Second, RetryMin: 50 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return cancel, done
}

type commandResp struct {
	Command store.CommandRecord `json:"command"`
	Release server.ReleaseView  `json:"release"`
}

// command issues a dashboard command through the API as the admin.
func command(t *testing.T, e *servertest.Env, env, model, kind string, body any) commandResp {
	t.Helper()
	r := e.Do("POST", "/api/v1/components/"+env+"/"+model+"/"+kind, e.Admin(), body)
	if r.Status != 202 {
		t.Fatalf("%s: HTTP %d %s", kind, r.Status, r.Body)
	}
	var cr commandResp
	r.JSON(t, &cr)
	return cr
}

// waitFinal polls the store until the release is final.
func waitFinal(t *testing.T, e *servertest.Env, id string) store.ReleaseRecord {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.Store.Release(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Final() {
			if c, err := e.Store.Command(context.Background(), r.CommandID); err == nil && (c.State == store.CommandDispatched || c.State == store.CommandQueued) {
				// The agent completes the command right after the release; wait for it too.
			} else {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("release %s still %s after 30s", id, r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func currentVersion(t *testing.T, e *servertest.Env, env, model string) store.ComponentView {
	t.Helper()
	c, err := e.Store.Component(context.Background(), env, model)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCommandsReachTheAgentAndComponentFollows(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("dev", "abalone", 2, 1)
	ex := &deployerLike{}
	runAgent(t, ex, e.Client("dev"), e.Client("prod"))

	cr := command(t, e, "dev", "abalone", "restore", map[string]int{"version": 1})
	r := waitFinal(t, e, cr.Release.ID)
	if r.Status != releases.StatusSucceeded || r.Kind != releases.KindRestore || r.Trigger.User != "admin" {
		t.Fatalf("restore release: %+v", r)
	}
	if c := currentVersion(t, e, "dev", "abalone"); c.CurrentVersion.Number != 1 || c.EndpointStatus != "InService" || c.LastReleaseID != r.ID {
		t.Fatalf("component after restore: %+v", c)
	}
	evs, _ := e.Store.Events(context.Background(), r.ID, 0)
	var msgs []string
	for _, ev := range evs {
		msgs = append(msgs, ev.Message)
	}
	joined := strings.Join(msgs, " | ")
	if !strings.Contains(joined, "took the command") || !strings.Contains(joined, "endpoint Updating") {
		t.Fatalf("events = %s", joined)
	}
	cmd, _ := e.Store.Command(context.Background(), cr.Command.ID)
	if cmd.State != store.CommandSucceeded {
		t.Fatalf("command state %s", cmd.State)
	}

	cr = command(t, e, "dev", "abalone", "scale", map[string]int{"instances": 3})
	if r := waitFinal(t, e, cr.Release.ID); r.Status != releases.StatusSucceeded {
		t.Fatalf("scale: %s %s", r.Status, r.FailureReason)
	}
	if c := currentVersion(t, e, "dev", "abalone"); c.InstanceCount != 3 || c.CurrentVersion.Number != 1 {
		t.Fatalf("after scale: %d instances, v%d", c.InstanceCount, c.CurrentVersion.Number)
	}

	cr = command(t, e, "dev", "abalone", "rollback", nil)
	if r := waitFinal(t, e, cr.Release.ID); r.Status != releases.StatusSucceeded {
		t.Fatalf("rollback: %s %s", r.Status, r.FailureReason)
	}
	if c := currentVersion(t, e, "dev", "abalone"); c.CurrentVersion.Number != 2 {
		t.Fatalf("after rollback dev serves v%d, want 2", c.CurrentVersion.Number)
	}

	// A promotion into gated prod runs only after approval, on the prod token.
	cr = command(t, e, "dev", "abalone", "promote", nil)
	time.Sleep(200 * time.Millisecond) // give a misbehaving server the chance to hand it out early
	if r, _ := e.Store.Release(context.Background(), cr.Release.ID); r.Status != releases.StatusPending || !r.AwaitingApproval() {
		t.Fatalf("unapproved promotion is %s", r.Status)
	}
	before := ex.ran.Load()
	// Four eyes: admin asked for the promotion, another deployer approves it.
	approver := servertest.Basic("erin", e.AddUser("erin", store.RoleDeployer))
	if resp := e.Do("POST", "/api/v1/releases/"+cr.Release.ID+"/approve", approver, nil); resp.Status != 200 {
		t.Fatalf("approve: %d %s", resp.Status, resp.Body)
	}
	if r := waitFinal(t, e, cr.Release.ID); r.Status != releases.StatusSucceeded || r.ApprovedBy != "erin" {
		t.Fatalf("promotion: %+v", r)
	}
	if ex.ran.Load() != before+1 {
		t.Fatalf("executor ran %d times for the promotion", ex.ran.Load()-before)
	}
	if c := currentVersion(t, e, "prod", "abalone"); c.CurrentVersion.Number != 2 {
		t.Fatalf("prod serves v%d after promotion, want 2", c.CurrentVersion.Number)
	}
}

func TestFailingExecutorLeavesNothingRunning(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("dev", "abalone", 2, 1)
	e.Deploy("dev", "iris", 1, 1)
	e.Deploy("dev", "churn", 1, 1)

	cases := []struct {
		name  string
		model string
		ex    agent.Executor
		want  string
	}{
		{"error after starting", "abalone", &deployerLike{failWith: errors.New("UpdateEndpoint: ValidationException: instance type not available")}, "instance type not available"},
		{"returns nil without finishing", "iris", agent.ExecutorFunc(func(ctx context.Context, c *releases.Client, cmd releases.Command) error { return nil }), "without finishing"},
		{"panics", "churn", agent.ExecutorFunc(func(ctx context.Context, c *releases.Client, cmd releases.Command) error { panic("nil map") }), "panicked: nil map"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cancel, _ := runAgent(t, tc.ex, e.Client("dev"))
			defer cancel()
			cr := command(t, e, "dev", tc.model, "scale", map[string]int{"instances": 2})
			r := waitFinal(t, e, cr.Release.ID)
			if r.Status != releases.StatusFailed || !strings.Contains(r.FailureReason, tc.want) {
				t.Fatalf("release: %s %q; want failed mentioning %q", r.Status, r.FailureReason, tc.want)
			}
			cmd, _ := e.Store.Command(context.Background(), cr.Command.ID)
			if cmd.State != store.CommandFailed || !strings.Contains(cmd.Message, tc.want) && tc.name != "returns nil without finishing" {
				t.Fatalf("command: %s %q", cmd.State, cmd.Message)
			}
			if c := currentVersion(t, e, "dev", tc.model); c.InstanceCount != 1 {
				t.Fatalf("a failed scale changed the instance count to %d", c.InstanceCount)
			}
		})
	}
	// The component shows the failure of a release that started.
	if c := currentVersion(t, e, "dev", "abalone"); c.LastReleaseStatus != releases.StatusFailed || c.CurrentVersion.Number != 2 {
		t.Fatalf("component after failed command: last release %s, v%d", c.LastReleaseStatus, c.CurrentVersion.Number)
	}
}

func TestStoppingAgentFailsTheCommandInFlight(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	started := make(chan struct{})
	ex := agent.ExecutorFunc(func(ctx context.Context, c *releases.Client, cmd releases.Command) error {
		if _, err := c.StartRelease(ctx, releases.ReleaseStart{ID: cmd.ReleaseID, Environment: cmd.Environment, Model: cmd.Model, Kind: releases.KindScale}); err != nil {
			return err
		}
		close(started)
		<-ctx.Done() // waiting for SageMaker when the agent is stopped
		return ctx.Err()
	})
	cancel, done := runAgent(t, ex, e.Client("dev"))
	cr := command(t, e, "dev", "abalone", "scale", map[string]int{"instances": 2})
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the command never reached the agent")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop")
	}
	r := waitFinal(t, e, cr.Release.ID)
	if r.Status != releases.StatusFailed || !strings.Contains(r.FailureReason, "agent stopped") {
		t.Fatalf("release of the interrupted command: %s %q", r.Status, r.FailureReason)
	}
}

func TestAgentStopsOnRefusedToken(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	bad := releases.NewClient(e.URL, "sdt_not-a-real-token", nil)
	_, done := runAgent(t, &deployerLike{}, e.Client("dev"), bad)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "refused agent token #2") || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("Run = %v; want the refused token named", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent kept running with a refused token")
	}
}

func TestAgentRetriesWhileServerIsDown(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	tok := e.Token("dev")
	// Point the agent at a closed port first; it must keep retrying rather than exit.
	down := releases.NewClient("http://127.0.0.1:1", tok, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := agent.Run(ctx, agent.Options{Clients: []*releases.Client{down}, Executor: &deployerLike{}, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Run against an unreachable server returned %v; want it to retry until stopped", err)
	}
	if err := agent.Run(context.Background(), agent.Options{Executor: &deployerLike{}}); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("Run without tokens: %v", err)
	}
}
