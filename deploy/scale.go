package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy/naming"
	"github.com/sagedeploy/sagedeploy/releases"
)

// ScaleRequest asks for a new instance count.
type ScaleRequest struct {
	Model        string
	Environment  string
	EndpointName string
	Instances    int
	// Variant to scale; the endpoint's only variant when empty.
	Variant     string
	PipelineID  string
	ProjectID   string
	Timeout     time.Duration
	LockTimeout time.Duration
	ReleaseID   string
	Trigger     *releases.Trigger
}

// ScaleResult reports a scaling.
type ScaleResult struct {
	Model             string        `json:"model"`
	Environment       string        `json:"environment"`
	Endpoint          string        `json:"endpoint"`
	Variant           string        `json:"variant"`
	PreviousInstances int           `json:"previous_instances"`
	Instances         int           `json:"instances"`
	Changed           bool          `json:"changed"`
	EndpointStatus    string        `json:"endpoint_status"`
	Version           *Version      `json:"version,omitempty"`
	InstanceType      string        `json:"instance_type,omitempty"`
	ReleaseID         string        `json:"release_id,omitempty"`
	Duration          time.Duration `json:"duration_ns"`
}

// Scale sets the instance count of the endpoint's variant live (UpdateEndpointWeightsAndCapacities,
// no new configuration) and waits until the endpoint is InService with that many instances.
func (d *Deployer) Scale(ctx context.Context, req ScaleRequest) (ScaleResult, error) {
	start := d.now()
	res := ScaleResult{Model: req.Model, Environment: req.Environment, Instances: req.Instances}
	if err := checkTarget(req.Model, req.Environment); err != nil {
		return res, err
	}
	if req.Instances < 1 {
		return res, errorf(ErrInvalid, "scale %s in %s to %d instances: give 1 or more (--instances)", req.Model, req.Environment, req.Instances)
	}
	name := req.EndpointName
	if name == "" {
		name = naming.Endpoint(req.Model, req.Environment)
	}
	res.Endpoint = name
	timeout := orDuration(req.Timeout, DefaultTimeout)
	lock := orDuration(req.LockTimeout, timeout)
	tr := d.newTracker()
	desc, err := d.settledEndpoint(ctx, name, lock, tr.sink)
	if err != nil {
		return res, err
	}
	if desc == nil {
		return res, errorf(ErrEndpointNotFound, "model %s has no endpoint %s in %s: deploy it before scaling", req.Model, name, req.Environment)
	}
	if desc.EndpointStatus != types.EndpointStatusInService {
		return res, fmt.Errorf("endpoint %s is %s (%s): only an InService endpoint can be scaled", name, desc.EndpointStatus, aws.ToString(desc.FailureReason))
	}
	variant, err := pickVariant(desc, req.Variant)
	if err != nil {
		return res, err
	}
	res.Variant = aws.ToString(variant.VariantName)
	res.PreviousInstances = int(aws.ToInt32(variant.CurrentInstanceCount))
	ci, err := d.describeConfig(ctx, aws.ToString(desc.EndpointConfigName))
	if err == nil {
		res.Version, res.InstanceType = &ci.Version, ci.InstanceType
	}
	rs := releases.ReleaseStart{
		ID: req.ReleaseID, Environment: req.Environment, Model: req.Model, Kind: releases.KindScale,
		EndpointName: name, EndpointConfigName: aws.ToString(desc.EndpointConfigName),
		InstanceType: res.InstanceType, InstanceCount: req.Instances,
		Trigger: trigger(req.Trigger, req.PipelineID, req.ProjectID),
	}
	if v := res.Version.release(); v != nil {
		rs.Version = *v
	}
	id, err := tr.start(ctx, rs, tr.sink)
	res.ReleaseID = id
	if err != nil {
		return res, err
	}
	fail := func(err error) (ScaleResult, error) {
		tr.finish(releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: err.Error(), EndpointStatus: res.EndpointStatus,
			InstanceType: res.InstanceType, InstanceCount: res.PreviousInstances, ServingVersion: res.Version.release()})
		res.Duration = d.now().Sub(start)
		return res, err
	}
	if res.PreviousInstances == req.Instances {
		res.EndpointStatus = string(desc.EndpointStatus)
		d.emit(Event{Phase: "scale", Endpoint: name, Message: fmt.Sprintf("endpoint %s already runs %d instances of %s; nothing to change", name, req.Instances, res.Variant)}, tr.sink)
		tr.finish(releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: res.EndpointStatus, InstanceType: res.InstanceType, InstanceCount: req.Instances, ServingVersion: res.Version.release()})
		res.Duration = d.now().Sub(start)
		return res, nil
	}
	d.emit(Event{Phase: "scale", Endpoint: name, Message: fmt.Sprintf("scaling %s of endpoint %s from %d to %d instances", res.Variant, name, res.PreviousInstances, req.Instances)}, tr.sink)
	deadline := start.Add(lock)
	for {
		_, err = d.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
			EndpointName: aws.String(name),
			DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{{
				VariantName:          variant.VariantName,
				DesiredInstanceCount: aws.Int32(int32(req.Instances)),
			}},
		})
		if err == nil {
			break
		}
		if !isInProgress(err) {
			return fail(fmt.Errorf("scale endpoint %s to %d instances: %w", name, req.Instances, err))
		}
		if err := d.waitForOther(ctx, name, aws.ToString(desc.EndpointArn), deadline, tr.sink); err != nil {
			return fail(err)
		}
	}
	final, err := d.waitSettled(ctx, name, d.now().Add(timeout), "wait", tr.sink)
	if err != nil {
		return fail(err)
	}
	if final == nil {
		return fail(fmt.Errorf("endpoint %s was deleted while scaling", name))
	}
	res.EndpointStatus = string(final.EndpointStatus)
	if final.EndpointStatus != types.EndpointStatusInService {
		return fail(fmt.Errorf("scaling endpoint %s to %d instances failed: endpoint is %s: %s", name, req.Instances, final.EndpointStatus, orDefault(aws.ToString(final.FailureReason), "no failure reason given")))
	}
	got, err := pickVariant(final, res.Variant)
	if err != nil {
		return fail(err)
	}
	if n := int(aws.ToInt32(got.CurrentInstanceCount)); n != req.Instances {
		return fail(fmt.Errorf("endpoint %s is InService with %d instances of %s, not the %d asked for: %s", name, n, res.Variant, req.Instances, orDefault(aws.ToString(final.FailureReason), "SageMaker did not say why")))
	}
	res.Changed = true
	d.emit(Event{Phase: "scale", Endpoint: name, EndpointStatus: res.EndpointStatus, Message: fmt.Sprintf("endpoint %s runs %d instances of %s", name, req.Instances, res.Variant)}, tr.sink)
	tr.finish(releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: res.EndpointStatus, InstanceType: res.InstanceType, InstanceCount: req.Instances, ServingVersion: res.Version.release()})
	res.Duration = d.now().Sub(start)
	return res, nil
}

// pickVariant returns the named variant, or the only one.
func pickVariant(desc *sagemaker.DescribeEndpointOutput, name string) (types.ProductionVariantSummary, error) {
	var names []string
	for _, v := range desc.ProductionVariants {
		if name == "" && len(desc.ProductionVariants) == 1 || aws.ToString(v.VariantName) == name {
			return v, nil
		}
		names = append(names, aws.ToString(v.VariantName))
	}
	ep := aws.ToString(desc.EndpointName)
	if name == "" {
		if len(names) == 0 {
			return types.ProductionVariantSummary{}, errors.New("endpoint " + ep + " reports no production variant")
		}
		return types.ProductionVariantSummary{}, errorf(ErrInvalid, "endpoint %s has several variants (%s): say which with --variant", ep, strings.Join(names, ", "))
	}
	return types.ProductionVariantSummary{}, errorf(ErrInvalid, "endpoint %s has no variant %s (it has %s)", ep, name, strings.Join(names, ", "))
}
