package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// ReleaseRecord is a release with what the server keeps beside the domain fields.
type ReleaseRecord struct {
	releases.Release
	// NeedsApproval is set when the release was created into a gated environment.
	NeedsApproval bool `json:"needs_approval"`
	// CommandID names the dashboard command that created the release, if any.
	CommandID string    `json:"command_id,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AwaitingApproval reports whether the release waits at its environment's gate.
func (r ReleaseRecord) AwaitingApproval() bool {
	return r.Status == releases.StatusPending && r.NeedsApproval && r.ApprovedBy == "" && r.RejectedBy == ""
}

// Duration is how long the release ran (so far, when it has not finished).
func (r ReleaseRecord) Duration(now time.Time) time.Duration {
	if r.StartedAt == nil {
		return 0
	}
	end := now
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return end.Sub(*r.StartedAt)
}

// gated reports whether a release kind waits at an approval gate: promotions and deploys bring a
// new version into the environment; restores and scaling are the emergency tools and do not wait.
func gated(k releases.Kind) bool { return k == releases.KindDeploy || k == releases.KindPromote }

// ValidKind reports whether k is a release kind.
func ValidKind(k releases.Kind) bool {
	switch k {
	case releases.KindDeploy, releases.KindPromote, releases.KindRestore, releases.KindScale:
		return true
	}
	return false
}

const releaseCols = `id, environment, model, kind, status, version_json, previous_version_json, endpoint_name,
	endpoint_config_name, instance_type, instance_count, trigger_type, trigger_user, trigger_pipeline_id,
	trigger_project_id, failure_reason, needs_approval, approved_by, rejected_by, command_id, created_at,
	started_at, finished_at, updated_at`

func scanRelease(r scanner) (ReleaseRecord, error) {
	var rec ReleaseRecord
	var kind, status, vjson, pjson string
	var approval int
	var created, updated int64
	var started, finished sql.NullInt64
	err := r.Scan(&rec.ID, &rec.Environment, &rec.Model, &kind, &status, &vjson, &pjson, &rec.EndpointName,
		&rec.EndpointConfigName, &rec.InstanceType, &rec.InstanceCount, &rec.Trigger.Type, &rec.Trigger.User,
		&rec.Trigger.PipelineID, &rec.Trigger.ProjectID, &rec.FailureReason, &approval, &rec.ApprovedBy,
		&rec.RejectedBy, &rec.CommandID, &created, &started, &finished, &updated)
	if err != nil {
		return rec, err
	}
	rec.Kind, rec.Status, rec.NeedsApproval = releases.Kind(kind), releases.Status(status), approval != 0
	if vjson != "" {
		if err := json.Unmarshal([]byte(vjson), &rec.Version); err != nil {
			return rec, fmt.Errorf("decode version of release %s: %w", rec.ID, err)
		}
	}
	if pjson != "" {
		var pv releases.Version
		if err := json.Unmarshal([]byte(pjson), &pv); err != nil {
			return rec, fmt.Errorf("decode previous version of release %s: %w", rec.ID, err)
		}
		rec.PreviousVersion = &pv
	}
	rec.CreatedAt, rec.UpdatedAt = fromMicros(created), fromMicros(updated)
	rec.StartedAt, rec.FinishedAt = timePtr(started), timePtr(finished)
	return rec, nil
}

func versionJSON(v releases.Version) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func prevJSON(v *releases.Version) string {
	if v == nil {
		return ""
	}
	return versionJSON(*v)
}

func (s *Store) forUpdate() string {
	if s.dialect == postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (t *tx) release(ctx context.Context, id string) (ReleaseRecord, error) {
	r, err := scanRelease(t.row(ctx, `SELECT `+releaseCols+` FROM releases WHERE id = ?`+t.s.forUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errf(ErrNotFound, "release %s does not exist", id)
	}
	if err != nil {
		return r, fmt.Errorf("read release %s: %w", id, err)
	}
	return r, nil
}

func (t *tx) insertRelease(ctx context.Context, r ReleaseRecord) error {
	_, err := t.exec(ctx, `INSERT INTO releases (`+releaseCols+`, version_number, event_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
		r.ID, r.Environment, r.Model, string(r.Kind), string(r.Status), versionJSON(r.Version), prevJSON(r.PreviousVersion),
		r.EndpointName, r.EndpointConfigName, r.InstanceType, r.InstanceCount, r.Trigger.Type, r.Trigger.User,
		r.Trigger.PipelineID, r.Trigger.ProjectID, r.FailureReason, b2i(r.NeedsApproval), r.ApprovedBy, r.RejectedBy,
		r.CommandID, micros(r.CreatedAt), nullMicros(r.StartedAt), nullMicros(r.FinishedAt), micros(r.UpdatedAt), r.Version.Number)
	if err != nil {
		return fmt.Errorf("insert release %s: %w", r.ID, err)
	}
	return nil
}

func (t *tx) updateRelease(ctx context.Context, r ReleaseRecord) error {
	_, err := t.exec(ctx, `UPDATE releases SET status = ?, version_json = ?, version_number = ?, previous_version_json = ?,
		endpoint_name = ?, endpoint_config_name = ?, instance_type = ?, instance_count = ?, failure_reason = ?,
		approved_by = ?, rejected_by = ?, started_at = ?, finished_at = ?, updated_at = ? WHERE id = ?`,
		string(r.Status), versionJSON(r.Version), r.Version.Number, prevJSON(r.PreviousVersion), r.EndpointName,
		r.EndpointConfigName, r.InstanceType, r.InstanceCount, r.FailureReason, r.ApprovedBy, r.RejectedBy,
		nullMicros(r.StartedAt), nullMicros(r.FinishedAt), micros(r.UpdatedAt), r.ID)
	if err != nil {
		return fmt.Errorf("update release %s: %w", r.ID, err)
	}
	return nil
}

func (t *tx) environment(ctx context.Context, name string) (releases.Environment, error) {
	e, err := scanEnvironment(t.row(ctx, `SELECT name, kind, region, account, endpoint_url, requires_approval, ordinal FROM environments WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return e, t.s.unknownEnvironment(ctx, name)
	}
	if err != nil {
		return e, fmt.Errorf("read environment %s: %w", name, err)
	}
	return e, nil
}

// StartRelease records the start of a release as the deployer reports it. Without start.ID it
// creates the release: running, or pending when the environment's gate needs an approval for
// this kind. With start.ID it continues the release the server created for a command: the
// release becomes running unless it still waits for an approval.
func (s *Store) StartRelease(ctx context.Context, st releases.ReleaseStart) (ReleaseRecord, error) {
	var out ReleaseRecord
	err := s.inTx(ctx, func(t *tx) error {
		now := s.Now()
		env, err := t.environment(ctx, st.Environment)
		if err != nil {
			return err
		}
		if st.ID == "" {
			r := ReleaseRecord{Release: releases.Release{
				ID: newID(), Environment: st.Environment, Model: st.Model, Kind: st.Kind,
				Version: st.Version, PreviousVersion: st.PreviousVersion, EndpointName: st.EndpointName,
				EndpointConfigName: st.EndpointConfigName, InstanceType: st.InstanceType,
				InstanceCount: st.InstanceCount, Trigger: st.Trigger, CreatedAt: now,
			}, UpdatedAt: now}
			r.NeedsApproval = env.RequiresApproval && gated(st.Kind)
			if r.NeedsApproval {
				r.Status = releases.StatusPending
			} else {
				r.Status = releases.StatusRunning
				r.StartedAt = &now
			}
			if err := t.insertRelease(ctx, r); err != nil {
				return err
			}
			if err := t.supersedeRerun(ctx, r, now); err != nil {
				return err
			}
			if err := t.upsertVersion(ctx, st.Model, st.Version, now); err != nil {
				return err
			}
			if r.NeedsApproval {
				if _, err := t.addEvent(ctx, r.ID, releases.Event{Time: now, Phase: "approval",
					Message: fmt.Sprintf("Waiting for approval: environment %s requires one before a %s", env.Name, r.Kind)}); err != nil {
					return err
				}
			} else if err := t.componentStarted(ctx, r, st.RestoreEnabled, st.ScaleEnabled, now); err != nil {
				return err
			}
			out, err = t.release(ctx, r.ID)
			return err
		}

		r, err := t.release(ctx, st.ID)
		if err != nil {
			return err
		}
		if r.Environment != st.Environment || r.Model != st.Model {
			return errf(ErrConflict, "release %s is for model %s in environment %s, but the report names model %s in environment %s", r.ID, r.Model, r.Environment, st.Model, st.Environment)
		}
		if r.Status.Final() {
			return errf(ErrConflict, "release %s already ended (%s); start a new release instead", r.ID, r.Status)
		}
		if st.Version.Number > 0 || st.Version.ModelPackageARN != "" {
			r.Version = st.Version
		}
		if st.PreviousVersion != nil {
			r.PreviousVersion = st.PreviousVersion
		}
		r.EndpointName = nonEmpty(st.EndpointName, r.EndpointName)
		r.EndpointConfigName = nonEmpty(st.EndpointConfigName, r.EndpointConfigName)
		r.InstanceType = nonEmpty(st.InstanceType, r.InstanceType)
		if st.InstanceCount > 0 {
			r.InstanceCount = st.InstanceCount
		}
		r.UpdatedAt = now
		startedNow := false
		if r.Status == releases.StatusPending && !r.AwaitingApproval() {
			r.Status = releases.StatusRunning
			r.StartedAt = &now
			startedNow = true
		}
		if err := t.updateRelease(ctx, r); err != nil {
			return err
		}
		if err := t.upsertVersion(ctx, r.Model, r.Version, now); err != nil {
			return err
		}
		if startedNow || r.Status == releases.StatusRunning {
			if err := t.componentStarted(ctx, r, st.RestoreEnabled, st.ScaleEnabled, now); err != nil {
				return err
			}
		}
		if startedNow && r.CommandID != "" {
			if _, err := t.exec(ctx, `UPDATE commands SET state = 'dispatched', dispatched_at = COALESCE(dispatched_at, ?) WHERE id = ? AND state IN ('queued', 'dispatched')`, micros(now), r.CommandID); err != nil {
				return fmt.Errorf("mark command %s dispatched: %w", r.CommandID, err)
			}
		}
		out, err = t.release(ctx, r.ID)
		return err
	})
	return out, err
}

// supersedeRerun closes the releases that an earlier attempt of the same CI pipeline left open on
// r's component. CI systems re-run a step only after the earlier attempt ended, so a release of
// that pipeline still running (or waiting at the gate) lost its deployer — killed, or its runner
// gone — and would otherwise stay open until the running timeout. It ends as failed (canceled
// when it never started), naming r. Releases of dashboard commands belong to agents: untouched.
func (t *tx) supersedeRerun(ctx context.Context, r ReleaseRecord, now time.Time) error {
	if r.Trigger.PipelineID == "" || r.CommandID != "" {
		return nil
	}
	rows, err := t.query(ctx, `SELECT id FROM releases WHERE environment = ? AND model = ? AND trigger_pipeline_id = ?
		AND status IN ('running', 'pending') AND command_id = '' AND id <> ?`, r.Environment, r.Model, r.Trigger.PipelineID, r.ID)
	if err != nil {
		return fmt.Errorf("find earlier releases of pipeline %s: %w", r.Trigger.PipelineID, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		old, err := t.release(ctx, id)
		if err != nil {
			return err
		}
		reason := fmt.Sprintf("Superseded by release %s: pipeline %s ran this step again before this release reported an outcome (its deployer stopped).", r.ID, r.Trigger.PipelineID)
		if _, err := t.addEvent(ctx, id, releases.Event{Time: now, Phase: "wait", Message: reason}); err != nil {
			return err
		}
		old.Status = releases.StatusFailed
		if old.StartedAt == nil {
			old.Status = releases.StatusCanceled
		}
		old.FailureReason, old.FinishedAt, old.UpdatedAt = reason, &now, now
		if err := t.updateRelease(ctx, old); err != nil {
			return err
		}
	}
	return nil
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Release reads one release (without events).
func (s *Store) Release(ctx context.Context, id string) (ReleaseRecord, error) {
	r, err := scanRelease(s.row(ctx, `SELECT `+releaseCols+` FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errf(ErrNotFound, "release %s does not exist", id)
	}
	if err != nil {
		return r, fmt.Errorf("read release %s: %w", id, err)
	}
	return r, nil
}

// AddEvent appends a progress event and assigns its sequence number.
func (s *Store) AddEvent(ctx context.Context, id string, ev releases.Event) (releases.Event, error) {
	var out releases.Event
	err := s.inTx(ctx, func(t *tx) error {
		r, err := t.release(ctx, id)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return errf(ErrConflict, "release %s already ended (%s); events can no longer be added", id, r.Status)
		}
		if ev.Time.IsZero() {
			ev.Time = s.Now()
		}
		out, err = t.addEvent(ctx, id, ev)
		if err != nil {
			return err
		}
		if ev.EndpointStatus != "" && r.Status == releases.StatusRunning {
			if _, err := t.exec(ctx, `UPDATE components SET endpoint_status = ?, updated_at = ? WHERE environment = ? AND model = ? AND last_release_id = ?`,
				ev.EndpointStatus, micros(s.Now()), r.Environment, r.Model, r.ID); err != nil {
				return fmt.Errorf("update endpoint status of %s in %s: %w", r.Model, r.Environment, err)
			}
		}
		return nil
	})
	return out, err
}

func (t *tx) addEvent(ctx context.Context, id string, ev releases.Event) (releases.Event, error) {
	var seq int
	now := t.s.Now()
	if err := t.row(ctx, `UPDATE releases SET event_seq = event_seq + 1, updated_at = ? WHERE id = ? RETURNING event_seq`, micros(now), id).Scan(&seq); err != nil {
		return ev, fmt.Errorf("number event of release %s: %w", id, err)
	}
	ev.Seq = seq
	ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
	if _, err := t.exec(ctx, `INSERT INTO release_events (release_id, seq, occurred_at, phase, message, endpoint_status) VALUES (?, ?, ?, ?, ?, ?)`,
		id, seq, micros(ev.Time), ev.Phase, ev.Message, ev.EndpointStatus); err != nil {
		return ev, fmt.Errorf("store event of release %s: %w", id, err)
	}
	return ev, nil
}

// Events lists a release's events after sequence number after, in order.
func (s *Store) Events(ctx context.Context, id string, after int) ([]releases.Event, error) {
	rows, err := s.query(ctx, `SELECT seq, occurred_at, phase, message, endpoint_status FROM release_events WHERE release_id = ? AND seq > ? ORDER BY seq`, id, after)
	if err != nil {
		return nil, fmt.Errorf("read events of release %s: %w", id, err)
	}
	defer rows.Close()
	var out []releases.Event
	for rows.Next() {
		var e releases.Event
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Phase, &e.Message, &e.EndpointStatus); err != nil {
			return nil, err
		}
		e.Time = fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// FinishRelease records a release's outcome and updates its component: the serving version, the
// endpoint status and the instances. Finishing again with the same status changes nothing, so a
// retried report is harmless.
func (s *Store) FinishRelease(ctx context.Context, id string, f releases.ReleaseFinish) (ReleaseRecord, error) {
	var out ReleaseRecord
	err := s.inTx(ctx, func(t *tx) error {
		r, err := t.release(ctx, id)
		if err != nil {
			return err
		}
		out, err = t.finish(ctx, r, f)
		return err
	})
	return out, err
}

func (t *tx) finish(ctx context.Context, r ReleaseRecord, f releases.ReleaseFinish) (ReleaseRecord, error) {
	if !f.Status.Final() {
		return r, errf(ErrConflict, "status %q does not end a release: use succeeded, failed or canceled", f.Status)
	}
	if r.Status.Final() {
		if r.Status == f.Status {
			return r, nil
		}
		return r, errf(ErrConflict, "release %s already ended as %s; it cannot become %s", r.ID, r.Status, f.Status)
	}
	if r.AwaitingApproval() && f.Status == releases.StatusSucceeded {
		return r, errf(ErrConflict, "release %s of %s in %s still waits for approval; it cannot succeed before someone approves it", r.ID, r.Model, r.Environment)
	}
	now := t.s.Now()
	r.Status = f.Status
	r.FailureReason = f.FailureReason
	if f.Status == releases.StatusFailed && r.FailureReason == "" {
		r.FailureReason = "the deployer reported a failure without a reason"
	}
	r.FinishedAt = &now
	r.UpdatedAt = now
	if f.InstanceType != "" {
		r.InstanceType = f.InstanceType
	}
	if f.InstanceCount > 0 {
		r.InstanceCount = f.InstanceCount
	}
	if err := t.updateRelease(ctx, r); err != nil {
		return r, err
	}
	if err := t.componentFinished(ctx, r, f, now); err != nil {
		return r, err
	}
	if r.CommandID != "" && (f.Status == releases.StatusCanceled) {
		if _, err := t.exec(ctx, `UPDATE commands SET state = 'canceled', finished_at = ? WHERE id = ? AND state IN ('awaiting_approval', 'queued')`, micros(now), r.CommandID); err != nil {
			return r, fmt.Errorf("cancel command %s: %w", r.CommandID, err)
		}
	}
	return t.release(ctx, r.ID)
}

// Approve lets a release through its environment's gate. A release the deployer waits on starts
// running; a release created for a dashboard command is queued for an agent.
func (s *Store) Approve(ctx context.Context, id, user string) (ReleaseRecord, error) {
	var out ReleaseRecord
	err := s.inTx(ctx, func(t *tx) error {
		r, err := t.release(ctx, id)
		if err != nil {
			return err
		}
		if err := notAwaiting(r); err != nil {
			return err
		}
		now := s.Now()
		r.ApprovedBy = user
		r.UpdatedAt = now
		if r.CommandID == "" {
			r.Status = releases.StatusRunning
			r.StartedAt = &now
		}
		if err := t.updateRelease(ctx, r); err != nil {
			return err
		}
		msg := "Approved by " + user
		if r.CommandID != "" {
			msg += "; queued for an agent of environment " + r.Environment
			if _, err := t.exec(ctx, `UPDATE commands SET state = 'queued', queued_at = ? WHERE id = ? AND state = 'awaiting_approval'`, micros(now), r.CommandID); err != nil {
				return fmt.Errorf("queue command %s: %w", r.CommandID, err)
			}
		} else if err := t.componentStarted(ctx, r, nil, nil, now); err != nil {
			return err
		}
		if _, err := t.addEvent(ctx, r.ID, releases.Event{Time: now, Phase: "approval", Message: msg}); err != nil {
			return err
		}
		out, err = t.release(ctx, id)
		return err
	})
	return out, err
}

func notAwaiting(r ReleaseRecord) error {
	if r.AwaitingApproval() {
		return nil
	}
	switch {
	case r.ApprovedBy != "":
		return errf(ErrConflict, "release %s was already approved by %s (status %s)", r.ID, r.ApprovedBy, r.Status)
	case r.RejectedBy != "":
		return errf(ErrConflict, "release %s was already rejected by %s", r.ID, r.RejectedBy)
	case !r.NeedsApproval:
		return errf(ErrConflict, "release %s of %s in %s does not need an approval (status %s)", r.ID, r.Model, r.Environment, r.Status)
	}
	return errf(ErrConflict, "release %s is %s, not waiting for approval", r.ID, r.Status)
}

// Reject stops a release at its environment's gate: it ends canceled.
func (s *Store) Reject(ctx context.Context, id, user, reason string) (ReleaseRecord, error) {
	var out ReleaseRecord
	err := s.inTx(ctx, func(t *tx) error {
		r, err := t.release(ctx, id)
		if err != nil {
			return err
		}
		if err := notAwaiting(r); err != nil {
			return err
		}
		now := s.Now()
		msg := "Rejected by " + user
		if reason != "" {
			msg += ": " + reason
		}
		if _, err := t.addEvent(ctx, r.ID, releases.Event{Time: now, Phase: "approval", Message: msg}); err != nil {
			return err
		}
		r.RejectedBy = user
		if err := t.updateRelease(ctx, r); err != nil {
			return err
		}
		out, err = t.finish(ctx, r, releases.ReleaseFinish{Status: releases.StatusCanceled, FailureReason: "rejected at the approval gate by " + user + suffix(reason)})
		return err
	})
	return out, err
}

// Cancel abandons a pending release no agent has taken yet (a queued command, or one waiting for
// approval).
func (s *Store) Cancel(ctx context.Context, id, user string) (ReleaseRecord, error) {
	var out ReleaseRecord
	err := s.inTx(ctx, func(t *tx) error {
		r, err := t.release(ctx, id)
		if err != nil {
			return err
		}
		if r.Status != releases.StatusPending {
			return errf(ErrConflict, "release %s is %s; only a pending release can be canceled", r.ID, r.Status)
		}
		if r.CommandID != "" {
			var state string
			if err := t.row(ctx, `SELECT state FROM commands WHERE id = ?`, r.CommandID).Scan(&state); err != nil {
				return fmt.Errorf("read command %s: %w", r.CommandID, err)
			}
			if state == "dispatched" {
				return errf(ErrConflict, "release %s: an agent is already executing its command; wait for it to finish", r.ID)
			}
		}
		now := s.Now()
		if _, err := t.addEvent(ctx, r.ID, releases.Event{Time: now, Phase: "approval", Message: "Canceled by " + user}); err != nil {
			return err
		}
		out, err = t.finish(ctx, r, releases.ReleaseFinish{Status: releases.StatusCanceled, FailureReason: "canceled by " + user})
		return err
	})
	return out, err
}

func suffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

// ReleaseFilter selects releases for a page of the timeline.
type ReleaseFilter struct {
	Environment string
	Model       string
	Status      releases.Status
	Limit       int
	// Before continues with older releases than the cursor; After with newer ones.
	Before string
	After  string
}

// ReleasePage is one page of releases, newest first, with cursors to the neighbouring pages
// (empty when there is none).
type ReleasePage struct {
	Releases []ReleaseRecord `json:"releases"`
	Older    string          `json:"older,omitempty"`
	Newer    string          `json:"newer,omitempty"`
}

// Cursor encodes the keyset position of a release.
func Cursor(r ReleaseRecord) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(micros(r.CreatedAt), 10) + "." + r.ID))
}

func parseCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		ts, id, ok := strings.Cut(string(b), ".")
		if ok {
			if v, err := strconv.ParseInt(ts, 10, 64); err == nil {
				return v, id, nil
			}
		}
	}
	return 0, "", errf(ErrInvalid, "page cursor %q is not valid; start again from the first page", c)
}

// ListReleases returns a page of releases, newest first, using the (filter, created_at, id)
// indexes so that a page costs the same at 100 or 100,000 releases.
func (s *Store) ListReleases(ctx context.Context, f ReleaseFilter) (ReleasePage, error) {
	q, args, limit, order, err := listQuery(f)
	if err != nil {
		return ReleasePage{}, err
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return ReleasePage{}, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var list []ReleaseRecord
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return ReleasePage{}, err
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return ReleasePage{}, err
	}
	more := len(list) > limit
	if more {
		list = list[:limit]
	}
	var page ReleasePage
	if order == "ASC" {
		for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
			list[i], list[j] = list[j], list[i]
		}
		if more && len(list) > 0 {
			page.Newer = Cursor(list[0])
		}
		if len(list) > 0 {
			page.Older = Cursor(list[len(list)-1])
		}
	} else {
		if more && len(list) > 0 {
			page.Older = Cursor(list[len(list)-1])
		}
		if f.Before != "" && len(list) > 0 {
			page.Newer = Cursor(list[0])
		}
	}
	page.Releases = list
	if page.Releases == nil {
		page.Releases = []ReleaseRecord{}
	}
	return page, nil
}

// listQuery builds the timeline query for a filter.
func listQuery(f ReleaseFilter) (string, []any, int, string, error) {
	limit := f.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	var where []string
	var args []any
	if f.Environment != "" {
		where = append(where, "environment = ?")
		args = append(args, f.Environment)
	}
	if f.Model != "" {
		where = append(where, "model = ?")
		args = append(args, f.Model)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(f.Status))
	}
	order := "DESC"
	switch {
	case f.Before != "":
		ts, id, err := parseCursor(f.Before)
		if err != nil {
			return "", nil, 0, "", err
		}
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, ts, id)
	case f.After != "":
		ts, id, err := parseCursor(f.After)
		if err != nil {
			return "", nil, 0, "", err
		}
		where = append(where, "(created_at, id) > (?, ?)")
		args = append(args, ts, id)
		order = "ASC"
	}
	q := `SELECT ` + releaseCols + ` FROM releases`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at " + order + ", id " + order + " LIMIT ?"
	args = append(args, limit+1)
	return q, args, limit, order, nil
}

// PendingApprovals lists releases waiting at a gate, oldest first.
func (s *Store) PendingApprovals(ctx context.Context) ([]ReleaseRecord, error) {
	rows, err := s.query(ctx, `SELECT `+releaseCols+` FROM releases WHERE status = 'pending' AND needs_approval = 1 AND approved_by = '' AND rejected_by = '' ORDER BY created_at, id LIMIT 500`)
	if err != nil {
		return nil, fmt.Errorf("list pending approvals: %w", err)
	}
	defer rows.Close()
	var out []ReleaseRecord
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const activeWhere = ` FROM releases WHERE environment = ? AND model = ? AND status IN ('pending', 'running')`

// ActiveRelease returns the newest unfinished release of a component, if any.
func (s *Store) ActiveRelease(ctx context.Context, env, model string) (*ReleaseRecord, error) {
	// No ORDER BY: it would steer the planner to walk the component's whole history in time order;
	// unfinished releases are few, so the newest is picked here.
	rows, err := s.query(ctx, `SELECT `+releaseCols+activeWhere, env, model)
	if err != nil {
		return nil, fmt.Errorf("read active release of %s in %s: %w", model, env, err)
	}
	defer rows.Close()
	var newest *ReleaseRecord
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, err
		}
		if newest == nil || r.CreatedAt.After(newest.CreatedAt) || (r.CreatedAt.Equal(newest.CreatedAt) && r.ID > newest.ID) {
			newest = &r
		}
	}
	return newest, rows.Err()
}

// CountByStatus counts releases per status.
func (s *Store) CountByStatus(ctx context.Context) (map[releases.Status]int, error) {
	rows, err := s.query(ctx, `SELECT status, COUNT(*) FROM releases GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count releases: %w", err)
	}
	defer rows.Close()
	out := map[releases.Status]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[releases.Status(st)] = n
	}
	return out, rows.Err()
}

// ImportReleases inserts finished releases as they are, with their events (numbered 1, 2, 3 …
// in the order given, whatever their Seq), in one transaction, without deriving components. It
// is for seeding (benchmarks, demos) and moving history between servers.
func (s *Store) ImportReleases(ctx context.Context, recs []ReleaseRecord) error {
	return s.inTx(ctx, func(t *tx) error {
		for _, r := range recs {
			if r.ID == "" {
				r.ID = newID()
			}
			if r.CreatedAt.IsZero() {
				r.CreatedAt = s.Now()
			}
			if r.UpdatedAt.IsZero() {
				r.UpdatedAt = r.CreatedAt
			}
			if err := t.insertRelease(ctx, r); err != nil {
				return err
			}
			if err := t.importEvents(ctx, r.ID, r.Events); err != nil {
				return err
			}
		}
		return nil
	})
}

// importEvents stores a release's events in one statement and sets its event counter, so that
// later events are numbered after them.
func (t *tx) importEvents(ctx context.Context, id string, events []releases.Event) error {
	if len(events) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO release_events (release_id, seq, occurred_at, phase, message, endpoint_status) VALUES `)
	args := make([]any, 0, 6*len(events))
	for i, ev := range events {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, id, i+1, micros(ev.Time), ev.Phase, ev.Message, ev.EndpointStatus)
	}
	if _, err := t.exec(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("import events of release %s: %w", id, err)
	}
	if _, err := t.exec(ctx, `UPDATE releases SET event_seq = ? WHERE id = ?`, len(events), id); err != nil {
		return fmt.Errorf("import events of release %s: %w", id, err)
	}
	return nil
}
