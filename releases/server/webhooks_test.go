package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// delivery is one request a receiver got, with the status it answered.
type delivery struct {
	header http.Header
	body   []byte
	status int
}

// receiver is a webhook endpoint that answers 500 to its first failFirst requests, then 200,
// and hands every request to the test on got.
type receiver struct {
	url string
	got chan delivery
}

func newReceiver(t *testing.T, failFirst int32) *receiver {
	rc := &receiver{got: make(chan delivery, 100)}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status := http.StatusOK
		if n.Add(1) <= failFirst {
			status = http.StatusInternalServerError
		}
		w.WriteHeader(status)
		rc.got <- delivery{header: r.Header.Clone(), body: body, status: status}
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/hook"
	return rc
}

// next waits for the receiver's next request. The bound only turns a hang into a failure.
func (rc *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-rc.got:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("the webhook receiver got nothing within 30s")
	}
	return delivery{}
}

func webhookKey(t *testing.T) []byte {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func startWithWebhooks(t *testing.T, baseURL string) (*servertest.Env, *logWatch) {
	lw := &logWatch{next: servertest.TestLogger(t).Handler(), msgs: make(chan string, 1000)}
	e := servertest.Start(t, servertest.Options{Server: server.Options{BaseURL: baseURL, Logger: slog.New(lw),
		Webhooks: server.WebhookOptions{Key: webhookKey(t), RetryBase: 5 * time.Millisecond}}})
	return e, lw
}

// logWatch passes the server's log on and hands the test each message, so it can wait for
// what the server did after a receiver answered (such as recording the attempt).
type logWatch struct {
	next slog.Handler
	msgs chan string
}

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) Handle(ctx context.Context, r slog.Record) error {
	select {
	case l.msgs <- r.Message:
	default:
	}
	if l.next.Enabled(ctx, r.Level) {
		return l.next.Handle(ctx, r)
	}
	return nil
}
func (l *logWatch) WithAttrs(as []slog.Attr) slog.Handler {
	return &logWatch{next: l.next.WithAttrs(as), msgs: l.msgs}
}
func (l *logWatch) WithGroup(g string) slog.Handler {
	return &logWatch{next: l.next.WithGroup(g), msgs: l.msgs}
}

// await waits until the server logged msg n times.
func (l *logWatch) await(t *testing.T, msg string, n int) {
	t.Helper()
	for n > 0 {
		select {
		case m := <-l.msgs:
			if m == msg {
				n--
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the server did not log %q within 30s", msg)
		}
	}
}

func addWebhook(t *testing.T, e *servertest.Env, spec server.WebhookSpec) server.NewWebhook {
	t.Helper()
	r := e.Do("POST", "/api/v1/webhooks", e.Admin(), spec)
	wantBody(t, r, http.StatusCreated, `"secret": "whsec_`)
	var nw server.NewWebhook
	r.JSON(t, &nw)
	return nw
}

// TestWebhookDeliveriesAreSignedAndA500IsRetried: a deploy sends "started" and "succeeded" to a
// receiver that verifies the signature of every request; its 500 to the first one is retried
// with the same event id until it answers 200; each event is accepted exactly once; the delivery
// log shows the status codes.
func TestWebhookDeliveriesAreSignedAndA500IsRetried(t *testing.T) {
	e, logs := startWithWebhooks(t, "https://deploy.example.com")
	rc := newReceiver(t, 1)
	hook := addWebhook(t, e, server.WebhookSpec{Name: "ops", URL: rc.url, Environment: "dev", Events: "started,succeeded"})
	rel := e.Deploy("dev", "abalone", 1, 1)

	accepted := map[string]store.Notification{}
	var failedID string
	for len(accepted) < 2 {
		d := rc.next(t)
		if err := server.VerifySignature([]byte(hook.Secret), d.header.Get(server.SignatureHeader), d.body, time.Now(), 5*time.Minute); err != nil {
			t.Fatalf("delivery signature: %v", err)
		}
		var n store.Notification
		if err := json.Unmarshal(d.body, &n); err != nil {
			t.Fatalf("delivery body %s: %v", d.body, err)
		}
		if n.ID != d.header.Get(server.EventIDHeader) || string(n.Kind) != d.header.Get(server.EventKindHeader) {
			t.Fatalf("headers name event %s (%s), body %s (%s)", d.header.Get(server.EventIDHeader), d.header.Get(server.EventKindHeader), n.ID, n.Kind)
		}
		if d.status != http.StatusOK {
			failedID = n.ID
			continue
		}
		if _, dup := accepted[n.ID]; dup {
			t.Fatalf("event %s accepted twice", n.ID)
		}
		accepted[n.ID] = n
	}
	if _, retried := accepted[failedID]; failedID == "" || !retried {
		t.Fatalf("the event answered with 500 (%q) was not delivered again", failedID)
	}
	for _, n := range accepted {
		if n.Release == nil || n.Release.URL != "https://deploy.example.com/releases/"+rel.ID || n.Environment != "dev" || n.Model != "abalone" {
			t.Fatalf("event %s: %+v; want the release with its link", n.Kind, n.Release)
		}
	}

	// The receiver refuses what it should: another body, another secret, an old timestamp.
	sig := server.Sign([]byte(hook.Secret), time.Now(), []byte(`{"a":1}`))
	for name, err := range map[string]error{
		"tampered body": server.VerifySignature([]byte(hook.Secret), sig, []byte(`{"a":2}`), time.Now(), time.Minute),
		"wrong secret":  server.VerifySignature([]byte("whsec_other"), sig, []byte(`{"a":1}`), time.Now(), time.Minute),
		"replay":        server.VerifySignature([]byte(hook.Secret), sig, []byte(`{"a":1}`), time.Now().Add(10*time.Minute), time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: signature accepted", name)
		}
	}

	logs.await(t, "webhook delivered", 2) // the attempts are recorded after the receiver answered
	log := e.Do("GET", "/api/v1/webhooks/deliveries", e.Admin(), nil)
	wantBody(t, log, http.StatusOK, `"status_code": 500`, `"status_code": 200`, `"webhook_name": "ops"`)
	stored, err := e.Store.Webhook(t.Context(), hook.ID)
	if err != nil || strings.Contains(stored.SecretSealed, hook.Secret) || stored.SecretSealed == "" {
		t.Fatalf("the webhook secret must be stored sealed, not in clear (%v)", err)
	}
}

// TestSlackWebhookSendTestAndDrift: the "send test" button delivers at once and says so; a Slack
// webhook gets incoming-webhook messages (text with a link to the release), and a drift report
// of an agent reaches it too.
func TestSlackWebhookSendTestAndDrift(t *testing.T) {
	e, _ := startWithWebhooks(t, "https://deploy.example.com")
	rc := newReceiver(t, 0)
	hook := addWebhook(t, e, server.WebhookSpec{Name: "slack", URL: rc.url, Format: store.FormatSlack})

	admin := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	resp := admin.form("/settings/webhooks/"+hook.ID+"/test", url.Values{"csrf": {admin.csrf}}.Encode())
	page := readBody(t, resp)
	if !strings.Contains(page, "Test to slack delivered (HTTP 200)") {
		t.Fatalf("send test: the settings page does not say it was delivered:\n%s", grep(page, "Test to"))
	}
	if msg := slackText(t, rc.next(t)); !strings.Contains(msg, "Test notification") {
		t.Fatalf("test message = %q", msg)
	}
	if !strings.Contains(page, `data-delivery=`) || !strings.Contains(page, "tone-ok\">200<") {
		t.Fatal("the delivery log on the settings page does not show the test's 200")
	}

	rel := e.Deploy("dev", "abalone", 2, 1)
	// Deliveries of different events may overtake each other; each must come, with its link.
	msgs := []string{slackText(t, rc.next(t)), slackText(t, rc.next(t))}
	for _, want := range []string{"started", "succeeded"} {
		if !slices.ContainsFunc(msgs, func(m string) bool {
			return strings.Contains(m, want) && strings.Contains(m, "<https://deploy.example.com/releases/"+rel.ID+"|Open release")
		}) {
			t.Fatalf("slack messages %q: want one saying %q with a link to the release", msgs, want)
		}
	}

	r := e.Do("POST", "/api/v1/drift", servertest.Bearer(e.Token("dev")), map[string]any{"environment": "dev", "model": "abalone",
		"message": "endpoint abalone-dev serves config x, not y", "serving_version": releases.Version{Number: 1}})
	wantBody(t, r, http.StatusAccepted, `"kind": "drift.detected"`)
	if msg := slackText(t, rc.next(t)); !strings.Contains(msg, "*dev*") || !strings.Contains(msg, "serves config x") {
		t.Fatalf("drift message = %q", msg)
	}
	wantResp(t, e.Do("POST", "/api/v1/drift", servertest.Bearer(e.Token("dev")), map[string]any{"environment": "prod", "model": "abalone"}), http.StatusForbidden, "environment dev")
}

func slackText(t *testing.T, d delivery) string {
	t.Helper()
	var m struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(d.body, &m); err != nil || m.Text == "" || len(m.Blocks) == 0 {
		t.Fatalf("not a Slack incoming-webhook message: %s (%v)", d.body, err)
	}
	return m.Text
}

// TestWebhookInputIsChecked: bad webhooks are refused with what to do; only admins manage them.
func TestWebhookInputIsChecked(t *testing.T) {
	e, _ := startWithWebhooks(t, "")
	for _, c := range []struct {
		spec   server.WebhookSpec
		status int
		want   string
	}{
		{server.WebhookSpec{URL: "ftp://x"}, http.StatusBadRequest, "http:// or https://"},
		{server.WebhookSpec{URL: "https://x.example", Format: "teams"}, http.StatusBadRequest, "use json"},
		{server.WebhookSpec{URL: "https://x.example", Events: "deployed"}, http.StatusBadRequest, "not known"},
		{server.WebhookSpec{URL: "https://x.example", Environment: "qa"}, http.StatusNotFound, "server env add qa"},
	} {
		wantResp(t, e.Do("POST", "/api/v1/webhooks", e.Admin(), c.spec), c.status, c.want)
	}
	pw := e.AddUser("carol", store.RoleDeployer)
	wantResp(t, e.Do("POST", "/api/v1/webhooks", servertest.Basic("carol", pw), server.WebhookSpec{URL: "https://x.example"}), http.StatusForbidden, "admin")
	wantResp(t, e.Do("POST", "/api/v1/webhooks/whk_nope/test", e.Admin(), nil), http.StatusNotFound, "webhook list")
}

// TestObservedDriftReachesWebhooks: when the agent's observation of an endpoint differs from
// what sagedeploy recorded, subscribers of drift.detected get one message naming what changed,
// and a second identical observation sends nothing more.
func TestObservedDriftReachesWebhooks(t *testing.T) {
	e, _ := startWithWebhooks(t, "https://deploy.example.com")
	rel := e.Deploy("dev", "abalone", 1, 1)
	rc := newReceiver(t, 0)
	addWebhook(t, e, server.WebhookSpec{Name: "slack", URL: rc.url, Format: store.FormatSlack, Events: string(store.EventDriftDetected)})
	dev := e.Client("dev")
	changed := releases.Observation{Environment: "dev", Model: "abalone", EndpointName: "abalone-dev", EndpointStatus: "InService",
		Version: 1, InstanceType: "ml.m5.large", InstanceCount: 3, EndpointConfigName: rel.EndpointConfigName}
	for range 2 {
		if d, err := dev.ReportObservation(bg, changed); err != nil || d == nil {
			t.Fatalf("changed observation: drift %+v, %v", d, err)
		}
	}
	if msg := slackText(t, rc.next(t)); !strings.Contains(msg, "*dev*") || !strings.Contains(msg, "instances 1 → 3") {
		t.Fatalf("drift message = %q", msg)
	}
	// A test notification now arrives next only if the second observation queued nothing.
	r := e.Do("POST", "/api/v1/drift", servertest.Bearer(e.Token("dev")), map[string]any{"environment": "dev", "model": "abalone", "message": "marker"})
	wantBody(t, r, http.StatusAccepted, `"kind": "drift.detected"`)
	if msg := slackText(t, rc.next(t)); !strings.Contains(msg, "marker") {
		t.Fatalf("the second identical observation was announced again: %q", msg)
	}
}
