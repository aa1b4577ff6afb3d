package autoscaling

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
)

const (
	namespaceSageMaker = "sagemaker"
	dimensionVariant   = "sagemaker:variant:DesiredInstanceCount"
	metricPerInstance  = "SageMakerVariantInvocationsPerInstance"
)

var variantResource = regexp.MustCompile(`^endpoint/([^/]+)/variant/([^/]+)$`)

// SuspendedState pauses parts of scaling, as in the API.
type SuspendedState struct {
	DynamicScalingInSuspended  bool `json:"DynamicScalingInSuspended"`
	DynamicScalingOutSuspended bool `json:"DynamicScalingOutSuspended"`
	ScheduledScalingSuspended  bool `json:"ScheduledScalingSuspended"`
}

// ScalableTarget is a registered variant, in the shape DescribeScalableTargets answers with.
type ScalableTarget struct {
	ServiceNamespace  string          `json:"ServiceNamespace"`
	ResourceId        string          `json:"ResourceId"`
	ScalableDimension string          `json:"ScalableDimension"`
	MinCapacity       int             `json:"MinCapacity"`
	MaxCapacity       int             `json:"MaxCapacity"`
	RoleARN           string          `json:"RoleARN"`
	CreationTime      epoch           `json:"CreationTime"`
	SuspendedState    *SuspendedState `json:"SuspendedState,omitempty"`
	ScalableTargetARN string          `json:"ScalableTargetARN"`
}

type targetKey struct {
	ServiceNamespace  string `json:"ServiceNamespace"`
	ResourceId        string `json:"ResourceId"`
	ScalableDimension string `json:"ScalableDimension"`
}

// check accepts what this emulator scales: SageMaker variants' instance counts.
func (k targetKey) check() error {
	switch {
	case k.ServiceNamespace == "":
		return errValidation("1 validation error detected: Value null at 'serviceNamespace' failed to satisfy constraint: Member must not be null")
	case k.ServiceNamespace != namespaceSageMaker:
		return errValidation("sagedeploy local scales SageMaker endpoint variants only (ServiceNamespace sagemaker), not %s.", k.ServiceNamespace)
	case k.ScalableDimension != dimensionVariant:
		return errValidation("Unsupported scalable dimension %q for service namespace sagemaker; use %s.", k.ScalableDimension, dimensionVariant)
	case !variantResource.MatchString(k.ResourceId):
		return errValidation("Unsupported resource ID %q: a SageMaker variant is endpoint/ENDPOINT_NAME/variant/VARIANT_NAME.", k.ResourceId)
	}
	return nil
}

func (k targetKey) notRegistered() error {
	return errNotFound("No scalable target registered for service namespace: %s, resource ID: %s, scalable dimension: %s",
		k.ServiceNamespace, k.ResourceId, k.ScalableDimension)
}

type registerInput struct {
	targetKey
	MinCapacity    *int              `json:"MinCapacity"`
	MaxCapacity    *int              `json:"MaxCapacity"`
	RoleARN        string            `json:"RoleARN"`
	SuspendedState *SuspendedState   `json:"SuspendedState"`
	Tags           map[string]string `json:"Tags"`
}

func (s *Service) registerScalableTarget(ctx context.Context, body []byte) (any, error) {
	var in registerInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	endpoint, variant := splitResource(in.ResourceId)
	if sc := s.opts.Scaler; sc != nil {
		if _, ok := sc.DesiredInstanceCount(endpoint, variant); !ok {
			return nil, errValidation("Could not register %s: endpoint %s has no variant %s (is the endpoint InService? create it first).", in.ResourceId, endpoint, variant)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.targets[in.ResourceId]
	if t == nil {
		if in.MinCapacity == nil || in.MaxCapacity == nil {
			return nil, errValidation("Minimum and maximum capacity are required when registering the scalable target %s for the first time.", in.ResourceId)
		}
		t = &ScalableTarget{ServiceNamespace: in.ServiceNamespace, ResourceId: in.ResourceId, ScalableDimension: in.ScalableDimension,
			CreationTime: epoch(s.opts.Now().UTC()),
			ScalableTargetARN: fmt.Sprintf("arn:aws:application-autoscaling:%s:%s:scalable-target/%s", s.opts.Region, s.opts.Account,
				strings.ReplaceAll(uuid.NewString(), "-", "")[:28])}
	}
	next := *t
	if in.MinCapacity != nil {
		next.MinCapacity = *in.MinCapacity
	}
	if in.MaxCapacity != nil {
		next.MaxCapacity = *in.MaxCapacity
	}
	if next.MinCapacity < 0 || next.MaxCapacity < next.MinCapacity {
		return nil, errValidation("Minimum capacity (%d) cannot be greater than maximum capacity (%d), nor negative.", next.MinCapacity, next.MaxCapacity)
	}
	next.RoleARN = cmp.Or(in.RoleARN, next.RoleARN, fmt.Sprintf("arn:aws:iam::%s:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint", s.opts.Account))
	if in.SuspendedState != nil {
		next.SuspendedState = in.SuspendedState
	}
	if err := s.save(ctx, kindTarget, next.ResourceId, &next); err != nil {
		return nil, apiErr(500, "InternalServiceException", "%v", err)
	}
	s.targets[next.ResourceId] = &next
	return map[string]string{"ScalableTargetARN": next.ScalableTargetARN}, nil
}

func splitResource(id string) (endpoint, variant string) {
	m := variantResource.FindStringSubmatch(id)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

func (s *Service) deregisterScalableTarget(ctx context.Context, body []byte) (any, error) {
	var in targetKey
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.targets[in.ResourceId] == nil {
		return nil, in.notRegistered()
	}
	// Deregistering a target deletes its policies, as on AWS.
	var keys []string
	for k, p := range s.policies {
		if p.ResourceId == in.ResourceId {
			keys = append(keys, k)
		}
	}
	if err := s.opts.Store.Delete(ctx, kindPolicy, keys...); err != nil {
		return nil, apiErr(500, "InternalServiceException", "%v", err)
	}
	if err := s.opts.Store.Delete(ctx, kindTarget, in.ResourceId); err != nil {
		return nil, apiErr(500, "InternalServiceException", "%v", err)
	}
	for _, k := range keys {
		delete(s.policies, k)
	}
	delete(s.targets, in.ResourceId)
	delete(s.activity, in.ResourceId)
	return nil, nil
}

type describeTargetsInput struct {
	ServiceNamespace  string   `json:"ServiceNamespace"`
	ResourceIds       []string `json:"ResourceIds"`
	ScalableDimension string   `json:"ScalableDimension"`
}

func (s *Service) describeScalableTargets(_ context.Context, body []byte) (any, error) {
	var in describeTargetsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ServiceNamespace == "" {
		return nil, errValidation("1 validation error detected: Value null at 'serviceNamespace' failed to satisfy constraint: Member must not be null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []ScalableTarget{}
	for _, id := range sortedKeys(s.targets) {
		t := s.targets[id]
		if t.ServiceNamespace != in.ServiceNamespace || (len(in.ResourceIds) > 0 && !slices.Contains(in.ResourceIds, id)) ||
			(in.ScalableDimension != "" && t.ScalableDimension != in.ScalableDimension) {
			continue
		}
		out = append(out, *t)
	}
	return map[string]any{"ScalableTargets": out}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
