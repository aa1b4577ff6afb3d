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

// ComponentView is a component as the dashboard shows it: with the status of its last release.
type ComponentView struct {
	releases.Component
	LastReleaseStatus releases.Status `json:"last_release_status,omitempty"`
	LastReleaseKind   releases.Kind   `json:"last_release_kind,omitempty"`
}

// ServedVersion is a version a component has served, with when.
type ServedVersion struct {
	releases.Version
	FirstServedAt time.Time `json:"first_served_at"`
	LastServedAt  time.Time `json:"last_served_at"`
	LastReleaseID string    `json:"last_release_id,omitempty"`
	Current       bool      `json:"current"`
}

type componentRow struct {
	env, model, endpoint, instanceType, status, lastRelease string
	current                                                 sql.NullInt64
	// modifiedAt is SageMaker's LastModifiedTime of the endpoint as the release that set this
	// state saw it (micros); a finish that saw an older endpoint does not overwrite it.
	modifiedAt     sql.NullInt64
	count          int
	restore, scale bool
}

func (t *tx) component(ctx context.Context, env, model string) (componentRow, bool, error) {
	var c componentRow
	var restore, scale int
	err := t.row(ctx, `SELECT environment, model, endpoint_name, current_version, instance_type, instance_count, endpoint_status,
		restore_enabled, scale_enabled, last_release_id, endpoint_modified_at FROM components WHERE environment = ? AND model = ?`+t.s.forUpdate(), env, model).
		Scan(&c.env, &c.model, &c.endpoint, &c.current, &c.instanceType, &c.count, &c.status, &restore, &scale, &c.lastRelease, &c.modifiedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return componentRow{env: env, model: model, restore: true, scale: true}, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read component %s in %s: %w", model, env, err)
	}
	c.restore, c.scale = restore != 0, scale != 0
	return c, true, nil
}

func (t *tx) putComponent(ctx context.Context, c componentRow, now time.Time) error {
	_, err := t.exec(ctx, `INSERT INTO components (environment, model, endpoint_name, current_version, instance_type, instance_count,
			endpoint_status, restore_enabled, scale_enabled, last_release_id, updated_at, endpoint_modified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (environment, model) DO UPDATE SET endpoint_name = excluded.endpoint_name,
			current_version = excluded.current_version, instance_type = excluded.instance_type,
			instance_count = excluded.instance_count, endpoint_status = excluded.endpoint_status,
			restore_enabled = excluded.restore_enabled, scale_enabled = excluded.scale_enabled,
			last_release_id = excluded.last_release_id, updated_at = excluded.updated_at,
			endpoint_modified_at = excluded.endpoint_modified_at`,
		c.env, c.model, c.endpoint, c.current, c.instanceType, c.count, c.status, b2i(c.restore), b2i(c.scale), c.lastRelease, micros(now), c.modifiedAt)
	if err != nil {
		return fmt.Errorf("save component %s in %s: %w", c.model, c.env, err)
	}
	return nil
}

// componentStarted notes a running release on its component, creating the component on the first
// release of a model into an environment.
func (t *tx) componentStarted(ctx context.Context, r ReleaseRecord, restore, scale *bool, now time.Time) error {
	c, _, err := t.component(ctx, r.Environment, r.Model)
	if err != nil {
		return err
	}
	c.endpoint = cmp.Or(r.EndpointName, c.endpoint)
	if c.endpoint == "" {
		c.endpoint = r.Model + "-" + r.Environment
	}
	if c.instanceType == "" {
		c.instanceType = r.InstanceType
	}
	if restore != nil {
		c.restore = *restore
	}
	if scale != nil {
		c.scale = *scale
	}
	c.lastRelease = r.ID
	return t.putComponent(ctx, c, now)
}

// componentFinished applies a release's outcome to its component: what it serves, its endpoint's
// status and its instances.
func (t *tx) componentFinished(ctx context.Context, r ReleaseRecord, f releases.ReleaseFinish, now time.Time) error {
	if r.StartedAt == nil {
		// A release that never started (rejected, canceled, or failed before any work) changed
		// nothing on the endpoint.
		return nil
	}
	c, _, err := t.component(ctx, r.Environment, r.Model)
	if err != nil {
		return err
	}
	if f.EndpointModifiedAt != nil {
		seen := micros(*f.EndpointModifiedAt)
		if c.modifiedAt.Valid && seen < c.modifiedAt.Int64 {
			// This report arrived after that of a release which saw a later change of the endpoint
			// (reports travel out of order): what it saw serves no more.
			return nil
		}
		c.modifiedAt = sql.NullInt64{Int64: seen, Valid: true}
	}
	serving := f.ServingVersion
	if serving == nil && f.Status == releases.StatusSucceeded && r.Kind != releases.KindScale && r.Version.Number > 0 {
		v := r.Version
		serving = &v
	}
	previous := c.current
	if serving != nil && serving.Number > 0 {
		c.current = sql.NullInt64{Int64: int64(serving.Number), Valid: true}
		if err := t.upsertVersion(ctx, r.Model, *serving, now); err != nil {
			return err
		}
		changed := !previous.Valid || previous.Int64 != int64(serving.Number)
		if f.Status == releases.StatusSucceeded || changed {
			if _, err := t.exec(ctx, `INSERT INTO served_versions (environment, model, number, first_served_at, last_served_at, last_release_id)
				VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (environment, model, number) DO UPDATE SET last_served_at = excluded.last_served_at, last_release_id = excluded.last_release_id`,
				r.Environment, r.Model, serving.Number, micros(now), micros(now), r.ID); err != nil {
				return fmt.Errorf("record version %d served by %s in %s: %w", serving.Number, r.Model, r.Environment, err)
			}
		}
	}
	switch {
	case f.EndpointStatus != "":
		c.status = f.EndpointStatus
	case f.Status == releases.StatusSucceeded:
		c.status = "InService"
	}
	switch {
	case f.InstanceType != "":
		c.instanceType = f.InstanceType
	case f.Status == releases.StatusSucceeded && r.InstanceType != "":
		c.instanceType = r.InstanceType
	}
	switch {
	case f.InstanceCount > 0:
		c.count = f.InstanceCount
	case f.Status == releases.StatusSucceeded && r.InstanceCount > 0:
		c.count = r.InstanceCount
	}
	c.endpoint = cmp.Or(c.endpoint, r.EndpointName, r.Model+"-"+r.Environment)
	c.lastRelease = r.ID
	return t.putComponent(ctx, c, now)
}

// upsertVersion records a model's version, keeping known fields that a later report leaves empty.
func (t *tx) upsertVersion(ctx context.Context, model string, v releases.Version, now time.Time) error {
	if v.Number <= 0 {
		return nil
	}
	_, err := t.exec(ctx, `INSERT INTO versions (model, number, model_package_arn, description, pipeline_id, project_id, commit_sha, first_seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (model, number) DO UPDATE SET
			model_package_arn = CASE WHEN excluded.model_package_arn <> '' THEN excluded.model_package_arn ELSE versions.model_package_arn END,
			description = CASE WHEN excluded.description <> '' THEN excluded.description ELSE versions.description END,
			pipeline_id = CASE WHEN excluded.pipeline_id <> '' THEN excluded.pipeline_id ELSE versions.pipeline_id END,
			project_id = CASE WHEN excluded.project_id <> '' THEN excluded.project_id ELSE versions.project_id END,
			commit_sha = CASE WHEN excluded.commit_sha <> '' THEN excluded.commit_sha ELSE versions.commit_sha END`,
		model, v.Number, v.ModelPackageARN, v.Description, v.PipelineID, v.ProjectID, v.Commit, micros(now))
	if err != nil {
		return fmt.Errorf("record version %d of %s: %w", v.Number, model, err)
	}
	return nil
}

const componentSelect = `SELECT c.environment, c.model, c.endpoint_name, c.current_version, c.instance_type, c.instance_count,
	c.endpoint_status, c.restore_enabled, c.scale_enabled, c.last_release_id, c.updated_at,
	e.kind, e.region, e.endpoint_url,
	COALESCE(v.model_package_arn, ''), COALESCE(v.description, ''), COALESCE(v.pipeline_id, ''), COALESCE(v.project_id, ''), COALESCE(v.commit_sha, ''),
	COALESCE(r.status, ''), COALESCE(r.kind, '')
	FROM components c
	JOIN environments e ON e.name = c.environment
	LEFT JOIN versions v ON v.model = c.model AND v.number = c.current_version
	LEFT JOIN releases r ON r.id = c.last_release_id`

func scanComponent(r scanner) (ComponentView, error) {
	var c ComponentView
	var current sql.NullInt64
	var restore, scale int
	var updated int64
	var env releases.Environment
	var v releases.Version
	var status, kind string
	err := r.Scan(&c.Environment, &c.Model, &c.EndpointName, &current, &c.InstanceType, &c.InstanceCount,
		&c.EndpointStatus, &restore, &scale, &c.LastReleaseID, &updated, &env.Kind, &env.Region, &env.EndpointURL,
		&v.ModelPackageARN, &v.Description, &v.PipelineID, &v.ProjectID, &v.Commit, &status, &kind)
	if err != nil {
		return c, err
	}
	if current.Valid {
		v.Number = int(current.Int64)
		c.CurrentVersion = &v
	}
	c.RestoreEnabled, c.ScaleEnabled = restore != 0, scale != 0
	c.UpdatedAt = fromMicros(updated)
	env.Name = c.Environment
	c.ConsoleURL = ConsoleURL(env, c.EndpointName)
	c.LastReleaseStatus, c.LastReleaseKind = releases.Status(status), releases.Kind(kind)
	return c, nil
}

// ComponentSummary is a component as the overview shows it, with the outcome of its last
// release (so that a failed one needs no read of its own).
type ComponentSummary struct {
	Environment, Model string
	EndpointName       string
	CurrentVersion     int // 0 when it serves nothing
	InstanceType       string
	InstanceCount      int
	EndpointStatus     string
	UpdatedAt          time.Time
	LastReleaseID      string
	LastReleaseStatus  releases.Status
	LastReleaseKind    releases.Kind
	LastReleaseVersion int
	LastReleaseFailure string
}

// ComponentSummaries lists every component with its last release's outcome, in no particular
// order. The query is driven by the components table and joins the last release by its primary
// key, so its cost follows the number of components whatever the length of the history.
func (s *Store) ComponentSummaries(ctx context.Context) ([]ComponentSummary, error) {
	out, err := queryAll(ctx, s, func(r scanner) (ComponentSummary, error) {
		var c ComponentSummary
		var updated int64
		err := r.Scan(&c.Environment, &c.Model, &c.EndpointName, &c.CurrentVersion, &c.InstanceType, &c.InstanceCount,
			&c.EndpointStatus, &updated, &c.LastReleaseID, &c.LastReleaseStatus, &c.LastReleaseKind, &c.LastReleaseVersion, &c.LastReleaseFailure)
		c.UpdatedAt = fromMicros(updated)
		return c, err
	}, componentSummaryQuery)
	if err != nil {
		return nil, fmt.Errorf("list components for the overview: %w", err)
	}
	return out, nil
}

const componentSummaryQuery = `SELECT c.environment, c.model, c.endpoint_name, COALESCE(c.current_version, 0), c.instance_type,
	c.instance_count, c.endpoint_status, c.updated_at, c.last_release_id,
	COALESCE(r.status, ''), COALESCE(r.kind, ''), COALESCE(r.version_number, 0), COALESCE(r.failure_reason, '')
	FROM components c LEFT JOIN releases r ON r.id = c.last_release_id`

// Components lists all components, by environment order then model.
func (s *Store) Components(ctx context.Context) ([]ComponentView, error) {
	out, err := queryAll(ctx, s, scanComponent, componentSelect+` ORDER BY e.ordinal, c.environment, c.model`)
	if err != nil {
		return nil, fmt.Errorf("list components: %w", err)
	}
	return out, nil
}

// Component reads one component.
func (s *Store) Component(ctx context.Context, env, model string) (ComponentView, error) {
	c, err := scanComponent(s.row(ctx, componentSelect+` WHERE c.environment = ? AND c.model = ?`, env, model))
	if errors.Is(err, sql.ErrNoRows) {
		if _, eerr := s.Environment(ctx, env); eerr != nil {
			return c, eerr
		}
		return c, errf(ErrNotFound, "model %s has no component in environment %s: nothing has been deployed there yet (deploy it with `sagedeploy deploy --model %s --environment %s`)", model, env, model, env)
	}
	if err != nil {
		return c, fmt.Errorf("read component %s in %s: %w", model, env, err)
	}
	return c, nil
}

// ServedVersions lists the versions a component has served, most recently served first.
func (s *Store) ServedVersions(ctx context.Context, env, model string) ([]ServedVersion, error) {
	out, err := queryAll(ctx, s, scanServed, `SELECT sv.number, sv.first_served_at, sv.last_served_at, sv.last_release_id,
		COALESCE(v.model_package_arn, ''), COALESCE(v.description, ''), COALESCE(v.pipeline_id, ''), COALESCE(v.project_id, ''), COALESCE(v.commit_sha, ''),
		CASE WHEN c.current_version = sv.number THEN 1 ELSE 0 END
		FROM served_versions sv
		LEFT JOIN versions v ON v.model = sv.model AND v.number = sv.number
		LEFT JOIN components c ON c.environment = sv.environment AND c.model = sv.model
		WHERE sv.environment = ? AND sv.model = ?
		ORDER BY sv.last_served_at DESC, sv.number DESC`, env, model)
	if err != nil {
		return nil, fmt.Errorf("read version history of %s in %s: %w", model, env, err)
	}
	return out, nil
}

func scanServed(r scanner) (ServedVersion, error) {
	var sv ServedVersion
	var first, last int64
	var current int
	err := r.Scan(&sv.Number, &first, &last, &sv.LastReleaseID, &sv.ModelPackageARN, &sv.Description,
		&sv.PipelineID, &sv.ProjectID, &sv.Commit, &current)
	sv.FirstServedAt, sv.LastServedAt, sv.Current = fromMicros(first), fromMicros(last), current != 0
	return sv, err
}

// PreviousVersion is what a rollback restores: the most recently served version other than the
// current one. ErrNotFound when the component has served only one version.
func (s *Store) PreviousVersion(ctx context.Context, env, model string) (ServedVersion, error) {
	hist, err := s.ServedVersions(ctx, env, model)
	if err != nil {
		return ServedVersion{}, err
	}
	for _, sv := range hist {
		if !sv.Current {
			return sv, nil
		}
	}
	return ServedVersion{}, errf(ErrNotFound, "model %s in environment %s has no earlier version to roll back to: it has served only %s", model, env, servedList(hist))
}

func servedList(h []ServedVersion) string {
	switch len(h) {
	case 0:
		return "no version yet"
	case 1:
		return fmt.Sprintf("version %d", h[0].Number)
	}
	return fmt.Sprintf("%d versions", len(h))
}

// Version reads one known version of a model.
func (s *Store) Version(ctx context.Context, model string, number int) (releases.Version, error) {
	var v releases.Version
	err := s.row(ctx, `SELECT number, model_package_arn, description, pipeline_id, project_id, commit_sha FROM versions WHERE model = ? AND number = ?`, model, number).
		Scan(&v.Number, &v.ModelPackageARN, &v.Description, &v.PipelineID, &v.ProjectID, &v.Commit)
	if errors.Is(err, sql.ErrNoRows) {
		known, _ := s.Versions(ctx, model)
		list := "none"
		if len(known) > 0 {
			list = ""
			for i, k := range known {
				if i > 0 {
					list += ", "
				}
				list += fmt.Sprint(k.Number)
			}
		}
		return v, errf(ErrNotFound, "version %d of model %s is unknown to the release server (known versions: %s); register and deploy it first", number, model, list)
	}
	if err != nil {
		return v, fmt.Errorf("read version %d of %s: %w", number, model, err)
	}
	return v, nil
}

// Versions lists a model's known versions, newest first.
func (s *Store) Versions(ctx context.Context, model string) ([]releases.Version, error) {
	out, err := queryAll(ctx, s, func(r scanner) (releases.Version, error) {
		var v releases.Version
		err := r.Scan(&v.Number, &v.ModelPackageARN, &v.Description, &v.PipelineID, &v.ProjectID, &v.Commit)
		return v, err
	}, `SELECT number, model_package_arn, description, pipeline_id, project_id, commit_sha FROM versions WHERE model = ? ORDER BY number DESC`, model)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", model, err)
	}
	return out, nil
}

// Models lists the models that have a component somewhere.
func (s *Store) Models(ctx context.Context) ([]string, error) {
	out, err := queryAll(ctx, s, scanString, `SELECT DISTINCT model FROM components ORDER BY model`)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	return out, nil
}
