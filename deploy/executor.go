package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Execute runs a command a dashboard user gave (the release server's agent calls it; a
// *Deployer is an agent.Executor): restore serves cmd.Version again, rollback the version before
// the current one, scale sets cmd.Instances, promote serves in cmd.Environment what
// cmd.FromEnvironment serves. Progress is reported into cmd.ReleaseID through c — the client with
// the token of the command's environment; d's own Releases when nil — triggered by the user who
// asked.
func (d *Deployer) Execute(ctx context.Context, c *releases.Client, cmd releases.Command) error {
	if c != nil {
		d = d.WithReleases(c)
	}
	started, err := d.execute(ctx, cmd)
	if err != nil && started == "" && cmd.ReleaseID != "" && d.opts.Releases != nil {
		// The release never started here; close it so the dashboard does not show it running.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		f := releases.ReleaseFinish{Status: releases.StatusFailed, Reason: FailureReason(err), FailureReason: err.Error()}
		if _, ferr := d.opts.Releases.FinishRelease(fctx, cmd.ReleaseID, f); ferr != nil {
			d.log.Warn("could not mark the release failed", "release", cmd.ReleaseID, "error", ferr)
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s in %s: %w", cmd.Kind, cmd.Model, cmd.Environment, err)
	}
	return nil
}

// execute runs the operation of cmd; started is the id of the release it started, if any.
func (d *Deployer) execute(ctx context.Context, cmd releases.Command) (started string, err error) {
	trig := &releases.Trigger{Type: releases.TriggerUser, User: cmd.RequestedBy}
	switch cmd.Kind {
	case releases.CommandRestore:
		if cmd.Version <= 0 {
			return "", errorf(ErrInvalid, "restore command %s names no version", cmd.ID)
		}
		r, err := d.Rollback(ctx, RollbackRequest{Model: cmd.Model, Environment: cmd.Environment, ToVersion: cmd.Version, ReleaseID: cmd.ReleaseID, Trigger: trig, Kind: releases.KindRestore})
		return r.ReleaseID, err
	case releases.CommandRollback:
		r, err := d.Rollback(ctx, RollbackRequest{Model: cmd.Model, Environment: cmd.Environment, ReleaseID: cmd.ReleaseID, Trigger: trig})
		return r.ReleaseID, err
	case releases.CommandScale:
		r, err := d.Scale(ctx, ScaleRequest{Model: cmd.Model, Environment: cmd.Environment, Instances: cmd.Instances, ReleaseID: cmd.ReleaseID, Trigger: trig})
		return r.ReleaseID, err
	case releases.CommandPromote:
		r, err := d.Promote(ctx, PromoteRequest{Model: cmd.Model, From: cmd.FromEnvironment, To: cmd.Environment, ReleaseID: cmd.ReleaseID, Trigger: trig})
		return r.ReleaseID, err
	}
	return "", errorf(ErrInvalid, "unknown command kind %q (command %s)", cmd.Kind, cmd.ID)
}
