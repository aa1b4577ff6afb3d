package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy/naming"
	"github.com/sagedeploy/sagedeploy/releases"
)

// PromoteRequest asks to serve in one environment exactly what another one serves.
type PromoteRequest struct {
	Model string
	From  string
	To    string
	// FromEndpointName and EndpointName override the default endpoint names of From and To.
	FromEndpointName string
	EndpointName     string
	// InstanceType and InstanceCount are To's; empty / 0 keep what To runs now, else the defaults.
	InstanceType      string
	InstanceCount     int
	PipelineID        string
	ProjectID         string
	Description       string
	Strategy          Strategy
	Verify            *Verification
	RollbackOnFailure bool
	Timeout           time.Duration
	LockTimeout       time.Duration
	RestoreEnabled    *bool
	ScaleEnabled      *bool
	ReleaseID         string
	Trigger           *releases.Trigger
}

// PromoteResult is the deployment into To, plus where the version came from.
type PromoteResult struct {
	DeployResult
	From         string `json:"from_environment"`
	FromEndpoint string `json:"from_endpoint"`
}

// Promote deploys to To the very SageMaker model (hence the same model package ARN) that From's
// endpoint serves now — found from From's current endpoint configuration — with To's own instance
// settings. From must be InService; a deployment in progress there is waited for first.
func (d *Deployer) Promote(ctx context.Context, req PromoteRequest) (PromoteResult, error) {
	res := PromoteResult{From: req.From}
	if err := checkTarget(req.Model, req.To); err != nil {
		return res, err
	}
	if req.From == "" {
		return res, errorf(ErrInvalid, "promote needs the environment to promote from (--from, e.g. dev)")
	}
	if req.From == req.To && req.FromEndpointName == req.EndpointName {
		return res, errorf(ErrInvalid, "promote from %s to itself: give two different environments", req.From)
	}
	tr := d.newTracker()
	src := req.FromEndpointName
	if src == "" {
		src = naming.Endpoint(req.Model, req.From)
	}
	res.FromEndpoint = src
	timeout := req.LockTimeout
	if timeout <= 0 {
		timeout = orDuration(req.Timeout, DefaultTimeout)
	}
	desc, err := d.settledEndpoint(ctx, src, timeout, tr.sink)
	if err != nil {
		return res, err
	}
	if desc == nil {
		return res, errorf(ErrEndpointNotFound, "model %s has no endpoint %s in %s, so there is nothing to promote: deploy it there first (`sagedeploy deploy --model %s --env %s`)", req.Model, src, req.From, req.Model, req.From)
	}
	if desc.EndpointStatus != types.EndpointStatusInService {
		return res, fmt.Errorf("endpoint %s of %s is %s, not InService (%s): promote what it serves once it is healthy", src, req.From, desc.EndpointStatus, aws.ToString(desc.FailureReason))
	}
	ci, err := d.describeConfig(ctx, aws.ToString(desc.EndpointConfigName))
	if err != nil {
		return res, fmt.Errorf("find what %s serves: %w", req.From, err)
	}
	if ci.Version.Model != "" && ci.Version.Model != req.Model {
		return res, errorf(ErrInvalid, "endpoint %s serves model %s, not %s", src, ci.Version.Model, req.Model)
	}
	d.emit(Event{Phase: "resolve", Endpoint: src, Message: fmt.Sprintf("%s serves %s of %s (%s, model %s)", req.From, ci.Version.String(), req.Model, ci.Version.ARN, ci.ModelName)}, tr.sink)

	itype, count := req.InstanceType, req.InstanceCount
	dst := req.EndpointName
	if dst == "" {
		dst = naming.Endpoint(req.Model, req.To)
	}
	if itype == "" || count == 0 {
		if cur, err := d.describeEndpoint(ctx, dst); err == nil && cur != nil && cur.EndpointStatus == types.EndpointStatusInService {
			if curCfg, err := d.describeConfig(ctx, aws.ToString(cur.EndpointConfigName)); err == nil {
				if itype == "" {
					itype = curCfg.InstanceType
				}
				if count == 0 {
					count = currentInstances(cur, curCfg.InstanceCount)
				}
			}
		}
	}
	dr, err := d.Deploy(ctx, DeployRequest{
		Model: req.Model, Environment: req.To, EndpointName: req.EndpointName, ModelName: ci.ModelName,
		InstanceType: itype, InstanceCount: count, PipelineID: req.PipelineID, ProjectID: req.ProjectID,
		Description: req.Description, Strategy: req.Strategy, Verify: req.Verify, RollbackOnFailure: req.RollbackOnFailure,
		Timeout: req.Timeout, LockTimeout: req.LockTimeout, RestoreEnabled: req.RestoreEnabled, ScaleEnabled: req.ScaleEnabled,
		ReleaseID: req.ReleaseID, Trigger: req.Trigger, kind: releases.KindPromote,
	})
	res.DeployResult = dr
	return res, err
}

// currentInstances is the live instance count of the endpoint's first variant, or def.
func currentInstances(desc *sagemaker.DescribeEndpointOutput, def int) int {
	if len(desc.ProductionVariants) > 0 && desc.ProductionVariants[0].CurrentInstanceCount != nil {
		return int(aws.ToInt32(desc.ProductionVariants[0].CurrentInstanceCount))
	}
	return def
}

// settledEndpoint describes the endpoint, first waiting (up to timeout) for a change under way
// to finish. Nil when the endpoint does not exist.
func (d *Deployer) settledEndpoint(ctx context.Context, name string, timeout time.Duration, sink func(Event)) (*sagemaker.DescribeEndpointOutput, error) {
	desc, err := d.describeEndpoint(ctx, name)
	if err != nil || desc == nil || !pending(desc.EndpointStatus) {
		return desc, err
	}
	if err := d.waitForOther(ctx, name, aws.ToString(desc.EndpointArn), d.now().Add(timeout), sink); err != nil {
		return nil, err
	}
	return d.describeEndpoint(ctx, name)
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
