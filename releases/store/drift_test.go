package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// TestObservationsDriftAndMetrics keeps observations and metric points on every backend: drift
// starts once, keeps its start while it lasts, ends when adopted (and the adopted configuration
// becomes the recorded one); points replace earlier values of their period and age out.
func TestObservationsDriftAndMetrics(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			b.cfg.Now = func() time.Time { return now }
			s := open(t, b.cfg)
			mustEnv(t, s, releases.Environment{Name: "dev", Kind: "local"})
			v := releases.Version{Number: 1}
			r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v, EndpointConfigName: "cfg-1", InstanceType: "ml.m5.large", InstanceCount: 1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &v, EndpointStatus: "InService", InstanceType: "ml.m5.large", InstanceCount: 1}); err != nil {
				t.Fatal(err)
			}
			obs := releases.Observation{Environment: "dev", Model: "abalone", EndpointStatus: "InService", EndpointConfigName: "cfg-1", Version: 1, InstanceType: "ml.m5.large", InstanceCount: 1}
			if res, err := s.RecordObservation(ctx, obs); err != nil || res.Drift != nil {
				t.Fatalf("in sync: %+v, %v", res, err)
			}
			obs.EndpointConfigName = "cfg-console"
			first, err := s.RecordObservation(ctx, obs)
			if err != nil || first.Drift == nil || !first.New || first.Drift.Summary() != "changed outside sagedeploy: config cfg-1 → cfg-console" {
				t.Fatalf("config changed: %+v, %v", first, err)
			}
			now = now.Add(time.Minute)
			again, err := s.RecordObservation(ctx, obs)
			if err != nil || again.New || !again.Drift.Since.Equal(first.Drift.Since) {
				t.Fatalf("still changed: %+v, %v", again, err)
			}
			now = now.Add(time.Minute)
			if _, err := s.AdoptObservation(ctx, "dev", "abalone"); err != nil {
				t.Fatal(err)
			}
			if res, err := s.RecordObservation(ctx, obs); err != nil || res.Drift != nil {
				t.Fatalf("after adopting cfg-console: %+v, %v", res, err)
			}
			if list, err := s.Drifts(ctx); err != nil || len(list) != 0 {
				t.Fatalf("drifts after adopting: %+v, %v", list, err)
			}
			checkMetricPoints(t, s, now)
		})
	}
}

func checkMetricPoints(t *testing.T, s *store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	old := releases.MetricPoint{Metric: releases.MetricInvocations, Time: now.Add(-10 * 24 * time.Hour), Value: 5}
	p := releases.MetricPoint{Metric: releases.MetricInvocations, Time: now.Add(-2 * time.Hour), Value: 3}
	zero := releases.MetricPoint{Metric: releases.MetricInvocations, Time: now.Add(-time.Hour), Value: 0}
	if err := s.AddMetricPoints(ctx, "dev", "abalone", []releases.MetricPoint{old, p, zero}, 8*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	p.Value = 4 // CloudWatch added to the period since it was read
	if err := s.AddMetricPoints(ctx, "dev", "abalone", []releases.MetricPoint{p}, 8*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	pts, err := s.MetricPoints(ctx, "dev", "abalone", now.Add(-30*24*time.Hour))
	if err != nil || len(pts) != 2 || pts[0].Value != 4 || !pts[0].Time.Equal(p.Time) {
		t.Fatalf("points: %+v, %v", pts, err)
	}
	first, last, err := s.InvocationSpan(ctx, "dev", "abalone")
	if err != nil || !first.Equal(p.Time) || !last.Equal(p.Time) {
		t.Fatalf("invocation span: %v – %v, %v", first, last, err)
	}
}
