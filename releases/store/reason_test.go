package store_test

import (
	"errors"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// TestReasonsAndCommandStatesPersist checks on each backend that a finished release keeps its
// typed reason, that a lifecycle refusal is both a domain error and a store sentinel, and that a
// command moves through its states as its release does.
func TestReasonsAndCommandStatesPersist(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.cfg)
			mustEnv(t, s, releases.Environment{Name: "dev", Kind: "local"})
			mustEnv(t, s, releases.Environment{Name: "prod", Kind: "sagemaker", Region: "eu-west-1", RequiresApproval: true, Position: 1})
			r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 1}})
			if err != nil {
				t.Fatal(err)
			}
			fin, err := s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonVerificationFailed, FailureReason: "wrong answer"})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Release(ctx, r.ID); got.Reason != releases.ReasonVerificationFailed || fin.Reason != got.Reason {
				t.Fatalf("reason read back %q (answered %q); want verification-failed", got.Reason, fin.Reason)
			}
			_, err = s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded})
			if !errors.Is(err, store.ErrConflict) || releases.ErrorCode(err) != releases.ECONFLICT {
				t.Fatalf("finishing twice differently: %v (code %q); want a conflict", err, releases.ErrorCode(err))
			}

			gated, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: releases.Version{Number: 1}})
			if err != nil {
				t.Fatal(err)
			}
			rej, err := s.Reject(ctx, gated.ID, "carol", "")
			if err != nil || rej.Reason != releases.ReasonRejected || rej.Status != releases.StatusCanceled || rej.RejectedBy != "carol" {
				t.Fatalf("rejected: %+v, %v", rej.Release, err)
			}

			e2e := releases.Release{Environment: "dev", Model: "iris", Kind: releases.KindScale, InstanceCount: 2}
			cmd, cr, err := s.CreateCommand(ctx, releases.Command{Kind: releases.CommandScale, Environment: "dev", Model: "iris", Instances: 2, RequestedBy: "dan"}, e2e, false)
			if err != nil || cmd.State != releases.CommandQueued || cmd.QueuedAt == nil {
				t.Fatalf("new command: %+v, %v", cmd, err)
			}
			claimed, err := s.ClaimCommand(ctx, "dev")
			if err != nil || claimed == nil || claimed.State != releases.CommandDispatched || claimed.DispatchedAt == nil {
				t.Fatalf("claimed: %+v, %v", claimed, err)
			}
			if _, err := s.Cancel(ctx, cr.ID, "dan"); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("cancel of a taken command: %v; want a conflict", err)
			}
			done, err := s.CompleteCommand(ctx, cmd.ID, "dev", releases.CommandResult{Status: releases.StatusFailed, Message: "no quota"})
			if err != nil || done.State != releases.CommandFailed || done.FinishedAt == nil {
				t.Fatalf("completed: %+v, %v", done, err)
			}
			if got, _ := s.Release(ctx, cr.ID); got.Status != releases.StatusFailed || got.Reason != releases.ReasonErrored {
				t.Fatalf("release of the failed command: %s %q; want failed, errored", got.Status, got.Reason)
			}
		})
	}
}
