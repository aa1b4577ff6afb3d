package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

func messages(t *testing.T, c *releases.Client, id string) string {
	t.Helper()
	r, err := c.Release(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range r.Events {
		out = append(out, e.Message)
	}
	return strings.Join(out, "|")
}

// streamLines follows a release's event stream until it ends, and returns its lines.
func streamLines(t *testing.T, e *servertest.Env, id string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/api/v1/releases/"+id+"/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.Token("dev"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// A finish carries the events the deployer had not sent yet: they are stored in order after the
// ones before, and whoever follows the release (its API, its live stream) sees them before the
// outcome.
func TestFinishCarriesTheLastEventsBeforeTheOutcome(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Server: server.Options{StreamPoll: time.Hour}})
	c := e.Client("dev")
	r := runningRelease(t, c)
	if _, err := c.AddEvent(bg, r.ID, releases.Event{Phase: "endpoint", Message: "creating endpoint", EndpointStatus: "Creating"}); err != nil {
		t.Fatal(err)
	}
	lines := streamLines(t, e, r.ID)
	one := releases.Version{Number: 1}
	got, err := c.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &one, Events: []releases.Event{
		{Phase: "wait", Message: "endpoint is InService", EndpointStatus: "InService"},
		{Phase: "verify", Message: "verified"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != releases.StatusSucceeded {
		t.Fatalf("finish answered %s, want succeeded", got.Status)
	}
	if want := "creating endpoint|endpoint is InService|verified"; messages(t, c, r.ID) != want {
		t.Fatalf("events %q, want %q", messages(t, c, r.ID), want)
	}
	var seen []string
	for l := range lines {
		for _, mark := range []string{"creating endpoint", "endpoint is InService", "verified", `"status":"succeeded"`, "event: end"} {
			if strings.Contains(l, mark) {
				seen = append(seen, mark)
			}
		}
	}
	if want := `creating endpoint|endpoint is InService|verified|"status":"succeeded"|event: end`; strings.Join(seen, "|") != want {
		t.Fatalf("the stream showed %q, want %q", strings.Join(seen, "|"), want)
	}
}

// A finish retried because its answer was lost finds the release ended as it says: it answers
// as a repeated finish does and adds no event twice. One with another outcome is refused whole.
func TestRetriedFinishAddsNothingTwice(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client("dev")
	r := runningRelease(t, c)
	path, auth := "/api/v1/releases/"+r.ID+"/finish", servertest.Bearer(e.Token("dev"))
	body := `{"status": "succeeded", "events": [{"phase": "wait", "message": "endpoint is InService"}, {"phase": "verify", "message": "verified"}]}`
	for attempt := 1; attempt <= 2; attempt++ {
		resp := e.Do("POST", path, auth, body)
		wantResp(t, resp, http.StatusOK)
		if want := "endpoint is InService|verified"; messages(t, c, r.ID) != want {
			t.Fatalf("after attempt %d the events are %q, want %q", attempt, messages(t, c, r.ID), want)
		}
	}
	wantResp(t, e.Do("POST", path, auth, `{"status": "failed", "reason": "failed", "events": [{"message": "too late"}]}`), http.StatusConflict, "already ended as succeeded")
	if want := "endpoint is InService|verified"; messages(t, c, r.ID) != want {
		t.Fatalf("a refused finish changed the events to %q", messages(t, c, r.ID))
	}
}

// A finish with a bad event is refused whole, in words that say which event and what to send.
func TestFinishWithABadEventStoresNothing(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client("dev")
	r := runningRelease(t, c)
	path, auth := "/api/v1/releases/"+r.ID+"/finish", servertest.Bearer(e.Token("dev"))
	many := `{"status": "succeeded", "events": [` + strings.Repeat(`{"message": "step"},`, releases.MaxEventBatch) + `{"message": "one too many"}]}`
	for _, tc := range []struct{ body, want string }{
		{`{"status": "succeeded", "events": [{"message": "fine"}, {"phase": "wait"}]}`, "event 2 of the release finish is missing message"},
		{`{"status": "succeeded", "events": {"message": "fine"}}`, `field "events" must be an array`},
		{`{"status": "succeeded", "events": [{"message": "fine", "colour": "red"}]}`, `unknown field "colour"`},
		{many, "at most 500"},
	} {
		wantResp(t, e.Do("POST", path, auth, tc.body), http.StatusBadRequest, tc.want)
	}
	got, err := c.Release(bg, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != releases.StatusRunning || len(got.Events) != 0 {
		t.Fatalf("after refused finishes the release is %s with %d events, want running with none", got.Status, len(got.Events))
	}
}

// oldServer is the real server behind a handler that refuses a finish carrying events as a
// release server from before that field does; it counts the requests it passes on.
type oldServer struct {
	mu    sync.Mutex
	calls []string
}

func (o *oldServer) start(t *testing.T, e *servertest.Env) string {
	h := e.Server.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		kind := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if r.Method == http.MethodPost && kind == "finish" && bytes.Contains(data, []byte(`"events"`)) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"the release finish: unknown field \"events\""}`))
			kind = "finish refused"
		}
		o.mu.Lock()
		o.calls = append(o.calls, r.Method+" "+kind)
		o.mu.Unlock()
		if kind == "finish refused" {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func (o *oldServer) seen() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.calls, ", ")
}

// Against a release server from before finishes carried events, the client sends the events
// first, then the outcome: nothing is lost.
func TestFinishFallsBackForAnOldServer(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	old := &oldServer{}
	c := releases.NewClient(old.start(t, e), e.Token("dev"), nil)
	r := runningRelease(t, c)
	got, err := c.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, Events: []releases.Event{{Message: "endpoint is InService"}, {Message: "verified"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != releases.StatusSucceeded {
		t.Fatalf("finish answered %s, want succeeded", got.Status)
	}
	if want := "endpoint is InService|verified"; messages(t, c, r.ID) != want {
		t.Fatalf("events %q, want %q", messages(t, c, r.ID), want)
	}
	if want := "POST releases, POST finish refused, POST events, POST finish, GET " + r.ID; old.seen() != want {
		t.Errorf("the old server saw %q, want %q", old.seen(), want)
	}
}

// An old server that timed the release out refuses the events sent ahead of the outcome; the
// outcome still corrects the release, and the error says how many events were not recorded.
func TestFinishFallbackKeepsTheOutcomeOfATimedOutRelease(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	old := &oldServer{}
	c := releases.NewClient(old.start(t, e), e.Token("dev"), nil)
	r := runningRelease(t, c)
	if failed, err := e.Store.FailStaleReleases(bg, time.Now().Add(time.Hour), "no progress for 5m"); err != nil || len(failed) != 1 {
		t.Fatalf("timing out the release: %v, %d failed", err, len(failed))
	}
	got, err := c.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, Events: []releases.Event{{Message: "bake passed"}, {Message: "verified"}}})
	var refused *releases.EventsRefusedError
	if !errors.As(err, &refused) || refused.Events != 2 || !releases.IsRefusal(err) {
		t.Fatalf("finish of a timed-out release on an old server: %v, want the 2 events refused", err)
	}
	if got.Status != releases.StatusSucceeded {
		t.Fatalf("the outcome was not recorded: release %s", got.Status)
	}
}
