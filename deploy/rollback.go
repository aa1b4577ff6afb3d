package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

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
}

// Rollback re-points the endpoint at the endpoint configuration that served the target version,
// found in the endpoint's history (its tags) — same model, same instance settings as then. A
// version the endpoint never served (or whose configuration was deleted) is deployed afresh
// with the endpoint's current instance settings. The release is of kind restore.
func (d *Deployer) Rollback(ctx context.Context, req RollbackRequest) (DeployResult, error) {
	res := DeployResult{Model: req.Model, Environment: req.Environment, Kind: releases.KindRestore}
	if err := checkTarget(req.Model, req.Environment); err != nil {
		return res, err
	}
	name := req.EndpointName
	if name == "" {
		name = naming.Endpoint(req.Model, req.Environment)
	}
	res.Endpoint = name
	desc, err := d.settledEndpoint(ctx, name, orDuration(req.LockTimeout, orDuration(req.Timeout, DefaultTimeout)), nil)
	if err != nil {
		return res, err
	}
	if desc == nil {
		return res, errorf(ErrEndpointNotFound, "model %s has no endpoint %s in %s: nothing to roll back", req.Model, name, req.Environment)
	}
	if desc.EndpointStatus != types.EndpointStatusInService {
		return res, fmt.Errorf("endpoint %s is %s (%s): rollback re-points an InService endpoint", name, desc.EndpointStatus, aws.ToString(desc.FailureReason))
	}
	current := aws.ToString(desc.EndpointConfigName)
	cur, err := d.describeConfig(ctx, current)
	if err != nil {
		return res, fmt.Errorf("find what %s serves: %w", name, err)
	}
	tags, err := d.listTags(ctx, aws.ToString(desc.EndpointArn))
	if err != nil {
		return res, err
	}
	hist := parseHistory(tags)
	dr := DeployRequest{
		Model: req.Model, Environment: req.Environment, EndpointName: req.EndpointName,
		PipelineID: req.PipelineID, ProjectID: req.ProjectID, Timeout: req.Timeout, LockTimeout: req.LockTimeout,
		ReleaseID: req.ReleaseID, Trigger: req.Trigger, kind: releases.KindRestore, historyKind: "restore",
	}
	var target *HistoryEntry
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		if h.EndpointConfigName == current || h.Version == cur.Version.Number && req.ToVersion == 0 {
			continue
		}
		if req.ToVersion == 0 || h.Version == req.ToVersion {
			target = &h
			break
		}
	}
	switch {
	case req.ToVersion != 0 && req.ToVersion == cur.Version.Number:
		dr.EndpointConfigName = current // already there: Deploy reports it unchanged
	case target != nil:
		if _, err := d.describeConfig(ctx, target.EndpointConfigName); err == nil {
			dr.EndpointConfigName = target.EndpointConfigName
			break
		} else if !isNotFound(err) {
			return res, err
		}
		// Its configuration was deleted: serve the same version through a new one.
		dr.Version, dr.InstanceType, dr.InstanceCount = target.Version, cur.InstanceType, currentInstances(desc, cur.InstanceCount)
	case req.ToVersion != 0:
		dr.Version, dr.InstanceType, dr.InstanceCount = req.ToVersion, cur.InstanceType, currentInstances(desc, cur.InstanceCount)
	default:
		return res, errorf(ErrNothingToRollBack, "endpoint %s has served no other version than %s (history: %s); nothing to roll back to — deploy a version with `sagedeploy deploy --env %s --version N`",
			name, cur.Version.String(), describeHistory(hist), req.Environment)
	}
	return d.Deploy(ctx, dr)
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
