package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Command states. A command waits at the gate (awaiting_approval) or for an agent (queued), is
// taken by an agent (dispatched) and ends with its release.
const (
	CommandAwaitingApproval = "awaiting_approval"
	CommandQueued           = "queued"
	CommandDispatched       = "dispatched"
	CommandSucceeded        = "succeeded"
	CommandFailed           = "failed"
	CommandCanceled         = "canceled"
)

// CommandRecord is a command with its delivery state.
type CommandRecord struct {
	releases.Command
	State        string     `json:"state"`
	Message      string     `json:"message,omitempty"`
	Note         string     `json:"note,omitempty"` // why it is still waiting, set by the server's sweeper
	QueuedAt     *time.Time `json:"queued_at,omitempty"`
	DispatchedAt *time.Time `json:"dispatched_at,omitempty"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
}

const commandCols = `id, kind, environment, model, version, instances, from_environment, release_id, requested_by, state,
	message, note, created_at, queued_at, dispatched_at, finished_at`

func scanCommand(r scanner) (CommandRecord, error) {
	var c CommandRecord
	var kind string
	var created int64
	var queued, dispatched, finished sql.NullInt64
	err := r.Scan(&c.ID, &kind, &c.Environment, &c.Model, &c.Version, &c.Instances, &c.FromEnvironment, &c.ReleaseID,
		&c.RequestedBy, &c.State, &c.Message, &c.Note, &created, &queued, &dispatched, &finished)
	c.Kind = releases.CommandKind(kind)
	c.CreatedAt = fromMicros(created)
	c.QueuedAt, c.DispatchedAt, c.FinishedAt = timePtr(queued), timePtr(dispatched), timePtr(finished)
	return c, err
}

// CreateCommand stores a command with the pending release it will report into. The release waits
// at the gate when needsApproval, else the command is queued for an agent at once. It fails with
// ErrConflict when the component already has an unfinished release, so that two commands never
// race on one endpoint.
func (s *Store) CreateCommand(ctx context.Context, cmd releases.Command, rel releases.Release, needsApproval bool) (CommandRecord, ReleaseRecord, error) {
	var outC CommandRecord
	var outR ReleaseRecord
	err := s.inTx(ctx, func(t *tx) error {
		now := s.Now()
		var busyID, busyStatus string
		err := t.row(ctx, `SELECT id, status`+activeWhere+` LIMIT 1`, cmd.Environment, cmd.Model).Scan(&busyID, &busyStatus)
		switch {
		case err == nil:
			return errf(ErrConflict, "model %s in environment %s already has an unfinished release (%s, %s); wait for it to end, or approve, reject or cancel it first", cmd.Model, cmd.Environment, busyID, busyStatus)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("check releases in progress: %w", err)
		}
		cmd.ID = newID()
		cmd.CreatedAt = now
		rel.ID = newID()
		cmd.ReleaseID = rel.ID
		rel.Status = releases.StatusPending
		rel.CreatedAt = now
		r := ReleaseRecord{Release: rel, NeedsApproval: needsApproval, CommandID: cmd.ID, UpdatedAt: now}
		if err := t.insertRelease(ctx, r); err != nil {
			return err
		}
		state := CommandQueued
		queued := &now
		if needsApproval {
			state, queued = CommandAwaitingApproval, nil
		}
		_, err = t.exec(ctx, `INSERT INTO commands (`+commandCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', ?, ?, NULL, NULL)`,
			cmd.ID, string(cmd.Kind), cmd.Environment, cmd.Model, cmd.Version, cmd.Instances, cmd.FromEnvironment, cmd.ReleaseID,
			cmd.RequestedBy, state, micros(now), nullMicros(queued))
		if err != nil {
			return fmt.Errorf("insert command: %w", err)
		}
		msg := fmt.Sprintf("%s requested by %s; waiting for an agent of environment %s", describeCommand(cmd), cmd.RequestedBy, cmd.Environment)
		if needsApproval {
			msg = fmt.Sprintf("%s requested by %s; waiting for approval: environment %s requires one", describeCommand(cmd), cmd.RequestedBy, cmd.Environment)
		}
		if _, err := t.addEvent(ctx, rel.ID, releases.Event{Time: now, Phase: phaseOf(cmd), Message: msg}); err != nil {
			return err
		}
		outR, err = t.release(ctx, rel.ID)
		if err != nil {
			return err
		}
		outC, err = scanCommand(t.row(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ?`, cmd.ID))
		return err
	})
	return outC, outR, err
}

func phaseOf(cmd releases.Command) releases.Phase {
	if cmd.Kind == releases.CommandScale {
		return releases.PhaseScale
	}
	return releases.PhaseResolve
}

// describeCommand says in words what a command asks.
func describeCommand(c releases.Command) string {
	switch c.Kind {
	case releases.CommandRestore:
		return fmt.Sprintf("Restore of %s version %d in %s", c.Model, c.Version, c.Environment)
	case releases.CommandRollback:
		if c.Version > 0 {
			return fmt.Sprintf("Rollback of %s in %s to version %d", c.Model, c.Environment, c.Version)
		}
		return fmt.Sprintf("Rollback of %s in %s to the previous version", c.Model, c.Environment)
	case releases.CommandScale:
		return fmt.Sprintf("Scaling of %s in %s to %d instances", c.Model, c.Environment, c.Instances)
	case releases.CommandPromote:
		return fmt.Sprintf("Promotion of %s from %s to %s", c.Model, c.FromEnvironment, c.Environment)
	}
	return string(c.Kind)
}

// ClaimCommand hands the oldest queued command of an environment to an agent, or returns nil
// when there is none.
func (s *Store) ClaimCommand(ctx context.Context, env string) (*CommandRecord, error) {
	var out *CommandRecord
	err := s.inTx(ctx, func(t *tx) error {
		lock := ""
		if s.dialect == postgres {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var id string
		err := t.row(ctx, `SELECT id FROM commands WHERE environment = ? AND state = 'queued' ORDER BY queued_at, id LIMIT 1`+lock, env).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find queued command for %s: %w", env, err)
		}
		now := s.Now()
		res, err := t.exec(ctx, `UPDATE commands SET state = 'dispatched', dispatched_at = ? WHERE id = ? AND state = 'queued'`, micros(now), id)
		if err != nil {
			return fmt.Errorf("dispatch command %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		c, err := scanCommand(t.row(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ?`, id))
		if err != nil {
			return err
		}
		if _, err := t.addEvent(ctx, c.ReleaseID, releases.Event{Time: now, Phase: phaseOf(c.Command), Message: "An agent of environment " + env + " took the command"}); err != nil {
			return err
		}
		out = &c
		return nil
	})
	return out, err
}

// Command reads one command.
func (s *Store) Command(ctx context.Context, id string) (CommandRecord, error) {
	c, err := scanCommand(s.row(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, errf(ErrNotFound, "command %s does not exist", id)
	}
	if err != nil {
		return c, fmt.Errorf("read command %s: %w", id, err)
	}
	return c, nil
}

// CompleteCommand records the outcome an agent reports. The command must belong to env. If the
// command's release is still unfinished, it is finished as failed: an agent that is done with a
// command leaves nothing running.
func (s *Store) CompleteCommand(ctx context.Context, id, env string, res releases.CommandResult) (CommandRecord, error) {
	var out CommandRecord
	err := s.inTx(ctx, func(t *tx) error {
		c, err := scanCommand(t.row(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ?`+s.forUpdate(), id))
		if errors.Is(err, sql.ErrNoRows) || (err == nil && c.Environment != env) {
			return errf(ErrNotFound, "command %s does not exist for environment %s", id, env)
		}
		if err != nil {
			return fmt.Errorf("read command %s: %w", id, err)
		}
		state := string(res.Status)
		if isFinalCommand(c.State) {
			if c.State == state {
				out = c
				return nil
			}
			return errf(ErrConflict, "command %s already ended as %s", id, c.State)
		}
		if c.State != CommandDispatched {
			return errf(ErrConflict, "command %s is %s: no agent has taken it, so it cannot have a result", id, c.State)
		}
		now := s.Now()
		if _, err := t.exec(ctx, `UPDATE commands SET state = ?, message = ?, finished_at = ? WHERE id = ?`, state, res.Message, micros(now), id); err != nil {
			return fmt.Errorf("complete command %s: %w", id, err)
		}
		r, err := t.release(ctx, c.ReleaseID)
		if err != nil {
			return err
		}
		if !r.Status.Final() {
			reason := "the agent reported the command " + state + " without finishing its release"
			if res.Message != "" {
				reason += ": " + res.Message
			}
			if _, err := t.finish(ctx, r, releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: reason}); err != nil {
				return err
			}
		}
		out, err = scanCommand(t.row(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ?`, id))
		return err
	})
	return out, err
}

func isFinalCommand(state string) bool {
	return state == CommandSucceeded || state == CommandFailed || state == CommandCanceled
}

// NoteUnclaimedCommands marks queued commands that no agent took since before cutoff with note.
// They stay queued: an agent that starts later still gets them.
func (s *Store) NoteUnclaimedCommands(ctx context.Context, cutoff time.Time, note string) (int64, error) {
	res, err := s.exec(ctx, `UPDATE commands SET note = ? WHERE state = 'queued' AND queued_at < ? AND note = ''`, note, micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("note unclaimed commands: %w", err)
	}
	return res.RowsAffected()
}

// FailStaleReleases ends as failed the releases that stopped making progress: running ones with
// no report since cutoff, and pending ones whose command an agent took before cutoff but never
// started. Their commands fail with them.
func (s *Store) FailStaleReleases(ctx context.Context, cutoff time.Time, reason string) ([]ReleaseRecord, error) {
	rows, err := s.query(ctx, `SELECT id FROM releases WHERE status = 'running' AND updated_at < ?
		UNION SELECT r.id FROM releases r JOIN commands c ON c.id = r.command_id
		WHERE r.status = 'pending' AND c.state = 'dispatched' AND c.dispatched_at < ? AND r.updated_at < ?`,
		micros(cutoff), micros(cutoff), micros(cutoff))
	if err != nil {
		return nil, fmt.Errorf("find stale releases: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []ReleaseRecord
	for _, id := range ids {
		err := s.inTx(ctx, func(t *tx) error {
			r, err := t.release(ctx, id)
			if err != nil {
				return err
			}
			// Re-check inside the transaction: a report may have arrived since the scan.
			if r.Status.Final() || r.UpdatedAt.After(cutoff) {
				return nil
			}
			if _, err := t.addEvent(ctx, id, releases.Event{Time: s.Now(), Phase: "wait", Message: reason}); err != nil {
				return err
			}
			r, err = t.finish(ctx, r, releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: reason})
			if err != nil {
				return err
			}
			if r.CommandID != "" {
				if _, err := t.exec(ctx, `UPDATE commands SET state = 'failed', message = ?, finished_at = ? WHERE id = ? AND state IN ('queued', 'dispatched')`,
					reason, micros(s.Now()), r.CommandID); err != nil {
					return fmt.Errorf("fail command %s: %w", r.CommandID, err)
				}
			}
			out = append(out, r)
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("fail stale release %s: %w", id, err)
		}
	}
	return out, nil
}

// Commands lists the newest commands, optionally of one environment.
func (s *Store) Commands(ctx context.Context, env string, limit int) ([]CommandRecord, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q := `SELECT ` + commandCols + ` FROM commands`
	args := []any{}
	if env != "" {
		q += ` WHERE environment = ?`
		args = append(args, env)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list commands: %w", err)
	}
	defer rows.Close()
	var out []CommandRecord
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
