package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Autoscaling around an update. AWS asks that a variant's scalable target be deregistered
// before UpdateEndpoint and registered again afterwards; done by hand, the policies are usually
// lost. The deployer saves the target and its policies, deregisters them, and puts them back
// once the update ended — whichever way it ended — on the variant that serves then.

// savedScaling is a variant's scalable target and policies, as they were before an update.
type savedScaling struct {
	endpoint string
	target   aastypes.ScalableTarget
	policies []aastypes.ScalingPolicy
}

func variantResource(endpoint, variant string) string {
	return "endpoint/" + endpoint + "/variant/" + variant
}

// suspendScaling deregisters the autoscaling of the endpoint's serving variant before an update;
// nil when it has none.
func (d *Deployer) suspendScaling(ctx context.Context, snap *endpointSnapshot, sink func(Event)) (*savedScaling, error) {
	cur, ok := snap.serving()
	if !ok {
		return nil, nil
	}
	name := aws.ToString(snap.desc.EndpointName)
	res := variantResource(name, cur.Variant)
	targets, err := d.aas.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{
		ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceIds: []string{res},
		ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount})
	if err != nil {
		return nil, fmt.Errorf("read the autoscaling of %s: %w", res, err)
	}
	if len(targets.ScalableTargets) == 0 {
		return nil, nil
	}
	s := &savedScaling{endpoint: name, target: targets.ScalableTargets[0]}
	p := aas.NewDescribeScalingPoliciesPaginator(d.aas, &aas.DescribeScalingPoliciesInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
		ResourceId: aws.String(res), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the scaling policies of %s: %w", res, err)
		}
		s.policies = append(s.policies, page.ScalingPolicies...)
	}
	if _, err := d.aas.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
		ResourceId: aws.String(res), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount}); err != nil {
		return nil, fmt.Errorf("deregister the autoscaling of %s before the update: %w", res, err)
	}
	d.emit(Event{Phase: releases.PhaseEndpoint, Endpoint: name, Message: fmt.Sprintf("autoscaling of %s deregistered for the update (%s); it is registered again afterwards", res, s.describe())}, sink)
	return s, nil
}

func (s *savedScaling) describe() string {
	names := make([]string, 0, len(s.policies))
	for _, p := range s.policies {
		names = append(names, aws.ToString(p.PolicyName))
	}
	return fmt.Sprintf("%d to %d instances, policies %s", aws.ToInt32(s.target.MinCapacity), aws.ToInt32(s.target.MaxCapacity), strings.Join(names, ", "))
}

// resumeScaling registers the saved autoscaling again, on the variant that serves now. A failure
// is an error naming what to restore by hand, since the endpoint no longer scales.
func (d *Deployer) resumeScaling(ctx context.Context, s *savedScaling, variant string, sink func(Event)) error {
	if s == nil {
		return nil
	}
	res := variantResource(s.endpoint, variant)
	fail := func(err error) error {
		return fmt.Errorf("register the autoscaling of %s again (%s): %w — restore it by hand (aws application-autoscaling register-scalable-target / put-scaling-policy)", res, s.describe(), err)
	}
	t := s.target
	if _, err := d.aas.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
		ResourceId: aws.String(res), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount,
		MinCapacity: t.MinCapacity, MaxCapacity: t.MaxCapacity, RoleARN: t.RoleARN, SuspendedState: t.SuspendedState}); err != nil {
		return fail(err)
	}
	for _, p := range s.policies {
		if _, err := d.aas.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
			ResourceId: aws.String(res), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount,
			PolicyName: p.PolicyName, PolicyType: p.PolicyType,
			TargetTrackingScalingPolicyConfiguration: p.TargetTrackingScalingPolicyConfiguration,
			StepScalingPolicyConfiguration:           p.StepScalingPolicyConfiguration,
			PredictiveScalingPolicyConfiguration:     p.PredictiveScalingPolicyConfiguration}); err != nil {
			return fail(err)
		}
	}
	d.emit(Event{Phase: releases.PhaseEndpoint, Endpoint: s.endpoint, Message: fmt.Sprintf("autoscaling of %s registered again (%s)", res, s.describe())}, sink)
	return nil
}
