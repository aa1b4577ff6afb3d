package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// UserSummary is a user as the user list shows it: with how many sessions are signed in now.
type UserSummary struct {
	User
	Sessions int `json:"sessions"`
}

// UserList lists users by name with their open sessions.
func (s *Store) UserList(ctx context.Context) ([]UserSummary, error) {
	out, err := queryAll(ctx, s, func(r scanner) (UserSummary, error) {
		var u UserSummary
		var created int64
		err := r.Scan(&u.Name, &u.Role, &created, &u.Sessions)
		u.CreatedAt = fromMicros(created)
		return u, err
	}, `SELECT u.name, u.role, u.created_at, (SELECT COUNT(*) FROM sessions s WHERE s.username = u.name AND s.expires_at > ?)
		FROM users u ORDER BY u.name`, micros(s.Now()))
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// RemoveUser deletes a user and ends all their sessions at once. The last admin cannot be
// removed: nobody could manage the server any more.
func (s *Store) RemoveUser(ctx context.Context, name string) (ended int, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		u, err := t.lockUser(ctx, name)
		if err != nil {
			return err
		}
		if err := t.keepAnAdmin(ctx, u, "remove"); err != nil {
			return err
		}
		if ended, err = t.endSessions(ctx, name); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM users WHERE name = ?`, name); err != nil {
			return fmt.Errorf("remove user %s: %w", name, err)
		}
		return nil
	})
	return ended, err
}

// SetUserRole changes a user's role and ends their sessions, so the new role applies to every
// request from now on (a session's role is never cached, but a demoted admin's open pages must
// not keep the forms of the old role either).
func (s *Store) SetUserRole(ctx context.Context, name, role string) (ended int, err error) {
	if !ValidRole(role) {
		return 0, errf(ErrInvalid, "role %q is not valid: use viewer, deployer or admin", role)
	}
	err = s.inTx(ctx, func(t *tx) error {
		u, err := t.lockUser(ctx, name)
		if err != nil {
			return err
		}
		if u.Role == role {
			return errf(ErrConflict, "user %s already has the %s role", name, role)
		}
		if role != RoleAdmin {
			if err := t.keepAnAdmin(ctx, u, "make "+role); err != nil {
				return err
			}
		}
		if _, err := t.exec(ctx, `UPDATE users SET role = ? WHERE name = ?`, role, name); err != nil {
			return fmt.Errorf("set role of %s: %w", name, err)
		}
		ended, err = t.endSessions(ctx, name)
		return err
	})
	return ended, err
}

// SetUserPassword stores a new password hash and ends the user's sessions: whoever signed in
// with the old password is signed out.
func (s *Store) SetUserPassword(ctx context.Context, name, hash string) (ended int, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		if _, err := t.lockUser(ctx, name); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, name); err != nil {
			return fmt.Errorf("set password of %s: %w", name, err)
		}
		ended, err = t.endSessions(ctx, name)
		return err
	})
	return ended, err
}

// EndSessions signs a user out everywhere.
func (s *Store) EndSessions(ctx context.Context, name string) (ended int, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		if _, err := t.lockUser(ctx, name); err != nil {
			return err
		}
		ended, err = t.endSessions(ctx, name)
		return err
	})
	return ended, err
}

// lockUser reads a user, locking the row on Postgres so that concurrent changes of one user
// (or of the last admins) queue instead of both passing the checks.
func (t *tx) lockUser(ctx context.Context, name string) (User, error) {
	var u User
	var created int64
	err := t.row(ctx, `SELECT name, role, created_at FROM users WHERE name = ?`+t.s.forUpdate(), name).Scan(&u.Name, &u.Role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errf(ErrNotFound, "user %s does not exist; `sagedeploy server user list` shows the users", name)
	}
	if err != nil {
		return u, fmt.Errorf("read user %s: %w", name, err)
	}
	u.CreatedAt = fromMicros(created)
	return u, nil
}

// keepAnAdmin refuses to take the admin role away from the last admin.
func (t *tx) keepAnAdmin(ctx context.Context, u User, doing string) error {
	if u.Role != RoleAdmin {
		return nil
	}
	admins, err := queryAll(ctx, t, scanString, `SELECT name FROM users WHERE role = ?`+t.s.forUpdate(), RoleAdmin)
	if err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if len(admins) <= 1 {
		return errf(ErrConflict, "cannot %s %s: it is the last admin, and nobody could manage users, tokens or environments any more; make another user admin first", doing, u.Name)
	}
	return nil
}

func (t *tx) endSessions(ctx context.Context, name string) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM sessions WHERE username = ?`, name)
	if err != nil {
		return 0, fmt.Errorf("end sessions of %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
