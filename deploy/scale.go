package deploy

import (
	"cmp"
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
	Model             string   `json:"model"`
	Environment       string   `json:"environment"`
	Endpoint          string   `json:"endpoint"`
	Variant           string   `json:"variant"`
	PreviousInstances int      `json:"previous_instances"`
	Instances         int      `json:"instances"`
	Changed           bool     `json:"changed"`
	EndpointStatus    string   `json:"endpoint_status"`
	Version           *Version `json:"version,omitempty"`
	InstanceType      string   `json:"instance_type,omitempty"`
	// Reason classifies a failure (empty on success), as on the release.
	Reason    releases.Reason `json:"reason,omitempty"`
	ReleaseID string          `json:"release_id,omitempty"`
	// ReleaseURL is the release's page on the release server.
	ReleaseURL string        `json:"release_url,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// Scale sets the instance count of the endpoint's variant live (UpdateEndpointWeightsAndCapacities,
// no new configuration) and waits until the endpoint is InService with that many instances.
func (d *Deployer) Scale(ctx context.Context, req ScaleRequest) (ScaleResult, error) {
	start := d.now()
	tr := d.newTracker()
	res := ScaleResult{Model: req.Model, Environment: req.Environment, Instances: req.Instances}
	err := d.scale(ctx, req, &res, tr)
	// The one exit: the release reports the instances that run afterwards.
	res.Duration, res.Reason = d.now().Sub(start), FailureReason(err)
	f := releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: res.EndpointStatus,
		InstanceType: res.InstanceType, InstanceCount: req.Instances, ServingVersion: res.Version.release()}
	if err != nil {
		f.Status, f.Reason, f.FailureReason, f.InstanceCount = releases.StatusFailed, res.Reason, err.Error(), res.PreviousInstances
	}
	tr.finish(f)
	return res, err
}

// scale runs the steps of Scale: check, read the endpoint, report the release, scale, wait.
func (d *Deployer) scale(ctx context.Context, req ScaleRequest, res *ScaleResult, tr *tracker) error {
	if err := checkTarget(req.Model, req.Environment); err != nil {
		return err
	}
	if req.Instances < 1 {
		return errorf(ErrInvalid, "scale %s in %s to %d instances: give 1 or more (--instances)", req.Model, req.Environment, req.Instances)
	}
	ctx, err := d.checkEnvironment(ctx, req.Model, req.Environment)
	if err != nil {
		return err
	}
	name := cmp.Or(req.EndpointName, naming.Endpoint(req.Model, req.Environment))
	res.Endpoint = name
	timeout := cmp.Or(max(req.Timeout, 0), DefaultTimeout)
	lock := cmp.Or(max(req.LockTimeout, 0), timeout)
	deadline := d.now().Add(lock)
	snap, variant, err := d.scaleTarget(ctx, req, name, lock, tr.sink)
	if err != nil {
		return err
	}
	res.Variant = aws.ToString(variant.VariantName)
	res.PreviousInstances = int(aws.ToInt32(variant.CurrentInstanceCount))
	if ci, ok := snap.serving(); ok {
		res.Version, res.InstanceType = &ci.Version, ci.InstanceType
	}
	if res.ReleaseID, err = d.startScale(ctx, req, snap, res, tr); err != nil {
		return err
	}
	res.ReleaseURL = d.releaseURL(res.ReleaseID)
	if res.PreviousInstances == req.Instances {
		res.EndpointStatus = string(snap.status())
		d.emit(Event{Phase: releases.PhaseScale, Endpoint: name, Message: fmt.Sprintf("endpoint %s already runs %d instances of %s; nothing to change", name, req.Instances, res.Variant)}, tr.sink)
		return nil
	}
	d.emit(Event{Phase: releases.PhaseScale, Endpoint: name, Message: fmt.Sprintf("scaling %s of endpoint %s from %d to %d instances", res.Variant, name, res.PreviousInstances, req.Instances)}, tr.sink)
	if err := d.setInstances(ctx, snap, variant, req.Instances, deadline, tr.sink); err != nil {
		return err
	}
	if err := d.awaitScale(ctx, res, req.Instances, timeout, tr.sink); err != nil {
		return err
	}
	res.Changed = true
	d.emit(Event{Phase: releases.PhaseScale, Endpoint: name, EndpointStatus: res.EndpointStatus, Message: fmt.Sprintf("endpoint %s runs %d instances of %s", name, req.Instances, res.Variant)}, tr.sink)
	return nil
}

// scaleTarget reads the endpoint to scale, once a change under way is done, and picks its variant.
func (d *Deployer) scaleTarget(ctx context.Context, req ScaleRequest, name string, lock time.Duration, sink func(Event)) (*endpointSnapshot, types.ProductionVariantSummary, error) {
	snap, err := d.readSettled(ctx, name, lock, sink)
	switch {
	case err != nil:
		return nil, types.ProductionVariantSummary{}, err
	case !snap.exists():
		return nil, types.ProductionVariantSummary{}, errorf(ErrEndpointNotFound, "model %s has no endpoint %s in %s: deploy it before scaling", req.Model, name, req.Environment)
	case !snap.inService():
		return nil, types.ProductionVariantSummary{}, snap.notInService(name, "only an InService endpoint can be scaled")
	}
	variant, err := pickVariant(snap.desc, req.Variant)
	return snap, variant, err
}

// startScale reports the release of kind scale.
func (d *Deployer) startScale(ctx context.Context, req ScaleRequest, snap *endpointSnapshot, res *ScaleResult, tr *tracker) (string, error) {
	rs := releases.ReleaseStart{
		ID: req.ReleaseID, Environment: req.Environment, Model: req.Model, Kind: releases.KindScale,
		EndpointName: res.Endpoint, EndpointConfigName: snap.configName(),
		InstanceType: res.InstanceType, InstanceCount: req.Instances,
		Trigger: d.trigger(req.Trigger, req.PipelineID, req.ProjectID),
	}
	if v := res.Version.release(); v != nil {
		rs.Version = *v
	}
	id, _, err := tr.start(ctx, rs, tr.sink)
	return id, err
}

// setInstances asks for count instances of the variant, waiting (up to deadline) for a change
// under way on the endpoint to finish first.
func (d *Deployer) setInstances(ctx context.Context, snap *endpointSnapshot, variant types.ProductionVariantSummary, count int, deadline time.Time, sink func(Event)) error {
	name := aws.ToString(snap.desc.EndpointName)
	for {
		_, err := d.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
			EndpointName: snap.desc.EndpointName,
			DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{{
				VariantName:          variant.VariantName,
				DesiredInstanceCount: aws.Int32(int32(count)),
			}},
		})
		if err == nil {
			return nil
		}
		if !isInProgress(err) {
			return fmt.Errorf("scale endpoint %s to %d instances: %w", name, count, err)
		}
		if _, err := d.waitForOther(ctx, name, snap, deadline, sink); err != nil {
			return err
		}
	}
}

// awaitScale waits until the endpoint is InService with count instances of res.Variant.
func (d *Deployer) awaitScale(ctx context.Context, res *ScaleResult, count int, timeout time.Duration, sink func(Event)) error {
	name := res.Endpoint
	final, err := d.waitSettled(ctx, name, d.now().Add(timeout), releases.PhaseWait, sink)
	if err != nil {
		return err
	}
	if final == nil {
		return fmt.Errorf("endpoint %s was deleted while scaling", name)
	}
	res.EndpointStatus = string(final.EndpointStatus)
	if final.EndpointStatus != types.EndpointStatusInService {
		return errorf(ErrDeployFailed, "scaling endpoint %s to %d instances failed: endpoint is %s: %s", name, count, final.EndpointStatus, cmp.Or(aws.ToString(final.FailureReason), "no failure reason given"))
	}
	got, err := pickVariant(final, res.Variant)
	if err != nil {
		return err
	}
	if n := int(aws.ToInt32(got.CurrentInstanceCount)); n != count {
		return fmt.Errorf("endpoint %s is InService with %d instances of %s, not the %d asked for: %s", name, n, res.Variant, count, cmp.Or(aws.ToString(final.FailureReason), "SageMaker did not say why"))
	}
	return nil
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
