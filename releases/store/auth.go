package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Roles, from least to most allowed.
const (
	RoleViewer   = "viewer"   // reads everything
	RoleDeployer = "deployer" // also issues commands and approves
	RoleAdmin    = "admin"    // also manages environments, tokens and users
)

// ValidRole reports whether r is one of the roles.
func ValidRole(r string) bool { return r == RoleViewer || r == RoleDeployer || r == RoleAdmin }

// User is a person who signs in to the dashboard.
type User struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"`
	Role         string    `json:"role"`
	CreatedAt    time.Time `json:"created_at"`
}

// Session is a signed-in browser. The cookie holds a random id; only its hash is stored.
type Session struct {
	IDHash    string
	Username  string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Token is an environment-scoped integration token. Only the SHA-256 of the secret is stored.
type Token struct {
	ID          string     `json:"id"`
	Environment string     `json:"environment"`
	Name        string     `json:"name"`
	Hash        string     `json:"-"`
	Hint        string     `json:"hint"` // the first characters of the secret, to recognise it
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// CreateUser adds a user; ErrExists when the name is taken.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	if !ValidName(u.Name) {
		return errf(ErrInvalid, "user name %q is not valid: use letters, digits, - and _", u.Name)
	}
	if !ValidRole(u.Role) {
		return errf(ErrInvalid, "role %q is not valid: use viewer, deployer or admin", u.Role)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.Now()
	}
	res, err := s.exec(ctx, `INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		u.Name, u.PasswordHash, u.Role, micros(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("add user %s: %w", u.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errf(ErrExists, "user %s already exists", u.Name)
	}
	return nil
}

// UpdateUser changes a user's password hash and role. When either changes, the user's sessions
// end in the same transaction: a reset password must lock out whoever knew the old one, and a
// lowered role must not live on in an open dashboard.
func (s *Store) UpdateUser(ctx context.Context, u User) error {
	if !ValidRole(u.Role) {
		return errf(ErrInvalid, "role %q is not valid: use viewer, deployer or admin", u.Role)
	}
	return s.inTx(ctx, func(t *tx) error {
		var oldHash, oldRole string
		err := t.row(ctx, `SELECT password_hash, role FROM users WHERE name = ?`+s.forUpdate(), u.Name).Scan(&oldHash, &oldRole)
		if errors.Is(err, sql.ErrNoRows) {
			return errf(ErrNotFound, "user %s does not exist", u.Name)
		}
		if err != nil {
			return fmt.Errorf("read user %s: %w", u.Name, err)
		}
		if _, err := t.exec(ctx, `UPDATE users SET password_hash = ?, role = ? WHERE name = ?`, u.PasswordHash, u.Role, u.Name); err != nil {
			return fmt.Errorf("update user %s: %w", u.Name, err)
		}
		if oldHash == u.PasswordHash && oldRole == u.Role {
			return nil
		}
		if _, err := t.exec(ctx, `DELETE FROM sessions WHERE username = ?`, u.Name); err != nil {
			return fmt.Errorf("end the sessions of %s: %w", u.Name, err)
		}
		return nil
	})
}

// User reads one user.
func (s *Store) User(ctx context.Context, name string) (User, error) {
	var u User
	var created int64
	err := s.row(ctx, `SELECT name, password_hash, role, created_at FROM users WHERE name = ?`, name).Scan(&u.Name, &u.PasswordHash, &u.Role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errf(ErrNotFound, "user %s does not exist", name)
	}
	if err != nil {
		return u, fmt.Errorf("read user %s: %w", name, err)
	}
	u.CreatedAt = fromMicros(created)
	return u, nil
}

// Users lists all users by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	out, err := queryAll(ctx, s, func(r scanner) (User, error) {
		var u User
		var created int64
		err := r.Scan(&u.Name, &u.Role, &created)
		u.CreatedAt = fromMicros(created)
		return u, err
	}, `SELECT name, role, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// CountUsers says how many users exist (zero on a fresh server).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.row(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	_, err := s.exec(ctx, `INSERT INTO sessions (id_hash, username, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		se.IDHash, se.Username, se.CSRF, micros(se.CreatedAt), micros(se.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create session for %s: %w", se.Username, err)
	}
	return nil
}

// Session reads a session that has not expired, with its user.
func (s *Store) Session(ctx context.Context, idHash string) (Session, User, error) {
	var se Session
	var u User
	var created, expires, ucreated int64
	err := s.row(ctx, `SELECT s.id_hash, s.username, s.csrf, s.created_at, s.expires_at, u.name, u.role, u.created_at
		FROM sessions s JOIN users u ON u.name = s.username WHERE s.id_hash = ? AND s.expires_at > ?`, idHash, micros(s.Now())).
		Scan(&se.IDHash, &se.Username, &se.CSRF, &created, &expires, &u.Name, &u.Role, &ucreated)
	if errors.Is(err, sql.ErrNoRows) {
		return se, u, errf(ErrNotFound, "session expired or signed out")
	}
	if err != nil {
		return se, u, fmt.Errorf("read session: %w", err)
	}
	se.CreatedAt, se.ExpiresAt, u.CreatedAt = fromMicros(created), fromMicros(expires), fromMicros(ucreated)
	return se, u, nil
}

// DeleteSession signs a session out.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions past their expiry.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, micros(s.Now()))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return res.RowsAffected()
}

// CreateToken stores a token record (the caller hashes the secret).
func (s *Store) CreateToken(ctx context.Context, t Token) (Token, error) {
	if _, err := s.Environment(ctx, t.Environment); err != nil {
		return t, err
	}
	if t.ID == "" {
		t.ID = "tok_" + strings.ReplaceAll(newID(), "-", "")[20:]
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.Now()
	}
	_, err := s.exec(ctx, `INSERT INTO tokens (id, environment, name, hash, hint, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Environment, t.Name, t.Hash, t.Hint, t.CreatedBy, micros(t.CreatedAt))
	if err != nil {
		return t, fmt.Errorf("create token for %s: %w", t.Environment, err)
	}
	return t, nil
}

const tokenCols = `id, environment, name, hash, hint, created_by, created_at, last_used_at, revoked_at`

func scanToken(r scanner) (Token, error) {
	var t Token
	var created int64
	var used, revoked sql.NullInt64
	err := r.Scan(&t.ID, &t.Environment, &t.Name, &t.Hash, &t.Hint, &t.CreatedBy, &created, &used, &revoked)
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = fromMicros(created), timePtr(used), timePtr(revoked)
	return t, err
}

// TokenByHash finds a token that is not revoked by the hash of its secret.
func (s *Store) TokenByHash(ctx context.Context, hash string) (Token, error) {
	t, err := scanToken(s.row(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ? AND revoked_at IS NULL`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, errf(ErrNotFound, "token unknown or revoked")
	}
	if err != nil {
		return t, fmt.Errorf("read token: %w", err)
	}
	return t, nil
}

// Token reads a token by id (revoked ones too).
func (s *Store) Token(ctx context.Context, id string) (Token, error) {
	t, err := scanToken(s.row(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, errf(ErrNotFound, "token %s does not exist; `sagedeploy server token list` shows the ids", id)
	}
	if err != nil {
		return t, fmt.Errorf("read token %s: %w", id, err)
	}
	return t, nil
}

// Tokens lists tokens, newest first, revoked ones included.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	out, err := queryAll(ctx, s, scanToken, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken makes a token unusable from now on. Commands its agent took but never started go
// back to the queue in the same transaction (requeued lists them), so another agent runs them
// instead of their releases waiting for a report that can no longer come.
func (s *Store) RevokeToken(ctx context.Context, id string) (Token, error) {
	t, _, err := s.RevokeTokenRequeue(ctx, id)
	return t, err
}

// RevokeTokenRequeue is RevokeToken that also says which commands went back to the queue.
func (s *Store) RevokeTokenRequeue(ctx context.Context, id string) (tok Token, requeued []CommandRecord, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		tok, err = scanToken(t.row(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`+s.forUpdate(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errf(ErrNotFound, "token %s does not exist; `sagedeploy server token list` shows the ids", id)
		}
		if err != nil {
			return fmt.Errorf("read token %s: %w", id, err)
		}
		if tok.RevokedAt != nil {
			return errf(ErrConflict, "token %s (%s, environment %s) was already revoked", tok.ID, tok.Name, tok.Environment)
		}
		now := s.Now()
		if _, err := t.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, micros(now), id); err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
		tok.RevokedAt = &now
		why := fmt.Sprintf("Token %s of the agent that took the command was revoked before the release started; the command is back in the queue of environment %s", tok.Name, tok.Environment)
		requeued, err = t.requeueClaimedBy(ctx, id, why)
		return err
	})
	return tok, requeued, err
}

// tokenUsable refuses a token that was revoked (or deleted), inside a transaction.
func (t *tx) tokenUsable(ctx context.Context, id string) error {
	var revoked sql.NullInt64
	err := t.row(ctx, `SELECT revoked_at FROM tokens WHERE id = ?`, id).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked.Valid) {
		return releases.Errorf(releases.EUNAUTHORIZED, "the integration token was revoked: this agent can take no more commands; start it with a current token of its environment")
	}
	if err != nil {
		return fmt.Errorf("check token %s: %w", id, err)
	}
	return nil
}

// TouchToken records that a token was used.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, micros(at), id)
	return err
}

// AuditEntry is one line of the audit log: who did what, to what, with what outcome.
type AuditEntry struct {
	ID          int64     `json:"id"`
	Time        time.Time `json:"time"`
	Actor       string    `json:"actor"`
	Action      string    `json:"action"`
	Environment string    `json:"environment,omitempty"`
	Model       string    `json:"model,omitempty"`
	Target      string    `json:"target,omitempty"`
	Outcome     string    `json:"outcome"` // "ok", "denied", or the error
	Detail      string    `json:"detail,omitempty"`
	RemoteAddr  string    `json:"remote_addr,omitempty"`
}

// AddAudit appends to the audit log.
func (s *Store) AddAudit(ctx context.Context, a AuditEntry) error {
	if a.Time.IsZero() {
		a.Time = s.Now()
	}
	_, err := s.exec(ctx, `INSERT INTO audit_log (occurred_at, actor, action, environment, model, target, outcome, detail, remote_addr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		micros(a.Time), a.Actor, a.Action, a.Environment, a.Model, a.Target, a.Outcome, a.Detail, a.RemoteAddr)
	if err != nil {
		return fmt.Errorf("write audit log (%s by %s): %w", a.Action, a.Actor, err)
	}
	return nil
}

// Audit lists audit entries newest first; beforeID > 0 continues after a page.
func (s *Store) Audit(ctx context.Context, limit int, beforeID int64) ([]AuditEntry, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q := `SELECT id, occurred_at, actor, action, environment, model, target, outcome, detail, remote_addr FROM audit_log`
	args := []any{}
	if beforeID > 0 {
		q += ` WHERE id < ?`
		args = append(args, beforeID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	out, err := queryAll(ctx, s, scanAudit, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}

func scanAudit(r scanner) (AuditEntry, error) {
	var a AuditEntry
	var at int64
	err := r.Scan(&a.ID, &at, &a.Actor, &a.Action, &a.Environment, &a.Model, &a.Target, &a.Outcome, &a.Detail, &a.RemoteAddr)
	a.Time = fromMicros(at)
	return a, err
}
