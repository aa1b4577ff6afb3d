package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Webhook secrets cannot be stored like integration tokens: the server must sign every delivery
// with the secret itself, and a hash does not sign. They are stored encrypted (AES-256-GCM) with
// a key that lives outside the database, in the data dir (WebhookKeyFile, 0600): a copy of the
// database alone (a backup, a Postgres dump) does not reveal them. Servers sharing one Postgres
// share the key file too; a server with another key leaves deliveries it cannot sign to those
// that can (each webhook records the id of the key that sealed its secret).

// WebhookKeyFile is the name of the webhook secrets key in the data dir.
const WebhookKeyFile = "webhook-secrets.key"

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
const SignatureHeader = "X-Sagedeploy-Signature"

// Other delivery headers.
const (
	EventIDHeader   = "X-Sagedeploy-Event-Id" // the same at every attempt and for every webhook
	EventKindHeader = "X-Sagedeploy-Event"
	DeliveryHeader  = "X-Sagedeploy-Delivery"
)

const webhookSecretPrefix = "whsec_"

// WebhookOptions configure notifications. Without a Key the server neither creates webhooks nor
// delivers.
type WebhookOptions struct {
	// Key (32 bytes) seals webhook secrets; LoadWebhookKey reads or makes it in the data dir.
	Key []byte
	// RetryBase is the wait after the first failed attempt; it doubles at each next one up to
	// RetryMax. Defaults 10s and 1h.
	RetryBase time.Duration
	RetryMax  time.Duration
	// Attempts is how many times a delivery is tried before it is given up. Default 10.
	Attempts int
	// Timeout bounds one attempt. Default 10s.
	Timeout time.Duration
	// Poll is how often the outbox is read besides being woken (other servers on the same
	// Postgres queue deliveries too). Default 5s.
	Poll time.Duration
	// Client sends the deliveries; nil means a client with Timeout.
	Client *http.Client
	// LinkBase is the server's address for links to releases when Options.BaseURL is empty
	// (Listen sets it to the address it listens on).
	LinkBase string
}

func (o WebhookOptions) withDefaults() WebhookOptions {
	o.RetryBase = cmp.Or(max(o.RetryBase, 0), 10*time.Second)
	o.RetryMax = cmp.Or(max(o.RetryMax, 0), time.Hour)
	o.Attempts = cmp.Or(max(o.Attempts, 0), 10)
	o.Timeout = cmp.Or(max(o.Timeout, 0), 10*time.Second)
	o.Poll = cmp.Or(max(o.Poll, 0), 5*time.Second)
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	return o
}

// lease is how long a claimed delivery is ours: longer than an attempt can take.
func (o WebhookOptions) lease() time.Duration { return 3*o.Timeout + 10*time.Second }

// backoff is the wait after the nth failed attempt (n ≥ 1).
func (o WebhookOptions) backoff(n int) time.Duration {
	d := o.RetryBase
	for i := 1; i < n && d < o.RetryMax; i++ {
		d *= 2
	}
	return min(d, o.RetryMax)
}

// LoadWebhookKey reads the webhook secrets key from dir, creating it (0600) on first use.
func LoadWebhookKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, WebhookKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("make webhook secrets key: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir %s: %w", dir, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadWebhookKey(dir) // another process made it first
		}
		if err != nil {
			return nil, fmt.Errorf("create webhook secrets key %s: %w", path, err)
		}
		_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("write webhook secrets key %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook secrets key %s: %w", path, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("webhook secrets key %s is damaged (want 64 hex digits); restore it from a backup, or remove it and re-create every webhook", path)
	}
	return key, nil
}

// keyID names a key without revealing it.
func keyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("sagedeploy webhook key id:"), key...))
	return hex.EncodeToString(sum[:8])
}

func seal(key []byte, secret string) (string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal webhook secret: %w", err)
	}
	return base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(secret), nil)), nil
}

func unseal(key []byte, sealed string) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < gcm.NonceSize() {
		return nil, errors.New("the sealed webhook secret is damaged")
	}
	out, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], nil)
	if err != nil {
		return nil, errors.New("the webhook secret was sealed with another key than this server's webhook-secrets.key")
	}
	return out, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets key: %w", err)
	}
	return cipher.NewGCM(block)
}

// Sign is the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a SignatureHeader value against body, as a receiver does: the HMAC must
// match and the timestamp be within tolerance of now, so a recorded delivery cannot be replayed
// later. (Within the tolerance, receivers drop repeats by the event id.)
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%s %q is malformed: want t=<unix seconds>,v1=<hex>", SignatureHeader, header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp %s is %s away from now, more than the %s allowed: a replay or a wrong clock", time.Unix(sec, 0).UTC().Format(time.RFC3339), d.Round(time.Second), tolerance)
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("signature does not match: wrong secret, or the body was changed")
}

// sender delivers outbox rows: the server's loop, and "send test" from the dashboard or CLI.
type sender struct {
	st      *store.Store
	opts    WebhookOptions
	baseURL string
	owner   string // names this process's claims
	version string
}

func newSender(st *store.Store, opts WebhookOptions, baseURL, version string) *sender {
	host, _ := os.Hostname()
	return &sender{st: st, opts: opts.withDefaults(), baseURL: strings.TrimRight(baseURL, "/"), version: version,
		owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomString(6))}
}

// deliver makes one attempt of d and records it; the delivery is due again after the backoff,
// or given up after the last attempt.
func (s *sender) deliver(ctx context.Context, d store.Delivery) (store.Delivery, error) {
	if ctx.Err() != nil {
		// Shutting down before the attempt began: give it back for the next sender at once.
		return d, s.st.Unclaim(context.WithoutCancel(ctx), d.ID, s.owner)
	}
	// An attempt once begun runs to its answer (within Timeout) even when the server stops, so
	// that a graceful stop records it instead of leaving it to be sent a second time.
	start := time.Now()
	code, err := s.post(context.WithoutCancel(ctx), d)
	a := store.Attempt{StatusCode: code, Duration: time.Since(start), State: store.DeliveryDelivered}
	if err != nil {
		a.Error = err.Error()
		a.State, a.NextAt = store.DeliveryPending, s.st.Now().Add(s.opts.backoff(d.Attempts+1))
		if d.Attempts+1 >= s.opts.Attempts || d.Kind == store.EventTest {
			a.State = store.DeliveryFailed // a test is shown at once, not retried
		}
	}
	return s.st.RecordAttempt(context.WithoutCancel(ctx), d, s.owner, a)
}

func (s *sender) post(ctx context.Context, d store.Delivery) (int, error) {
	secret, err := unseal(s.opts.Key, d.Webhook.SecretSealed)
	if err != nil {
		return 0, err
	}
	body, err := s.body(d)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook URL %s: %w", d.Webhook.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sagedeploy-webhook/"+cmp.Or(s.version, "dev"))
	req.Header.Set(SignatureHeader, Sign(secret, time.Now(), body))
	req.Header.Set(EventIDHeader, d.EventID)
	req.Header.Set(EventKindHeader, string(d.Kind))
	req.Header.Set(DeliveryHeader, d.ID)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post to %s: %w", d.Webhook.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// body is the request body in the webhook's format, with the link to the release.
func (s *sender) body(d store.Delivery) ([]byte, error) {
	var n store.Notification
	if err := json.Unmarshal(d.Payload, &n); err != nil {
		return nil, fmt.Errorf("decode event %s: %w", d.EventID, err)
	}
	if n.Release != nil {
		n.Release.URL = s.baseURL + "/releases/" + n.Release.ID
	}
	if d.Webhook.Format == store.FormatSlack {
		return json.Marshal(slackMessage(n))
	}
	return json.Marshal(n)
}

// slackMessage is a Slack incoming-webhook payload: text for notifications, a block with the link.
func slackMessage(n store.Notification) map[string]any {
	text := slackEscape(n.Message)
	if n.Environment != "" {
		text = "*" + slackEscape(n.Environment) + "* · " + text
	}
	if n.Release != nil {
		text += "\n<" + n.Release.URL + "|Open release " + slackEscape(n.Release.ID) + ">"
	}
	return map[string]any{
		"text":   text,
		"blocks": []any{map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}}},
	}
}

func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// WebhookSpec is what a user gives to add a webhook.
type WebhookSpec struct {
	Name        string `json:"name"`
	URL         string `json:"url"`
	Format      string `json:"format"`      // json (default) or slack
	Environment string `json:"environment"` // empty: every environment
	Events      string `json:"events"`      // comma-separated kinds, or "all" (default)
}

// CreateWebhook adds a webhook with a new signing secret, sealed with key, and returns the
// secret: show it once, it is never shown again.
func CreateWebhook(ctx context.Context, st *store.Store, key []byte, spec WebhookSpec, createdBy string) (string, store.Webhook, error) {
	if len(key) == 0 {
		return "", store.Webhook{}, releases.Errorf(releases.EINVALID, "this server has no webhook secrets key: start it with a data dir (it makes %s there)", WebhookKeyFile)
	}
	kinds, err := store.ParseEventKinds(spec.Events)
	if err != nil {
		return "", store.Webhook{}, err
	}
	secret := webhookSecretPrefix + randomString(24)
	sealed, err := seal(key, secret)
	if err != nil {
		return "", store.Webhook{}, err
	}
	w, err := st.CreateWebhook(ctx, store.Webhook{Name: cmp.Or(spec.Name, "webhook"), URL: strings.TrimSpace(spec.URL), Format: cmp.Or(spec.Format, store.FormatJSON),
		Environment: spec.Environment, Events: kinds, SecretSealed: sealed, KeyID: keyID(key), Hint: secret[:len(webhookSecretPrefix)+4], CreatedBy: createdBy})
	return secret, w, err
}

// SendTest delivers a test event to webhook id now and returns the delivery with its outcome
// (also in the delivery log).
func SendTest(ctx context.Context, st *store.Store, opts WebhookOptions, baseURL, id string) (store.Delivery, error) {
	if len(opts.Key) == 0 {
		return store.Delivery{}, releases.Errorf(releases.EINVALID, "this server has no webhook secrets key, so it cannot sign: start it with a data dir")
	}
	s := newSender(st, opts, baseURL, "")
	d, err := st.QueueTest(ctx, id, s.owner, s.opts.lease())
	if err != nil {
		return d, err
	}
	return s.deliver(ctx, d)
}
