package server_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// runningRelease starts a deploy of abalone into dev through c.
func runningRelease(t *testing.T, c *releases.Client) releases.Release {
	t.Helper()
	r, err := c.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 1}, EndpointName: "abalone-dev"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A deployer sends the events it queued while the server was busy as one batch: they are stored
// in order, numbered after the ones before, and the component takes the newest endpoint status.
func TestEventBatchIsStoredInOrder(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client("dev")
	r := runningRelease(t, c)
	if _, err := c.AddEvent(bg, r.ID, releases.Event{Phase: "model", Message: "created model"}); err != nil {
		t.Fatal(err)
	}
	out, err := c.AddEvents(bg, r.ID, []releases.Event{
		{Phase: "endpoint", Message: "creating endpoint", EndpointStatus: "Creating"},
		{Phase: "wait", Message: "endpoint is InService", EndpointStatus: "InService"},
		{Phase: "verify", Message: "verified"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0].Seq != 2 || out[2].Seq != 4 {
		t.Fatalf("batch answered %+v, want seq 2, 3, 4", out)
	}
	got, err := c.Release(bg, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, ev := range got.Events {
		msgs = append(msgs, ev.Message)
	}
	if want := "created model|creating endpoint|endpoint is InService|verified"; strings.Join(msgs, "|") != want {
		t.Fatalf("events %q, want %q", strings.Join(msgs, "|"), want)
	}
	var detail struct {
		Component releases.Component `json:"component"`
	}
	resp := e.Do("GET", "/api/v1/components/dev/abalone", e.Admin(), nil)
	wantResp(t, resp, 200)
	resp.JSON(t, &detail)
	if detail.Component.EndpointStatus != "InService" {
		t.Errorf("component endpoint status %q, want the batch's newest, InService", detail.Component.EndpointStatus)
	}
}

// A batch is all or nothing, and says what is wrong with it.
func TestEventBatchRefusals(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client("dev")
	r := runningRelease(t, c)
	path := "/api/v1/releases/" + r.ID + "/events"
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{"events": []}`, "1 to 500 events"},
		{`{"message": "one", "events": [{"message": "two"}]}`, "not both"},
		{`{"events": [{"message": "fine"}, {"phase": "wait"}]}`, "message"},
	} {
		wantResp(t, e.Do("POST", path, servertest.Bearer(e.Token("dev")), tc.body), http.StatusBadRequest, tc.want)
	}
	got, err := c.Release(bg, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 0 {
		t.Errorf("refused batches stored %d events: %+v", len(got.Events), got.Events)
	}
}

// A release server from before batches refuses the "events" field; the client then sends the
// events one at a time, in order.
func TestEventBatchFallsBackToSingleEvents(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	h := e.Server.Handler()
	var mu sync.Mutex
	singles := 0
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events") {
			data, err := io.ReadAll(r.Body)
			if err != nil {
				t.Error(err)
			}
			if strings.Contains(string(data), `"events"`) {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"the event: unknown field \"events\""}`))
				return
			}
			mu.Lock()
			singles++
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(data))
		}
		h.ServeHTTP(w, r)
	}))
	defer old.Close()
	c := releases.NewClient(old.URL, e.Token("dev"), nil)
	r := runningRelease(t, c)
	out, err := c.AddEvents(bg, r.ID, []releases.Event{{Message: "a"}, {Message: "b"}, {Message: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[2].Message != "c" || out[2].Seq != 3 {
		t.Fatalf("fallback answered %+v", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if singles != 3 {
		t.Errorf("the old server got %d single events, want 3", singles)
	}
}
