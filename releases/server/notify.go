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
	for _, k := range []string{key, anyKey} {
		if ch, ok := n.chans[k]; ok {
			close(ch)
			delete(n.chans, k)
		}
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
