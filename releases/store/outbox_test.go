package store_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func addHook(t *testing.T, s *store.Store, name, env string, kinds ...store.EventKind) store.Webhook {
	t.Helper()
	if kinds == nil {
		kinds = store.EventKinds()
	}
	w, err := s.CreateWebhook(ctx, store.Webhook{Name: name, URL: "http://127.0.0.1:9/" + name, Format: store.FormatJSON,
		Environment: env, Events: kinds, SecretSealed: "sealed", KeyID: "k1"})
	if err != nil {
		t.Fatalf("add webhook %s: %v", name, err)
	}
	return w
}

// kindsOf lists the event kinds queued for webhook id, oldest first.
func kindsOf(t *testing.T, s *store.Store, id string) []store.EventKind {
	t.Helper()
	ds, err := s.Deliveries(ctx, id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.EventKind
	for i := len(ds) - 1; i >= 0; i-- {
		out = append(out, ds[i].Kind)
	}
	return out
}

// TestReleaseChangesQueueWebhookEvents: each change of a release that people care about queues
// one delivery per webhook of its environment and kind, with one event id shared by all.
func TestReleaseChangesQueueWebhookEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		all := addHook(t, s, "all", "")
		prod := addHook(t, s, "prod", "prod")
		devOK := addHook(t, s, "dev-ok", "dev", store.EventReleaseSucceeded)

		deploy(t, s, "dev", 1, 1)
		r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: v(1),
			Trigger: releases.Trigger{Type: "pipeline", PipelineID: "p2"}})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		if _, err := s.Approve(ctx, r.ID, "erin"); err != nil {
			t.Fatal(err)
		}
		old := v(0)
		if _, err := s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonRolledBack,
			FailureReason: "alarm fired", ServingVersion: &old}); err != nil {
			t.Fatal(err)
		}
		// A retried finish report changes nothing, so it notifies nobody again.
		if _, err := s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonRolledBack, FailureReason: "alarm fired"}); err != nil {
			t.Fatal(err)
		}

		wantProd := []store.EventKind{store.EventWaitingApproval, store.EventReleaseStarted, store.EventReleaseRolled}
		if got := kindsOf(t, s, prod.ID); !slices.Equal(got, wantProd) {
			t.Errorf("prod webhook got %v, want %v", got, wantProd)
		}
		wantAll := append([]store.EventKind{store.EventReleaseStarted, store.EventReleaseSucceeded}, wantProd...)
		if got := kindsOf(t, s, all.ID); !slices.Equal(got, wantAll) {
			t.Errorf("webhook of every environment got %v, want %v", got, wantAll)
		}
		if got := kindsOf(t, s, devOK.ID); !slices.Equal(got, []store.EventKind{store.EventReleaseSucceeded}) {
			t.Errorf("dev webhook for successes got %v", got)
		}
		a, _ := s.Deliveries(ctx, all.ID, 1)
		p, _ := s.Deliveries(ctx, prod.ID, 1)
		if a[0].EventID != p[0].EventID || a[0].EventID == "" || a[0].ID == p[0].ID {
			t.Errorf("one event to two webhooks: event ids %q and %q must be equal, delivery ids %q and %q distinct", a[0].EventID, p[0].EventID, a[0].ID, p[0].ID)
		}
	})
}

// TestClaimHandsEachDeliveryToOneSender: two servers on one database claim at the same time and
// never get the same delivery; a failed attempt is due again at its backoff time; a sender that
// died holding a claim loses it when its lease ends; a server without the signing key claims
// nothing.
func TestClaimHandsEachDeliveryToOneSender(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			clk := newClock()
			cfg := b.cfg
			cfg.Now = clk.Now
			one, two := open(t, cfg), open(t, cfg)
			devProd(t, one)
			addHook(t, one, "a", "")
			addHook(t, one, "b", "")
			for n := 1; n <= 5; n++ {
				deploy(t, one, "dev", n, 1) // started and succeeded: 2 events × 2 webhooks
			}
			got := claimConcurrently(t, one, two)
			if len(got) != 20 {
				t.Fatalf("claimed %d distinct deliveries, want 20", len(got))
			}
			more, err := one.Claim(ctx, "s3", "k1", 100, time.Minute)
			if err != nil || len(more) != 0 {
				t.Fatalf("claimed deliveries again within the lease: %d (%v)", len(more), err)
			}

			var c claim
			for _, c = range got {
				break
			}
			d := c.d
			retryAt := one.Now().Add(10 * time.Second)
			if _, err := one.RecordAttempt(ctx, d, c.owner, store.Attempt{StatusCode: 500, Error: "500 Internal Server Error", State: store.DeliveryPending, NextAt: retryAt}); err != nil {
				t.Fatal(err)
			}
			if next, ok, _ := one.NextDue(ctx, "k1"); !ok || !next.Equal(retryAt) {
				t.Errorf("next due = %v (%v), want the retry at %v", next, ok, retryAt)
			}
			clk.Advance(10 * time.Second)
			again, _ := one.Claim(ctx, "s3", "k1", 100, time.Minute)
			if len(again) != 1 || again[0].ID != d.ID || again[0].Attempts != 1 {
				t.Fatalf("after the backoff: claimed %d deliveries, want only %s with 1 attempt", len(again), d.ID)
			}
			if none, _ := two.Claim(ctx, "other-key-server", "k2", 100, time.Minute); len(none) != 0 {
				t.Fatalf("a server with another key claimed %d deliveries", len(none))
			}
			clk.Advance(2 * time.Minute)
			expired, _ := two.Claim(ctx, "s4", "k1", 100, time.Minute)
			if len(expired) != 20 {
				t.Fatalf("after the leases ended %d deliveries were claimable, want all 20", len(expired))
			}
			log, err := one.DeliveryLog(ctx, 10)
			if err != nil || len(log) != 1 || log[0].StatusCode != 500 || log[0].WebhookName == "" {
				t.Fatalf("delivery log = %+v (%v), want the one 500", log, err)
			}
		})
	}
}

// claimConcurrently has two stores claim in small batches at once until nothing is left, and
// returns each claimed delivery with its claimer; it fails on a delivery claimed twice.
func claimConcurrently(t *testing.T, stores ...*store.Store) map[string]claim {
	var mu sync.Mutex
	got := map[string]claim{}
	var wg sync.WaitGroup
	for i, s := range stores {
		owner := []string{"s1", "s2", "s3"}[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := s.Claim(ctx, owner, "k1", 3, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					if prev, dup := got[d.ID]; dup {
						t.Errorf("delivery %s claimed by %s and %s", d.ID, prev.owner, owner)
					}
					got[d.ID] = claim{owner, d}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got
}

type claim struct {
	owner string
	d     store.Delivery
}

// TestUnclaimGivesADeliveryBackAtOnce: a sender shutting down mid-delivery gives it back
// without an attempt counted, so the next sender need not wait for the lease to end.
func TestUnclaimGivesADeliveryBackAtOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		addHook(t, s, "a", "", store.EventDriftDetected)
		if _, err := s.NotifyDrift(ctx, "dev", "abalone", "config changed in the console", nil); err != nil {
			t.Fatal(err)
		}
		ds, err := s.Claim(ctx, "s1", "k1", 10, time.Hour)
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim: %d (%v)", len(ds), err)
		}
		if err := s.Unclaim(ctx, ds[0].ID, "s1"); err != nil {
			t.Fatal(err)
		}
		again, err := s.Claim(ctx, "s2", "k1", 10, time.Hour)
		if err != nil || len(again) != 1 || again[0].Attempts != 0 {
			t.Fatalf("after unclaim: %d deliveries claimable (%v), want the one with no attempt counted", len(again), err)
		}
		if _, err := s.NotifyDrift(ctx, "qa", "abalone", "x", nil); err == nil || !strings.Contains(err.Error(), "qa") {
			t.Fatalf("drift of an unknown environment: %v", err)
		}
	})
}
