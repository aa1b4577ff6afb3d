//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// hookReceiver is a webhook endpoint that checks every signature, answers 500 to the first
// request and 200 to the others, and counts the 200s per event id.
type hookReceiver struct {
	t        *testing.T
	secret   []byte
	mu       sync.Mutex
	requests int
	accepted map[string]int
	ok       chan string // event ids answered 200
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	secret := h.secret
	h.requests++
	first := h.requests == 1
	h.mu.Unlock()
	if err := server.VerifySignature(secret, r.Header.Get(server.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		h.t.Errorf("delivery with a bad signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var n store.Notification
	if err := json.Unmarshal(body, &n); err != nil || n.ID != r.Header.Get(server.EventIDHeader) {
		h.t.Errorf("delivery body %s does not carry the event id of its header (%v)", body, err)
	}
	if first {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.mu.Lock()
	h.accepted[n.ID]++
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	h.ok <- string(n.Kind) + " " + n.ID
}

// TestKillServerBetweenWebhookAttemptsDeliversOnceAfterRestart: the receiver answers the first
// delivery ("release started") with 500; once the server has recorded that attempt and waits to
// retry, it is killed with SIGKILL. Restarted on the same data dir, it delivers that event, then
// the "succeeded" of the same release, each exactly once by event id, every one signed.
func TestKillServerBetweenWebhookAttemptsDeliversOnceAfterRestart(t *testing.T) {
	dir := t.TempDir()
	token := initServer(t, dir)
	h := &hookReceiver{t: t, accepted: map[string]int{}, ok: make(chan string, 10)}
	recv := httptest.NewServer(h)
	defer recv.Close()
	r := mustRun(t, baseEnv(t), "server", "webhook", "add", recv.URL, "--env", "dev", "--name", "chaos", "--events", "started,succeeded", "-o", "json", "--data-dir", dir)
	var nw server.NewWebhook
	if err := json.Unmarshal([]byte(r.stdout), &nw); err != nil || nw.Secret == "" {
		t.Fatalf("webhook add printed no secret: %v\n%s", err, r.output)
	}
	h.mu.Lock()
	h.secret = []byte(nw.Secret)
	h.mu.Unlock()

	// The retry waits 3s: ample time to kill the server between the attempts.
	retrying := make(chan struct{}, 1)
	srv := startServerWatching(t, dir, "webhook delivery failed; retrying", retrying, "--webhook-retry", "3s")
	ctx := context.Background()
	rel, err := srv.client(token).StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "hooked", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 1}, Trigger: releases.Trigger{Type: "pipeline", PipelineID: "kill-hook"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-retrying:
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not record the failed first attempt within 60s")
	}
	srv.kill9()

	srv = startServerWatching(t, dir, "", nil, "--webhook-retry", "3s")
	v := releases.Version{Number: 1}
	if _, err := srv.client(token).FinishRelease(ctx, rel.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &v}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case k := <-h.ok:
			got[strings.Fields(k)[0]] = true
		case <-time.After(60 * time.Second):
			t.Fatalf("after the restart the receiver accepted only %v within 60s", got)
		}
	}
	srv.stop() // nothing can be sent after this: the counts below are final

	if !got[string(store.EventReleaseStarted)] || !got[string(store.EventReleaseSucceeded)] {
		t.Fatalf("accepted %v, want release.started and release.succeeded", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.accepted {
		if n != 1 {
			t.Errorf("event %s accepted %d times, want exactly once", id, n)
		}
	}
	if h.requests != 3 {
		t.Errorf("the receiver got %d requests, want 3 (a 500, its retry, the success event)", h.requests)
	}
}

// startServerWatching runs `sagedeploy server` like startServer, and signals on seen each time
// the server logs a message msg.
func startServerWatching(t *testing.T, dataDir, msg string, seen chan struct{}, extra ...string) *releaseServer {
	t.Helper()
	ready := make(chan string, 1)
	args := append([]string{"server", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"}, extra...)
	p := launch(t, "sagedeploy server", baseEnv(t), func(stream, line string) {
		var l struct {
			Msg string `json:"msg"`
			URL string `json:"url"`
		}
		if stream != "stderr" || json.Unmarshal([]byte(line), &l) != nil {
			return
		}
		switch {
		case l.Msg == "release server listening" && l.URL != "":
			select {
			case ready <- l.URL:
			default:
			}
		case msg != "" && l.Msg == msg:
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	}, args...)
	select {
	case url := <-ready:
		s := &releaseServer{proc: p, url: url, dataDir: dataDir}
		s.waitHealthy(t)
		return s
	case <-p.done:
		t.Fatalf("sagedeploy server exited at start (code %d):\n%s", p.cmd.ProcessState.ExitCode(), tail(p.output(), 40))
	case <-time.After(90 * time.Second):
		t.Fatalf("sagedeploy server logged no listening address within 90s:\n%s", tail(p.output(), 40))
	}
	return nil
}
