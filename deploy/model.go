package deploy

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy/naming"
	"github.com/sagedeploy/sagedeploy/releases"
)

// CreateModelRequest asks for the SageMaker model of a registry version.
type CreateModelRequest struct {
	// Model is the model package group, e.g. "abalone".
	Model string
	// Version pins a version number; 0 means the latest Approved one. Within a pipeline, a model
	// the pipeline already created is reused as long as it matches the pin.
	Version int
	// Environment, when known, is recorded in tags only: the model of a version serves every
	// environment.
	Environment string
	PipelineID  string
	ProjectID   string

	// ahead starts the registry lookup and the execution role beside the search for the
	// pipeline's model (the create-model step, which nearly always creates); planning a
	// configuration, which nearly always finds the model, does not.
	ahead bool
}

// CreateModelResult says which model serves the version and whether this call created it.
type CreateModelResult struct {
	ModelName string  `json:"model_name"`
	ModelARN  string  `json:"model_arn,omitempty"`
	Version   Version `json:"version"`
	Created   bool    `json:"created"`
}

// CreateModel makes sure a SageMaker model exists for a registry version: the version's model
// package as the container, the execution role, and tags. Its name is naming.Model; re-running
// it reuses the model. Within a pipeline, the version the pipeline chose first sticks, so a retried
// step does not switch to a version approved in between.
func (d *Deployer) CreateModel(ctx context.Context, req CreateModelRequest) (CreateModelResult, error) {
	ctx, err := d.checkEnvironment(ctx, req.Model, req.Environment)
	if err != nil {
		return CreateModelResult{}, err
	}
	req.ahead = true
	res, err := d.createModel(ctx, req, nil)
	if err == nil && res.Version.named {
		// The answer names the version's ARN: read it through the model the pipeline made.
		res.Version, err = d.withDetails(ctx, res.Version, res.ModelName)
	}
	return res, err
}

func (d *Deployer) createModel(ctx context.Context, req CreateModelRequest, sink func(Event)) (CreateModelResult, error) {
	plan, err := d.planModel(ctx, req, sink)
	if err != nil {
		return CreateModelResult{}, err
	}
	return d.applyModel(ctx, plan, sink)
}

// modelPlan is the model a step will use: found (made earlier in the pipeline), or to be made
// (or reused) under its deterministic name. Planning creates nothing.
type modelPlan struct {
	req     CreateModelRequest
	found   *CreateModelResult // the pipeline's existing model
	name    string
	version Version
	role    *readAhead[string] // the execution role, when looked up ahead
}

func (d *Deployer) planModel(ctx context.Context, req CreateModelRequest, sink func(Event)) (modelPlan, error) {
	if req.Model == "" {
		return modelPlan{}, errorf(ErrInvalid, "no model given: set --model or MODEL_NAME to the model package group name")
	}
	if err := releases.CheckModelName(req.Model); err != nil {
		return modelPlan{}, errorf(ErrInvalid, "%s", err)
	}
	resolve := func() (Version, error) { return d.resolveVersion(ctx, req.Model, req.Version, false) }
	var resolved *readAhead[Version]
	plan := modelPlan{req: req}
	if req.ahead {
		resolved = ahead(resolve)
		plan.role = ahead(func() (string, error) { return d.executionRole(ctx) })
	}
	if req.PipelineID != "" {
		found, ok, err := d.findPipelineModel(ctx, req.Model, req.PipelineID, req.Version)
		if err != nil {
			return modelPlan{}, err
		}
		if ok {
			plan.found, plan.name, plan.version = &found, found.ModelName, found.Version
			return plan, nil
		}
	}
	d.emit(Event{Phase: releases.PhaseResolve, Message: resolveMessage(req.Model, req.Version)}, sink)
	if resolved == nil {
		resolved = ahead(resolve)
	}
	v, err := resolved.wait(ctx)
	if err != nil {
		return modelPlan{}, err
	}
	d.emit(Event{Phase: releases.PhaseResolve, Message: fmt.Sprintf("%s of %s: %s", v.String(), req.Model, v.ARN)}, sink)
	plan.name, plan.version = naming.Model(req.Model, v.Number, req.PipelineID), v
	return plan, nil
}

func (d *Deployer) applyModel(ctx context.Context, p modelPlan, sink func(Event)) (CreateModelResult, error) {
	if p.found != nil {
		d.emit(Event{Phase: releases.PhaseModel, Message: fmt.Sprintf("reusing model %s (%s of %s) made earlier in pipeline %s", p.found.ModelName, p.found.Version.String(), p.req.Model, p.req.PipelineID)}, sink)
		return *p.found, nil
	}
	if p.role == nil {
		p.role = ahead(func() (string, error) { return d.executionRole(ctx) })
	}
	return d.ensureModel(ctx, p.version, p.req, p.role, sink)
}

func resolveMessage(model string, pinned int) string {
	if pinned > 0 {
		return fmt.Sprintf("looking up version %d of %s in the model registry", pinned, model)
	}
	return fmt.Sprintf("looking up the latest Approved version of %s in the model registry", model)
}

// ensureModel creates the model of v unless it exists. It creates first and describes only when
// the model exists (a retried step): the common case costs one call, not two.
func (d *Deployer) ensureModel(ctx context.Context, v Version, req CreateModelRequest, roleAhead *readAhead[string], sink func(Event)) (CreateModelResult, error) {
	name := naming.Model(req.Model, v.Number, req.PipelineID)
	res := CreateModelResult{ModelName: name, Version: v}
	role, err := roleAhead.wait(ctx)
	if err != nil {
		return res, err
	}
	tags := versionTags(d.baseTags(req.Model, req.Environment, req.PipelineID, req.ProjectID), v)
	out, err := d.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String(name),
		ExecutionRoleArn: aws.String(role),
		PrimaryContainer: &types.ContainerDefinition{ModelPackageName: aws.String(v.ARN)},
		Tags:             sdkTags(tags),
	})
	switch {
	case isAlreadyExists(err):
		return d.reuseModel(ctx, res, sink)
	case err != nil:
		return res, fmt.Errorf("create model %s for %s of %s: %w", name, v.String(), req.Model, err)
	}
	res.ModelARN = aws.ToString(out.ModelArn)
	res.Created = true
	d.emit(Event{Phase: releases.PhaseModel, Message: fmt.Sprintf("created model %s from %s", name, v.ARN)}, sink)
	return res, nil
}

// reuseModel takes the model a retried (or concurrent) step made, when it serves the same version.
func (d *Deployer) reuseModel(ctx context.Context, res CreateModelResult, sink func(Event)) (CreateModelResult, error) {
	name, v := res.ModelName, res.Version
	existing, err := d.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String(name)})
	if err != nil {
		return res, fmt.Errorf("describe model %s: %w", name, err)
	}
	if pkg := modelPackageOf(existing.PrimaryContainer, existing.Containers); pkg != "" && pkg != v.ARN {
		return res, fmt.Errorf("model %s exists but serves %s, not %s: delete it or use another pipeline id", name, pkg, v.ARN)
	}
	res.ModelARN = aws.ToString(existing.ModelArn)
	d.emit(Event{Phase: releases.PhaseModel, Message: fmt.Sprintf("model %s already exists for %s; reusing it", name, v.String())}, sink)
	return res, nil
}

func modelPackageOf(primary *types.ContainerDefinition, containers []types.ContainerDefinition) string {
	if primary != nil && primary.ModelPackageName != nil {
		return aws.ToString(primary.ModelPackageName)
	}
	for _, c := range containers {
		if c.ModelPackageName != nil {
			return aws.ToString(c.ModelPackageName)
		}
	}
	return ""
}

// findPipelineModel finds the model this pipeline created for the model group (newest first),
// matching the pinned version if any. Names carry the pipeline key, so one filtered list finds the
// candidates, and each name says its version (naming.ModelVersion): nothing is described here.
// The version's ARN and details are read through the model where they are needed (withDetails:
// preflight, CreateModel's answer), which also catches a model that only looks like ours.
func (d *Deployer) findPipelineModel(ctx context.Context, model, pipelineID string, pinned int) (CreateModelResult, bool, error) {
	key := naming.PipelineKey(pipelineID)
	var best *types.ModelSummary
	var number int
	p := sagemaker.NewListModelsPaginator(d.sm, &sagemaker.ListModelsInput{NameContains: aws.String(key), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return CreateModelResult{}, false, fmt.Errorf("list models of pipeline %s: %w", pipelineID, err)
		}
		for i, m := range page.Models {
			n, ok := naming.ModelVersion(aws.ToString(m.ModelName), model, pipelineID)
			if ok && (pinned == 0 || n == pinned) && (best == nil || aws.ToTime(m.CreationTime).After(aws.ToTime(best.CreationTime))) {
				best, number = &page.Models[i], n
			}
		}
	}
	if best == nil {
		return CreateModelResult{}, false, nil
	}
	v := Version{Model: model, Number: number, named: true}
	return CreateModelResult{ModelName: aws.ToString(best.ModelName), ModelARN: aws.ToString(best.ModelArn), Version: v}, true, nil
}

// modelVersion says which registry version a SageMaker model serves: its container's model
// package, else its tags. The Version is zero when the model was not made from the registry.
func (d *Deployer) modelVersion(ctx context.Context, modelName string) (Version, error) {
	out, err := d.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String(modelName)})
	if err != nil {
		return Version{}, fmt.Errorf("describe model %s: %w", modelName, err)
	}
	arn := modelPackageOf(out.PrimaryContainer, out.Containers)
	if arn == "" {
		tags, err := d.listTags(ctx, aws.ToString(out.ModelArn))
		if err != nil {
			return Version{}, err
		}
		arn = tags[TagModelPackageARN]
		if arn == "" {
			n, _ := strconv.Atoi(tags[TagVersion])
			return Version{Model: tags[TagModel], Number: n}, nil
		}
	}
	v, err := d.describeVersion(ctx, arn)
	if err != nil {
		// The package may have been deleted; what the ARN says is still worth reporting.
		if g, n, ok := versionFromARN(arn); ok {
			return Version{Model: g, Number: n, ARN: arn}, nil
		}
		return Version{}, err
	}
	return v, nil
}
