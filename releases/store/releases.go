package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// ReleaseRecord is a release with what the server keeps beside the domain fields.
type ReleaseRecord struct {
	releases.Release
	UpdatedAt time.Time `json:"updated_at"`
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

const releaseCols = `id, environment, model, kind, status, version_json, previous_version_json, endpoint_name,
	endpoint_config_name, instance_type, instance_count, trigger_type, trigger_user, trigger_pipeline_id,
	trigger_project_id, failure_reason, reason, needs_approval, approved_by, rejected_by, command_id, created_at,
	started_at, finished_at, updated_at`

func scanRelease(r scanner) (ReleaseRecord, error) {
	var rec ReleaseRecord
	var kind, status, vjson, pjson string
	var approval int
	var created, updated int64
	var started, finished sql.NullInt64
	err := r.Scan(&rec.ID, &rec.Environment, &rec.Model, &kind, &status, &vjson, &pjson, &rec.EndpointName,
		&rec.EndpointConfigName, &rec.InstanceType, &rec.InstanceCount, &rec.Trigger.Type, &rec.Trigger.User,
		&rec.Trigger.PipelineID, &rec.Trigger.ProjectID, &rec.FailureReason, &rec.Reason, &approval, &rec.ApprovedBy,
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
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
		r.ID, r.Environment, r.Model, string(r.Kind), string(r.Status), versionJSON(r.Version), prevJSON(r.PreviousVersion),
		r.EndpointName, r.EndpointConfigName, r.InstanceType, r.InstanceCount, r.Trigger.Type, r.Trigger.User,
		r.Trigger.PipelineID, r.Trigger.ProjectID, r.FailureReason, r.Reason, b2i(r.NeedsApproval), r.ApprovedBy, r.RejectedBy,
		r.CommandID, micros(r.CreatedAt), nullMicros(r.StartedAt), nullMicros(r.FinishedAt), micros(r.UpdatedAt), r.Version.Number)
	if err != nil {
		return fmt.Errorf("insert release %s: %w", r.ID, err)
	}
	return nil
}

func (t *tx) updateRelease(ctx context.Context, r ReleaseRecord) error {
	_, err := t.exec(ctx, `UPDATE releases SET status = ?, version_json = ?, version_number = ?, previous_version_json = ?,
		endpoint_name = ?, endpoint_config_name = ?, instance_type = ?, instance_count = ?, failure_reason = ?, reason = ?,
		approved_by = ?, rejected_by = ?, started_at = ?, finished_at = ?, updated_at = ? WHERE id = ?`,
		string(r.Status), versionJSON(r.Version), r.Version.Number, prevJSON(r.PreviousVersion), r.EndpointName,
		r.EndpointConfigName, r.InstanceType, r.InstanceCount, r.FailureReason, r.Reason, r.ApprovedBy, r.RejectedBy,
		nullMicros(r.StartedAt), nullMicros(r.FinishedAt), micros(r.UpdatedAt), r.ID)
	if err != nil {
		return fmt.Errorf("update release %s: %w", r.ID, err)
	}
	return nil
}

func (t *tx) environment(ctx context.Context, name string) (releases.Environment, error) {
	e, err := scanEnvironment(t.row(ctx, `SELECT `+envCols+` FROM environments WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return e, t.s.unknownEnvironment(ctx, name)
	}
	if err != nil {
		return e, fmt.Errorf("read environment %s: %w", name, err)
	}
	return e, nil
}

// errUnchanged tells mutateRelease and mutateCommand that the rule left the record as it was
// (a retried report, a step that does not apply), so there is nothing to save.
var errUnchanged = errors.New("unchanged")

// mutateRelease is one step of the release lifecycle in one transaction: load the release, let
// fn apply a rule of package releases and record what else it changes, save.
func (s *Store) mutateRelease(ctx context.Context, id string, fn func(t *tx, r *ReleaseRecord) error) (ReleaseRecord, error) {
	var out ReleaseRecord
	err := s.inTx(ctx, func(t *tx) error {
		var err error
		out, err = t.mutateRelease(ctx, id, fn)
		return err
	})
	return out, err
}

func (t *tx) mutateRelease(ctx context.Context, id string, fn func(t *tx, r *ReleaseRecord) error) (ReleaseRecord, error) {
	loaded, err := t.release(ctx, id)
	if err != nil {
		return loaded, err
	}
	r := loaded
	if err := fn(t, &r); errors.Is(err, errUnchanged) {
		return loaded, nil
	} else if err != nil {
		return loaded, fromDomain(err)
	}
	r.UpdatedAt = t.s.Now()
	if err := t.updateRelease(ctx, r); err != nil {
		return loaded, err
	}
	if err := t.notifyRelease(ctx, &loaded, r); err != nil {
		return loaded, err
	}
	return t.release(ctx, id)
}

// event appends a progress note to release id.
func (t *tx) event(ctx context.Context, id string, phase releases.Phase, msg string, now time.Time) error {
	_, err := t.addEvent(ctx, id, releases.Event{Time: now, Phase: phase, Message: msg})
	return err
}

// StartRelease records the start of a release as the deployer reports it. Without start.ID it
// creates the release: running, or pending when the environment's gate needs an approval for
// this kind. With start.ID it continues the release the server created for a command: the
// release becomes running unless it still waits for an approval.
func (s *Store) StartRelease(ctx context.Context, st releases.ReleaseStart) (ReleaseRecord, error) {
	if st.ID != "" {
		return s.mutateRelease(ctx, st.ID, func(t *tx, r *ReleaseRecord) error { return t.continueRelease(ctx, r, st) })
	}
	var out ReleaseRecord
	err := s.inTx(ctx, func(t *tx) error {
		var err error
		out, err = t.openRelease(ctx, st)
		return err
	})
	return out, err
}

func (t *tx) openRelease(ctx context.Context, st releases.ReleaseStart) (ReleaseRecord, error) {
	env, err := t.environment(ctx, st.Environment)
	if err != nil {
		return ReleaseRecord{}, err
	}
	now := t.s.Now()
	r := ReleaseRecord{Release: releases.Release{
		ID: newID(), Environment: st.Environment, Model: st.Model, Kind: st.Kind,
		Version: st.Version, PreviousVersion: st.PreviousVersion, EndpointName: st.EndpointName,
		EndpointConfigName: st.EndpointConfigName, InstanceType: st.InstanceType,
		InstanceCount: st.InstanceCount, Trigger: st.Trigger, CreatedAt: now,
	}, UpdatedAt: now}
	releases.Open(&r.Release, env, now)
	if err := t.insertRelease(ctx, r); err != nil {
		return r, err
	}
	if err := t.notifyRelease(ctx, nil, r); err != nil {
		return r, err
	}
	if err := t.supersedeRerun(ctx, r, now); err != nil {
		return r, err
	}
	if err := t.upsertVersion(ctx, st.Model, st.Version, now); err != nil {
		return r, err
	}
	if r.NeedsApproval {
		msg := fmt.Sprintf("Waiting for approval: environment %s requires one before a %s", env.Name, r.Kind)
		if err := t.event(ctx, r.ID, releases.PhaseApproval, msg, now); err != nil {
			return r, err
		}
	} else if err := t.componentStarted(ctx, r, st.RestoreEnabled, st.ScaleEnabled, now); err != nil {
		return r, err
	}
	return t.release(ctx, r.ID)
}

func (t *tx) continueRelease(ctx context.Context, r *ReleaseRecord, st releases.ReleaseStart) error {
	if _, err := t.environment(ctx, st.Environment); err != nil {
		return err
	}
	now := t.s.Now()
	started, err := releases.Continue(&r.Release, st, now)
	if err != nil {
		return err
	}
	if err := t.upsertVersion(ctx, r.Model, r.Version, now); err != nil {
		return err
	}
	if r.Status == releases.StatusRunning {
		if err := t.componentStarted(ctx, *r, st.RestoreEnabled, st.ScaleEnabled, now); err != nil {
			return err
		}
	}
	if started && r.CommandID != "" {
		return t.followCommand(ctx, r.CommandID, releases.StartCommand, "")
	}
	return nil
}

// supersedeRerun closes the releases that an earlier attempt of the same CI pipeline left open on
// r's component (see releases.Supersede); they would otherwise stay open until the running
// timeout. Releases of dashboard commands belong to agents: untouched.
func (t *tx) supersedeRerun(ctx context.Context, r ReleaseRecord, now time.Time) error {
	if r.Trigger.PipelineID == "" || r.CommandID != "" {
		return nil
	}
	ids, err := queryAll(ctx, t, scanString, `SELECT id FROM releases WHERE environment = ? AND model = ? AND trigger_pipeline_id = ?
		AND status IN (?, ?) AND command_id = '' AND id <> ?`, r.Environment, r.Model, r.Trigger.PipelineID,
		releases.StatusRunning, releases.StatusPending, r.ID)
	if err != nil {
		return fmt.Errorf("find earlier releases of pipeline %s: %w", r.Trigger.PipelineID, err)
	}
	for _, id := range ids {
		_, err := t.mutateRelease(ctx, id, func(t *tx, old *ReleaseRecord) error {
			if err := releases.Supersede(&old.Release, r.Release, now); err != nil {
				return err
			}
			return t.event(ctx, id, releases.PhaseWait, old.FailureReason, now)
		})
		if err != nil {
			return err
		}
	}
	return nil
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
	out, err := s.AddEvents(ctx, id, []releases.Event{ev})
	if err != nil {
		return releases.Event{}, err
	}
	return out[0], nil
}

// AddEvents appends events to a running or pending release in one transaction, in order (a
// deployer sends what it queued while the server was busy as one batch: one commit, not one per
// event). The newest endpoint status among them becomes the component's.
func (s *Store) AddEvents(ctx context.Context, id string, evs []releases.Event) ([]releases.Event, error) {
	var out []releases.Event
	err := s.inTx(ctx, func(t *tx) error {
		r, err := t.release(ctx, id)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return errf(ErrConflict, "release %s already ended (%s); events can no longer be added", id, r.Status)
		}
		out, err = t.addEvents(ctx, r, evs)
		return err
	})
	return out, err
}

// addEvents appends evs to r in order; while r runs, the newest endpoint status among them
// becomes its component's.
func (t *tx) addEvents(ctx context.Context, r ReleaseRecord, evs []releases.Event) ([]releases.Event, error) {
	out := make([]releases.Event, 0, len(evs))
	status := ""
	for _, ev := range evs {
		if ev.Time.IsZero() {
			ev.Time = t.s.Now()
		}
		added, err := t.addEvent(ctx, r.ID, ev)
		if err != nil {
			return nil, err
		}
		out = append(out, added)
		status = cmp.Or(ev.EndpointStatus, status)
	}
	if status != "" && r.Status == releases.StatusRunning {
		if _, err := t.exec(ctx, `UPDATE components SET endpoint_status = ?, updated_at = ? WHERE environment = ? AND model = ? AND last_release_id = ?`,
			status, micros(t.s.Now()), r.Environment, r.Model, r.ID); err != nil {
			return nil, fmt.Errorf("update endpoint status of %s in %s: %w", r.Model, r.Environment, err)
		}
	}
	return out, nil
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

// Heartbeat records that the deployer of a release that has not ended is alive, which keeps the
// no-progress timeout (FailStaleReleases) away from it without adding an event.
func (s *Store) Heartbeat(ctx context.Context, id string) error {
	return s.inTx(ctx, func(t *tx) error {
		r, err := t.release(ctx, id)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return errf(ErrConflict, "release %s already ended (%s); report its outcome instead", id, r.Status)
		}
		if _, err := t.exec(ctx, `UPDATE releases SET updated_at = ? WHERE id = ?`, micros(s.Now()), id); err != nil {
			return fmt.Errorf("heartbeat of release %s: %w", id, err)
		}
		return nil
	})
}

// Events lists a release's events after sequence number after, in order.
func (s *Store) Events(ctx context.Context, id string, after int) ([]releases.Event, error) {
	out, err := queryAll(ctx, s, scanEvent, `SELECT seq, occurred_at, phase, message, endpoint_status FROM release_events WHERE release_id = ? AND seq > ? ORDER BY seq`, id, after)
	if err != nil {
		return nil, fmt.Errorf("read events of release %s: %w", id, err)
	}
	return out, nil
}

func scanEvent(r scanner) (releases.Event, error) {
	var e releases.Event
	var at int64
	err := r.Scan(&e.Seq, &at, &e.Phase, &e.Message, &e.EndpointStatus)
	e.Time = fromMicros(at)
	return e, err
}

// FinishRelease records a release's outcome, after the events it carries (f.Events, in order),
// and updates its component: the serving version, the endpoint status and the instances — all in
// one transaction. Finishing again with the same status changes nothing and adds no event, so a
// retried report is harmless.
func (s *Store) FinishRelease(ctx context.Context, id string, f releases.ReleaseFinish) (ReleaseRecord, error) {
	return s.mutateRelease(ctx, id, func(t *tx, r *ReleaseRecord) error { return t.finish(ctx, r, f) })
}

func (t *tx) finish(ctx context.Context, r *ReleaseRecord, f releases.ReleaseFinish) error {
	before := *r
	changed, err := releases.Finish(&r.Release, f, t.s.Now())
	if err != nil {
		return err
	}
	if !changed {
		return errUnchanged
	}
	// The events go in only with an outcome that changes the release: the first attempt of a
	// finish, or a deployer's outcome correcting a timeout; a retry of a finish that committed
	// finds the release ended as it says and adds nothing twice.
	if _, err := t.addEvents(ctx, before, f.Events); err != nil {
		return err
	}
	return t.ended(ctx, r, f)
}

// ended records what the end of r changes beside r: what its component serves, and its command
// when it was canceled before an agent took it.
func (t *tx) ended(ctx context.Context, r *ReleaseRecord, f releases.ReleaseFinish) error {
	if err := t.componentFinished(ctx, *r, f, *r.FinishedAt); err != nil {
		return err
	}
	if r.CommandID != "" && r.Status == releases.StatusCanceled {
		return t.followCommand(ctx, r.CommandID, releases.CancelCommand, "")
	}
	return nil
}

// Approve lets a release through its environment's gate. A release the deployer waits on starts
// running; a release created for a dashboard command is queued for an agent.
func (s *Store) Approve(ctx context.Context, id, user string) (ReleaseRecord, error) {
	return s.mutateRelease(ctx, id, func(t *tx, r *ReleaseRecord) error {
		now := t.s.Now()
		env, err := t.environment(ctx, r.Environment)
		if err != nil {
			return err
		}
		if err := releases.Approve(&r.Release, env, user, now); err != nil {
			return err
		}
		msg := "Approved by " + user
		if req := r.Requester(); req != "" {
			msg += " (requested by " + req + ")"
		}
		if r.CommandID != "" {
			msg += "; queued for an agent of environment " + r.Environment
			if err := t.followCommand(ctx, r.CommandID, releases.ApproveCommand, ""); err != nil {
				return err
			}
		} else if err := t.componentStarted(ctx, *r, nil, nil, now); err != nil {
			return err
		}
		return t.event(ctx, r.ID, releases.PhaseApproval, msg, now)
	})
}

// Reject stops a release at its environment's gate: it ends canceled.
func (s *Store) Reject(ctx context.Context, id, user, reason string) (ReleaseRecord, error) {
	return s.mutateRelease(ctx, id, func(t *tx, r *ReleaseRecord) error {
		now := t.s.Now()
		if err := releases.Reject(&r.Release, user, reason, now); err != nil {
			return err
		}
		msg := "Rejected by " + user
		if reason != "" {
			msg += ": " + reason
		}
		if err := t.event(ctx, r.ID, releases.PhaseApproval, msg, now); err != nil {
			return err
		}
		return t.ended(ctx, r, releases.ReleaseFinish{Status: releases.StatusCanceled})
	})
}

// Cancel abandons a pending release no agent has taken yet (a queued command, or one waiting for
// approval).
func (s *Store) Cancel(ctx context.Context, id, user string) (ReleaseRecord, error) {
	return s.mutateRelease(ctx, id, func(t *tx, r *ReleaseRecord) error {
		var state releases.CommandState
		if r.CommandID != "" {
			c, err := t.command(ctx, r.CommandID)
			if err != nil {
				return err
			}
			state = c.State
		}
		now := t.s.Now()
		if err := releases.Cancel(&r.Release, state, user, now); err != nil {
			return err
		}
		if err := t.event(ctx, r.ID, releases.PhaseApproval, "Canceled by "+user, now); err != nil {
			return err
		}
		return t.ended(ctx, r, releases.ReleaseFinish{Status: releases.StatusCanceled})
	})
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
	list, err := queryAll(ctx, s, scanRelease, q, args...)
	if err != nil {
		return ReleasePage{}, fmt.Errorf("list releases: %w", err)
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
	out, err := queryAll(ctx, s, scanRelease, `SELECT `+releaseCols+` FROM releases WHERE status = ? AND needs_approval = 1 AND approved_by = '' AND rejected_by = '' ORDER BY created_at, id LIMIT 500`,
		releases.StatusPending)
	if err != nil {
		return nil, fmt.Errorf("list pending approvals: %w", err)
	}
	return out, nil
}

// UnfinishedReleases lists the releases that have not finished — waiting at a gate, queued for an
// agent, running — newest first. They are few at any time (the sweeper ends stalled ones), and the
// (status, created_at, id) index finds them without reading the finished history.
func (s *Store) UnfinishedReleases(ctx context.Context) ([]ReleaseRecord, error) {
	// No ORDER BY: with two statuses it would cost a sort in the database; the few rows are
	// ordered here.
	out, err := queryAll(ctx, s, scanRelease, unfinishedQuery, unfinishedArgs()...)
	if err != nil {
		return nil, fmt.Errorf("list unfinished releases: %w", err)
	}
	slices.SortFunc(out, func(a, b ReleaseRecord) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	return out, nil
}

// unfinishedQuery is bounded all the same, so that a backlog left by a broken agent cannot make
// every overview read it whole.
const unfinishedQuery = `SELECT ` + releaseCols + ` FROM releases WHERE status IN (?, ?) LIMIT 5000`

func unfinishedArgs() []any { return []any{releases.StatusPending, releases.StatusRunning} }

// activeWhere selects a component's unfinished releases; its arguments are activeArgs.
const activeWhere = ` FROM releases WHERE environment = ? AND model = ? AND status IN (?, ?)`

func activeArgs(env, model string) []any {
	return []any{env, model, releases.StatusPending, releases.StatusRunning}
}

// ActiveRelease returns the newest unfinished release of a component, if any.
func (s *Store) ActiveRelease(ctx context.Context, env, model string) (*ReleaseRecord, error) {
	// No ORDER BY: it would steer the planner to walk the component's whole history in time order;
	// unfinished releases are few, so the newest is picked here.
	list, err := queryAll(ctx, s, scanRelease, `SELECT `+releaseCols+activeWhere, activeArgs(env, model)...)
	if err != nil {
		return nil, fmt.Errorf("read active release of %s in %s: %w", model, env, err)
	}
	var newest *ReleaseRecord
	for i, r := range list {
		if newest == nil || r.CreatedAt.After(newest.CreatedAt) || (r.CreatedAt.Equal(newest.CreatedAt) && r.ID > newest.ID) {
			newest = &list[i]
		}
	}
	return newest, nil
}

// CountByStatus counts releases per status.
func (s *Store) CountByStatus(ctx context.Context) (map[releases.Status]int, error) {
	type count struct {
		status releases.Status
		n      int
	}
	counts, err := queryAll(ctx, s, func(r scanner) (count, error) {
		var c count
		err := r.Scan(&c.status, &c.n)
		return c, err
	}, `SELECT status, COUNT(*) FROM releases GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count releases: %w", err)
	}
	out := map[releases.Status]int{}
	for _, c := range counts {
		out[c.status] = c.n
	}
	return out, nil
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
