package deploy

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sagedeploy/sagedeploy/deploy/naming"
	"github.com/sagedeploy/sagedeploy/releases"
)

// RollbackRequest asks an environment to serve an earlier version again.
type RollbackRequest struct {
	Model        string
	Environment  string
	EndpointName string
	// ToVersion is the version to serve again; 0 means the one served before the current one.
	ToVersion   int
	PipelineID  string
	ProjectID   string
	Timeout     time.Duration
	LockTimeout time.Duration
	ReleaseID   string
	Trigger     *releases.Trigger
	// Kind is how the release is recorded: KindRollback (default) or KindRestore, when a user
	// chose the version to serve again rather than undoing the current one.
	Kind releases.Kind
}

// Rollback re-points the endpoint at the endpoint configuration that served the target version,
// found in the endpoint's history (its tags) — same model as then. The endpoint keeps the instance
// type and count it runs now (a scale-up since is not undone): when the old configuration had
// other instance settings, the old model is served through a configuration with the current ones.
// A version the endpoint never served (or whose configuration was deleted) is deployed afresh
// with the endpoint's current instance settings. The release is of kind rollback (restore when
// the request says so). The endpoint is read once, and what was read is handed to Deploy.
func (d *Deployer) Rollback(ctx context.Context, req RollbackRequest) (DeployResult, error) {
	req.Kind = cmp.Or(req.Kind, releases.KindRollback)
	res := DeployResult{Model: req.Model, Environment: req.Environment, Kind: req.Kind}
	res.Endpoint = cmp.Or(req.EndpointName, naming.Endpoint(req.Model, req.Environment))
	ctx, err := d.checkEnvironment(ctx, req.Model, req.Environment)
	if err != nil {
		res.Reason = FailureReason(err)
		return res, err
	}
	dr, err := d.rollbackRequest(ctx, req, res.Endpoint)
	if err != nil {
		res.Reason = FailureReason(err)
		return res, err
	}
	return d.Deploy(ctx, dr)
}

// rollbackRequest reads the endpoint name (once) and says what to deploy to roll it back.
func (d *Deployer) rollbackRequest(ctx context.Context, req RollbackRequest, name string) (DeployRequest, error) {
	if err := checkTarget(req.Model, req.Environment); err != nil {
		return DeployRequest{}, err
	}
	snap, err := d.readSettled(ctx, name, cmp.Or(max(req.LockTimeout, 0), max(req.Timeout, 0), DefaultTimeout), nil)
	switch {
	case err != nil:
		return DeployRequest{}, err
	case !snap.exists():
		return DeployRequest{}, errorf(ErrEndpointNotFound, "model %s has no endpoint %s in %s: nothing to roll back", req.Model, name, req.Environment)
	case !snap.inService():
		return DeployRequest{}, snap.notInService(name, "rollback re-points an InService endpoint")
	case snap.configErr != nil:
		return DeployRequest{}, fmt.Errorf("find what %s serves: %w", name, snap.configErr)
	}
	dr := DeployRequest{
		Model: req.Model, Environment: req.Environment, EndpointName: req.EndpointName,
		PipelineID: req.PipelineID, ProjectID: req.ProjectID, Timeout: req.Timeout, LockTimeout: req.LockTimeout,
		ReleaseID: req.ReleaseID, Trigger: req.Trigger, kind: req.Kind, historyKind: string(req.Kind),
		snapshot: snap,
	}
	return dr, d.rollbackTarget(ctx, req, snap, &dr)
}

// rollbackTarget sets what dr deploys: the configuration that served the target version, or the
// version afresh with the endpoint's current instance settings when that configuration is gone.
func (d *Deployer) rollbackTarget(ctx context.Context, req RollbackRequest, snap *endpointSnapshot, dr *DeployRequest) error {
	cur := snap.config
	hist := snap.history()
	target := rollbackEntry(hist, cur, req.ToVersion)
	afresh := func(version int) {
		dr.Version, dr.InstanceType, dr.InstanceCount = version, cur.InstanceType, snap.instances()
	}
	switch {
	case req.ToVersion != 0 && req.ToVersion == cur.Version.Number:
		dr.EndpointConfigName, dr.config = cur.Name, &cur // already there: Deploy reports it unchanged
	case target != nil:
		ci, err := d.describeConfig(ctx, target.EndpointConfigName)
		switch {
		case err == nil && (ci.InstanceType != cur.InstanceType || ci.InstanceCount != snap.instances() ||
			ci.Settings.key() != cur.Settings.key() || ci.Variant != cur.Variant):
			// The old configuration would undo a scaling or a setting since: serve its model with
			// today's instances and settings.
			dr.ModelName, dr.InstanceType, dr.InstanceCount = ci.ModelName, cur.InstanceType, snap.instances()
		case err == nil:
			dr.EndpointConfigName, dr.config = ci.Name, &ci
		case isNotFound(err):
			afresh(target.Version) // its configuration was deleted: serve the version through a new one
		default:
			return err
		}
	case req.ToVersion != 0:
		afresh(req.ToVersion)
	default:
		return errorf(ErrNothingToRollBack, "endpoint %s has served no other version than %s (history: %s); nothing to roll back to — deploy a version with `sagedeploy deploy --env %s --version N`",
			aws.ToString(snap.desc.EndpointName), cur.Version.String(), describeHistory(hist), req.Environment)
	}
	return nil
}

// rollbackEntry is the newest history entry to go back to: the one of version to, or (to == 0)
// the newest that served neither the current configuration nor the current version.
func rollbackEntry(hist []HistoryEntry, cur configInfo, to int) *HistoryEntry {
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		if h.EndpointConfigName == cur.Name || h.Version == cur.Version.Number && to == 0 {
			continue
		}
		if to == 0 || h.Version == to {
			return &h
		}
	}
	return nil
}

func describeHistory(h []HistoryEntry) string {
	if len(h) == 0 {
		return "empty"
	}
	parts := make([]string, 0, len(h))
	for _, e := range h {
		parts = append(parts, fmt.Sprintf("v%d", e.Version))
	}
	return strings.Join(parts, " → ")
}
