package deploy

import (
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// Strategy types.
const (
	AllAtOnce = "all-at-once"
	Canary    = "canary"
	Linear    = "linear"
	// Rolling replaces the fleet batch by batch in place (SageMaker's RollingUpdatePolicy),
	// needing no second fleet beside the first.
	Rolling = "rolling"
)

// Strategy is how an update shifts traffic to the new version (SageMaker's blue/green
// DeploymentConfig). The zero value is all at once, SageMaker's default.
type Strategy struct {
	// Type is AllAtOnce (default), Canary, Linear or Rolling.
	Type string `json:"type,omitempty"`
	// Percent is the canary's share of capacity (1–50), the size of each linear step (10–50), or
	// the share of instances each rolling batch replaces (5–50).
	Percent int `json:"percent,omitempty"`
	// Bake is how long traffic stays on each step before the next one (and, all at once, how long
	// the old fleet stays ready for an alarm-driven rollback). Whole seconds, at most 1h.
	Bake time.Duration `json:"bake,omitempty"`
	// RollbackAlarms are CloudWatch alarms that make SageMaker roll the update back when they fire.
	RollbackAlarms []string `json:"rollback_alarms,omitempty"`

	// parsed says config is the checked strategy's DeploymentConfig (see ParseStrategy).
	parsed bool
	config *types.DeploymentConfig
}

// ParseStrategy checks s against SageMaker's rules and returns it with its DeploymentConfig
// attached, so that the CLI checks the flags once and Deploy does not map them again. A parsed
// strategy is returned as is.
func ParseStrategy(s Strategy) (Strategy, error) {
	if s.parsed {
		return s, nil
	}
	dc, err := s.DeploymentConfig()
	if err != nil {
		return s, err
	}
	s.parsed, s.config = true, dc
	return s, nil
}

// totalBake is how long the traffic shift itself waits, on top of provisioning.
func (s Strategy) totalBake() time.Duration {
	switch s.Type {
	case Canary:
		return s.Bake
	case Linear, Rolling:
		if s.Percent <= 0 {
			return 0
		}
		steps := int(math.Ceil(100 / float64(s.Percent)))
		return time.Duration(steps) * s.Bake
	}
	return s.Bake
}

// DeploymentConfig maps the strategy to SageMaker's DeploymentConfig; nil for the default
// (all at once, no alarms, no bake).
func (s Strategy) DeploymentConfig() (*types.DeploymentConfig, error) {
	if s.Bake < 0 || s.Bake > time.Hour || s.Bake%time.Second != 0 {
		return nil, errorf(ErrInvalid, "--bake %s is not valid: SageMaker waits whole seconds, at most 1h, between traffic shifts", s.Bake)
	}
	dc, err := s.updatePolicy()
	if err != nil || dc == nil {
		return nil, err
	}
	if len(s.RollbackAlarms) > 0 {
		alarms := make([]types.Alarm, 0, len(s.RollbackAlarms))
		for _, a := range s.RollbackAlarms {
			if a == "" {
				return nil, errorf(ErrInvalid, "--rollback-alarm needs a CloudWatch alarm name")
			}
			alarms = append(alarms, types.Alarm{AlarmName: aws.String(a)})
		}
		dc.AutoRollbackConfiguration = &types.AutoRollbackConfig{Alarms: alarms}
	}
	return dc, nil
}

// updatePolicy is the blue/green or rolling policy of the strategy; nil for SageMaker's default.
func (s Strategy) updatePolicy() (*types.DeploymentConfig, error) {
	limit, err := s.executionLimit()
	if err != nil {
		return nil, err
	}
	if s.Type == Rolling {
		if s.Percent < 5 || s.Percent > 50 {
			return nil, errorf(ErrInvalid, "--rolling %d is not valid: each batch replaces 5 to 50 percent of the instances", s.Percent)
		}
		if s.Bake == 0 {
			return nil, errorf(ErrInvalid, "--rolling needs --bake: how long each batch serves before the next one, e.g. --bake 2m")
		}
		return &types.DeploymentConfig{RollingUpdatePolicy: &types.RollingUpdatePolicy{
			MaximumBatchSize:      &types.CapacitySize{Type: types.CapacitySizeTypeCapacityPercent, Value: aws.Int32(int32(s.Percent))},
			WaitIntervalInSeconds: aws.Int32(int32(s.Bake / time.Second)), MaximumExecutionTimeoutInSeconds: limit}}, nil
	}
	routing, err := s.routing()
	if err != nil || routing == nil {
		return nil, err
	}
	return &types.DeploymentConfig{BlueGreenUpdatePolicy: &types.BlueGreenUpdatePolicy{TrafficRoutingConfiguration: routing,
		MaximumExecutionTimeoutInSeconds: limit}}, nil
}

// executionLimit is SageMaker's own bound on the update, which must exceed its waits: the total
// bake and room for provisioning, at most 4h; nil without bakes.
func (s Strategy) executionLimit() (*int32, error) {
	total := s.totalBake()
	if total <= 0 {
		return nil, nil
	}
	if total >= 4*time.Hour {
		return nil, errorf(ErrInvalid, "the update would bake %s in total; SageMaker allows at most 4h: use a larger step or a shorter --bake", total)
	}
	return aws.Int32(int32(min(total+30*time.Minute, 4*time.Hour) / time.Second)), nil
}

// routing is how the strategy shifts traffic; nil for SageMaker's default.
func (s Strategy) routing() (*types.TrafficRoutingConfig, error) {
	bake := aws.Int32(int32(s.Bake / time.Second))
	switch s.Type {
	case "", AllAtOnce:
		if s.Percent != 0 {
			return nil, errorf(ErrInvalid, "a percentage only applies to --canary or --linear")
		}
		if len(s.RollbackAlarms) == 0 && s.Bake == 0 {
			return nil, nil
		}
		return &types.TrafficRoutingConfig{Type: types.TrafficRoutingConfigTypeAllAtOnce, WaitIntervalInSeconds: bake}, nil
	case Canary:
		if s.Percent < 1 || s.Percent > 50 {
			return nil, errorf(ErrInvalid, "--canary %d is not valid: the canary takes 1 to 50 percent of capacity", s.Percent)
		}
		if s.Bake == 0 {
			return nil, errorf(ErrInvalid, "--canary needs --bake: how long the canary serves before the rest of the traffic moves, e.g. --bake 5m")
		}
		return &types.TrafficRoutingConfig{
			Type:                  types.TrafficRoutingConfigTypeCanary,
			CanarySize:            &types.CapacitySize{Type: types.CapacitySizeTypeCapacityPercent, Value: aws.Int32(int32(s.Percent))},
			WaitIntervalInSeconds: bake,
		}, nil
	case Linear:
		if s.Percent < 10 || s.Percent > 50 {
			return nil, errorf(ErrInvalid, "--linear %d is not valid: each step moves 10 to 50 percent of capacity", s.Percent)
		}
		if s.Bake == 0 {
			return nil, errorf(ErrInvalid, "--linear needs --bake: how long each step serves before the next one, e.g. --bake 2m")
		}
		return &types.TrafficRoutingConfig{
			Type:                  types.TrafficRoutingConfigTypeLinear,
			LinearStepSize:        &types.CapacitySize{Type: types.CapacitySizeTypeCapacityPercent, Value: aws.Int32(int32(s.Percent))},
			WaitIntervalInSeconds: bake,
		}, nil
	}
	return nil, errorf(ErrInvalid, "unknown deployment strategy %q: use all-at-once, canary, linear or rolling", s.Type)
}

// String renders the strategy for messages.
func (s Strategy) String() string {
	switch s.Type {
	case Canary:
		return fmt.Sprintf("canary %d%%, bake %s", s.Percent, s.Bake)
	case Linear:
		return fmt.Sprintf("linear %d%% steps, bake %s", s.Percent, s.Bake)
	case Rolling:
		return fmt.Sprintf("rolling %d%% batches, bake %s", s.Percent, s.Bake)
	}
	if s.Bake > 0 {
		return fmt.Sprintf("all at once, bake %s", s.Bake)
	}
	return "all at once"
}
