package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// gatedEvents serves a release server and holds event reports as a test says: the first
// failFirst answers are 503, and while hold is open each report waits for it.
type gatedEvents struct {
	held      chan struct{} // a report is being held
	hold      chan struct{} // closed: reports go through
	mu        sync.Mutex
	failFirst int
	posts     int // event reports (requests) received
}

func (g *gatedEvents) serve(t *testing.T, e *servertest.Env) string {
	h := e.Server.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events") {
			g.mu.Lock()
			fail := g.failFirst > 0
			g.failFirst--
			g.posts++
			g.mu.Unlock()
			if fail {
				http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
				return
			}
			select {
			case g.held <- struct{}{}:
			default:
			}
			select {
			case <-g.hold:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close() })
	return hs.URL
}

func devRelease(t *testing.T, c *releases.Client) string {
	t.Helper()
	r, err := c.StartRelease(context.Background(), releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 1}, EndpointName: "abalone-dev"})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func queueEvents(rep *reporter, n int) {
	for i := range n {
		rep.addEvent(releases.Event{Phase: releases.PhaseEndpoint, Message: fmt.Sprintf("step %d", i)})
	}
}

// newTestReporter reports into release id through c, as a deploy does.
func newTestReporter(c *releases.Client, id string) *reporter {
	return newReporter(id, slog.New(slog.DiscardHandler), func(ctx context.Context, evs []releases.Event) error {
		_, err := c.AddEvents(ctx, id, evs)
		return err
	}, func(ctx context.Context, f releases.ReleaseFinish) error {
		_, err := c.FinishRelease(ctx, id, f)
		return err
	})
}

func eventMessages(t *testing.T, c *releases.Client, id string) string {
	t.Helper()
	r, err := c.Release(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range r.Events {
		out = append(out, e.Message)
	}
	return strings.Join(out, ", ")
}

func wantSteps(n int) string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("step %d", i))
	}
	return strings.Join(out, ", ")
}

// Queueing a report never waits for the release server: all reports are queued while the first
// is held by the server, and after close every one is on the server, in order — the 20 queued
// meanwhile in one request, not 20.
func TestReporterQueuesWhileTheServerIsSlow(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	g := &gatedEvents{held: make(chan struct{}, 1), hold: make(chan struct{})}
	c := releases.NewClient(g.serve(t, e), e.Token("dev"), nil)
	id := devRelease(t, c)
	rep := newTestReporter(c, id)
	queueEvents(rep, 1)
	<-g.held // the server holds the first report
	queueEvents(rep, 20)
	if n := rep.pending(); n != 21 {
		t.Fatalf("%d reports queued while the server holds the first, want 21", n)
	}
	close(g.hold)
	if dropped := rep.close(DefaultReportFlush); dropped != 0 {
		t.Fatalf("%d reports dropped, want none", dropped)
	}
	want := "step 0, " + wantSteps(20)
	if got := eventMessages(t, c, id); got != want {
		t.Fatalf("events on the server: %s\nwant: %s", got, want)
	}
	g.mu.Lock()
	posts := g.posts
	g.mu.Unlock()
	if posts != 2 {
		t.Errorf("the server got %d event reports, want 2: the first, then the 20 queued behind it as one batch", posts)
	}
}

// A server that answers 503 for a moment gets each report again; none is lost or reordered.
func TestReporterRetriesTransientErrors(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	g := &gatedEvents{held: make(chan struct{}, 1), hold: make(chan struct{}), failFirst: 2}
	close(g.hold)
	c := releases.NewClient(g.serve(t, e), e.Token("dev"), nil)
	id := devRelease(t, c)
	rep := newTestReporter(c, id)
	queueEvents(rep, 5)
	if dropped := rep.close(DefaultReportFlush); dropped != 0 {
		t.Fatalf("%d reports dropped after two 503s, want none", dropped)
	}
	if got := eventMessages(t, c, id); got != wantSteps(5) {
		t.Fatalf("events on the server: %s\nwant: %s", got, wantSteps(5))
	}
}

// Reports the server does not take before the flush runs out are dropped and counted; so is a
// report refused outright.
func TestReporterCountsDropped(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	g := &gatedEvents{held: make(chan struct{}, 1), hold: make(chan struct{})}
	c := releases.NewClient(g.serve(t, e), e.Token("dev"), nil)
	id := devRelease(t, c)
	rep := newTestReporter(c, id)
	queueEvents(rep, 4)
	rep.add(func(context.Context) error {
		return &releases.APIError{StatusCode: http.StatusConflict, Message: "release already finished"}
	})
	<-g.held
	// The server never answers: the flush gives up (its bound is what this test shortens).
	if dropped := rep.close(1); dropped != 5 {
		t.Fatalf("dropped %d, want 5 (4 never answered, 1 refused)", dropped)
	}
	close(g.hold)

	rep = newTestReporter(c, id)
	rep.add(func(context.Context) error {
		return &releases.APIError{StatusCode: http.StatusConflict, Message: "release already finished"}
	})
	if dropped := rep.close(DefaultReportFlush); dropped != 1 {
		t.Fatalf("dropped %d, want the refused report", dropped)
	}
}
