package server

import (
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func TestTrafficSplitOfReleases(t *testing.T) {
	shift := func(msg string) releases.Event { return releases.Event{Phase: releases.PhaseTraffic, Message: msg} }
	bake := releases.Event{Phase: releases.PhaseBake, Message: "endpoint e: baking for 1m0s before the next step; no rollback alarms watched"}
	linear := []releases.Event{
		shift("endpoint e: traffic shifted 33.3% to endpoint config e-v5 (66.7% stays on e-v4) (2s)"), bake,
		shift("endpoint e: traffic shifted 66.7% to endpoint config e-v5 (33.3% stays on e-v4) (1m2s)"),
	}
	release := func(kind releases.Kind, status releases.Status, prev int) store.ReleaseRecord {
		r := store.ReleaseRecord{}
		r.Kind, r.Status, r.Version = kind, status, releases.Version{Number: 5}
		if prev > 0 {
			r.PreviousVersion = &releases.Version{Number: prev}
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		r      store.ReleaseRecord
		events []releases.Event
		want   string // "" for no bar
		stage  string
	}{
		{"linear, second step", release(releases.KindDeploy, releases.StatusRunning, 4), linear, "new v5: 66.7% · old v4: 33.3%", "shifting"},
		{"linear, baking", release(releases.KindDeploy, releases.StatusRunning, 4), linear[:2], "new v5: 33.3% · old v4: 66.7%", "baking"},
		{"all traffic, said by the deployer", release(releases.KindPromote, releases.StatusRunning, 4),
			append(linear, shift("endpoint e serves all traffic from e-v5 (v5)")), "new v5: 100% · old v4: 0%", "done"},
		{"failed after a shift: the old version serves again", release(releases.KindDeploy, releases.StatusFailed, 4), linear, "new v5: 0% · old v4: 100%", "rolled back"},
		{"running, no shift yet", release(releases.KindRestore, releases.StatusRunning, 4), nil, "new v5: 0% · old v4: 100%", "waiting for the first shift"},
		{"finished without a shift", release(releases.KindDeploy, releases.StatusSucceeded, 4), nil, "", ""},
		{"waiting at the gate", release(releases.KindDeploy, releases.StatusPending, 4), nil, "", ""},
		{"first deploy", release(releases.KindDeploy, releases.StatusRunning, 0), linear, "", ""},
		{"same version again", release(releases.KindDeploy, releases.StatusRunning, 5), linear, "", ""},
		{"scale", release(releases.KindScale, releases.StatusRunning, 4), linear, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := trafficSplitOf(tc.r, tc.events)
			switch {
			case tc.want == "" && s != nil:
				t.Fatalf("got a split bar %q, want none", s.Text())
			case tc.want == "":
			case s == nil:
				t.Fatalf("no split bar, want %q", tc.want)
			case s.Text() != tc.want || s.Stage != tc.stage:
				t.Fatalf("split %q (%s), want %q (%s)", s.Text(), s.Stage, tc.want, tc.stage)
			}
		})
	}
}
