package releases_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

var (
	t0  = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	t1  = t0.Add(time.Minute)
	dev = releases.Environment{Name: "dev", Kind: releases.EnvironmentLocal}
	gat = releases.Environment{Name: "prod", Kind: releases.EnvironmentSageMaker, RequiresApproval: true}
)

// rel builds a release in a state, for the tables below.
func rel(status releases.Status, opts ...func(*releases.Release)) releases.Release {
	r := releases.Release{ID: "r1", Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Status: status}
	if status != releases.StatusPending {
		r.StartedAt = &t0
	}
	if status.Final() {
		r.FinishedAt = &t0
	}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func gated(r *releases.Release)    { r.NeedsApproval = true }
func fromCmd(r *releases.Release)  { r.CommandID = "c1" }
func approved(r *releases.Release) { r.NeedsApproval, r.ApprovedBy = true, "carol" }
func rejected(r *releases.Release) { r.NeedsApproval, r.RejectedBy = true, "carol" }

// wantErr asserts err has code (none when code is "") and mentions every part.
func wantErr(t *testing.T, err error, code string, parts ...string) {
	t.Helper()
	if got := releases.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q; want %q", err, got, code)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  releases.Environment
		kind releases.Kind
		want releases.Status
		gate bool
		from int // the version the target serves, as the deployer reports it; 0: none
	}{
		{"deploy into an open environment runs", dev, releases.KindDeploy, releases.StatusRunning, false, 0},
		{"deploy into a gated environment waits", gat, releases.KindDeploy, releases.StatusPending, true, 0},
		{"promotion into a gated environment waits", gat, releases.KindPromote, releases.StatusPending, true, 0},
		{"restore passes the gate", gat, releases.KindRestore, releases.StatusRunning, false, 0},
		{"scaling passes the gate", gat, releases.KindScale, releases.StatusRunning, false, 0},
		{"a promotion of the version the target serves passes the gate", gat, releases.KindPromote, releases.StatusRunning, false, 4},
		{"a deploy of the version the target serves passes the gate", gat, releases.KindDeploy, releases.StatusRunning, false, 4},
		{"a promotion of a new version waits", gat, releases.KindPromote, releases.StatusPending, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := releases.Release{Kind: tc.kind, Version: releases.Version{Number: 4}}
			if tc.from > 0 {
				r.PreviousVersion = &releases.Version{Number: tc.from}
			}
			releases.Open(&r, tc.env, t0)
			if r.Status != tc.want || r.NeedsApproval != tc.gate || (r.StartedAt != nil) != (tc.want == releases.StatusRunning) {
				t.Fatalf("got status %s, gate %v, started %v; want %s, gate %v", r.Status, r.NeedsApproval, r.StartedAt, tc.want, tc.gate)
			}
		})
	}
}

func TestContinue(t *testing.T) {
	start := releases.ReleaseStart{Environment: "prod", Model: "abalone", Version: releases.Version{Number: 4}, EndpointConfigName: "cfg-4", InstanceCount: 3}
	for _, tc := range []struct {
		name    string
		r       releases.Release
		st      releases.ReleaseStart
		started bool
		want    releases.Status
		code    string
	}{
		{"queued command starts running", rel(releases.StatusPending, fromCmd), start, true, releases.StatusRunning, ""},
		{"approved command starts running", rel(releases.StatusPending, fromCmd, approved), start, true, releases.StatusRunning, ""},
		{"still at the gate stays pending", rel(releases.StatusPending, fromCmd, gated), start, false, releases.StatusPending, ""},
		{"running again is a progress report", rel(releases.StatusRunning, fromCmd), start, false, releases.StatusRunning, ""},
		{"finished is refused", rel(releases.StatusSucceeded, fromCmd), start, false, releases.StatusSucceeded, releases.ECONFLICT},
		{"other environment is refused", rel(releases.StatusPending, fromCmd), releases.ReleaseStart{Environment: "dev", Model: "abalone"}, false, releases.StatusPending, releases.ECONFLICT},
		{"other model is refused", rel(releases.StatusPending, fromCmd), releases.ReleaseStart{Environment: "prod", Model: "iris"}, false, releases.StatusPending, releases.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			started, err := releases.Continue(&r, tc.st, t1)
			wantErr(t, err, tc.code)
			if started != tc.started || r.Status != tc.want {
				t.Fatalf("started %v, status %s; want %v, %s", started, r.Status, tc.started, tc.want)
			}
			if err == nil && (r.Version.Number != 4 || r.EndpointConfigName != "cfg-4" || r.InstanceCount != 3) {
				t.Fatalf("the report's details were not kept: %+v", r)
			}
		})
	}
}

func TestApproveAndReject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r       releases.Release
		approve bool
		want    releases.Status
		reason  releases.Reason
		code    string
		parts   []string
	}{
		{"approve a deployer's release: it runs", rel(releases.StatusPending, gated), true, releases.StatusRunning, "", "", nil},
		{"approve a command's release: it waits for an agent", rel(releases.StatusPending, gated, fromCmd), true, releases.StatusPending, "", "", nil},
		{"reject: canceled, rejected", rel(releases.StatusPending, gated), false, releases.StatusCanceled, releases.ReasonRejected, "", nil},
		{"approve twice", rel(releases.StatusRunning, approved), true, releases.StatusRunning, "", releases.ECONFLICT, []string{"already approved by carol"}},
		{"reject after approval", rel(releases.StatusPending, approved, fromCmd), false, releases.StatusPending, "", releases.ECONFLICT, []string{"already approved by carol"}},
		{"approve after rejection", rel(releases.StatusCanceled, rejected), true, releases.StatusCanceled, "", releases.ECONFLICT, []string{"already rejected by carol"}},
		{"approve without a gate", rel(releases.StatusRunning), true, releases.StatusRunning, "", releases.ECONFLICT, []string{"does not need an approval"}},
		{"reject without a gate", rel(releases.StatusPending, fromCmd), false, releases.StatusPending, "", releases.ECONFLICT, []string{"does not need an approval"}},
		{"approve an ended release", rel(releases.StatusFailed, gated), true, releases.StatusFailed, "", releases.ECONFLICT, []string{"not waiting for approval"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			var err error
			if tc.approve {
				err = releases.Approve(&r, prodGate, "dave", t1)
			} else {
				err = releases.Reject(&r, "dave", "too risky", t1)
			}
			wantErr(t, err, tc.code, tc.parts...)
			if r.Status != tc.want || r.Reason != tc.reason {
				t.Fatalf("status %s, reason %q; want %s, %q", r.Status, r.Reason, tc.want, tc.reason)
			}
			if err == nil && tc.approve && r.ApprovedBy != "dave" {
				t.Fatalf("approved by %q", r.ApprovedBy)
			}
			if err == nil && !tc.approve && (r.RejectedBy != "dave" || r.FailureReason != "rejected at the approval gate by dave: too risky" || r.FinishedAt == nil) {
				t.Fatalf("rejection recorded as %+v", r)
			}
		})
	}
	r := rel(releases.StatusPending, gated)
	wantErr(t, releases.Approve(&r, prodGate, "", t1), releases.EINVALID, "name of the user")
}

var prodGate = releases.Environment{Name: "prod", RequiresApproval: true}

func requestedBy(user string) func(*releases.Release) {
	return func(r *releases.Release) { r.Trigger = releases.Trigger{Type: releases.TriggerUser, User: user} }
}

func TestFourEyes(t *testing.T) {
	selfOK := prodGate
	selfOK.AllowSelfApproval = true
	for _, tc := range []struct {
		name     string
		r        releases.Release
		env      releases.Environment
		approver string
		code     string
	}{
		{"the requester may not approve", rel(releases.StatusPending, gated, requestedBy("alice")), prodGate, "alice", releases.EFORBIDDEN},
		{"not even typed in other case", rel(releases.StatusPending, gated, requestedBy("alice")), prodGate, "Alice", releases.EFORBIDDEN},
		{"the requester of a command may not approve", rel(releases.StatusPending, gated, fromCmd, requestedBy("alice")), prodGate, "alice", releases.EFORBIDDEN},
		{"another deployer may", rel(releases.StatusPending, gated, requestedBy("alice")), prodGate, "bob", ""},
		{"a gate that allows self-approval", rel(releases.StatusPending, gated, requestedBy("alice")), selfOK, "alice", ""},
		{"nobody named as requester", rel(releases.StatusPending, gated), prodGate, "alice", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			err := releases.Approve(&r, tc.env, tc.approver, t1)
			if tc.code == "" {
				wantErr(t, err, "")
				if r.ApprovedBy != tc.approver {
					t.Fatalf("approved by %q; want %q", r.ApprovedBy, tc.approver)
				}
				return
			}
			wantErr(t, err, tc.code, "four-eyes rule of environment prod", "alice requested release r1", "someone else must approve", "--allow-self-approval")
			if r.ApprovedBy != "" || r.Status != releases.StatusPending {
				t.Fatalf("a refused approval changed the release: %+v", r)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    releases.Release
		cmd  releases.CommandState
		code string
	}{
		{"pending at the gate", rel(releases.StatusPending, gated), "", ""},
		{"queued command", rel(releases.StatusPending, fromCmd), releases.CommandQueued, ""},
		{"command at the gate", rel(releases.StatusPending, fromCmd, gated), releases.CommandAwaitingApproval, ""},
		{"command an agent took", rel(releases.StatusPending, fromCmd), releases.CommandDispatched, releases.ECONFLICT},
		{"running", rel(releases.StatusRunning), "", releases.ECONFLICT},
		{"ended", rel(releases.StatusSucceeded), "", releases.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			err := releases.Cancel(&r, tc.cmd, "erin", t1)
			wantErr(t, err, tc.code)
			if err == nil && (r.Status != releases.StatusCanceled || r.Reason != releases.ReasonCanceled || r.FailureReason != "canceled by erin") {
				t.Fatalf("canceled as %+v", r)
			}
			if err != nil && r.Status != tc.r.Status {
				t.Fatalf("a refused cancel changed the status to %s", r.Status)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	failed := func(reason releases.Reason) releases.ReleaseFinish {
		return releases.ReleaseFinish{Status: releases.StatusFailed, Reason: reason, FailureReason: "boom"}
	}
	for _, tc := range []struct {
		name    string
		r       releases.Release
		f       releases.ReleaseFinish
		changed bool
		want    releases.Status
		reason  releases.Reason
		code    string
	}{
		{"success", rel(releases.StatusRunning), releases.ReleaseFinish{Status: releases.StatusSucceeded}, true, releases.StatusSucceeded, "", ""},
		{"success drops a stray reason", rel(releases.StatusRunning), releases.ReleaseFinish{Status: releases.StatusSucceeded, Reason: releases.ReasonFailed}, true, releases.StatusSucceeded, "", ""},
		{"rolled back by SageMaker", rel(releases.StatusRunning), failed(releases.ReasonRolledBack), true, releases.StatusFailed, releases.ReasonRolledBack, ""},
		{"verification failed", rel(releases.StatusRunning), failed(releases.ReasonVerificationFailed), true, releases.StatusFailed, releases.ReasonVerificationFailed, ""},
		{"timed out in the deployer", rel(releases.StatusRunning), failed(releases.ReasonTimedOut), true, releases.StatusFailed, releases.ReasonTimedOut, ""},
		{"endpoint failed", rel(releases.StatusRunning), failed(releases.ReasonFailed), true, releases.StatusFailed, releases.ReasonFailed, ""},
		{"failure from an older client counts as errored", rel(releases.StatusRunning), failed(""), true, releases.StatusFailed, releases.ReasonErrored, ""},
		{"canceled by the deployer", rel(releases.StatusRunning), releases.ReleaseFinish{Status: releases.StatusCanceled}, true, releases.StatusCanceled, releases.ReasonCanceled, ""},
		{"a pending release may fail", rel(releases.StatusPending, fromCmd), failed(releases.ReasonErrored), true, releases.StatusFailed, releases.ReasonErrored, ""},
		{"the same end again changes nothing", rel(releases.StatusSucceeded), releases.ReleaseFinish{Status: releases.StatusSucceeded}, false, releases.StatusSucceeded, "", ""},
		{"another end after the end", rel(releases.StatusSucceeded), failed(releases.ReasonFailed), false, releases.StatusSucceeded, "", releases.ECONFLICT},
		{"success before the approval", rel(releases.StatusPending, gated), releases.ReleaseFinish{Status: releases.StatusSucceeded}, false, releases.StatusPending, "", releases.ECONFLICT},
		{"a status that ends nothing", rel(releases.StatusRunning), releases.ReleaseFinish{Status: releases.StatusRunning}, false, releases.StatusRunning, "", releases.EINVALID},
		{"an unknown reason", rel(releases.StatusRunning), failed("gremlins"), false, releases.StatusRunning, "", releases.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			changed, err := releases.Finish(&r, tc.f, t1)
			wantErr(t, err, tc.code)
			if changed != tc.changed || r.Status != tc.want || r.Reason != tc.reason {
				t.Fatalf("changed %v, status %s, reason %q; want %v, %s, %q", changed, r.Status, r.Reason, tc.changed, tc.want, tc.reason)
			}
			if changed && (r.FinishedAt == nil || !r.FinishedAt.Equal(t1)) {
				t.Fatalf("finished at %v; want %v", r.FinishedAt, t1)
			}
		})
	}
	r := rel(releases.StatusRunning)
	if _, err := releases.Finish(&r, releases.ReleaseFinish{Status: releases.StatusFailed}, t1); err != nil || r.FailureReason == "" {
		t.Fatalf("a failure without words gets words: %q, %v", r.FailureReason, err)
	}
}

func TestTimeOut(t *testing.T) {
	cutoff := t0
	for _, tc := range []struct {
		name      string
		r         releases.Release
		idleSince time.Time
		want      bool
	}{
		{"running and silent since before the cutoff", rel(releases.StatusRunning), t0.Add(-time.Second), true},
		{"silent since exactly the cutoff", rel(releases.StatusRunning), t0, true},
		{"pending with a taken command", rel(releases.StatusPending, fromCmd), t0.Add(-time.Hour), true},
		{"reported after the cutoff", rel(releases.StatusRunning), t0.Add(time.Second), false},
		{"already ended", rel(releases.StatusSucceeded), t0.Add(-time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			got := releases.TimeOut(&r, tc.idleSince, cutoff, "no progress", t1)
			if got != tc.want {
				t.Fatalf("TimeOut = %v; want %v", got, tc.want)
			}
			if got && (r.Status != releases.StatusFailed || r.Reason != releases.ReasonTimedOut || r.FailureReason != "no progress") {
				t.Fatalf("timed out as %+v", r)
			}
			if !got && r.Status != tc.r.Status {
				t.Fatalf("status changed to %s", r.Status)
			}
		})
	}
}

func TestSupersede(t *testing.T) {
	by := releases.Release{ID: "r2", Trigger: releases.Trigger{PipelineID: "p-9"}}
	for _, tc := range []struct {
		name   string
		r      releases.Release
		want   releases.Status
		reason releases.Reason
		code   string
	}{
		{"running: its deployer is gone", rel(releases.StatusRunning), releases.StatusFailed, releases.ReasonErrored, ""},
		{"never started", rel(releases.StatusPending, gated), releases.StatusCanceled, releases.ReasonCanceled, ""},
		{"already ended", rel(releases.StatusSucceeded), releases.StatusSucceeded, "", releases.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			err := releases.Supersede(&r, by, t1)
			wantErr(t, err, tc.code)
			if r.Status != tc.want || r.Reason != tc.reason {
				t.Fatalf("status %s, reason %q; want %s, %q", r.Status, r.Reason, tc.want, tc.reason)
			}
			if err == nil && (!strings.Contains(r.FailureReason, "r2") || !strings.Contains(r.FailureReason, "p-9")) {
				t.Fatalf("reason %q does not name the new release and its pipeline", r.FailureReason)
			}
		})
	}
}

// TestCommandTransitions runs every command step from every state.
func TestCommandTransitions(t *testing.T) {
	all := []releases.CommandState{releases.CommandAwaitingApproval, releases.CommandQueued, releases.CommandDispatched,
		releases.CommandSucceeded, releases.CommandFailed, releases.CommandCanceled}
	steps := []struct {
		name    string
		step    func(*releases.Command) error
		allowed map[releases.CommandState]releases.CommandState
	}{
		{"approve", releases.ApproveCommand, map[releases.CommandState]releases.CommandState{
			releases.CommandAwaitingApproval: releases.CommandQueued}},
		{"claim", releases.ClaimCommand, map[releases.CommandState]releases.CommandState{
			releases.CommandQueued: releases.CommandDispatched}},
		{"start", releases.StartCommand, map[releases.CommandState]releases.CommandState{
			releases.CommandQueued: releases.CommandDispatched, releases.CommandDispatched: releases.CommandDispatched}},
		{"cancel", releases.CancelCommand, map[releases.CommandState]releases.CommandState{
			releases.CommandAwaitingApproval: releases.CommandCanceled, releases.CommandQueued: releases.CommandCanceled}},
		{"time out", releases.TimeOutCommand, map[releases.CommandState]releases.CommandState{
			releases.CommandQueued: releases.CommandFailed, releases.CommandDispatched: releases.CommandFailed}},
	}
	for _, st := range steps {
		for _, from := range all {
			t.Run(st.name+" from "+string(from), func(t *testing.T) {
				c := releases.Command{ID: "c1", State: from}
				err := st.step(&c)
				want, ok := st.allowed[from]
				if !ok {
					wantErr(t, err, releases.ECONFLICT, "c1", string(from))
					want = from
				} else {
					wantErr(t, err, "")
				}
				if c.State != want {
					t.Fatalf("state %s; want %s", c.State, want)
				}
			})
		}
	}
}

func TestCompleteCommand(t *testing.T) {
	for _, tc := range []struct {
		from    releases.CommandState
		result  releases.Status
		want    releases.CommandState
		changed bool
		code    string
	}{
		{releases.CommandDispatched, releases.StatusSucceeded, releases.CommandSucceeded, true, ""},
		{releases.CommandDispatched, releases.StatusFailed, releases.CommandFailed, true, ""},
		{releases.CommandSucceeded, releases.StatusSucceeded, releases.CommandSucceeded, false, ""},
		{releases.CommandSucceeded, releases.StatusFailed, releases.CommandSucceeded, false, releases.ECONFLICT},
		{releases.CommandCanceled, releases.StatusSucceeded, releases.CommandCanceled, false, releases.ECONFLICT},
		{releases.CommandQueued, releases.StatusSucceeded, releases.CommandQueued, false, releases.ECONFLICT},
		{releases.CommandAwaitingApproval, releases.StatusFailed, releases.CommandAwaitingApproval, false, releases.ECONFLICT},
		{releases.CommandDispatched, releases.StatusRunning, releases.CommandDispatched, false, releases.EINVALID},
	} {
		t.Run(string(tc.from)+" reports "+string(tc.result), func(t *testing.T) {
			c := releases.Command{ID: "c1", State: tc.from}
			changed, err := releases.CompleteCommand(&c, tc.result)
			wantErr(t, err, tc.code)
			if changed != tc.changed || c.State != tc.want {
				t.Fatalf("changed %v, state %s; want %v, %s", changed, c.State, tc.changed, tc.want)
			}
		})
	}
	for _, gated := range []bool{true, false} {
		cmd, rel := releases.Command{ID: "c1"}, releases.Release{ID: "r1"}
		releases.Issue(&cmd, &rel, gated)
		want := releases.CommandQueued
		if gated {
			want = releases.CommandAwaitingApproval
		}
		if cmd.State != want || cmd.ReleaseID != "r1" || rel.CommandID != "c1" || rel.Status != releases.StatusPending ||
			rel.NeedsApproval != gated || rel.AwaitingApproval() != gated {
			t.Fatalf("issued (gated %v): %+v / %+v", gated, cmd, rel)
		}
	}
}

func TestReasonTexts(t *testing.T) {
	for _, r := range []releases.Reason{releases.ReasonRolledBack, releases.ReasonVerificationFailed, releases.ReasonTimedOut,
		releases.ReasonFailed, releases.ReasonErrored, releases.ReasonRejected, releases.ReasonCanceled} {
		if !r.Valid() || r.Text() == "" {
			t.Errorf("reason %q: valid %v, text %q", r, r.Valid(), r.Text())
		}
	}
	if releases.Reason("gremlins").Valid() {
		t.Error("an unknown reason is valid")
	}
}

func TestReportChecks(t *testing.T) {
	v3 := releases.Version{Number: 3}
	for _, tc := range []struct {
		name  string
		err   error
		code  string
		parts []string
	}{
		{"a complete start", releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v3}.Check(), "", nil},
		{"a scale needs no version", releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindScale}.Check(), "", nil},
		{"a start into a command's release needs no version", releases.ReleaseStart{ID: "r1", Environment: "dev", Model: "abalone", Kind: releases.KindRestore}.Check(), "", nil},
		{"a start without names", releases.ReleaseStart{Kind: releases.KindDeploy}.Check(), releases.EINVALID, []string{"missing environment, model"}},
		{"an unknown kind", releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: "yolo"}.Check(), releases.EINVALID, []string{`"yolo"`, "deploy, promote, restore, rollback or scale"}},
		{"a deploy without a version", releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy}.Check(), releases.EINVALID, []string{"names no version"}},
		{"negative instances", releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v3, InstanceCount: -1}.Check(), releases.EINVALID, []string{"negative"}},
		{"a finish", releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonRolledBack}.Check(), "", nil},
		{"a finish without status", releases.ReleaseFinish{}.Check(), releases.EINVALID, []string{"missing status"}},
		{"a finish that ends nothing", releases.ReleaseFinish{Status: releases.StatusPending}.Check(), releases.EINVALID, []string{`"pending"`}},
		{"a finish with an unknown reason", releases.ReleaseFinish{Status: releases.StatusFailed, Reason: "gremlins"}.Check(), releases.EINVALID, []string{`"gremlins"`}},
		{"a finish with negative instances", releases.ReleaseFinish{Status: releases.StatusSucceeded, InstanceCount: -2}.Check(), releases.EINVALID, []string{"negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.code, tc.parts...) })
	}
}

// A command goes back to the queue only from an agent's hands.
func TestRequeueCommand(t *testing.T) {
	for _, tc := range []struct {
		from releases.CommandState
		code string
	}{
		{releases.CommandDispatched, ""},
		{releases.CommandQueued, releases.ECONFLICT},
		{releases.CommandAwaitingApproval, releases.ECONFLICT},
		{releases.CommandSucceeded, releases.ECONFLICT},
	} {
		c := releases.Command{ID: "c1", State: tc.from}
		err := releases.RequeueCommand(&c)
		wantErr(t, err, tc.code)
		if tc.code == "" && c.State != releases.CommandQueued {
			t.Fatalf("requeue from %s left it %s", tc.from, c.State)
		}
		if tc.code != "" && c.State != tc.from {
			t.Fatalf("refused requeue from %s changed it to %s", tc.from, c.State)
		}
	}
}
