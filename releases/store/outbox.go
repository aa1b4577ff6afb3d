package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Delivery states in the outbox.
const (
	DeliveryPending   = "pending"   // due at next_at (again, after a failed attempt)
	DeliveryDelivered = "delivered" // the receiver answered 2xx
	DeliveryFailed    = "failed"    // gave up after the last attempt
	DeliveryDropped   = "dropped"   // its webhook was removed
)

// Notification is one event as webhooks receive it. Its ID is the same in every delivery of the
// event (to each webhook, at each attempt), so receivers can drop repeats.
type Notification struct {
	ID          string            `json:"id"`
	Kind        EventKind         `json:"kind"`
	Time        time.Time         `json:"time"`
	Environment string            `json:"environment"`
	Model       string            `json:"model"`
	Message     string            `json:"message"`
	Release     *NotifiedRelease  `json:"release,omitempty"`
	Version     *releases.Version `json:"serving_version,omitempty"` // drift: what the endpoint serves
}

// NotifiedRelease is the part of a release a notification carries. URL is filled in by the
// server when it sends, from its base URL.
type NotifiedRelease struct {
	ID              string            `json:"id"`
	Kind            releases.Kind     `json:"kind"`
	Status          releases.Status   `json:"status"`
	Version         releases.Version  `json:"version"`
	PreviousVersion *releases.Version `json:"previous_version,omitempty"`
	EndpointName    string            `json:"endpoint_name,omitempty"`
	Reason          releases.Reason   `json:"reason,omitempty"`
	FailureReason   string            `json:"failure_reason,omitempty"`
	Trigger         releases.Trigger  `json:"trigger"`
	ApprovedBy      string            `json:"approved_by,omitempty"`
	URL             string            `json:"url,omitempty"`
}

// releaseEvent says which event, if any, the change of a release from before (nil: it is new)
// to after is.
func releaseEvent(before *ReleaseRecord, after ReleaseRecord) (EventKind, bool) {
	was := func(f func(ReleaseRecord) bool) bool { return before != nil && f(*before) }
	waiting := func(r ReleaseRecord) bool { return r.AwaitingApproval() }
	running := func(r ReleaseRecord) bool { return r.Status == releases.StatusRunning }
	final := func(r ReleaseRecord) bool { return r.Status.Final() }
	switch {
	case waiting(after) && !was(waiting):
		return EventWaitingApproval, true
	case running(after) && !was(running):
		return EventReleaseStarted, true
	case !final(after) || was(final):
		return "", false
	case after.Status == releases.StatusSucceeded && after.Kind == releases.KindRestore:
		return EventReleaseRolled, true
	case after.Status == releases.StatusSucceeded:
		return EventReleaseSucceeded, true
	case after.Status == releases.StatusFailed && after.Reason == releases.ReasonRolledBack:
		return EventReleaseRolled, true
	case after.Status == releases.StatusFailed:
		return EventReleaseFailed, true
	}
	return "", false // canceled and rejected releases changed nothing
}

func releaseMessage(kind EventKind, r ReleaseRecord) string {
	what := fmt.Sprintf("%s of %s v%d to %s", r.Kind, r.Model, r.Version.Number, r.Environment)
	switch kind {
	case EventWaitingApproval:
		return what + " waits for approval"
	case EventReleaseStarted:
		return what + " started"
	case EventReleaseSucceeded:
		return what + " succeeded"
	case EventReleaseRolled:
		if r.Status == releases.StatusSucceeded {
			return fmt.Sprintf("%s rolled back to %s v%d", r.Environment, r.Model, r.Version.Number)
		}
		return what + " was rolled back: " + r.FailureReason
	case EventReleaseFailed:
		return what + " failed (" + r.Reason.Text() + "): " + r.FailureReason
	}
	return what
}

// notifyRelease queues the deliveries of the event that the change of a release is, if any, in
// the transaction of the change: the event is sent if and only if the change is committed.
func (t *tx) notifyRelease(ctx context.Context, before *ReleaseRecord, after ReleaseRecord) error {
	kind, ok := releaseEvent(before, after)
	if !ok {
		return nil
	}
	n := Notification{Kind: kind, Environment: after.Environment, Model: after.Model, Message: releaseMessage(kind, after),
		Release: &NotifiedRelease{ID: after.ID, Kind: after.Kind, Status: after.Status, Version: after.Version,
			PreviousVersion: after.PreviousVersion, EndpointName: after.EndpointName, Reason: after.Reason,
			FailureReason: after.FailureReason, Trigger: after.Trigger, ApprovedBy: after.ApprovedBy}}
	_, err := t.enqueue(ctx, n, nil)
	return err
}

// NotifyDrift queues a "drift detected" event: the endpoint of model in env serves something
// other than what sagedeploy recorded.
func (s *Store) NotifyDrift(ctx context.Context, env, model, message string, serving *releases.Version) (Notification, error) {
	n := Notification{Kind: EventDriftDetected, Environment: env, Model: model, Message: message, Version: serving}
	err := s.inTx(ctx, func(t *tx) error {
		if _, err := t.environment(ctx, env); err != nil {
			return err
		}
		var err error
		n, err = t.enqueue(ctx, n, nil)
		return err
	})
	return n, err
}

// enqueue writes one outbox row per webhook that wants n (only to only, when given).
func (t *tx) enqueue(ctx context.Context, n Notification, only *Webhook) (Notification, error) {
	now := t.s.Now()
	n.ID, n.Time = "evt_"+newID(), now
	hooks := []Webhook{}
	if only != nil {
		hooks = append(hooks, *only)
	} else {
		all, err := t.s.webhooks(ctx, t)
		if err != nil {
			return n, err
		}
		for _, w := range all {
			if w.Wants(n.Kind, n.Environment) {
				hooks = append(hooks, w)
			}
		}
	}
	if len(hooks) == 0 {
		return n, nil
	}
	payload, err := json.Marshal(n)
	if err != nil {
		return n, fmt.Errorf("encode %s event: %w", n.Kind, err)
	}
	for _, w := range hooks {
		_, err := t.exec(ctx, `INSERT INTO webhook_outbox (id, event_id, webhook_id, kind, payload, state, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			"dlv_"+newID(), n.ID, w.ID, string(n.Kind), string(payload), DeliveryPending, micros(now), micros(now))
		if err != nil {
			return n, fmt.Errorf("queue %s event for webhook %s: %w", n.Kind, w.ID, err)
		}
	}
	return n, nil
}

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID         string     `json:"id"`
	EventID    string     `json:"event_id"`
	Kind       EventKind  `json:"kind"`
	Payload    []byte     `json:"-"`
	State      string     `json:"state"`
	Attempts   int        `json:"attempts"`
	NextAt     time.Time  `json:"next_at"`
	LastStatus int        `json:"last_status,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Webhook    Webhook    `json:"webhook"`
}

const deliveryCols = `o.id, o.event_id, o.kind, o.payload, o.state, o.attempts, o.next_at, o.last_status, o.last_error, o.created_at, o.finished_at, ` +
	`w.id, w.name, w.url, w.format, w.environment, w.events, w.secret_sealed, w.key_id, w.hint, w.created_by, w.created_at`

func scanDelivery(r scanner) (Delivery, error) {
	var d Delivery
	var payload, events string
	var next, created, wcreated int64
	var finished sql.NullInt64
	w := &d.Webhook
	err := r.Scan(&d.ID, &d.EventID, &d.Kind, &payload, &d.State, &d.Attempts, &next, &d.LastStatus, &d.LastError, &created, &finished,
		&w.ID, &w.Name, &w.URL, &w.Format, &w.Environment, &events, &w.SecretSealed, &w.KeyID, &w.Hint, &w.CreatedBy, &wcreated)
	d.Payload, d.NextAt, d.CreatedAt, d.FinishedAt = []byte(payload), fromMicros(next), fromMicros(created), timePtr(finished)
	w.Events, _ = ParseEventKinds(events)
	w.CreatedAt = fromMicros(wcreated)
	return d, err
}

// Claim takes up to limit deliveries that are due, signed with key keyID, for owner until lease
// ends: another server on the same database skips them (FOR UPDATE SKIP LOCKED on Postgres; on
// SQLite the write transaction is exclusive), and after a crash they are due again when the
// lease ends.
func (s *Store) Claim(ctx context.Context, owner, keyID string, limit int, lease time.Duration) ([]Delivery, error) {
	var out []Delivery
	err := s.inTx(ctx, func(t *tx) error {
		now := s.Now()
		skip := ""
		if s.dialect == postgres {
			skip = " FOR UPDATE OF o SKIP LOCKED"
		}
		ids, err := queryAll(ctx, t, scanString, `SELECT o.id FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
			WHERE o.state = ? AND o.next_at <= ? AND o.claimed_until <= ? AND w.key_id = ? ORDER BY o.next_at LIMIT ?`+skip,
			DeliveryPending, micros(now), micros(now), keyID, limit)
		if err != nil {
			return fmt.Errorf("find due webhook deliveries: %w", err)
		}
		for _, id := range ids {
			if _, err := t.exec(ctx, `UPDATE webhook_outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?`, owner, micros(now.Add(lease)), id); err != nil {
				return fmt.Errorf("claim webhook delivery %s: %w", id, err)
			}
			d, err := scanDelivery(t.row(ctx, `SELECT `+deliveryCols+` FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id WHERE o.id = ?`, id))
			if err != nil {
				return fmt.Errorf("read webhook delivery %s: %w", id, err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// NextDue is when the earliest pending delivery signed with keyID is due (claimed ones when
// their lease ends); ok is false when none is pending.
func (s *Store) NextDue(ctx context.Context, keyID string) (at time.Time, ok bool, err error) {
	var v sql.NullInt64
	err = s.row(ctx, `SELECT MIN(CASE WHEN o.claimed_until > o.next_at THEN o.claimed_until ELSE o.next_at END)
		FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id WHERE o.state = ? AND w.key_id = ?`, DeliveryPending, keyID).Scan(&v)
	if err != nil {
		return at, false, fmt.Errorf("find next webhook delivery: %w", err)
	}
	if !v.Valid {
		return at, false, nil
	}
	return fromMicros(v.Int64), true, nil
}

// Attempt is the outcome of one try to deliver.
type Attempt struct {
	StatusCode int
	Error      string
	Duration   time.Duration
	// State is the delivery's state afterwards; NextAt is when to try again while pending.
	State  string
	NextAt time.Time
}

// RecordAttempt logs an attempt of delivery d and moves d on (delivered, due again at NextAt, or
// failed), releasing owner's claim.
func (s *Store) RecordAttempt(ctx context.Context, d Delivery, owner string, a Attempt) (Delivery, error) {
	err := s.inTx(ctx, func(t *tx) error {
		now := s.Now()
		var attempts int
		if err := t.row(ctx, `UPDATE webhook_outbox SET attempts = attempts + 1 WHERE id = ? RETURNING attempts`, d.ID).Scan(&attempts); err != nil {
			return fmt.Errorf("count attempt of webhook delivery %s: %w", d.ID, err)
		}
		if _, err := t.exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, occurred_at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)`,
			d.ID, attempts, micros(now), a.StatusCode, a.Error, a.Duration.Milliseconds()); err != nil {
			return fmt.Errorf("log attempt of webhook delivery %s: %w", d.ID, err)
		}
		var finished *time.Time
		if a.State != DeliveryPending {
			finished = &now
		}
		_, err := t.exec(ctx, `UPDATE webhook_outbox SET state = ?, next_at = ?, last_status = ?, last_error = ?, finished_at = ?,
			claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ?`,
			a.State, micros(a.NextAt), a.StatusCode, a.Error, nullMicros(finished), d.ID, owner)
		if err != nil {
			return fmt.Errorf("update webhook delivery %s: %w", d.ID, err)
		}
		d.Attempts, d.State, d.NextAt, d.LastStatus, d.LastError, d.FinishedAt = attempts, a.State, a.NextAt, a.StatusCode, a.Error, finished
		return nil
	})
	return d, err
}

// Unclaim gives a delivery back without counting an attempt (its sender is shutting down), so
// that it is due again at once instead of when the lease ends.
func (s *Store) Unclaim(ctx context.Context, id, owner string) error {
	_, err := s.exec(ctx, `UPDATE webhook_outbox SET claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ? AND state = ?`, id, owner, DeliveryPending)
	if err != nil {
		return fmt.Errorf("give back webhook delivery %s: %w", id, err)
	}
	return nil
}

// QueueTest makes a delivery of a test event to webhook id, already claimed by owner for lease,
// so that its sender can deliver it now (and the delivery log shows it).
func (s *Store) QueueTest(ctx context.Context, id, owner string, lease time.Duration) (Delivery, error) {
	w, err := s.Webhook(ctx, id)
	if err != nil {
		return Delivery{}, err
	}
	var d Delivery
	err = s.inTx(ctx, func(t *tx) error {
		n, err := t.enqueue(ctx, Notification{Kind: EventTest, Environment: w.Environment,
			Message: "Test notification from sagedeploy: webhook " + w.Name + " works."}, &w)
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE webhook_outbox SET claimed_by = ?, claimed_until = ? WHERE event_id = ?`, owner, micros(s.Now().Add(lease)), n.ID); err != nil {
			return fmt.Errorf("claim test delivery: %w", err)
		}
		d, err = scanDelivery(t.row(ctx, `SELECT `+deliveryCols+` FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id WHERE o.event_id = ?`, n.ID))
		return err
	})
	return d, err
}

// Deliveries lists the deliveries of one webhook ("" for all), newest first.
func (s *Store) Deliveries(ctx context.Context, webhookID string, limit int) ([]Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id`
	args := []any{}
	if webhookID != "" {
		q += ` WHERE o.webhook_id = ?`
		args = append(args, webhookID)
	}
	out, err := queryAll(ctx, s, scanDelivery, q+` ORDER BY o.created_at DESC, o.id DESC LIMIT ?`, append(args, max(limit, 1))...)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return out, nil
}

// AttemptEntry is one line of the delivery log.
type AttemptEntry struct {
	Time        time.Time `json:"time"`
	DeliveryID  string    `json:"delivery_id"`
	EventID     string    `json:"event_id"`
	Kind        EventKind `json:"kind"`
	WebhookID   string    `json:"webhook_id"`
	WebhookName string    `json:"webhook_name"`
	Attempt     int       `json:"attempt"`
	StatusCode  int       `json:"status_code"`
	Error       string    `json:"error,omitempty"`
	DurationMS  int64     `json:"duration_ms"`
	State       string    `json:"state"` // of the delivery now
}

// DeliveryLog lists the latest delivery attempts, newest first. Attempts of removed webhooks
// stay, without a name.
func (s *Store) DeliveryLog(ctx context.Context, limit int) ([]AttemptEntry, error) {
	out, err := queryAll(ctx, s, func(r scanner) (AttemptEntry, error) {
		var e AttemptEntry
		var at int64
		err := r.Scan(&at, &e.DeliveryID, &e.EventID, &e.Kind, &e.WebhookID, &e.WebhookName, &e.Attempt, &e.StatusCode, &e.Error, &e.DurationMS, &e.State)
		e.Time = fromMicros(at)
		return e, err
	}, `SELECT a.occurred_at, a.delivery_id, o.event_id, o.kind, o.webhook_id, COALESCE(w.name, ''), a.attempt, a.status_code, a.error, a.duration_ms, o.state
		FROM webhook_attempts a JOIN webhook_outbox o ON o.id = a.delivery_id LEFT JOIN webhooks w ON w.id = o.webhook_id
		ORDER BY a.id DESC LIMIT ?`, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("read webhook delivery log: %w", err)
	}
	return out, nil
}
