package store_test

import (
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// TestLateFinishDoesNotOverwriteWhatServes: two deployers race on one endpoint; the one that
// changed it last reports first, the other's report arrives late. The component keeps what the
// endpoint serves (the finish that saw SageMaker's later LastModifiedTime), while both releases
// end as reported. A finish that says nothing of the endpoint's time still applies, as before.
func TestLateFinishDoesNotOverwriteWhatServes(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.cfg)
			mustEnv(t, s, releases.Environment{Name: "dev", Kind: "local"})
			start := func(v, n int) store.ReleaseRecord {
				t.Helper()
				r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "race", Kind: releases.KindDeploy,
					Version: releases.Version{Number: v}, InstanceType: "ml.m5.large", InstanceCount: n})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			finish := func(r store.ReleaseRecord, v, n int, seen *time.Time) {
				t.Helper()
				if _, err := s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: "InService",
					ServingVersion: &releases.Version{Number: v}, InstanceCount: n, EndpointModifiedAt: seen}); err != nil {
					t.Fatal(err)
				}
			}
			serves := func(v, n int) {
				t.Helper()
				c, err := s.Component(ctx, "dev", "race")
				if err != nil || c.CurrentVersion == nil || c.CurrentVersion.Number != v || c.InstanceCount != n {
					t.Fatalf("component: %+v, %v; want version %d on %d instances", c, err, v, n)
				}
			}
			first, second := start(1, 2), start(2, 1)
			t1 := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
			t2 := t1.Add(300 * time.Millisecond)
			finish(second, 2, 1, &t2) // the later change reports first
			finish(first, 1, 2, &t1)  // the earlier one's report arrives late
			serves(2, 1)
			if r, _ := s.Release(ctx, first.ID); r.Status != releases.StatusSucceeded {
				t.Fatalf("the late release is %s; it still ends as reported", r.Status)
			}
			third := start(1, 3)
			finish(third, 1, 3, nil) // an older deployer, or a scale, says nothing of the time
			serves(1, 3)
		})
	}
}
