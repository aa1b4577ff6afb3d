package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func startDevDeploy(t *testing.T, s *store.Store, n int) store.ReleaseRecord {
	t.Helper()
	r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v(n),
		EndpointName: "abalone-dev", InstanceType: "ml.m5.large", InstanceCount: 1})
	if err != nil {
		t.Fatalf("start deploy of v%d in dev: %v", n, err)
	}
	return r
}

func messagesOf(t *testing.T, s *store.Store, id string) string {
	t.Helper()
	evs, err := s.Events(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, e := range evs {
		if e.Seq != i+1 {
			t.Fatalf("event %q has seq %d, want %d", e.Message, e.Seq, i+1)
		}
		out = append(out, e.Message)
	}
	return strings.Join(out, "|")
}

// The events a finish carries are stored in order after the ones before, with the outcome; a
// retry of that finish (its answer was lost) stores nothing twice.
func TestFinishStoresItsEventsOnce(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.cfg)
			devProd(t, s)
			r := startDevDeploy(t, s, 1)
			if _, err := s.AddEvents(ctx, r.ID, []releases.Event{{Phase: "endpoint", Message: "creating endpoint", EndpointStatus: "Creating"}}); err != nil {
				t.Fatal(err)
			}
			one := v(1)
			f := releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &one, Events: []releases.Event{
				{Phase: "wait", Message: "endpoint is InService", EndpointStatus: "InService"},
				{Phase: "verify", Message: "verified"},
			}}
			for attempt := 1; attempt <= 2; attempt++ {
				got, err := s.FinishRelease(ctx, r.ID, f)
				if err != nil {
					t.Fatalf("finish, attempt %d: %v", attempt, err)
				}
				if got.Status != releases.StatusSucceeded {
					t.Fatalf("after attempt %d the release is %s, want succeeded", attempt, got.Status)
				}
				if want := "creating endpoint|endpoint is InService|verified"; messagesOf(t, s, r.ID) != want {
					t.Fatalf("after attempt %d the events are %q, want %q", attempt, messagesOf(t, s, r.ID), want)
				}
			}
			c, err := s.Component(ctx, "dev", "abalone")
			if err != nil {
				t.Fatal(err)
			}
			if c.CurrentVersion == nil || c.CurrentVersion.Number != 1 || c.EndpointStatus != "InService" {
				t.Errorf("component after the finish: version %v, status %q; want v1 InService", c.CurrentVersion, c.EndpointStatus)
			}
		})
	}
}

// A finish is all or nothing: an event without a message, too many events, or an outcome the
// release cannot take leaves the release running with the events it had.
func TestFinishWithEventsRefusesAll(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.cfg)
			devProd(t, s)
			r := startDevDeploy(t, s, 1)
			many := make([]releases.Event, releases.MaxEventBatch+1)
			for i := range many {
				many[i] = releases.Event{Message: "step"}
			}
			for _, tc := range []struct {
				name string
				f    releases.ReleaseFinish
				want string
			}{
				{"event without message", releases.ReleaseFinish{Status: releases.StatusSucceeded, Events: []releases.Event{{Message: "fine"}, {Phase: "wait"}}}, "event 2 of the release finish is missing message"},
				{"too many events", releases.ReleaseFinish{Status: releases.StatusSucceeded, Events: many}, "at most 500"},
				{"no status", releases.ReleaseFinish{Events: []releases.Event{{Message: "fine"}}}, "missing status"},
			} {
				_, err := s.FinishRelease(ctx, r.ID, tc.f)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s: %v, want a refusal saying %q", tc.name, err, tc.want)
				}
			}
			got, err := s.Release(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != releases.StatusRunning || messagesOf(t, s, r.ID) != "" {
				t.Fatalf("after refused finishes the release is %s with events %q, want running with none", got.Status, messagesOf(t, s, r.ID))
			}
			// Ended as failed, the release refuses to become succeeded, and takes none of its events.
			if _, err := s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonFailed}); err != nil {
				t.Fatal(err)
			}
			_, err = s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, Events: []releases.Event{{Message: "verified"}}})
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("finishing a failed release as succeeded: %v, want a conflict", err)
			}
			if msgs := messagesOf(t, s, r.ID); msgs != "" {
				t.Errorf("a refused finish stored events %q", msgs)
			}
		})
	}
}

// A release the server timed out while its deployer waited on a long bake takes the deployer's
// late outcome, and the events that outcome carries: they are what happened meanwhile.
func TestLateFinishKeepsItsEvents(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			clk := newClock()
			cfg := b.cfg
			cfg.Now = clk.Now
			s := open(t, cfg)
			devProd(t, s)
			r := startDevDeploy(t, s, 1)
			clk.Advance(10 * time.Minute)
			if failed, err := s.FailStaleReleases(ctx, clk.Now().Add(-5*time.Minute), "no progress for 5m"); err != nil || len(failed) != 1 {
				t.Fatalf("timing out the release: %v, %d failed", err, len(failed))
			}
			got, err := s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, Events: []releases.Event{{Phase: "bake", Message: "bake passed"}}})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != releases.StatusSucceeded || !strings.HasSuffix(messagesOf(t, s, r.ID), "bake passed") {
				t.Fatalf("late finish: release %s with events %q, want succeeded ending with the bake", got.Status, messagesOf(t, s, r.ID))
			}
		})
	}
}
