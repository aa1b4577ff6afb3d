package store_test

import (
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
)

// A CI retry of a killed deploy step starts a new release of the same pipeline on the same
// component: the killed attempt's release, which will never report again, ends at once — failed
// when it had started, canceled when it still waited at the gate — naming the release that took
// over. Other pipelines' releases and other components are left alone.
func TestRerunOfPipelineSupersedesItsUnfinishedRelease(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.cfg)
			devProd(t, s)
			start := func(env, model, pipeline string) string {
				t.Helper()
				r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: env, Model: model, Kind: releases.KindDeploy, Version: v(1),
					EndpointName: model + "-" + env, Trigger: releases.Trigger{Type: "pipeline", PipelineID: pipeline}})
				if err != nil {
					t.Fatal(err)
				}
				return r.ID
			}
			status := func(id string) releases.Status {
				t.Helper()
				r, err := s.Release(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return r.Status
			}
			killed := start("dev", "abalone", "p1")
			otherPipeline := start("dev", "abalone", "p2")
			otherModel := start("dev", "iris", "p1")
			gated := start("prod", "abalone", "p1")
			manual, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v(1), Trigger: releases.Trigger{Type: "cli"}})
			if err != nil {
				t.Fatal(err)
			}

			rerun := start("dev", "abalone", "p1")
			r, err := s.Release(ctx, killed)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != releases.StatusFailed || !strings.Contains(r.FailureReason, rerun) || r.FinishedAt == nil {
				t.Fatalf("killed attempt after the re-run started: %s %q; want failed naming %s", r.Status, r.FailureReason, rerun)
			}
			evs, err := s.Events(ctx, killed, 0)
			if err != nil || len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Message, rerun) {
				t.Fatalf("killed attempt's last event does not say it was superseded: %+v, %v", evs, err)
			}
			for name, id := range map[string]string{"another pipeline": otherPipeline, "another model": otherModel, "a manual run": manual.ID, "the re-run": rerun} {
				if st := status(id); st != releases.StatusRunning {
					t.Errorf("release of %s is %s, want still running", name, st)
				}
			}

			// Waiting at prod's gate when the job died: the retry cancels it.
			if st := status(gated); st != releases.StatusPending {
				t.Fatalf("gated release is %s, want pending", st)
			}
			retry := start("prod", "abalone", "p1")
			if st := status(gated); st != releases.StatusCanceled {
				t.Errorf("gated release after the retry: %s, want canceled", st)
			}
			if st := status(retry); st != releases.StatusPending {
				t.Errorf("the retry at prod's gate is %s, want pending", st)
			}
		})
	}
}
