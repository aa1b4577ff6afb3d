package releases_test

import (
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// The server times a silent release out; the deployer, which was only waiting on a long bake,
// reports its outcome later, and that outcome is the truth the dashboard must show.
func TestALateOutcomeCorrectsAServerTimeout(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		f    releases.ReleaseFinish
		want releases.Status
		code string
	}{
		{"succeeded", releases.ReleaseFinish{Status: releases.StatusSucceeded}, releases.StatusSucceeded, ""},
		{"rolled back", releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonRolledBack, FailureReason: "alarm"}, releases.StatusFailed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := releases.Release{ID: "r1", Status: releases.StatusRunning, StartedAt: &now}
			if !releases.TimeOut(&r, now, now, "No progress was reported for 30s", now.Add(time.Minute)) {
				t.Fatal("the silent release did not time out")
			}
			changed, err := releases.Finish(&r, tc.f, now.Add(2*time.Minute))
			if err != nil || !changed {
				t.Fatalf("late outcome: changed %v, %v", changed, err)
			}
			if r.Status != tc.want || r.Reason != tc.f.Reason || r.FailureReason != tc.f.FailureReason {
				t.Errorf("release after the late outcome: %s %s %q", r.Status, r.Reason, r.FailureReason)
			}
		})
	}
	// Any other ended release keeps its outcome.
	r := releases.Release{ID: "r2", Status: releases.StatusFailed, Reason: releases.ReasonRolledBack}
	if _, err := releases.Finish(&r, releases.ReleaseFinish{Status: releases.StatusSucceeded}, now); releases.ErrorCode(err) != releases.ECONFLICT {
		t.Errorf("a rolled-back release became succeeded: %v", err)
	}
}
