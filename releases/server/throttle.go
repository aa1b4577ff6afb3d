package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Sign-in throttling: every failed password check makes the next attempt for the same user name,
// and from the same client address, wait longer. The first few failures are free (people mistype);
// then the wait doubles per failure up to a cap. The cap per user name is short, so a stranger who
// guesses at someone's name can delay the real user by at most that much; the cap per address is
// long, so one address cannot keep guessing. A success clears both. The state lives in memory: a
// restart forgets it, and servers sharing one database each throttle on their own.

// throttleLimits say how fast the waits grow.
type throttleLimits struct {
	free    int           // failures before any wait
	base    time.Duration // the first wait
	maxUser time.Duration // the longest wait a user name can get (bounds a stranger's lock-out)
	maxAddr time.Duration // the longest wait a client address can get
	forget  time.Duration // failures older than this are forgotten
}

func defaultThrottleLimits() throttleLimits {
	return throttleLimits{free: 3, base: time.Second, maxUser: 30 * time.Second, maxAddr: 15 * time.Minute, forget: time.Hour}
}

type strikes struct {
	failures int
	until    time.Time // no attempt before this
	last     time.Time // last failure
}

// throttle counts failed sign-ins per user name and per client address.
type throttle struct {
	limits throttleLimits
	mu     sync.Mutex
	keys   map[string]*strikes
}

func newThrottle(l throttleLimits) *throttle {
	return &throttle{limits: l, keys: map[string]*strikes{}}
}

func userKey(name string) string { return "user:" + name }
func addrKey(addr string) string { return "addr:" + addr }

// wait says how long a sign-in as user from addr must still wait; 0 means try now.
func (t *throttle) wait(user, addr string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var d time.Duration
	for _, k := range []string{userKey(user), addrKey(addr)} {
		if s, ok := t.keys[k]; ok && s.until.After(now) {
			d = max(d, s.until.Sub(now))
		}
	}
	return d
}

// failed records a failed sign-in and returns the wait before the next attempt.
func (t *throttle) failed(user, addr string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.keys) > 100_000 { // someone sprays names or addresses: keep memory bounded
		t.pruneLocked(now)
	}
	return max(t.strike(userKey(user), t.limits.maxUser, now), t.strike(addrKey(addr), t.limits.maxAddr, now))
}

func (t *throttle) strike(key string, ceiling time.Duration, now time.Time) time.Duration {
	s, ok := t.keys[key]
	if !ok || now.Sub(s.last) > t.limits.forget {
		s = &strikes{}
		t.keys[key] = s
	}
	s.failures++
	s.last = now
	over := s.failures - t.limits.free
	if over <= 0 {
		return 0
	}
	d := ceiling
	if over < 40 {
		d = min(time.Duration(float64(t.limits.base)*math.Pow(2, float64(over-1))), ceiling)
	}
	s.until = now.Add(d)
	return d
}

// succeeded clears the strikes of a user and of the address they signed in from.
func (t *throttle) succeeded(user, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, userKey(user))
	delete(t.keys, addrKey(addr))
}

// prune forgets failures older than the forget window.
func (t *throttle) prune(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(now)
}

func (t *throttle) pruneLocked(now time.Time) {
	for k, s := range t.keys {
		if now.Sub(s.last) > t.limits.forget && !s.until.After(now) {
			delete(t.keys, k)
		}
	}
}

// tooManySignIns is the 429 answer to a throttled sign-in; Retry-After says when to try again.
func tooManySignIns(d time.Duration) error {
	secs := int(math.Ceil(d.Seconds()))
	return &httpError{status: http.StatusTooManyRequests, retryAfter: secs,
		msg: fmt.Sprintf("too many failed sign-ins for this user name or from this address: try again in %d s", secs)}
}

// setRetryAfter adds the Retry-After header of a throttled answer.
func setRetryAfter(w http.ResponseWriter, err error) {
	if he, ok := err.(*httpError); ok && he.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(he.retryAfter))
	}
}
