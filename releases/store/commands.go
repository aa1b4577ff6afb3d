package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Command states, named here too for the store's callers; package releases defines them and the
// rules that move a command from one to the next.
const (
	CommandAwaitingApproval = releases.CommandAwaitingApproval
	CommandQueued           = releases.CommandQueued
	CommandDispatched       = releases.CommandDispatched
	CommandSucceeded        = releases.CommandSucceeded
	CommandFailed           = releases.CommandFailed
	CommandCanceled         = releases.CommandCanceled
)

// CommandRecord is a command with its delivery state.
type CommandRecord struct {
	releases.Command
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
		if err := t.componentIdle(ctx, cmd.Environment, cmd.Model); err != nil {
			return err
		}
		now := s.Now()
		cmd.ID, cmd.CreatedAt, rel.ID, rel.CreatedAt = newID(), now, newID(), now
		releases.Issue(&cmd, &rel, needsApproval)
		if err := t.insertRelease(ctx, ReleaseRecord{Release: rel, UpdatedAt: now}); err != nil {
			return err
		}
		if err := t.notifyRelease(ctx, nil, ReleaseRecord{Release: rel, UpdatedAt: now}); err != nil {
			return err
		}
		if err := t.insertCommand(ctx, cmd, now); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s requested by %s; waiting for an agent of environment %s", describeCommand(cmd), cmd.RequestedBy, cmd.Environment)
		if needsApproval {
			msg = fmt.Sprintf("%s requested by %s; waiting for approval: environment %s requires one", describeCommand(cmd), cmd.RequestedBy, cmd.Environment)
		}
		if err := t.event(ctx, rel.ID, phaseOf(cmd), msg, now); err != nil {
			return err
		}
		var err error
		if outR, err = t.release(ctx, rel.ID); err != nil {
			return err
		}
		outC, err = t.command(ctx, cmd.ID)
		return err
	})
	return outC, outR, err
}

// componentIdle refuses a new command on a component that has an unfinished release.
func (t *tx) componentIdle(ctx context.Context, env, model string) error {
	var busyID, busyStatus string
	err := t.row(ctx, `SELECT id, status`+activeWhere+` LIMIT 1`, activeArgs(env, model)...).Scan(&busyID, &busyStatus)
	switch {
	case err == nil:
		return errf(ErrConflict, "model %s in environment %s already has an unfinished release (%s, %s); wait for it to end, or approve, reject or cancel it first", model, env, busyID, busyStatus)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("check releases in progress: %w", err)
	}
	return nil
}

func (t *tx) insertCommand(ctx context.Context, cmd releases.Command, now time.Time) error {
	var queued *time.Time
	if cmd.State == releases.CommandQueued {
		queued = &now
	}
	_, err := t.exec(ctx, `INSERT INTO commands (`+commandCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', ?, ?, NULL, NULL)`,
		cmd.ID, string(cmd.Kind), cmd.Environment, cmd.Model, cmd.Version, cmd.Instances, cmd.FromEnvironment, cmd.ReleaseID,
		cmd.RequestedBy, cmd.State, micros(now), nullMicros(queued))
	if err != nil {
		return fmt.Errorf("insert command: %w", err)
	}
	return nil
}

// command reads one command in a transaction, locked for update.
func (t *tx) command(ctx context.Context, id string) (CommandRecord, error) {
	c, err := scanCommand(t.row(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ?`+t.s.forUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, errf(ErrNotFound, "command %s does not exist", id)
	}
	if err != nil {
		return c, fmt.Errorf("read command %s: %w", id, err)
	}
	return c, nil
}

// mutateCommand loads command id, lets fn apply a rule of package releases, stamps the time of
// the new state and saves it. errUnchanged from fn leaves the command as it was.
func (t *tx) mutateCommand(ctx context.Context, id string, fn func(c *CommandRecord) error) (CommandRecord, error) {
	loaded, err := t.command(ctx, id)
	if err != nil {
		return loaded, err
	}
	c := loaded
	if err := fn(&c); errors.Is(err, errUnchanged) {
		return loaded, nil
	} else if err != nil {
		return loaded, fromDomain(err)
	}
	if c.State != loaded.State {
		stamp(&c, t.s.Now())
	}
	_, err = t.exec(ctx, `UPDATE commands SET state = ?, message = ?, queued_at = ?, dispatched_at = ?, finished_at = ? WHERE id = ?`,
		c.State, c.Message, nullMicros(c.QueuedAt), nullMicros(c.DispatchedAt), nullMicros(c.FinishedAt), id)
	if err != nil {
		return loaded, fmt.Errorf("save command %s (%s): %w", id, c.State, err)
	}
	return c, nil
}

// stamp records when c entered its state.
func stamp(c *CommandRecord, now time.Time) {
	switch {
	case c.State == releases.CommandQueued:
		c.QueuedAt = &now
	case c.State == releases.CommandDispatched && c.DispatchedAt == nil:
		c.DispatchedAt = &now
	case c.State.Final():
		c.FinishedAt = &now
	}
}

// followCommand moves command id along with its release by step. A step the command's state does
// not allow leaves it as it is: the release's change stands either way.
func (t *tx) followCommand(ctx context.Context, id string, step func(*releases.Command) error, message string) error {
	_, err := t.mutateCommand(ctx, id, func(c *CommandRecord) error {
		if step(&c.Command) != nil {
			return errUnchanged
		}
		c.Message = cmp.Or(message, c.Message)
		return nil
	})
	return err
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
	return s.ClaimCommandAs(ctx, env, "")
}

// ClaimCommandAs is ClaimCommand for the agent holding integration token tokenID. The token is
// checked in the claim's transaction, so a poll that began before a revocation never takes a
// command after it; the claim records the token, so that revoking it before its agent starts the
// release puts the command back in the queue.
func (s *Store) ClaimCommandAs(ctx context.Context, env, tokenID string) (*CommandRecord, error) {
	var out *CommandRecord
	err := s.inTx(ctx, func(t *tx) error {
		if tokenID != "" {
			if err := t.tokenUsable(ctx, tokenID); err != nil {
				return err
			}
		}
		lock := ""
		if s.dialect == postgres {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		id, err := scanString(t.row(ctx, `SELECT id FROM commands WHERE environment = ? AND state = ? ORDER BY queued_at, id LIMIT 1`+lock, env, releases.CommandQueued))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find queued command for %s: %w", env, err)
		}
		c, err := t.mutateCommand(ctx, id, func(c *CommandRecord) error { return releases.ClaimCommand(&c.Command) })
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE commands SET claimed_by_token = ? WHERE id = ?`, tokenID, id); err != nil {
			return fmt.Errorf("record the token that took command %s: %w", id, err)
		}
		if err := t.event(ctx, c.ReleaseID, phaseOf(c.Command), "An agent of environment "+env+" took the command", s.Now()); err != nil {
			return err
		}
		out = &c
		return nil
	})
	return out, err
}

// requeueClaimedBy puts back in the queue the commands that token tokenID took but whose release
// its agent never started: that agent can no longer report, another one must run them.
func (t *tx) requeueClaimedBy(ctx context.Context, tokenID, why string) ([]CommandRecord, error) {
	ids, err := queryAll(ctx, t, scanString, `SELECT c.id FROM commands c JOIN releases r ON r.id = c.release_id
		WHERE c.claimed_by_token = ? AND c.state = ? AND r.status = ?`, tokenID, releases.CommandDispatched, releases.StatusPending)
	if err != nil {
		return nil, fmt.Errorf("find commands taken by token %s: %w", tokenID, err)
	}
	var out []CommandRecord
	for _, id := range ids {
		c, err := t.mutateCommand(ctx, id, func(c *CommandRecord) error {
			c.DispatchedAt = nil
			return releases.RequeueCommand(&c.Command)
		})
		if err != nil {
			return out, err
		}
		if _, err := t.exec(ctx, `UPDATE commands SET claimed_by_token = '' WHERE id = ?`, id); err != nil {
			return out, fmt.Errorf("clear the token of command %s: %w", id, err)
		}
		if err := t.event(ctx, c.ReleaseID, phaseOf(c.Command), why, t.s.Now()); err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
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
		c, err := t.command(ctx, id)
		if errors.Is(err, ErrNotFound) || (err == nil && c.Environment != env) {
			return errf(ErrNotFound, "command %s does not exist for environment %s", id, env)
		}
		if err != nil {
			return err
		}
		changed := false
		out, err = t.mutateCommand(ctx, id, func(c *CommandRecord) error {
			var rerr error
			if changed, rerr = releases.CompleteCommand(&c.Command, res.Status); rerr == nil && !changed {
				return errUnchanged
			}
			c.Message = res.Message
			return rerr
		})
		if err != nil || !changed {
			return err
		}
		return t.releaseOfCommandDone(ctx, c.ReleaseID, out.State, res.Message)
	})
	return out, err
}

// releaseOfCommandDone fails the release of a command that ended while the release had not.
func (t *tx) releaseOfCommandDone(ctx context.Context, id string, state releases.CommandState, message string) error {
	_, err := t.mutateRelease(ctx, id, func(t *tx, r *ReleaseRecord) error {
		if r.Status.Final() {
			return errUnchanged
		}
		why := "the agent reported the command " + string(state) + " without finishing its release"
		if message != "" {
			why += ": " + message
		}
		return t.finish(ctx, r, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonErrored, FailureReason: why})
	})
	return err
}

// NoteUnclaimedCommands marks queued commands that no agent took since before cutoff with note.
// They stay queued: an agent that starts later still gets them.
func (s *Store) NoteUnclaimedCommands(ctx context.Context, cutoff time.Time, note string) (int64, error) {
	res, err := s.exec(ctx, `UPDATE commands SET note = ? WHERE state = ? AND queued_at < ? AND note = ''`, note, releases.CommandQueued, micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("note unclaimed commands: %w", err)
	}
	return res.RowsAffected()
}

// FailStaleReleases ends as failed (timed out) the releases that stopped making progress: running
// ones with no report since cutoff, and pending ones whose command an agent took before cutoff but
// never started. Their commands fail with them.
func (s *Store) FailStaleReleases(ctx context.Context, cutoff time.Time, reason string) ([]ReleaseRecord, error) {
	ids, err := queryAll(ctx, s, scanString, `SELECT id FROM releases WHERE status = ? AND updated_at < ?
		UNION SELECT r.id FROM releases r JOIN commands c ON c.id = r.command_id
		WHERE r.status = ? AND c.state = ? AND c.dispatched_at < ? AND r.updated_at < ?`,
		releases.StatusRunning, micros(cutoff), releases.StatusPending, releases.CommandDispatched, micros(cutoff), micros(cutoff))
	if err != nil {
		return nil, fmt.Errorf("find stale releases: %w", err)
	}
	var out []ReleaseRecord
	for _, id := range ids {
		timedOut := false
		r, err := s.mutateRelease(ctx, id, func(t *tx, r *ReleaseRecord) error {
			now := t.s.Now()
			// The rule re-checks inside the transaction: a report may have arrived since the scan.
			if timedOut = releases.TimeOut(&r.Release, r.UpdatedAt, cutoff, reason, now); !timedOut {
				return errUnchanged
			}
			return t.timedOut(ctx, r, reason, now)
		})
		if err != nil {
			return out, fmt.Errorf("fail stale release %s: %w", id, err)
		}
		if timedOut {
			out = append(out, r)
		}
	}
	return out, nil
}

// timedOut records what a timeout changes beside the release: a note, its component, its command.
func (t *tx) timedOut(ctx context.Context, r *ReleaseRecord, reason string, now time.Time) error {
	if err := t.event(ctx, r.ID, releases.PhaseWait, reason, now); err != nil {
		return err
	}
	if err := t.ended(ctx, r, releases.ReleaseFinish{Status: releases.StatusFailed}); err != nil {
		return err
	}
	if r.CommandID == "" {
		return nil
	}
	return t.followCommand(ctx, r.CommandID, releases.TimeOutCommand, reason)
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
	out, err := queryAll(ctx, s, scanCommand, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list commands: %w", err)
	}
	return out, nil
}
