package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// webhookSchema is a migration: the webhooks, the outbox of their deliveries (one row per event
// and webhook, written in the transaction of the change that causes it), and the log of every
// attempt with its status code. New tables only, so IF NOT EXISTS makes the step safe to
// re-apply on a database that already has them (a downgrade and upgrade again).
var webhookSchema = []string{
	`CREATE TABLE IF NOT EXISTS webhooks (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL DEFAULT '',
		url TEXT NOT NULL,
		format TEXT NOT NULL,
		environment TEXT NOT NULL DEFAULT '',
		events TEXT NOT NULL,
		secret_sealed TEXT NOT NULL,
		key_id TEXT NOT NULL,
		hint TEXT NOT NULL DEFAULT '',
		created_by TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS webhook_outbox (
		id TEXT PRIMARY KEY,
		event_id TEXT NOT NULL,
		webhook_id TEXT NOT NULL,
		kind TEXT NOT NULL,
		payload TEXT NOT NULL,
		state TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		next_at BIGINT NOT NULL,
		claimed_by TEXT NOT NULL DEFAULT '',
		claimed_until BIGINT NOT NULL DEFAULT 0,
		last_status INTEGER NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		finished_at BIGINT,
		UNIQUE (event_id, webhook_id)
	)`,
	// The deliverer asks "what is due?" on every tick: pending rows by due time only.
	`CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (state, next_at)`,
	`CREATE TABLE IF NOT EXISTS webhook_attempts (
		id @AUTOID@,
		delivery_id TEXT NOT NULL,
		attempt INTEGER NOT NULL,
		occurred_at BIGINT NOT NULL,
		status_code INTEGER NOT NULL DEFAULT 0,
		error TEXT NOT NULL DEFAULT '',
		duration_ms INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX IF NOT EXISTS webhook_attempts_delivery ON webhook_attempts (delivery_id)`,
}

// EventKind is what happened, as webhooks subscribe to it.
type EventKind string

// Event kinds. A restore (the dashboard's rollback) that succeeds, and a release SageMaker rolled
// back, are both "rolled back": either way the environment went back to an earlier version.
const (
	EventReleaseStarted   EventKind = "release.started"
	EventReleaseSucceeded EventKind = "release.succeeded"
	EventReleaseFailed    EventKind = "release.failed"
	EventReleaseRolled    EventKind = "release.rolled_back"
	EventWaitingApproval  EventKind = "release.waiting_for_approval"
	EventDriftDetected    EventKind = "drift.detected"
	// EventTest is what "send test" delivers; no webhook subscribes to it.
	EventTest EventKind = "test"
)

// EventKinds are the kinds a webhook may subscribe to, in the order the dashboard lists them.
func EventKinds() []EventKind {
	return []EventKind{EventReleaseStarted, EventReleaseSucceeded, EventReleaseFailed, EventReleaseRolled, EventWaitingApproval, EventDriftDetected}
}

// Webhook formats.
const (
	FormatJSON  = "json"  // the generic, signed JSON event
	FormatSlack = "slack" // a Slack incoming-webhook message
)

// Webhook is where notifications of an environment (or of all, when Environment is empty) go.
type Webhook struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	URL         string      `json:"url"`
	Format      string      `json:"format"`
	Environment string      `json:"environment,omitempty"`
	Events      []EventKind `json:"events"`
	// SecretSealed is the signing secret encrypted by the server (the store never sees it in
	// clear); KeyID names the key that sealed it, so a server with another key leaves its
	// deliveries to one that can sign them.
	SecretSealed string    `json:"-"`
	KeyID        string    `json:"-"`
	Hint         string    `json:"hint"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
}

// Wants reports whether the webhook subscribes to kind in env.
func (w Webhook) Wants(kind EventKind, env string) bool {
	return (w.Environment == "" || w.Environment == env) && slices.Contains(w.Events, kind)
}

// ParseEventKinds reads a comma-separated list of kinds; "all" (or empty) means every kind.
func ParseEventKinds(list string) ([]EventKind, error) {
	if s := strings.TrimSpace(list); s == "" || s == "all" {
		return EventKinds(), nil
	}
	var out []EventKind
	for _, part := range strings.Split(list, ",") {
		k := EventKind(strings.TrimSpace(part))
		if !strings.Contains(string(k), ".") {
			k = "release." + k // "succeeded" is short for release.succeeded
		}
		if k == "release.drift_detected" || k == "release.drift" {
			k = EventDriftDetected
		}
		if !slices.Contains(EventKinds(), k) {
			return nil, errf(ErrInvalid, "event kind %q is not known: use all, or some of %s", part, kindList())
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

func kindList() string {
	var s []string
	for _, k := range EventKinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func (w Webhook) check() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errf(ErrInvalid, "webhook URL %q is not valid: give the receiver's http:// or https:// address", w.URL)
	}
	if w.Format != FormatJSON && w.Format != FormatSlack {
		return errf(ErrInvalid, "webhook format %q is not valid: use json (signed event) or slack (incoming webhook)", w.Format)
	}
	if len(w.Events) == 0 {
		return errf(ErrInvalid, "webhook %s subscribes to no event: pick some of %s", w.Name, kindList())
	}
	for _, k := range w.Events {
		if !slices.Contains(EventKinds(), k) {
			return errf(ErrInvalid, "event kind %q is not known: use some of %s", k, kindList())
		}
	}
	return nil
}

// CreateWebhook stores a webhook; its environment, when given, must exist.
func (s *Store) CreateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	if err := w.check(); err != nil {
		return w, err
	}
	if w.Environment != "" {
		if _, err := s.Environment(ctx, w.Environment); err != nil {
			return w, err
		}
	}
	w.ID = "whk_" + strings.ReplaceAll(newID(), "-", "")[20:]
	w.CreatedAt = s.Now()
	_, err := s.exec(ctx, `INSERT INTO webhooks (id, name, url, format, environment, events, secret_sealed, key_id, hint, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, w.ID, w.Name, w.URL, w.Format, w.Environment, joinKinds(w.Events),
		w.SecretSealed, w.KeyID, w.Hint, w.CreatedBy, micros(w.CreatedAt))
	if err != nil {
		return w, fmt.Errorf("add webhook %s: %w", w.Name, err)
	}
	return w, nil
}

func joinKinds(ks []EventKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

const webhookCols = `id, name, url, format, environment, events, secret_sealed, key_id, hint, created_by, created_at`

func scanWebhook(r scanner) (Webhook, error) {
	var w Webhook
	var events string
	var created int64
	err := r.Scan(&w.ID, &w.Name, &w.URL, &w.Format, &w.Environment, &events, &w.SecretSealed, &w.KeyID, &w.Hint, &w.CreatedBy, &created)
	for _, k := range strings.Split(events, ",") {
		if k != "" {
			w.Events = append(w.Events, EventKind(k))
		}
	}
	w.CreatedAt = fromMicros(created)
	return w, err
}

// Webhooks lists webhooks, oldest first.
func (s *Store) Webhooks(ctx context.Context) ([]Webhook, error) {
	return s.webhooks(ctx, s)
}

func (s *Store) webhooks(ctx context.Context, db querier) ([]Webhook, error) {
	out, err := queryAll(ctx, db, scanWebhook, `SELECT `+webhookCols+` FROM webhooks ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// Webhook reads one webhook.
func (s *Store) Webhook(ctx context.Context, id string) (Webhook, error) {
	w, err := scanWebhook(s.row(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return w, errf(ErrNotFound, "webhook %s does not exist; `sagedeploy server webhook list` shows the ids", id)
	}
	if err != nil {
		return w, fmt.Errorf("read webhook %s: %w", id, err)
	}
	return w, nil
}

// RemoveWebhook deletes a webhook with its deliveries that are still due (nobody would sign
// them any more); the log of past attempts stays.
func (s *Store) RemoveWebhook(ctx context.Context, id string) (Webhook, error) {
	w, err := s.Webhook(ctx, id)
	if err != nil {
		return w, err
	}
	err = s.inTx(ctx, func(t *tx) error {
		if _, err := t.exec(ctx, `DELETE FROM webhooks WHERE id = ?`, id); err != nil {
			return fmt.Errorf("remove webhook %s: %w", id, err)
		}
		if _, err := t.exec(ctx, `UPDATE webhook_outbox SET state = ?, last_error = ? WHERE webhook_id = ? AND state = ?`,
			DeliveryDropped, "webhook removed", id, DeliveryPending); err != nil {
			return fmt.Errorf("drop deliveries of webhook %s: %w", id, err)
		}
		return nil
	})
	return w, err
}
