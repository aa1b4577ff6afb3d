//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// TestKillReleaseServerKeepsAcknowledgedEvents: four deployer-like clients stream progress events
// into their releases, and a fifth starts and finishes releases, while `sagedeploy server` is
// killed with SIGKILL three times and restarted on the same data directory. Every event the server
// acknowledged (201 with its sequence number) is there after the restarts, with the same sequence
// number and text, in the order acknowledged; at most the one request in flight at each kill may
// have been stored without its answer arriving. Every release whose start or finish was
// acknowledged exists with that status. Reporting then goes on into the same releases.
func TestKillReleaseServerKeepsAcknowledgedEvents(t *testing.T) {
	rng := seededRand(t)
	dir := t.TempDir()
	token := initServer(t, dir)
	srv := startServer(t, dir)

	// The current server, for the clients to follow across restarts.
	var (
		mu     sync.Mutex
		cond   = sync.NewCond(&mu)
		client = srv.client(token)
		epoch  = 0
		done   = false
	)
	current := func() (*releases.Client, int, bool) {
		mu.Lock()
		defer mu.Unlock()
		return client, epoch, done
	}
	// awaitRestart blocks until the server was restarted after epoch e (or the test is done).
	awaitRestart := func(e int) bool {
		mu.Lock()
		defer mu.Unlock()
		for epoch == e && !done {
			cond.Wait()
		}
		return !done
	}

	ctx := context.Background()
	const streams = 4
	type stream struct {
		id    string
		acked []releases.Event
		sent  int
	}
	ss := make([]*stream, streams)
	for i := range ss {
		r, err := client.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "stream", Kind: releases.KindDeploy,
			Version: releases.Version{Number: 1}, Trigger: releases.Trigger{Type: "pipeline", PipelineID: fmt.Sprintf("stream-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ss[i] = &stream{id: r.ID}
	}
	var unexpected []error
	var umu sync.Mutex
	fail := func(err error) {
		umu.Lock()
		unexpected = append(unexpected, err)
		umu.Unlock()
	}
	var wg sync.WaitGroup
	var acked sync.Map // counts, per stream index
	for i, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, e, stop := current()
				if stop {
					return
				}
				s.sent++
				ev, err := c.AddEvent(ctx, s.id, releases.Event{Phase: "wait", Message: fmt.Sprintf("stream %d event %d", i, s.sent)})
				if err == nil {
					s.acked = append(s.acked, ev)
					acked.Store(i, len(s.acked))
					continue
				}
				var apiErr *releases.APIError
				if errors.As(err, &apiErr) {
					fail(fmt.Errorf("stream %d: the server refused event %d: %w", i, s.sent, err))
					return
				}
				if !awaitRestart(e) {
					return
				}
			}
		}()
	}
	// Releases started and finished one after another; each acknowledged step is recorded.
	type lifecycle struct {
		id     string
		status releases.Status
	}
	var lifecycles []lifecycle
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, e, stop := current()
			if stop {
				return
			}
			r, err := c.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "lifecycle", Kind: releases.KindScale, InstanceCount: n%3 + 1,
				Trigger: releases.Trigger{Type: "cli"}})
			if err == nil {
				lifecycles = append(lifecycles, lifecycle{r.ID, r.Status})
				_, err = c.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, InstanceCount: n%3 + 1})
				if err == nil {
					lifecycles[len(lifecycles)-1].status = releases.StatusSucceeded
					continue
				}
			}
			var apiErr *releases.APIError
			if errors.As(err, &apiErr) {
				fail(fmt.Errorf("lifecycle %d: %w", n, err))
				return
			}
			if !awaitRestart(e) {
				return
			}
		}
	}()

	total := func() int {
		n := 0
		acked.Range(func(_, v any) bool { n += v.(int); return true })
		return n
	}
	const kills = 3
	for round := 1; round <= kills; round++ {
		// Let a stream of reports build up, then kill at a random moment inside it.
		waitFor(t, fmt.Sprintf("100 more acknowledged events before kill %d", round), 2*time.Minute, func() bool { return total() >= round*100 })
		time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Millisecond))))
		srv.kill9()
		t.Logf("kill %d after %d acknowledged events", round, total())
		srv = startServer(t, dir)
		mu.Lock()
		client, epoch = srv.client(token), epoch+1
		cond.Broadcast()
		mu.Unlock()
	}
	// Reporting goes on into the same releases after the last restart.
	after := total()
	waitFor(t, "events acknowledged after the last restart", 2*time.Minute, func() bool { return total() >= after+50 })
	mu.Lock()
	done = true
	cond.Broadcast()
	mu.Unlock()
	wg.Wait()
	for _, err := range unexpected {
		t.Error(err)
	}

	c := srv.client(token)
	for i, s := range ss {
		r, err := c.Release(ctx, s.id)
		if err != nil {
			t.Fatalf("stream %d: release %s after the restarts: %v", i, s.id, err)
		}
		stored := map[int]releases.Event{}
		for j, e := range r.Events {
			if e.Seq != j+1 {
				t.Fatalf("stream %d: stored events are numbered %d at position %d; want 1, 2, 3, … without gaps", i, e.Seq, j+1)
			}
			stored[e.Seq] = e
		}
		for j, a := range s.acked {
			got, ok := stored[a.Seq]
			if !ok || got.Message != a.Message {
				t.Fatalf("stream %d: acknowledged event %d (seq %d, %q) is not stored after kill -9 and restart (stored: %q)", i, j+1, a.Seq, a.Message, got.Message)
			}
			if j > 0 && a.Seq <= s.acked[j-1].Seq {
				t.Fatalf("stream %d: acknowledged events out of order: seq %d after %d", i, a.Seq, s.acked[j-1].Seq)
			}
		}
		// Only the request in flight at a kill may be stored without an acknowledgement.
		if extra := len(r.Events) - len(s.acked); extra < 0 || extra > kills {
			t.Errorf("stream %d: %d events stored, %d acknowledged; at most %d may have been in flight at the kills", i, len(r.Events), len(s.acked), kills)
		}
		if _, err := c.FinishRelease(ctx, s.id, releases.ReleaseFinish{Status: releases.StatusSucceeded}); err != nil {
			t.Errorf("stream %d: finish release %s after the restarts: %v", i, s.id, err)
		}
		t.Logf("stream %d: %d events acknowledged, %d stored", i, len(s.acked), len(r.Events))
	}
	for _, lc := range lifecycles {
		r, err := c.Release(ctx, lc.id)
		if err != nil {
			t.Errorf("release %s, acknowledged as %s, is gone after the restarts: %v", lc.id, lc.status, err)
			continue
		}
		if r.Status != lc.status && !(lc.status == releases.StatusRunning && r.Status == releases.StatusSucceeded) {
			t.Errorf("release %s was acknowledged %s but is %s after the restarts", lc.id, lc.status, r.Status)
		}
	}
	if len(lifecycles) == 0 {
		t.Errorf("no release was started during the kills")
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
