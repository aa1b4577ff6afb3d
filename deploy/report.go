package deploy

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// tracker collects an operation's events and, once its release exists on the release server,
// forwards them there. Reporting never fails the operation: errors are logged once and reporting
// stops for that release.
type tracker struct {
	d      *Deployer
	mu     sync.Mutex
	buf    []Event
	id     string
	active bool
	warned bool
	// ended: the server ended the release (rejected, abandoned); no outcome is reported then.
	// Otherwise the outcome is reported even after a reporting error, since a server that
	// timed the release out accepts the deployer's late outcome and corrects it.
	ended bool
	// heartbeat is how often a wait tells the server the deployer is alive; lastSent is when
	// the server last heard of this release.
	heartbeat time.Duration
	lastSent  time.Time
	// steps are the traffic shifts and bakes seen, for the result.
	steps []Event
}

// trafficSteps is the traffic shifts and bakes the operation went through.
func (t *tracker) trafficSteps() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.steps
}

func (d *Deployer) newTracker() *tracker { return &tracker{d: d} }

// sink is the event sink handed to emit.
func (t *tracker) sink(e Event) {
	if e.Phase == releases.PhaseTraffic || e.Phase == releases.PhaseBake {
		t.mu.Lock()
		t.steps = append(t.steps, e)
		t.mu.Unlock()
	}
	if t.d.opts.Releases == nil {
		return
	}
	if e.Tick {
		t.beat(e.Time)
		return
	}
	t.mu.Lock()
	if !t.active {
		if t.id == "" {
			t.buf = append(t.buf, e)
		}
		t.mu.Unlock()
		return
	}
	id := t.id
	t.mu.Unlock()
	t.send(id, e)
}

// beat sends a heartbeat when the server has heard nothing of the release for an interval. Waits
// tick at least every poll interval, so a wait of any length keeps its release alive.
func (t *tracker) beat(now time.Time) {
	t.mu.Lock()
	due := t.active && t.heartbeat > 0 && now.Sub(t.lastSent) >= t.heartbeat
	if due {
		t.lastSent = now
	}
	id := t.id
	t.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := t.d.opts.Releases.Heartbeat(ctx, id); err != nil {
		t.fail(err)
	}
}

func (t *tracker) send(id string, e Event) {
	t.mu.Lock()
	t.lastSent = t.d.now()
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := t.d.opts.Releases.AddEvent(ctx, id, releases.Event{Time: e.Time, Phase: e.Phase, Message: e.Message, EndpointStatus: e.EndpointStatus})
	if err != nil {
		t.fail(err)
	}
}

func (t *tracker) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active = false
	if !t.warned {
		t.warned = true
		t.d.log.Warn("release reporting failed; the deployment goes on without it", "release", t.id, "error", err)
	}
}

// start records the release; when the environment's gate holds it pending, it waits for the
// approval (gated; a rejection is ErrRejected; other errors while waiting are retried, since going
// on would bypass the gate). Reporting errors are logged and the release goes on unreported.
func (t *tracker) start(ctx context.Context, s releases.ReleaseStart, sink func(Event)) (id string, gated bool, err error) {
	c := t.d.opts.Releases
	if c == nil {
		return "", false, nil
	}
	// Not cancelable: a release the server made must come back with its id, or a deployer
	// stopped mid-request would leave it pending at the gate, where nobody should approve it.
	r, err := c.StartRelease(context.WithoutCancel(ctx), s)
	if err != nil {
		if rerr := t.d.startRefused(ctx, s, err); rerr != nil {
			return "", false, rerr
		}
		t.fail(err)
		return "", false, nil
	}
	t.mu.Lock()
	t.id, t.active, t.lastSent = r.ID, true, t.d.now()
	t.heartbeat = heartbeatEvery(t.d.opts.Heartbeat, r.HeartbeatSeconds)
	buf := t.buf
	t.buf = nil
	t.mu.Unlock()
	for _, e := range buf {
		t.send(r.ID, e)
	}
	// The link goes to the output only: the release page needs no link to itself.
	t.d.emit(Event{Phase: releases.PhaseRelease, Message: fmt.Sprintf("%s of %s to %s: %s", capitalize(string(s.Kind)), s.Model, s.Environment, ReleaseURL(c, r.ID))}, nil)
	if r.Status != releases.StatusPending {
		return r.ID, false, nil
	}
	t.d.emit(Event{Phase: releases.PhaseApproval, Message: fmt.Sprintf("release %s of %s to %s waits for an approval: approve it at %s or with `sagedeploy releases approve %s`", r.ID, s.Model, s.Environment, ReleaseURL(c, r.ID), r.ID)}, sink)
	return r.ID, true, t.awaitApproval(ctx, r.ID, s, sink)
}

// awaitApproval polls the release pending at the gate until it is approved or rejected.
func (t *tracker) awaitApproval(ctx context.Context, id string, s releases.ReleaseStart, sink func(Event)) error {
	c := t.d.opts.Releases
	maxPoll := cmp.Or(max(t.d.opts.ApprovalPoll, 0), 2*time.Second)
	// Checks start often and back off to maxPoll: an approval given at once (a script, a user
	// watching the dashboard) is noticed in tens of milliseconds, not a whole interval later,
	// while a long wait costs the server no more requests than a fixed interval would.
	poll := min(50*time.Millisecond, maxPoll)
	for {
		if err := sleep(ctx, poll); err != nil {
			return t.abandon(id, err)
		}
		poll = min(maxPoll, poll*3/2)
		got, err := c.Release(ctx, id)
		switch {
		case err == nil && got.Status == releases.StatusCanceled:
			t.stop() // the server ended the release: nothing more to report into it
			who := ""
			if got.RejectedBy != "" {
				who = " by " + got.RejectedBy
			}
			return errorf(ErrRejected, "release %s of %s to %s was rejected%s at the approval gate; nothing was changed", id, s.Model, s.Environment, who)
		case err == nil && got.Status != releases.StatusPending:
			by := ""
			if got.ApprovedBy != "" {
				by = " by " + got.ApprovedBy
			}
			t.d.emit(Event{Phase: releases.PhaseApproval, Message: "approved" + by}, sink)
			return nil
		case err == nil:
			continue // still waiting
		case ctx.Err() != nil:
			return t.abandon(id, ctx.Err())
		}
		t.d.log.Warn("checking the approval failed; retrying", "release", id, "error", err)
	}
}

// abandon cancels a release that was still waiting at the gate when the deployer was stopped, so
// that no approver approves a deployment nobody will carry out.
func (t *tracker) abandon(id string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	f := releases.ReleaseFinish{Status: releases.StatusCanceled, Reason: releases.ReasonCanceled, FailureReason: "the deployer stopped while waiting for an approval; nothing was changed"}
	if _, err := t.d.opts.Releases.FinishRelease(ctx, id, f); err != nil {
		t.d.log.Warn("could not cancel the release waiting for an approval", "release", id, "error", err)
	}
	t.stop()
	return fmt.Errorf("wait for the approval of release %s: %w", id, cause)
}

// heartbeatEvery is the heartbeat interval: the deployer's own, or more often when the server asks.
func heartbeatEvery(own time.Duration, serverSeconds float64) time.Duration {
	every := cmp.Or(max(own, 0), DefaultHeartbeat)
	if s := time.Duration(serverSeconds * float64(time.Second)); s > 0 {
		every = min(every, s)
	}
	return every
}

// DefaultHeartbeat is how often a waiting deployer tells the release server it is alive, unless
// the server asks for more often.
const DefaultHeartbeat = time.Minute

// stop ends reporting into a release the server has already ended.
func (t *tracker) stop() {
	t.mu.Lock()
	t.active, t.ended = false, true
	t.mu.Unlock()
}

// finish records the outcome, with a context of its own so that a timed-out operation still
// reports it.
func (t *tracker) finish(f releases.ReleaseFinish) {
	t.mu.Lock()
	id, ended := t.id, t.ended
	t.mu.Unlock()
	if ended || id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := t.d.opts.Releases.FinishRelease(ctx, id, f); err != nil {
		t.fail(err)
	}
}

// ReleaseURL is the dashboard page of release id on the server c reports to ("" without one).
func ReleaseURL(c *releases.Client, id string) string {
	if c == nil || id == "" {
		return ""
	}
	return c.BaseURL() + "/releases/" + url.PathEscape(id)
}

// releaseURL is the page of release id on the deployer's release server.
func (d *Deployer) releaseURL(id string) string { return ReleaseURL(d.opts.Releases, id) }

// trigger is who started an operation, unless the request says: the pipeline, else the CLI —
// with the CI user or the person at the terminal (Options.TriggerUser) when known.
func (d *Deployer) trigger(given *releases.Trigger, pipelineID, projectID string) releases.Trigger {
	if given != nil {
		return *given
	}
	if pipelineID != "" {
		return releases.Trigger{Type: releases.TriggerPipeline, PipelineID: pipelineID, ProjectID: projectID, User: d.opts.TriggerUser}
	}
	return releases.Trigger{Type: releases.TriggerCLI, ProjectID: projectID, User: d.opts.TriggerUser}
}
