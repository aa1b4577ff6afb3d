package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// tracker collects an operation's events and, once its release exists on the release server,
// queues them for its reporter, which sends them in order off the operation's path. Reporting
// never fails the operation: a report the server does not take is retried, then dropped,
// counted, and logged once.
type tracker struct {
	d   *Deployer
	mu  sync.Mutex
	buf []Event // events before the release exists
	id  string
	rep *reporter // nil before the release exists and after the end
	// ended: the server ended the release (rejected, abandoned); no outcome is reported then.
	// Otherwise the outcome is reported even after a reporting error, since a server that
	// timed the release out accepts the deployer's late outcome and corrects it.
	ended bool
	// heartbeat is how often a wait tells the server the deployer is alive; lastSent is when
	// a report for this release was last queued.
	heartbeat time.Duration
	lastSent  time.Time
	// steps are the traffic shifts and bakes seen, for the result.
	steps []Event
	// dropped counts the reports the release server never took.
	dropped int
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
	defer t.mu.Unlock()
	if t.rep == nil {
		if t.id == "" && !t.ended {
			t.buf = append(t.buf, e)
		}
		return
	}
	t.queueEvent(e)
}

// queueEvent queues e for the release; t.mu is held.
func (t *tracker) queueEvent(e Event) {
	t.lastSent = t.d.now()
	t.rep.addEvent(releases.Event{Time: e.Time, Phase: e.Phase, Message: e.Message, EndpointStatus: e.EndpointStatus})
}

// beat queues a heartbeat when the server has heard nothing of the release for an interval.
// Waits tick at least every poll interval, so a wait of any length keeps its release alive.
func (t *tracker) beat(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rep == nil || t.heartbeat <= 0 || now.Sub(t.lastSent) < t.heartbeat {
		return
	}
	t.lastSent = now
	c, id := t.d.opts.Releases, t.id
	t.rep.add(func(ctx context.Context) error { return c.Heartbeat(ctx, id) })
}

// start records the release; when the environment's gate holds it pending, it waits for the
// approval (gated; a rejection is ErrRejected; a server that cannot be reached meanwhile is
// retried, since going on would bypass the gate). Reporting errors are logged and the release
// goes on unreported.
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
		t.unreported(err)
		return "", false, nil
	}
	t.mu.Lock()
	t.id, t.lastSent = r.ID, t.d.now()
	rid := r.ID
	t.rep = newReporter(rid, t.d.log, func(ctx context.Context, evs []releases.Event) error {
		_, err := c.AddEvents(ctx, rid, evs)
		return err
	}, func(ctx context.Context, f releases.ReleaseFinish) error {
		_, err := c.FinishRelease(ctx, rid, f)
		return err
	})
	t.heartbeat = heartbeatEvery(t.d.opts.Heartbeat, r.HeartbeatSeconds)
	for _, e := range t.buf {
		t.queueEvent(e)
	}
	t.buf = nil
	t.mu.Unlock()
	// The link goes to the output only: the release page needs no link to itself.
	t.d.emit(Event{Phase: releases.PhaseRelease, Message: fmt.Sprintf("%s of %s to %s: %s", capitalize(string(s.Kind)), s.Model, s.Environment, ReleaseURL(c, r.ID))}, nil)
	if r.Status != releases.StatusPending {
		return r.ID, false, nil
	}
	t.d.emit(Event{Phase: releases.PhaseApproval, Message: fmt.Sprintf("release %s of %s to %s waits for an approval: approve it at %s or with `sagedeploy releases approve %s`", r.ID, s.Model, s.Environment, ReleaseURL(c, r.ID), r.ID)}, sink)
	return r.ID, true, t.awaitApproval(ctx, r.ID, s, sink)
}

// unreported gives up on a release the server could not start: its events are not kept.
func (t *tracker) unreported(err error) {
	t.mu.Lock()
	t.buf, t.ended = nil, true
	t.mu.Unlock()
	t.d.log.Warn("release reporting failed; the deployment goes on without it", "error", err)
}

// awaitApproval follows the release pending at the gate (its event stream, with a slow poll
// when the stream drops) until it is approved or rejected.
func (t *tracker) awaitApproval(ctx context.Context, id string, s releases.ReleaseStart, sink func(Event)) error {
	got, err := t.d.opts.Releases.WaitApprovalWith(ctx, id, releases.ApprovalWait{
		Poll: cmp.Or(max(t.d.opts.ApprovalPoll, 0), 2*time.Second),
		OnRetry: func(err error) {
			t.d.log.Warn("following the approval failed; retrying", "release", id, "error", err)
		},
	})
	switch {
	case errors.Is(err, releases.ErrRejected):
		t.stop() // the server ended the release: nothing more to report into it
		return errorf(ErrRejected, "release %s of %s to %s was rejected%s at the approval gate; nothing was changed", id, s.Model, s.Environment, by(got.RejectedBy))
	case err != nil && ctx.Err() != nil:
		return t.abandon(id, ctx.Err())
	case err != nil:
		return errorf(ErrRefused, "%w; nothing was changed", t.abandon(id, err))
	}
	t.d.emit(Event{Phase: releases.PhaseApproval, Message: "approved" + by(got.ApprovedBy)}, sink)
	return nil
}

func by(user string) string {
	if user == "" {
		return ""
	}
	return " by " + user
}

// abandon cancels a release that was still waiting at the gate when the deployer was stopped, so
// that no approver approves a deployment nobody will carry out. The reports queued before it are
// sent first.
func (t *tracker) abandon(id string, cause error) error {
	f := releases.ReleaseFinish{Status: releases.StatusCanceled, Reason: releases.ReasonCanceled, FailureReason: "the deployer stopped while waiting for an approval; nothing was changed"}
	t.mu.Lock()
	t.ended = true
	t.rep.addFinish(f)
	t.mu.Unlock()
	t.flush()
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
	t.ended = true
	t.mu.Unlock()
}

// finish queues the outcome (unless the server ended the release) and flushes the reports: the
// operation's one wait for the release server, bounded by DefaultReportFlush.
func (t *tracker) finish(f releases.ReleaseFinish) {
	t.queueFinish(f)
	t.flush()
}

// queueFinish queues the outcome behind the events queued before it: those not sent yet (the last
// ones, typically InService and verified, come while the reporter sends earlier ones) go in the
// outcome's request, one round trip and one commit fewer.
func (t *tracker) queueFinish(f releases.ReleaseFinish) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rep != nil && !t.ended {
		t.rep.addFinish(f)
	}
}

// flush waits for the queued reports and ends the reporter; reports dropped are counted and said
// in the operation's output.
func (t *tracker) flush() {
	t.mu.Lock()
	rep := t.rep
	t.rep = nil
	t.mu.Unlock()
	if rep == nil {
		return
	}
	n := rep.close(DefaultReportFlush)
	t.mu.Lock()
	t.dropped += n
	id := t.id
	t.mu.Unlock()
	if n > 0 {
		t.d.emit(Event{Phase: releases.PhaseRelease, Message: fmt.Sprintf("%d report(s) of release %s did not reach the release server at %s; its page misses them", n, id, t.d.opts.Releases.BaseURL())}, nil)
	}
}

// reportsDropped is how many of the release's reports the server never took.
func (t *tracker) reportsDropped() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
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
