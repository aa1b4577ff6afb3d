package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// ObservationResult is what recording an observation found.
type ObservationResult struct {
	Drift *releases.Drift // nil: the endpoint serves what sagedeploy recorded
	// New is set when this observation started a drift (the component was in sync before), so
	// that the server announces each drift once.
	New bool
}

// RecordObservation keeps an agent's look at a component's endpoint and compares it with what
// sagedeploy recorded. A component with a release in progress is not compared: its endpoint is
// meant to be changing.
func (s *Store) RecordObservation(ctx context.Context, o releases.Observation) (ObservationResult, error) {
	var res ObservationResult
	o.ObservedAt = s.Now()
	err := s.inTx(ctx, func(t *tx) error {
		c, ok, err := t.component(ctx, o.Environment, o.Model)
		if err != nil {
			return err
		}
		if !ok {
			return errf(ErrNotFound, "no component %s in environment %s: sagedeploy has recorded no release of it, so there is nothing to compare its endpoint with", o.Model, o.Environment)
		}
		prev, err := t.observationRow(ctx, o.Environment, o.Model)
		if err != nil {
			return err
		}
		busy, err := t.releaseInProgress(ctx, o.Environment, o.Model)
		if err != nil {
			return err
		}
		var diffs []releases.Difference
		if !busy {
			rec, err := t.recorded(ctx, c, prev)
			if err != nil {
				return err
			}
			diffs = releases.Compare(rec, o)
		}
		res = driftOf(o, diffs, prev)
		return t.putObservation(ctx, o, res.Drift, prev)
	})
	if err != nil {
		return res, fmt.Errorf("record observation of %s in %s: %w", o.Model, o.Environment, err)
	}
	return res, nil
}

func driftOf(o releases.Observation, diffs []releases.Difference, prev observationRow) ObservationResult {
	if len(diffs) == 0 {
		return ObservationResult{}
	}
	d := &releases.Drift{Environment: o.Environment, Model: o.Model, Differences: diffs, Observed: o, Since: o.ObservedAt}
	if prev.drift != nil {
		d.Since = prev.drift.Since
	}
	return ObservationResult{Drift: d, New: prev.drift == nil}
}

type observationRow struct {
	exists        bool
	observed      releases.Observation
	drift         *releases.Drift
	adoptedConfig string
	adoptedAt     *time.Time
}

func (t *tx) observationRow(ctx context.Context, env, model string) (observationRow, error) {
	return scanObservation(t.row(ctx, `SELECT observed_json, drift_json, adopted_config, adopted_at FROM component_observations
		WHERE environment = ? AND model = ?`, env, model))
}

func scanObservation(r scanner) (observationRow, error) {
	var o observationRow
	var obs, drift string
	var adopted sql.NullInt64
	err := r.Scan(&obs, &drift, &o.adoptedConfig, &adopted)
	if errors.Is(err, sql.ErrNoRows) {
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("read observation: %w", err)
	}
	o.exists, o.adoptedAt = true, timePtr(adopted)
	if err := json.Unmarshal([]byte(obs), &o.observed); err != nil {
		return o, fmt.Errorf("decode observation: %w", err)
	}
	if drift != "" {
		o.drift = &releases.Drift{}
		if err := json.Unmarshal([]byte(drift), o.drift); err != nil {
			return o, fmt.Errorf("decode drift: %w", err)
		}
	}
	return o, nil
}

func (t *tx) putObservation(ctx context.Context, o releases.Observation, d *releases.Drift, prev observationRow) error {
	obs, err := json.Marshal(o)
	if err != nil {
		return err
	}
	drift, since := "", any(nil)
	if d != nil {
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		drift, since = string(b), micros(d.Since)
	}
	_, err = t.exec(ctx, `INSERT INTO component_observations (environment, model, observed_json, observed_at, drift_json, drift_since, adopted_config, adopted_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (environment, model) DO UPDATE SET observed_json = excluded.observed_json, observed_at = excluded.observed_at,
			drift_json = excluded.drift_json, drift_since = excluded.drift_since, adopted_config = excluded.adopted_config,
			adopted_at = excluded.adopted_at`,
		o.Environment, o.Model, string(obs), micros(o.ObservedAt), drift, since, prev.adoptedConfig, nullMicros(prev.adoptedAt))
	return err
}

func (t *tx) releaseInProgress(ctx context.Context, env, model string) (bool, error) {
	var n int
	err := t.row(ctx, `SELECT COUNT(*) FROM releases WHERE environment = ? AND model = ? AND status = ?`, env, model, string(releases.StatusRunning)).Scan(&n)
	return n > 0, err
}

// recorded is what sagedeploy believes the component serves. Its configuration is the one of
// the last successful release, or the one a user adopted after it.
func (t *tx) recorded(ctx context.Context, c componentRow, prev observationRow) (releases.Recorded, error) {
	rec := releases.Recorded{Version: int(c.current.Int64), InstanceType: c.instanceType, InstanceCount: c.count, EndpointStatus: c.status}
	var cfg string
	var finished sql.NullInt64
	err := t.row(ctx, `SELECT endpoint_config_name, finished_at FROM releases WHERE environment = ? AND model = ? AND status = ?
		ORDER BY finished_at DESC LIMIT 1`, c.env, c.model, string(releases.StatusSucceeded)).Scan(&cfg, &finished)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return rec, fmt.Errorf("read the last release of %s in %s: %w", c.model, c.env, err)
	}
	rec.EndpointConfigName = cfg
	if prev.adoptedAt != nil && (!finished.Valid || micros(*prev.adoptedAt) > finished.Int64) {
		rec.EndpointConfigName = prev.adoptedConfig
	}
	return rec, nil
}

// Drifts lists the components whose endpoints were changed outside sagedeploy.
func (s *Store) Drifts(ctx context.Context) ([]releases.Drift, error) {
	rows, err := queryAll(ctx, s, scanObservation, `SELECT observed_json, drift_json, adopted_config, adopted_at FROM component_observations
		WHERE drift_json <> '' ORDER BY environment, model`)
	if err != nil {
		return nil, fmt.Errorf("list drifted components: %w", err)
	}
	out := []releases.Drift{}
	for _, r := range rows {
		if r.drift != nil {
			out = append(out, *r.drift)
		}
	}
	return out, nil
}

// Observation is the latest observation of a component (nil when none) and its drift (nil when
// in sync).
func (s *Store) Observation(ctx context.Context, env, model string) (*releases.Observation, *releases.Drift, error) {
	r, err := scanObservation(s.row(ctx, `SELECT observed_json, drift_json, adopted_config, adopted_at FROM component_observations
		WHERE environment = ? AND model = ?`, env, model))
	if err != nil || !r.exists {
		return nil, nil, err
	}
	return &r.observed, r.drift, nil
}

// AdoptObservation makes what the endpoint was observed serving the recorded state of the
// component — its version, configuration, instances and status — and ends the drift.
func (s *Store) AdoptObservation(ctx context.Context, env, model string) (releases.Observation, error) {
	var o releases.Observation
	err := s.inTx(ctx, func(t *tx) error {
		prev, err := t.observationRow(ctx, env, model)
		if err != nil {
			return err
		}
		if prev.drift == nil {
			return errf(ErrConflict, "%s in %s serves what sagedeploy recorded: there is no observed change to adopt", model, env)
		}
		o = prev.drift.Observed
		if o.Missing {
			return errf(ErrConflict, "the endpoint of %s in %s was deleted: there is nothing to adopt; redeploy the recorded version instead", model, env)
		}
		now := s.Now()
		if err := t.adoptIntoComponent(ctx, o, now); err != nil {
			return err
		}
		prev.adoptedConfig, prev.adoptedAt = o.EndpointConfigName, &now
		return t.putObservation(ctx, prev.observed, nil, prev)
	})
	if err != nil {
		return o, fmt.Errorf("adopt the observed state of %s in %s: %w", model, env, err)
	}
	return o, nil
}

func (t *tx) adoptIntoComponent(ctx context.Context, o releases.Observation, now time.Time) error {
	c, _, err := t.component(ctx, o.Environment, o.Model)
	if err != nil {
		return err
	}
	if o.Version > 0 && (!c.current.Valid || c.current.Int64 != int64(o.Version)) {
		c.current = sql.NullInt64{Int64: int64(o.Version), Valid: true}
		if err := t.upsertVersion(ctx, o.Model, releases.Version{Number: o.Version}, now); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO served_versions (environment, model, number, first_served_at, last_served_at, last_release_id)
			VALUES (?, ?, ?, ?, ?, '')
			ON CONFLICT (environment, model, number) DO UPDATE SET last_served_at = excluded.last_served_at`,
			o.Environment, o.Model, o.Version, micros(now), micros(now)); err != nil {
			return err
		}
	}
	if o.InstanceType != "" {
		c.instanceType = o.InstanceType
	}
	c.count = o.InstanceCount
	if o.EndpointStatus != "" {
		c.status = o.EndpointStatus
	}
	return t.putComponent(ctx, c, now)
}

// AddMetricPoints keeps the points an agent read for a component (a point read again replaces
// the earlier value) and forgets points older than keep.
func (s *Store) AddMetricPoints(ctx context.Context, env, model string, points []releases.MetricPoint, keep time.Duration) error {
	err := s.inTx(ctx, func(t *tx) error {
		for _, p := range points {
			if _, err := t.exec(ctx, `INSERT INTO metric_points (environment, model, metric, at, value) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (environment, model, metric, at) DO UPDATE SET value = excluded.value`,
				env, model, p.Metric, micros(p.Time), p.Value); err != nil {
				return err
			}
		}
		_, err := t.exec(ctx, `DELETE FROM metric_points WHERE environment = ? AND model = ? AND at < ?`, env, model, micros(s.Now().Add(-keep)))
		return err
	})
	if err != nil {
		return fmt.Errorf("save metrics of %s in %s: %w", model, env, err)
	}
	return nil
}

// MetricPoints lists a component's points since a time, oldest first.
func (s *Store) MetricPoints(ctx context.Context, env, model string, since time.Time) ([]releases.MetricPoint, error) {
	out, err := queryAll(ctx, s, func(r scanner) (releases.MetricPoint, error) {
		var p releases.MetricPoint
		var at int64
		err := r.Scan(&p.Metric, &at, &p.Value)
		p.Time = fromMicros(at)
		return p, err
	}, `SELECT metric, at, value FROM metric_points WHERE environment = ? AND model = ? AND at >= ? ORDER BY at, metric`, env, model, micros(since))
	if err != nil {
		return nil, fmt.Errorf("read metrics of %s in %s: %w", model, env, err)
	}
	return out, nil
}

// InvocationSpan is what the metrics say about a component's traffic: the first Invocations
// point kept (zero when none) and the last period with at least one invocation (zero when none).
func (s *Store) InvocationSpan(ctx context.Context, env, model string) (first, lastUsed time.Time, err error) {
	var lo, hi sql.NullInt64
	err = s.row(ctx, `SELECT MIN(at), MAX(CASE WHEN value > 0 THEN at END) FROM metric_points
		WHERE environment = ? AND model = ? AND metric = ?`, env, model, releases.MetricInvocations).Scan(&lo, &hi)
	if err != nil {
		return first, lastUsed, fmt.Errorf("read invocations of %s in %s: %w", model, env, err)
	}
	if lo.Valid {
		first = fromMicros(lo.Int64)
	}
	if hi.Valid {
		lastUsed = fromMicros(hi.Int64)
	}
	return first, lastUsed, nil
}

// ServingKey names a component.
type ServingKey struct{ Environment, Model string }

// FirstServed lists, for every component, when it first served each version: what freshness
// needs, in one read for the whole overview.
func (s *Store) FirstServed(ctx context.Context) (map[ServingKey][]releases.Served, error) {
	type row struct {
		k ServingKey
		v releases.Served
	}
	rows, err := queryAll(ctx, s, func(r scanner) (row, error) {
		var x row
		var at int64
		err := r.Scan(&x.k.Environment, &x.k.Model, &x.v.Number, &at)
		x.v.FirstServedAt = fromMicros(at)
		return x, err
	}, `SELECT environment, model, number, first_served_at FROM served_versions`)
	if err != nil {
		return nil, fmt.Errorf("read served versions: %w", err)
	}
	out := map[ServingKey][]releases.Served{}
	for _, x := range rows {
		out[x.k] = append(out[x.k], x.v)
	}
	return out, nil
}

// MetricBucket is the sum and the largest value of one metric's points in one bucket.
type MetricBucket struct {
	Metric   string
	Index    int
	Sum, Max float64
}

// MetricBuckets adds a component's points up into n buckets of step from from, in the database,
// so that a week of one-minute points costs a few hundred rows to read.
func (s *Store) MetricBuckets(ctx context.Context, env, model string, from time.Time, step time.Duration, n int) ([]MetricBucket, error) {
	lo, width := micros(from), step.Microseconds()
	out, err := queryAll(ctx, s, func(r scanner) (MetricBucket, error) {
		var b MetricBucket
		var idx int64
		err := r.Scan(&b.Metric, &idx, &b.Sum, &b.Max)
		b.Index = int(idx)
		return b, err
	}, `SELECT metric, (at - ?) / ?, SUM(value), MAX(value) FROM metric_points
		WHERE environment = ? AND model = ? AND at >= ? AND at < ? GROUP BY 1, 2`,
		lo, width, env, model, lo, lo+width*int64(n))
	if err != nil {
		return nil, fmt.Errorf("read metrics of %s in %s: %w", model, env, err)
	}
	return out, nil
}

// InvocationSpans is InvocationSpan of every component with metrics, in one read.
func (s *Store) InvocationSpans(ctx context.Context) (map[ServingKey][2]time.Time, error) {
	type row struct {
		k         ServingKey
		first, hi sql.NullInt64
	}
	rows, err := queryAll(ctx, s, func(r scanner) (row, error) {
		var x row
		err := r.Scan(&x.k.Environment, &x.k.Model, &x.first, &x.hi)
		return x, err
	}, `SELECT environment, model, MIN(at), MAX(CASE WHEN value > 0 THEN at END) FROM metric_points
		WHERE metric = ? GROUP BY environment, model`, releases.MetricInvocations)
	if err != nil {
		return nil, fmt.Errorf("read invocations: %w", err)
	}
	out := make(map[ServingKey][2]time.Time, len(rows))
	for _, x := range rows {
		var span [2]time.Time
		if x.first.Valid {
			span[0] = fromMicros(x.first.Int64)
		}
		if x.hi.Valid {
			span[1] = fromMicros(x.hi.Int64)
		}
		out[x.k] = span
	}
	return out, nil
}
