package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migration is one step of the schema. Steps are applied in order, each in its own transaction,
// and recorded in schema_migrations so that opening an up-to-date database changes nothing.
// Statements use portable SQL; @AUTOID@ stands for the dialect's auto-increment primary key.
type migration struct {
	version int
	name    string
	stmts   []string
}

var migrations = []migration{
	{1, "initial schema", []string{
		`CREATE TABLE environments (
			name TEXT PRIMARY KEY,
			kind TEXT NOT NULL,
			region TEXT NOT NULL DEFAULT '',
			account TEXT NOT NULL DEFAULT '',
			endpoint_url TEXT NOT NULL DEFAULT '',
			requires_approval INTEGER NOT NULL DEFAULT 0,
			ordinal INTEGER NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL
		)`,
		`CREATE TABLE versions (
			model TEXT NOT NULL,
			number INTEGER NOT NULL,
			model_package_arn TEXT NOT NULL DEFAULT '',
			description TEXT NOT NULL DEFAULT '',
			pipeline_id TEXT NOT NULL DEFAULT '',
			project_id TEXT NOT NULL DEFAULT '',
			commit_sha TEXT NOT NULL DEFAULT '',
			first_seen_at BIGINT NOT NULL,
			PRIMARY KEY (model, number)
		)`,
		`CREATE TABLE components (
			environment TEXT NOT NULL,
			model TEXT NOT NULL,
			endpoint_name TEXT NOT NULL DEFAULT '',
			current_version INTEGER,
			instance_type TEXT NOT NULL DEFAULT '',
			instance_count INTEGER NOT NULL DEFAULT 0,
			endpoint_status TEXT NOT NULL DEFAULT '',
			restore_enabled INTEGER NOT NULL DEFAULT 1,
			scale_enabled INTEGER NOT NULL DEFAULT 1,
			last_release_id TEXT NOT NULL DEFAULT '',
			updated_at BIGINT NOT NULL,
			PRIMARY KEY (environment, model)
		)`,
		`CREATE TABLE served_versions (
			environment TEXT NOT NULL,
			model TEXT NOT NULL,
			number INTEGER NOT NULL,
			first_served_at BIGINT NOT NULL,
			last_served_at BIGINT NOT NULL,
			last_release_id TEXT NOT NULL DEFAULT '',
			PRIMARY KEY (environment, model, number)
		)`,
		`CREATE TABLE releases (
			id TEXT PRIMARY KEY,
			environment TEXT NOT NULL,
			model TEXT NOT NULL,
			kind TEXT NOT NULL,
			status TEXT NOT NULL,
			version_number INTEGER NOT NULL DEFAULT 0,
			version_json TEXT NOT NULL DEFAULT '',
			previous_version_json TEXT NOT NULL DEFAULT '',
			endpoint_name TEXT NOT NULL DEFAULT '',
			endpoint_config_name TEXT NOT NULL DEFAULT '',
			instance_type TEXT NOT NULL DEFAULT '',
			instance_count INTEGER NOT NULL DEFAULT 0,
			trigger_type TEXT NOT NULL DEFAULT '',
			trigger_user TEXT NOT NULL DEFAULT '',
			trigger_pipeline_id TEXT NOT NULL DEFAULT '',
			trigger_project_id TEXT NOT NULL DEFAULT '',
			failure_reason TEXT NOT NULL DEFAULT '',
			needs_approval INTEGER NOT NULL DEFAULT 0,
			approved_by TEXT NOT NULL DEFAULT '',
			rejected_by TEXT NOT NULL DEFAULT '',
			command_id TEXT NOT NULL DEFAULT '',
			event_seq INTEGER NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL,
			started_at BIGINT,
			finished_at BIGINT,
			updated_at BIGINT NOT NULL
		)`,
		// The dashboard lists releases newest first, optionally by environment and/or model, with
		// keyset pagination on (created_at, id): each filter has an index ending in those columns.
		`CREATE INDEX releases_created ON releases (created_at, id)`,
		`CREATE INDEX releases_env_created ON releases (environment, created_at, id)`,
		`CREATE INDEX releases_model_created ON releases (model, created_at, id)`,
		`CREATE INDEX releases_env_model_created ON releases (environment, model, created_at, id)`,
		`CREATE INDEX releases_status_created ON releases (status, created_at, id)`,
		`CREATE TABLE release_events (
			release_id TEXT NOT NULL,
			seq INTEGER NOT NULL,
			occurred_at BIGINT NOT NULL,
			phase TEXT NOT NULL DEFAULT '',
			message TEXT NOT NULL DEFAULT '',
			endpoint_status TEXT NOT NULL DEFAULT '',
			PRIMARY KEY (release_id, seq)
		)`,
		`CREATE TABLE commands (
			id TEXT PRIMARY KEY,
			kind TEXT NOT NULL,
			environment TEXT NOT NULL,
			model TEXT NOT NULL,
			version INTEGER NOT NULL DEFAULT 0,
			instances INTEGER NOT NULL DEFAULT 0,
			from_environment TEXT NOT NULL DEFAULT '',
			release_id TEXT NOT NULL,
			requested_by TEXT NOT NULL DEFAULT '',
			state TEXT NOT NULL,
			message TEXT NOT NULL DEFAULT '',
			note TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			queued_at BIGINT,
			dispatched_at BIGINT,
			finished_at BIGINT
		)`,
		`CREATE INDEX commands_env_state ON commands (environment, state, queued_at)`,
		`CREATE INDEX commands_release ON commands (release_id)`,
		`CREATE TABLE tokens (
			id TEXT PRIMARY KEY,
			environment TEXT NOT NULL,
			name TEXT NOT NULL DEFAULT '',
			hash TEXT NOT NULL UNIQUE,
			hint TEXT NOT NULL DEFAULT '',
			created_by TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			last_used_at BIGINT,
			revoked_at BIGINT
		)`,
		`CREATE TABLE users (
			name TEXT PRIMARY KEY,
			password_hash TEXT NOT NULL,
			role TEXT NOT NULL,
			created_at BIGINT NOT NULL
		)`,
		`CREATE TABLE sessions (
			id_hash TEXT PRIMARY KEY,
			username TEXT NOT NULL,
			csrf TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL
		)`,
		`CREATE INDEX sessions_expires ON sessions (expires_at)`,
		`CREATE TABLE audit_log (
			id @AUTOID@,
			occurred_at BIGINT NOT NULL,
			actor TEXT NOT NULL DEFAULT '',
			action TEXT NOT NULL,
			environment TEXT NOT NULL DEFAULT '',
			model TEXT NOT NULL DEFAULT '',
			target TEXT NOT NULL DEFAULT '',
			outcome TEXT NOT NULL DEFAULT '',
			detail TEXT NOT NULL DEFAULT '',
			remote_addr TEXT NOT NULL DEFAULT ''
		)`,
	}},
	{2, "index unfinished releases per component", []string{
		// "Is a release of this component in progress?" (component page, new commands) must not
		// walk the component's whole history.
		`CREATE INDEX releases_env_model_status ON releases (environment, model, status, created_at)`,
	}},
	{3, "typed failure reason of finished releases", []string{
		`ALTER TABLE releases ADD COLUMN reason TEXT NOT NULL DEFAULT ''`,
		// Gate decisions and cancels left their mark before the column existed; failures did not
		// say whose they were, so they stay without a reason. Literals, not Go constants: a
		// migration means the same forever.
		`UPDATE releases SET reason = 'rejected' WHERE status = 'canceled' AND rejected_by <> ''`,
		`UPDATE releases SET reason = 'canceled' WHERE status = 'canceled' AND rejected_by = ''`,
	}},
	{4, "four eyes at the gate; which token took a command", []string{
		// Off by default, so every gate refuses the requester's own approval until an admin allows it.
		`ALTER TABLE environments ADD COLUMN allow_self_approval INTEGER NOT NULL DEFAULT 0`,
		// A command handed to a token that is revoked before its agent started the release goes back
		// to the queue: the claim must say which token took it.
		`ALTER TABLE commands ADD COLUMN claimed_by_token TEXT NOT NULL DEFAULT ''`,
	}},
	{5, "webhooks and their delivery outbox", webhookSchema},
	{6, "observed endpoints (drift) and their metrics", []string{
		// One row per component: the agent's latest look at its endpoint, the drift found then
		// (empty: none), and the state a user adopted from an observation.
		`CREATE TABLE component_observations (
			environment TEXT NOT NULL,
			model TEXT NOT NULL,
			observed_json TEXT NOT NULL,
			observed_at BIGINT NOT NULL,
			drift_json TEXT NOT NULL DEFAULT '',
			drift_since BIGINT,
			adopted_config TEXT NOT NULL DEFAULT '',
			adopted_at BIGINT,
			PRIMARY KEY (environment, model)
		)`,
		// CloudWatch points as the agent read them, one per metric and period start.
		`CREATE TABLE metric_points (
			environment TEXT NOT NULL,
			model TEXT NOT NULL,
			metric TEXT NOT NULL,
			at BIGINT NOT NULL,
			value DOUBLE PRECISION NOT NULL,
			PRIMARY KEY (environment, model, metric, at)
		)`,
	}},
	{7, "when SageMaker last changed the endpoint a component's state was seen at", []string{
		// Two deployers' final reports can arrive out of order; the one that saw the endpoint later
		// (by SageMaker's own LastModifiedTime) says what serves.
		`ALTER TABLE components ADD COLUMN endpoint_modified_at BIGINT`,
	}},
}

// SchemaVersion is the newest migration this build knows.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrationLock is the Postgres advisory lock key that serializes schema changes of servers
// sharing one database.
const migrationLock = 4571001

// migrate brings the schema up to date on one connection. On Postgres that connection first
// takes the advisory lock, before any DDL: even CREATE TABLE IF NOT EXISTS races in Postgres'
// catalog when two servers run it at once on an empty database.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s for migrations: %w", s.where, err)
	}
	defer conn.Close()
	if s.dialect == postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("take the migration lock on %s: %w", s.where, err)
		}
		// The lock belongs to the session; release it before the connection returns to the pool.
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}
	create := `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("prepare schema_migrations in %s: %w", s.where, err)
	}
	for _, m := range migrations {
		if err := s.apply(ctx, conn, m); err != nil {
			return fmt.Errorf("apply migration %d (%s) to %s: %w", m.version, m.name, s.where, err)
		}
	}
	var newest int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if newest > SchemaVersion() {
		return fmt.Errorf("database %s has schema version %d, newer than this sagedeploy knows (%d): upgrade sagedeploy", s.where, newest, SchemaVersion())
	}
	return nil
}

// apply runs migration m in one transaction on conn unless it is recorded as applied.
func (s *Store) apply(ctx context.Context, conn *sql.Conn, m migration) error {
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t := &tx{s: s, tx: sqlTx}
	err = func() error {
		var n int
		if err := t.row(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil || n > 0 {
			return err
		}
		for _, stmt := range m.stmts {
			if _, err := t.exec(ctx, s.ddl(stmt)); err != nil {
				return fmt.Errorf("%w in: %s", err, firstLine(stmt))
			}
		}
		_, err := t.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, micros(s.Now()))
		return err
	}()
	if err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	return sqlTx.Commit()
}

func (s *Store) ddl(stmt string) string {
	auto := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.dialect == postgres {
		auto = "BIGSERIAL PRIMARY KEY"
	}
	return strings.ReplaceAll(stmt, "@AUTOID@", auto)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// AppliedMigrations lists the schema versions recorded in the database, oldest first.
func (s *Store) AppliedMigrations(ctx context.Context) ([]int, error) {
	out, err := queryAll(ctx, s, func(r scanner) (int, error) {
		var v int
		err := r.Scan(&v)
		return v, err
	}, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	return out, nil
}
