package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Execute runs a command a dashboard user gave (the release server's agent calls it): restore
// serves cmd.Version again, rollback the version before the current one, scale sets
// cmd.Instances, promote serves in cmd.Environment what cmd.FromEnvironment serves. Progress is
// reported into cmd.ReleaseID, triggered by the user who asked.
func (d *Deployer) Execute(ctx context.Context, cmd releases.Command) error {
	trig := &releases.Trigger{Type: "user", User: cmd.RequestedBy}
	var started string
	var err error
	switch cmd.Kind {
	case releases.CommandRestore:
		if cmd.Version <= 0 {
			err = errorf(ErrInvalid, "restore command %s names no version", cmd.ID)
			break
		}
		var r DeployResult
		r, err = d.Rollback(ctx, RollbackRequest{Model: cmd.Model, Environment: cmd.Environment, ToVersion: cmd.Version, ReleaseID: cmd.ReleaseID, Trigger: trig})
		started = r.ReleaseID
	case releases.CommandRollback:
		var r DeployResult
		r, err = d.Rollback(ctx, RollbackRequest{Model: cmd.Model, Environment: cmd.Environment, ReleaseID: cmd.ReleaseID, Trigger: trig})
		started = r.ReleaseID
	case releases.CommandScale:
		var r ScaleResult
		r, err = d.Scale(ctx, ScaleRequest{Model: cmd.Model, Environment: cmd.Environment, Instances: cmd.Instances, ReleaseID: cmd.ReleaseID, Trigger: trig})
		started = r.ReleaseID
	case releases.CommandPromote:
		var r PromoteResult
		r, err = d.Promote(ctx, PromoteRequest{Model: cmd.Model, From: cmd.FromEnvironment, To: cmd.Environment, ReleaseID: cmd.ReleaseID, Trigger: trig})
		started = r.ReleaseID
	default:
		err = errorf(ErrInvalid, "unknown command kind %q (command %s)", cmd.Kind, cmd.ID)
	}
	if err != nil && started == "" && cmd.ReleaseID != "" && d.opts.Releases != nil {
		// The release never started here; close it so the dashboard does not show it running.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if _, ferr := d.opts.Releases.FinishRelease(fctx, cmd.ReleaseID, releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: err.Error()}); ferr != nil {
			d.log.Warn("could not mark the release failed", "release", cmd.ReleaseID, "error", ferr)
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s in %s: %w", cmd.Kind, cmd.Model, cmd.Environment, err)
	}
	return nil
}
