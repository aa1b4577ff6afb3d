package server

import (
	"sync"
	"time"
)

// notifier wakes waiters on a key (a release, an environment's command queue). Waiters also poll
// the store on a timer, so a missed wake-up (or a second server on the same Postgres) only delays.
type notifier struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
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

func (n *notifier) signal(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ch, ok := n.chans[key]; ok {
		close(ch)
		delete(n.chans, key)
	}
}

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
