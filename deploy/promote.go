package deploy

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

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
	Settings          EndpointSettings
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
	SkipPreflight     bool
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
	res.FromEndpoint = cmp.Or(req.FromEndpointName, naming.Endpoint(req.Model, req.From))
	err := d.inPipeline(req.From, "--from")
	if err == nil {
		ctx, err = d.checkEnvironment(ctx, req.Model, req.To)
	}
	if err != nil {
		res.Reason = FailureReason(err)
		return res, err
	}
	ci, dst, err := d.promoteSource(ctx, req, res.FromEndpoint)
	if err != nil {
		res.Reason = FailureReason(err)
		return res, err
	}
	itype, count := req.InstanceType, req.InstanceCount
	if cur, ok := dst.serving(); ok && req.Settings.Serverless == nil {
		// To keeps its own instance settings unless the request gives them.
		itype, count = cmp.Or(itype, cur.InstanceType), cmp.Or(count, dst.instances())
	}
	dr, err := d.Deploy(ctx, DeployRequest{
		Model: req.Model, Environment: req.To, EndpointName: req.EndpointName, ModelName: ci.ModelName,
		InstanceType: itype, InstanceCount: count, Settings: req.Settings, PipelineID: req.PipelineID, ProjectID: req.ProjectID,
		Description: req.Description, Strategy: req.Strategy, Verify: req.Verify, RollbackOnFailure: req.RollbackOnFailure,
		Timeout: req.Timeout, LockTimeout: req.LockTimeout, RestoreEnabled: req.RestoreEnabled, ScaleEnabled: req.ScaleEnabled,
		ReleaseID: req.ReleaseID, Trigger: req.Trigger, kind: releases.KindPromote, snapshot: dst, SkipPreflight: req.SkipPreflight,
	})
	res.DeployResult = dr
	return res, err
}

// promoteSource checks the request, finds what From serves and reads To's endpoint.
func (d *Deployer) promoteSource(ctx context.Context, req PromoteRequest, src string) (configInfo, *endpointSnapshot, error) {
	if err := checkPromote(req); err != nil {
		return configInfo{}, nil, err
	}
	ci, err := d.promoted(ctx, req, src, d.newTracker().sink)
	if err != nil {
		return ci, nil, err
	}
	dst, err := d.readEndpoint(ctx, cmp.Or(req.EndpointName, naming.Endpoint(req.Model, req.To)))
	return ci, dst, err
}

// checkPromote validates a promote request.
func checkPromote(req PromoteRequest) error {
	if err := checkTarget(req.Model, req.To); err != nil {
		return err
	}
	if req.From == "" {
		return errorf(ErrInvalid, "promote needs the environment to promote from (--from, e.g. dev)")
	}
	if req.From == req.To && req.FromEndpointName == req.EndpointName {
		return errorf(ErrInvalid, "promote from %s to itself: give two different environments", req.From)
	}
	return nil
}

// promoted is the configuration From's endpoint src serves, once a change under way is done.
func (d *Deployer) promoted(ctx context.Context, req PromoteRequest, src string, sink func(Event)) (configInfo, error) {
	snap, err := d.readSettled(ctx, src, cmp.Or(max(req.LockTimeout, 0), max(req.Timeout, 0), DefaultTimeout), sink)
	switch {
	case err != nil:
		return configInfo{}, err
	case !snap.exists():
		return configInfo{}, errorf(ErrEndpointNotFound, "model %s has no endpoint %s in %s, so there is nothing to promote: deploy it there first (`sagedeploy deploy --model %s --env %s`)", req.Model, src, req.From, req.Model, req.From)
	case !snap.inService():
		return configInfo{}, fmt.Errorf("endpoint %s of %s is %s, not InService (%s): promote what it serves once it is healthy", src, req.From, snap.status(), snap.failureReason())
	case snap.configErr != nil:
		return configInfo{}, fmt.Errorf("find what %s serves: %w", req.From, snap.configErr)
	}
	ci := snap.config
	if ci.Version.Model != "" && ci.Version.Model != req.Model {
		return ci, errorf(ErrInvalid, "endpoint %s serves model %s, not %s", src, ci.Version.Model, req.Model)
	}
	d.emit(Event{Phase: releases.PhaseResolve, Endpoint: src, Message: fmt.Sprintf("%s serves %s of %s (%s, model %s)", req.From, ci.Version.String(), req.Model, ci.Version.ARN, ci.ModelName)}, sink)
	return ci, nil
}

// currentInstances is the live instance count of the endpoint's first variant, or def.
func currentInstances(desc *sagemaker.DescribeEndpointOutput, def int) int {
	if len(desc.ProductionVariants) > 0 && desc.ProductionVariants[0].CurrentInstanceCount != nil {
		return int(aws.ToInt32(desc.ProductionVariants[0].CurrentInstanceCount))
	}
	return def
}
