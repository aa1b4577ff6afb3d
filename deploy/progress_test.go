package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
)

// A canary deploy shows its steps — the canary's shift, its bake, the rest of the traffic — in
// the output and in the release; and a bake longer than the server's no-progress timeout (here
// 2 s against 0.5 s, standing for 2 minutes against 30 seconds) ends Succeeded on the dashboard.
func TestCanaryStepsAreReleaseEventsAndALongBakeSucceeds(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServerWith(t, server.Options{RunningTimeout: 500 * time.Millisecond, SweepInterval: 50 * time.Millisecond})
	d, out := l.deployer(nil, withReleases(rs.client("dev")))
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	register(t, d, "abalone", 2, true)
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev",
		Strategy: deploy.Strategy{Type: deploy.Canary, Percent: 50, Bake: 2 * time.Second}})
	if err != nil {
		t.Fatalf("canary deploy: %v\n%s", err, out.text())
	}
	rel, err := rs.client("dev").Release(ctx, res.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Status != releases.StatusSucceeded {
		t.Errorf("release %s is %s (%s); want succeeded", rel.ID, rel.Status, rel.FailureReason)
	}
	var got []string
	for _, e := range rel.Events {
		if e.Phase == releases.PhaseTraffic || e.Phase == releases.PhaseBake {
			got = append(got, string(e.Phase)+": "+e.Message)
		}
	}
	steps := strings.Join(got, "\n")
	for _, want := range []string{"traffic: endpoint abalone-dev: traffic shifted 50%", "bake: endpoint abalone-dev: baking for 2s", "traffic: endpoint abalone-dev serves all traffic"} {
		if !strings.Contains(steps, want) {
			t.Errorf("release events lack %q; traffic and bake events:\n%s", want, steps)
		}
	}
	if len(res.Steps) < 3 || res.Steps[0].Phase != releases.PhaseTraffic {
		t.Errorf("the result's steps: %+v; want the canary shift, its bake and the rest of the traffic", res.Steps)
	}
	if !strings.Contains(out.text(), "[bake] endpoint abalone-dev: baking for 2s before the next step; no rollback alarms watched") {
		t.Errorf("the output does not show the bake:\n%s", out.text())
	}
}

// A heartbeat keeps a waiting release from the no-progress timeout, and when the server timed a
// release out anyway (heartbeats lost), the deployer's late outcome corrects it.
func TestHeartbeatsAndLateOutcomes(t *testing.T) {
	t.Parallel()
	rs := startReleaseServer(t)
	c := rs.client("dev")
	rel, err := c.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if rel.HeartbeatSeconds <= 0 {
		t.Errorf("the server asks for no heartbeat (heartbeat_seconds %v)", rel.HeartbeatSeconds)
	}
	before := rs.st.Now()
	if err := c.Heartbeat(ctx, rel.ID); err != nil {
		t.Fatal(err)
	}
	failed, err := rs.st.FailStaleReleases(ctx, before, "no progress")
	if err != nil || len(failed) != 0 {
		t.Fatalf("a release that just sent a heartbeat timed out: %v %v", failed, err)
	}
	if failed, err = rs.st.FailStaleReleases(ctx, rs.st.Now().Add(time.Second), "No progress was reported"); err != nil || len(failed) != 1 {
		t.Fatalf("time out the silent release: %v %v", failed, err)
	}
	if err := c.Heartbeat(ctx, rel.ID); err == nil {
		t.Error("a heartbeat for a release that ended was accepted")
	}
	late, err := c.FinishRelease(ctx, rel.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &releases.Version{Number: 1}})
	if err != nil {
		t.Fatalf("late outcome refused: %v", err)
	}
	if late.Status != releases.StatusSucceeded || late.Reason != "" {
		t.Errorf("after the late outcome the release is %s (%s); want succeeded", late.Status, late.Reason)
	}
	comp, err := rs.st.Component(ctx, "dev", "abalone")
	if err != nil || comp.CurrentVersion == nil || comp.CurrentVersion.Number != 1 {
		t.Errorf("component after the late outcome: %+v %v", comp, err)
	}
}

// A rolling update replaces the fleet in batches; each batch and its bake is a step of the result.
func TestRollingUpdateShowsItsBatches(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, out := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", InstanceCount: 2}); err != nil {
		t.Fatal(err)
	}
	register(t, d, "abalone", 2, true)
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev",
		Strategy: deploy.Strategy{Type: deploy.Rolling, Percent: 50, Bake: time.Second}})
	if err != nil {
		t.Fatalf("rolling deploy: %v\n%s", err, out.text())
	}
	if desc := describe(t, l, "abalone-dev"); desc.LastDeploymentConfig == nil || desc.LastDeploymentConfig.RollingUpdatePolicy == nil {
		t.Errorf("the update was not a rolling one: %+v", desc.LastDeploymentConfig)
	}
	var bakes, shifts int
	for _, s := range res.Steps {
		switch s.Phase {
		case releases.PhaseBake:
			bakes++
		case releases.PhaseTraffic:
			shifts++
		}
	}
	if bakes < 1 || shifts < 2 || res.Strategy != "rolling 50% batches, bake 1s" {
		t.Errorf("rolling update (%s): %d batches and %d bakes in the steps; want 2 and 1\n%s", res.Strategy, shifts, bakes, out.text())
	}
}
