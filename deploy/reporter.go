package deploy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// DefaultReportFlush bounds how long an operation waits at its end for the release reports still
// queued (a slow or unreachable release server); what is left is dropped and counted.
const DefaultReportFlush = 10 * time.Second

// reportAttempts is how many times a report is sent when the release server cannot take it (no
// answer, 5xx, 408, 429); a refusal is not retried. retryPause is the pause before attempt n+1:
// 50 ms, 250 ms, 1.25 s.
const reportAttempts = 4

func retryPause(n int) time.Duration {
	d := 50 * time.Millisecond
	for range n {
		d *= 5
	}
	return d
}

// reporter sends one release's reports (events, heartbeats, the outcome) to the release server
// from one goroutine, in the order they were queued, so that a slow server never holds up the
// operation: queueing returns at once. Events queued one after another while the server was busy
// go as one batch (one request, one commit); the events queued right before the outcome go inside
// the outcome's request. close waits, within a bound, for the queue to drain.
type reporter struct {
	log *slog.Logger
	id  string
	// events sends a batch of events in one request; finish sends the outcome with the events
	// it carries (ReleaseFinish.Events) in one request.
	events func(context.Context, []releases.Event) error
	finish func(context.Context, releases.ReleaseFinish) error
	// ctx ends when close gives up waiting: the report being sent is abandoned.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	queue   []report
	wake    chan struct{}
	closed  bool
	dropped int
	warned  bool
}

// report is one queued report: an event, the outcome, or another call (heartbeat).
type report struct {
	event  *releases.Event
	finish *releases.ReleaseFinish
	send   func(context.Context) error
}

// maxBatch bounds the events sent in one request (the server takes up to 500).
const maxBatch = 100

// newReporter starts the reporter of release id: events sends a batch of events, finish the
// outcome with the events it carries.
func newReporter(id string, log *slog.Logger, events func(context.Context, []releases.Event) error, finish func(context.Context, releases.ReleaseFinish) error) *reporter {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reporter{log: log, id: id, events: events, finish: finish, ctx: ctx, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go r.run()
	return r
}

// add queues a report; send is called with a context that ends when the reporter gives up.
func (r *reporter) add(send func(context.Context) error) { r.push(report{send: send}) }

// addEvent queues an event, to be sent with the events queued right after it.
func (r *reporter) addEvent(e releases.Event) { r.push(report{event: &e}) }

// addFinish queues the outcome, to carry the events queued right before it that are not sent yet.
func (r *reporter) addFinish(f releases.ReleaseFinish) { r.push(report{finish: &f}) }

func (r *reporter) push(rep report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.dropped++
		return
	}
	r.queue = append(r.queue, rep)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// pending is how many reports are queued and not yet sent.
func (r *reporter) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

func (r *reporter) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			closed := r.closed
			r.mu.Unlock()
			if closed {
				return
			}
			select {
			case <-r.wake:
			case <-r.ctx.Done():
				return
			}
			continue
		}
		send, n := r.next()
		r.mu.Unlock()
		err := r.deliver(send)
		r.mu.Lock()
		r.queue = r.queue[n:]
		r.mu.Unlock()
		if err != nil {
			r.drop(lost(n, err), err)
		}
	}
}

// lost is how many of the n reports a failed request covered the server did not record: all of
// them, unless it recorded the outcome and refused only the events sent ahead of it.
func lost(n int, err error) int {
	if pe, ok := errors.AsType[*releases.EventsRefusedError](err); ok {
		return min(pe.Events, n)
	}
	return n
}

// next is the send of the report at the head of the queue and how many reports it covers: the
// events at the head, up to maxBatch, go in one request — the outcome's, when it comes right
// after them. r.mu is held.
func (r *reporter) next() (func(context.Context) error, int) {
	head := r.queue[0]
	switch {
	case head.finish != nil:
		f := *head.finish
		return func(ctx context.Context) error { return r.finish(ctx, f) }, 1
	case head.event == nil:
		return head.send, 1
	}
	var batch []releases.Event
	for _, q := range r.queue {
		if q.event == nil || len(batch) == maxBatch {
			break
		}
		batch = append(batch, *q.event)
	}
	if len(batch) < len(r.queue) && r.queue[len(batch)].finish != nil {
		f := *r.queue[len(batch)].finish
		f.Events = append(batch, f.Events...)
		return func(ctx context.Context) error { return r.finish(ctx, f) }, len(batch) + 1
	}
	return func(ctx context.Context) error { return r.events(ctx, batch) }, len(batch)
}

// deliver sends one report, retrying while the server cannot answer.
func (r *reporter) deliver(send func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(r.ctx, 15*time.Second)
		err := send(ctx)
		cancel()
		if err == nil || !releases.IsUnreachable(err) || attempt+1 == reportAttempts || r.ctx.Err() != nil {
			return err
		}
		if sleep(r.ctx, retryPause(attempt)) != nil {
			return err
		}
	}
}

func (r *reporter) drop(n int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped += n
	if !r.warned && err != nil {
		r.warned = true
		r.log.Warn("a release report could not be sent; the deployment goes on without it", "release", r.id, "error", err)
	}
}

// close waits up to timeout for the queued reports to be sent and returns how many were dropped
// (not sent after their retries, or still queued when the wait ran out).
func (r *reporter) close(timeout time.Duration) int {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		r.cancel()
		<-r.done
		r.mu.Lock()
		left := len(r.queue)
		r.queue = nil
		r.mu.Unlock()
		r.drop(left, errors.New("the release server did not take the reports in time"))
	}
	r.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}
