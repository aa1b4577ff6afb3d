package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Imported releases keep their events, numbered in the order given, and events reported later
// are numbered after them.
func TestImportReleasesKeepsEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		ctx := context.Background()
		if err := s.PutEnvironment(ctx, releases.Environment{Name: "dev", Kind: "local"}); err != nil {
			t.Fatal(err)
		}
		at := clk.Now().Add(-time.Hour)
		events := []releases.Event{
			{Seq: 7, Time: at, Phase: "resolve", Message: "version 3 of iris"},
			{Time: at.Add(time.Second), Phase: "endpoint", Message: "updating iris-dev", EndpointStatus: "Updating"},
			{Time: at.Add(2 * time.Second), Phase: "wait", Message: "iris-dev is InService", EndpointStatus: "InService"},
		}
		rec := store.ReleaseRecord{Release: releases.Release{ID: "imported-1", Environment: "dev", Model: "iris",
			Kind: releases.KindDeploy, Status: releases.StatusRunning, Version: releases.Version{Number: 3},
			CreatedAt: at, StartedAt: &at, Events: events}}
		plain := store.ReleaseRecord{Release: releases.Release{ID: "imported-2", Environment: "dev", Model: "iris",
			Kind: releases.KindDeploy, Status: releases.StatusSucceeded, CreatedAt: at}}
		if err := s.ImportReleases(ctx, []store.ReleaseRecord{rec, plain}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Events(ctx, "imported-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(events) {
			t.Fatalf("imported %d events, read back %d: %+v", len(events), len(got), got)
		}
		for i, e := range got {
			w := events[i]
			if e.Seq != i+1 || !e.Time.Equal(w.Time) || e.Phase != w.Phase || e.Message != w.Message || e.EndpointStatus != w.EndpointStatus {
				t.Errorf("event %d = %+v, want %+v numbered %d", i+1, e, w, i+1)
			}
		}
		next, err := s.AddEvent(ctx, "imported-1", releases.Event{Phase: "verify", Message: "sample invocation answered"})
		if err != nil {
			t.Fatal(err)
		}
		if next.Seq != 4 {
			t.Errorf("the event reported after 3 imported ones is numbered %d, want 4", next.Seq)
		}
		if none, err := s.Events(ctx, "imported-2", 0); err != nil || len(none) != 0 {
			t.Errorf("a release imported without events has events %v (%v)", none, err)
		}
	})
}
