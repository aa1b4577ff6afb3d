package server

import (
	"strings"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/releases/store"
)

// notifier wakes waiters on a key (a release, an environment's command queue). Waiters also poll
// the store on a timer, so a missed wake-up (or a second server on the same Postgres) only delays.
type notifier struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
	gen   uint64 // counts signals, so that a reader can tell whether anything happened since
}

func newNotifier() *notifier { return &notifier{chans: map[string]chan struct{}{}} }

// wait returns a channel closed at the next signal of key. Take it before reading the state you
// wait on, so that a change between the read and the wait is not lost.
func (n *notifier) wait(key string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := n.chans[key]
	if !ok {
		ch = make(chan struct{})
		n.chans[key] = ch
	}
	return ch
}

// signal wakes the waiters on key, and those on anyKey (the dashboard's live pages).
func (n *notifier) signal(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gen++
	n.close(key)
	n.close(anyKey)
	// Every change of a release is signaled, and any may have queued webhook deliveries.
	if strings.HasPrefix(key, releaseKey("")) {
		n.close(outboxKey)
	}
}

func (n *notifier) close(key string) {
	if ch, ok := n.chans[key]; ok {
		close(ch)
		delete(n.chans, key)
	}
}

// generation is the number of signals so far.
func (n *notifier) generation() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen
}

// anyKey is signalled with every key.
const anyKey = "*"

func releaseKey(id string) string { return "release:" + id }
func queueKey(env string) string  { return "queue:" + env }
func tokenKey(id string) string   { return "token:" + id }

// presence remembers when an agent of each environment last asked for work.
type presence struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newPresence() *presence { return &presence{seen: map[string]time.Time{}} }

func (p *presence) saw(env string, at time.Time) {
	p.mu.Lock()
	p.seen[env] = at
	p.mu.Unlock()
}

func (p *presence) last(env string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.seen[env]
	return t, ok
}

// outboxKey wakes the webhook deliverer.
const outboxKey = "outbox"

// deliverLoop sends due webhook deliveries until Close: woken by release changes of this server,
// at the time the next one is due, and every Poll for those other servers queued.
func (s *Server) deliverLoop(snd *sender) {
	defer s.wg.Done()
	for {
		woken := s.notify.wait(outboxKey)
		full, err := s.deliverDue(snd)
		if err != nil && s.ctx.Err() == nil {
			s.log.Error("deliver webhooks", "err", err)
		}
		wait := snd.opts.Poll
		if full {
			wait = 0
		} else if next, ok, err := s.st.NextDue(s.ctx, keyID(snd.opts.Key)); err == nil && ok {
			wait = min(wait, max(next.Sub(s.st.Now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-woken:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliverDue claims a batch of due deliveries and makes one attempt of each, in parallel so that
// one slow receiver does not hold the others up. full says the batch was full (more may be due).
func (s *Server) deliverDue(snd *sender) (full bool, err error) {
	const batch = 16
	ds, err := s.st.Claim(s.ctx, snd.owner, keyID(snd.opts.Key), batch, snd.opts.lease())
	if err != nil {
		return false, err
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.logAttempt(snd.deliver(s.ctx, d))
		}()
	}
	wg.Wait()
	return len(ds) == batch, nil
}

func (s *Server) logAttempt(d store.Delivery, err error) {
	attrs := []any{"delivery", d.ID, "event", d.EventID, "kind", d.Kind, "webhook", d.Webhook.ID, "attempt", d.Attempts, "status", d.LastStatus}
	switch {
	case err != nil:
		s.log.Error("record webhook attempt", append(attrs, "err", err)...)
	case s.ctx.Err() != nil && d.State == store.DeliveryPending:
		s.log.Info("webhook delivery left for the next sender: this server stops", attrs...)
	case d.State == store.DeliveryDelivered:
		s.log.Info("webhook delivered", attrs...)
	case d.State == store.DeliveryPending:
		s.log.Warn("webhook delivery failed; retrying", append(attrs, "err", d.LastError, "next_at", d.NextAt)...)
	default:
		s.log.Error("webhook delivery given up", append(attrs, "err", d.LastError)...)
	}
}
