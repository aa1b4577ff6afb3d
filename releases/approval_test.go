package releases_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// front serves the release server's handler and records the requests the client makes, so that
// a test sees whether the client followed the stream or polled.
type front struct {
	mu       sync.Mutex
	requests []string
	streams  chan struct{} // a stream request reached the server
	reads    chan struct{} // a read of one release reached the server
	// breakStreams > 0: that many stream requests are answered and then cut before any event.
	breakStreams int
	noStreams    bool // answer stream requests 404, as a server without streams
}

func startFront(t *testing.T, e *servertest.Env, f *front) string {
	t.Helper()
	f.streams = make(chan struct{}, 16)
	f.reads = make(chan struct{}, 1)
	h := e.Server.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stream := strings.HasSuffix(r.URL.Path, "/stream")
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+route(r.URL.Path))
		cut := stream && f.breakStreams > 0
		if cut {
			f.breakStreams--
		}
		f.mu.Unlock()
		if r.Method == http.MethodGet && route(r.URL.Path) == "release" {
			select {
			case f.reads <- struct{}{}:
			default: // the test waits for the first one only
			}
		}
		switch {
		case stream && f.noStreams:
			http.NotFound(w, r)
		case cut:
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-stream
		default:
			if stream {
				f.streams <- struct{}{}
			}
			h.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close() })
	return hs.URL
}

func route(p string) string {
	if strings.HasSuffix(p, "/stream") {
		return "stream"
	}
	if strings.HasPrefix(p, "/api/v1/releases/") && strings.Count(p, "/") == 4 {
		return "release"
	}
	return p
}

func (f *front) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// pendingProd starts a release into the gated prod environment.
func pendingProd(t *testing.T, c *releases.Client) releases.Release {
	t.Helper()
	r, err := c.StartRelease(context.Background(), releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 1, ModelPackageARN: "arn:aws:sagemaker:eu-west-1:123456789012:model-package/abalone/1"}, EndpointName: "abalone-prod"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != releases.StatusPending {
		t.Fatalf("a release into prod is %s, want pending at the gate", r.Status)
	}
	return r
}

type waitResult struct {
	r   releases.Release
	err error
}

func waitFor(c *releases.Client, id string, w releases.ApprovalWait) <-chan waitResult {
	done := make(chan waitResult, 1)
	go func() {
		r, err := c.WaitApprovalWith(context.Background(), id, w)
		done <- waitResult{r, err}
	}()
	return done
}

// The approval reaches a waiting deployer through the release's event stream: with a poll of an
// hour, only the stream can deliver it, and the client reads the release once, after it.
func TestWaitApprovalFollowsTheStream(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	f := &front{}
	c := releases.NewClient(startFront(t, e, f), e.Token("prod"), nil)
	r := pendingProd(t, c)
	done := waitFor(c, r.ID, releases.ApprovalWait{Poll: time.Hour})
	<-f.streams
	if resp := e.Do(http.MethodPost, "/api/v1/releases/"+r.ID+"/approve", e.Admin(), map[string]string{}); resp.Status != http.StatusOK {
		t.Fatalf("approve: %s", resp.Error())
	}
	got := <-done
	if got.err != nil {
		t.Fatalf("WaitApproval: %v", got.err)
	}
	if got.r.Status != releases.StatusRunning || got.r.ApprovedBy != "admin" {
		t.Fatalf("after the approval: status %s approved by %q, want running by admin", got.r.Status, got.r.ApprovedBy)
	}
	want := []string{"POST /api/v1/releases", "GET stream", "GET release"}
	if s := strings.Join(f.seen(), ", "); s != strings.Join(want, ", ") {
		t.Fatalf("requests: %s; want %s (the stream, then one read of the decided release)", s, strings.Join(want, ", "))
	}
}

// A rejection ends the wait with ErrRejected, naming who rejected.
func TestWaitApprovalRejected(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	f := &front{}
	c := releases.NewClient(startFront(t, e, f), e.Token("prod"), nil)
	r := pendingProd(t, c)
	done := waitFor(c, r.ID, releases.ApprovalWait{Poll: time.Hour})
	<-f.streams
	if resp := e.Do(http.MethodPost, "/api/v1/releases/"+r.ID+"/reject", e.Admin(), map[string]string{"reason": "not on a Friday"}); resp.Status != http.StatusOK {
		t.Fatalf("reject: %s", resp.Error())
	}
	got := <-done
	if !errors.Is(got.err, releases.ErrRejected) || !strings.Contains(got.err.Error(), "by admin") {
		t.Fatalf("WaitApproval after a rejection: %v, want ErrRejected by admin", got.err)
	}
}

// A stream that drops is followed by a read of the release and, while it is still pending, by
// the stream again; the failure is handed to OnRetry.
func TestWaitApprovalStreamDrops(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	f := &front{breakStreams: 1}
	c := releases.NewClient(startFront(t, e, f), e.Token("prod"), nil)
	r := pendingProd(t, c)
	var (
		mu      sync.Mutex
		retries []error
	)
	done := waitFor(c, r.ID, releases.ApprovalWait{Poll: time.Millisecond, OnRetry: func(err error) {
		mu.Lock()
		retries = append(retries, err)
		mu.Unlock()
	}})
	<-f.streams // the second stream, after the cut one
	if resp := e.Do(http.MethodPost, "/api/v1/releases/"+r.ID+"/approve", e.Admin(), map[string]string{}); resp.Status != http.StatusOK {
		t.Fatalf("approve: %s", resp.Error())
	}
	got := <-done
	if got.err != nil || got.r.Status != releases.StatusRunning {
		t.Fatalf("WaitApproval: %s, %v; want running", got.r.Status, got.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(retries) != 1 {
		t.Fatalf("OnRetry heard %d failures (%v), want the one dropped stream", len(retries), retries)
	}
	seen := f.seen()
	if seen[1] != "GET stream" || seen[2] != "GET release" || seen[3] != "GET stream" {
		t.Fatalf("requests %v: want the stream, a read, then the stream again", seen)
	}
}

// A server without streams is polled.
func TestWaitApprovalPollsWithoutStreams(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	f := &front{noStreams: true}
	c := releases.NewClient(startFront(t, e, f), e.Token("prod"), nil)
	r := pendingProd(t, c)
	done := waitFor(c, r.ID, releases.ApprovalWait{Poll: time.Millisecond})
	<-f.reads
	if resp := e.Do(http.MethodPost, "/api/v1/releases/"+r.ID+"/approve", e.Admin(), map[string]string{}); resp.Status != http.StatusOK {
		t.Fatalf("approve: %s", resp.Error())
	}
	got := <-done
	if got.err != nil || got.r.Status != releases.StatusRunning {
		t.Fatalf("WaitApproval: %s, %v; want running", got.r.Status, got.err)
	}
	n := 0
	for _, s := range f.seen() {
		if s == "GET stream" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("asked for the stream %d times, want once (a 404 means no streams)", n)
	}
}

// A refusal (here: a token of another environment) is returned, not retried forever.
func TestWaitApprovalRefused(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	f := &front{}
	url := startFront(t, e, f)
	r := pendingProd(t, releases.NewClient(url, e.Token("prod"), nil))
	_, err := releases.NewClient(url, e.Token("dev"), nil).WaitApproval(context.Background(), r.ID, time.Hour)
	if err == nil || !releases.IsRefusal(err) {
		t.Fatalf("WaitApproval with a dev token on a prod release: %v, want a refusal", err)
	}
}
