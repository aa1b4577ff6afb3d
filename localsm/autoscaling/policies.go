package autoscaling

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// PredefinedMetricSpecification names the metric a target-tracking policy follows.
type PredefinedMetricSpecification struct {
	PredefinedMetricType string `json:"PredefinedMetricType"`
	ResourceLabel        string `json:"ResourceLabel,omitempty"`
}

// TargetTrackingConfiguration is a target-tracking policy's settings, as in the API.
type TargetTrackingConfiguration struct {
	TargetValue                   *float64                       `json:"TargetValue"`
	PredefinedMetricSpecification *PredefinedMetricSpecification `json:"PredefinedMetricSpecification,omitempty"`
	CustomizedMetricSpecification map[string]any                 `json:"CustomizedMetricSpecification,omitempty"`
	ScaleOutCooldown              *int                           `json:"ScaleOutCooldown,omitempty"`
	ScaleInCooldown               *int                           `json:"ScaleInCooldown,omitempty"`
	DisableScaleIn                bool                           `json:"DisableScaleIn"`
}

// ScalingPolicy is a policy, in the shape DescribeScalingPolicies answers with.
type ScalingPolicy struct {
	PolicyARN                                string                       `json:"PolicyARN"`
	PolicyName                               string                       `json:"PolicyName"`
	ServiceNamespace                         string                       `json:"ServiceNamespace"`
	ResourceId                               string                       `json:"ResourceId"`
	ScalableDimension                        string                       `json:"ScalableDimension"`
	PolicyType                               string                       `json:"PolicyType"`
	TargetTrackingScalingPolicyConfiguration *TargetTrackingConfiguration `json:"TargetTrackingScalingPolicyConfiguration,omitempty"`
	Alarms                                   []any                        `json:"Alarms"`
	CreationTime                             epoch                        `json:"CreationTime"`
}

type putPolicyInput struct {
	targetKey
	PolicyName                               string                       `json:"PolicyName"`
	PolicyType                               string                       `json:"PolicyType"`
	TargetTrackingScalingPolicyConfiguration *TargetTrackingConfiguration `json:"TargetTrackingScalingPolicyConfiguration"`
	StepScalingPolicyConfiguration           map[string]any               `json:"StepScalingPolicyConfiguration"`
}

// AWS's default cooldowns for SageMaker variants, in seconds.
const (
	defaultScaleOutCooldown = 300
	defaultScaleInCooldown  = 300
)

func (in *putPolicyInput) check() error {
	tt := in.TargetTrackingScalingPolicyConfiguration
	switch {
	case in.PolicyName == "":
		return errValidation("1 validation error detected: Value null at 'policyName' failed to satisfy constraint: Member must not be null")
	case cmp.Or(in.PolicyType, "StepScaling") != "TargetTrackingScaling":
		return errValidation("Policy %s: sagedeploy local runs target-tracking policies only (PolicyType TargetTrackingScaling), not %s.", in.PolicyName, cmp.Or(in.PolicyType, "StepScaling"))
	case tt == nil:
		return errValidation("Policy %s: TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling policy.", in.PolicyName)
	case tt.TargetValue == nil || *tt.TargetValue <= 0:
		return errValidation("Policy %s: TargetValue must be a positive number of invocations per instance per minute.", in.PolicyName)
	case tt.CustomizedMetricSpecification != nil || tt.PredefinedMetricSpecification == nil:
		return errValidation("Policy %s: sagedeploy local tracks the predefined metric %s only; customized metrics are not supported.", in.PolicyName, metricPerInstance)
	case tt.PredefinedMetricSpecification.PredefinedMetricType != metricPerInstance:
		return errValidation("Policy %s: predefined metric %s is not supported by sagedeploy local; use %s.", in.PolicyName, tt.PredefinedMetricSpecification.PredefinedMetricType, metricPerInstance)
	}
	return nil
}

func (s *Service) putScalingPolicy(ctx context.Context, body []byte) (any, error) {
	var in putPolicyInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.targetKey.check(); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.targets[in.ResourceId] == nil {
		return nil, in.targetKey.notRegistered()
	}
	key := in.ResourceId + "/" + in.PolicyName
	p := s.policies[key]
	if p == nil {
		p = &ScalingPolicy{PolicyName: in.PolicyName, ServiceNamespace: in.ServiceNamespace, ResourceId: in.ResourceId,
			ScalableDimension: in.ScalableDimension, CreationTime: epoch(s.opts.Now().UTC()), Alarms: []any{},
			PolicyARN: fmt.Sprintf("arn:aws:autoscaling:%s:%s:scalingPolicy:%s:resource/%s/%s:policyName/%s",
				s.opts.Region, s.opts.Account, uuid.NewString(), in.ServiceNamespace, in.ResourceId, in.PolicyName)}
	}
	next := *p
	next.PolicyType = in.PolicyType
	next.TargetTrackingScalingPolicyConfiguration = in.TargetTrackingScalingPolicyConfiguration
	if err := s.save(ctx, kindPolicy, key, &next); err != nil {
		return nil, apiErr(500, "InternalServiceException", "%v", err)
	}
	s.policies[key] = &next
	return map[string]any{"PolicyARN": next.PolicyARN, "Alarms": []any{}}, nil
}

type describePoliciesInput struct {
	ServiceNamespace  string   `json:"ServiceNamespace"`
	PolicyNames       []string `json:"PolicyNames"`
	ResourceId        string   `json:"ResourceId"`
	ScalableDimension string   `json:"ScalableDimension"`
}

func (s *Service) describeScalingPolicies(_ context.Context, body []byte) (any, error) {
	var in describePoliciesInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ServiceNamespace == "" {
		return nil, errValidation("1 validation error detected: Value null at 'serviceNamespace' failed to satisfy constraint: Member must not be null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []ScalingPolicy{}
	for _, k := range sortedKeys(s.policies) {
		p := s.policies[k]
		if p.ServiceNamespace != in.ServiceNamespace || (in.ResourceId != "" && p.ResourceId != in.ResourceId) ||
			(in.ScalableDimension != "" && p.ScalableDimension != in.ScalableDimension) ||
			(len(in.PolicyNames) > 0 && !slices.Contains(in.PolicyNames, p.PolicyName)) {
			continue
		}
		out = append(out, *p)
	}
	return map[string]any{"ScalingPolicies": out}, nil
}

type deletePolicyInput struct {
	targetKey
	PolicyName string `json:"PolicyName"`
}

func (s *Service) deleteScalingPolicy(ctx context.Context, body []byte) (any, error) {
	var in deletePolicyInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.targetKey.check(); err != nil {
		return nil, err
	}
	key := in.ResourceId + "/" + in.PolicyName
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policies[key] == nil {
		return nil, errNotFound("No scaling policy found for service namespace: %s, resource ID: %s, scalable dimension: %s, policy name: %s",
			in.ServiceNamespace, in.ResourceId, in.ScalableDimension, in.PolicyName)
	}
	if err := s.opts.Store.Delete(ctx, kindPolicy, key); err != nil {
		return nil, apiErr(500, "InternalServiceException", "%v", err)
	}
	delete(s.policies, key)
	return nil, nil
}
