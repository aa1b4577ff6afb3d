package deploy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

// progress hands a test the deployer's events as they happen, on a channel.
type progress struct {
	mu  sync.Mutex
	all []deploy.Event
	ch  chan deploy.Event
}

func newProgress() *progress { return &progress{ch: make(chan deploy.Event, 1024)} }

func (p *progress) add(e deploy.Event) {
	if e.Tick {
		return
	}
	p.mu.Lock()
	p.all = append(p.all, e)
	p.mu.Unlock()
	p.ch <- e
}

// reset forgets the events so far (a registration before the deploy).
func (p *progress) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = nil
	for {
		select {
		case <-p.ch:
		default:
			return
		}
	}
}

// until reads events until one of phase contains text.
func (p *progress) until(t *testing.T, phase releases.Phase, text string) {
	t.Helper()
	for e := range p.ch {
		if e.Phase == phase && strings.Contains(e.Message, text) {
			return
		}
	}
}

// reported is what the deployer handed to the release server: its events but the output-only
// ones (the release's link, a note on dropped reports).
func (p *progress) reported() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.all {
		if e.Phase != releases.PhaseRelease {
			out = append(out, e.Message)
		}
	}
	return out
}

func serverEvents(t *testing.T, rs *releaseServer, env, id string) []string {
	t.Helper()
	rel, err := rs.client(env).Release(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range rel.Events {
		out = append(out, e.Message)
	}
	return out
}

// sameEvents checks that the server has every event the deployer reported, in its order (the
// server's own notes on the gate in between are left out).
func sameEvents(t *testing.T, all, want []string) {
	t.Helper()
	ours := map[string]bool{}
	for _, m := range want {
		ours[m] = true
	}
	var got []string
	for _, m := range all {
		if ours[m] {
			got = append(got, m)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events on the release server:\n  %s\nwant, in the deployer's order:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// A deploy waiting at prod's gate goes on when the approval is given, told by the release's
// event stream: its slow poll (an hour) would never see it in the test's time.
func TestGatedDeployResumesOnTheApproval(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	var (
		mu    sync.Mutex
		reads []string // the deployer's reads of releases: the stream, or the release
	)
	rp := proxyTo(t, rs.url)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/releases/") {
			mu.Lock()
			reads = append(reads, path.Base(r.URL.Path))
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	p := newProgress()
	prod, _ := l.deployer(nil, func(o *deploy.Options) {
		o.Releases, o.ApprovalPoll, o.Progress = releases.NewClient(proxy.URL, rs.tokens["prod"], nil), time.Hour, p.add
	})
	register(t, prod, "abalone", 1, true)
	p.reset()
	done := make(chan error, 1)
	var res deploy.DeployResult
	go func() {
		var err error
		res, err = prod.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod", Version: 1})
		done <- err
	}()
	p.until(t, releases.PhaseApproval, "waits for an approval")
	id := waitPending(t, rs)
	if _, err := rs.st.Approve(ctx, id, "alice"); err != nil {
		t.Fatal(err)
	}
	p.until(t, releases.PhaseApproval, "approved by alice")
	if err := <-done; err != nil {
		t.Fatalf("gated deploy after the approval: %v", err)
	}
	mu.Lock()
	if len(reads) != 2 || reads[0] != "stream" || reads[1] != id {
		t.Errorf("the deployer read %v; want the release's stream, then the release once, after the approval", reads)
	}
	mu.Unlock()
	msgs := p.reported()
	waits, approved, created := -1, -1, -1
	for i, m := range msgs {
		switch {
		case strings.Contains(m, "waits for an approval"):
			waits = i
		case m == "approved by alice":
			approved = i
		case strings.HasPrefix(m, "creating endpoint abalone-prod"):
			created = i
		}
	}
	if !(waits >= 0 && waits < approved && approved < created) {
		t.Fatalf("events out of order (waits %d, approved %d, endpoint created %d):\n%s", waits, approved, created, strings.Join(msgs, "\n"))
	}
	sameEvents(t, serverEvents(t, rs, "prod", res.ReleaseID), msgs)
}

// The release server holds every event report while the deploy creates its endpoint and waits
// for InService: the deploy gets there all the same, with not one report answered; once the
// server answers, the deploy returns with every event on the server, in order.
func TestSlowReleaseServerDoesNotHoldTheDeploy(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	var (
		mu       sync.Mutex
		answered int
	)
	held, hold := make(chan struct{}, 1), make(chan struct{})
	rp := proxyTo(t, rs.url)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		events := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events")
		if events {
			select {
			case held <- struct{}{}:
			default:
			}
			<-hold
		}
		rp.ServeHTTP(w, r)
		if events {
			mu.Lock()
			answered++
			mu.Unlock()
		}
	}))
	t.Cleanup(proxy.Close)
	p := newProgress()
	dev, _ := l.deployer(nil, func(o *deploy.Options) {
		o.Releases, o.Progress = releases.NewClient(proxy.URL, rs.tokens["dev"], nil), p.add
	})
	register(t, dev, "abalone", 1, true)
	p.reset()
	done := make(chan error, 1)
	var res deploy.DeployResult
	go func() {
		var err error
		res, err = dev.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
		done <- err
	}()
	<-held
	p.until(t, releases.PhaseWait, "is InService with")
	mu.Lock()
	n := answered
	mu.Unlock()
	if n != 0 {
		t.Fatalf("%d event reports were answered while the server held them", n)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res.ReportsDropped != 0 {
		t.Fatalf("%d reports dropped", res.ReportsDropped)
	}
	sameEvents(t, serverEvents(t, rs, "dev", res.ReleaseID), p.reported())
}

// Reports the release server refuses are counted in the result (and said in the output).
func TestDroppedReportsAreCounted(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	rp := proxyTo(t, rs.url)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events") {
			http.Error(w, `{"error":"events are read-only today"}`, http.StatusConflict)
			return
		}
		// The last events can ride in the finish: refuse them there as a server from before that
		// field does, so that the client sends them (refused) ahead of the outcome.
		body, _ := io.ReadAll(r.Body)
		if strings.HasSuffix(r.URL.Path, "/finish") && strings.Contains(string(body), `"events"`) {
			http.Error(w, `{"error":"the release finish: unknown field \"events\""}`, http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	p := newProgress()
	dev, _ := l.deployer(nil, func(o *deploy.Options) {
		o.Releases, o.Progress = releases.NewClient(proxy.URL, rs.tokens["dev"], nil), p.add
	})
	register(t, dev, "abalone", 1, true)
	p.reset()
	res, err := dev.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(p.reported()); res.ReportsDropped != want {
		t.Fatalf("ReportsDropped = %d, want %d (every event)", res.ReportsDropped, want)
	}
	rel, err := rs.client("dev").Release(ctx, res.ReleaseID)
	if err != nil || rel.Status != releases.StatusSucceeded {
		t.Fatalf("the outcome still reaches the server: %s, %v", rel.Status, err)
	}
	var said bool
	for _, e := range p.all {
		said = said || e.Phase == releases.PhaseRelease && strings.Contains(e.Message, "did not reach the release server")
	}
	if !said {
		t.Fatal("the output does not say that reports were dropped")
	}
}

// proxyTo is a reverse proxy to the release server at raw.
func proxyTo(t *testing.T, raw string) *httputil.ReverseProxy {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	return rp
}
