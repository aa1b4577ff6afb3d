package control_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// TestRollingUpdatePolicy: a rolling deployment moves traffic in batches of MaximumBatchSize
// with a bake after each (a linear shift in batch-sized steps for the serving layer), and
// malformed rolling policies are refused with what to fix.
func TestRollingUpdatePolicy(t *testing.T) {
	serving := newGatedServing(false)
	c := newCP(t, cpOptions{serving: serving})
	ctx := context.Background()
	c.model("m1")
	c.config("cfg1", variant("A", "m1", 4, 1))
	c.config("cfg2", variant("A", "m1", 4, 1))
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("ep", smtypes.EndpointStatusInService)
	rolling := &smtypes.DeploymentConfig{RollingUpdatePolicy: &smtypes.RollingUpdatePolicy{
		MaximumBatchSize:         &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeInstanceCount, Value: aws.Int32(1)},
		WaitIntervalInSeconds:    aws.Int32(120),
		RollbackMaximumBatchSize: &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeCapacityPercent, Value: aws.Int32(100)}}}
	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg2"), DeploymentConfig: rolling}); err != nil {
		t.Fatalf("update with a RollingUpdatePolicy: %v", err)
	}
	out := c.waitStatus("ep", smtypes.EndpointStatusInService)
	if ldc := out.LastDeploymentConfig; ldc == nil || ldc.RollingUpdatePolicy == nil || aws.ToInt32(ldc.RollingUpdatePolicy.WaitIntervalInSeconds) != 120 {
		t.Errorf("LastDeploymentConfig = %+v, want the rolling policy back", out.LastDeploymentConfig)
	}
	serving.mu.Lock()
	s := serving.deploys[len(serving.deploys)-1].Strategy
	serving.mu.Unlock()
	if s == nil || s.Type != "LINEAR" || s.Linear == nil || s.Linear.Type != "INSTANCE_COUNT" || s.Linear.Value != 1 || s.WaitInterval != 2*time.Minute {
		t.Errorf("serving layer strategy = %+v, want batches of one instance baking 2m each", s)
	}

	for _, tc := range []struct {
		dc   *smtypes.DeploymentConfig
		want string
	}{
		{&smtypes.DeploymentConfig{RollingUpdatePolicy: rolling.RollingUpdatePolicy, BlueGreenUpdatePolicy: &smtypes.BlueGreenUpdatePolicy{
			TrafficRoutingConfiguration: &smtypes.TrafficRoutingConfig{Type: smtypes.TrafficRoutingConfigTypeAllAtOnce, WaitIntervalInSeconds: aws.Int32(0)}}},
			"either BlueGreenUpdatePolicy or RollingUpdatePolicy"},
		{&smtypes.DeploymentConfig{RollingUpdatePolicy: &smtypes.RollingUpdatePolicy{WaitIntervalInSeconds: aws.Int32(60),
			MaximumBatchSize: &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeCapacityPercent, Value: aws.Int32(150)}}},
			"CAPACITY_PERCENT batch size of 150 is out of range"},
		{&smtypes.DeploymentConfig{AutoRollbackConfiguration: &smtypes.AutoRollbackConfig{Alarms: []smtypes.Alarm{{AlarmName: aws.String("")}}}},
			"alarmName' failed to satisfy constraint"},
	} {
		_, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1"), DeploymentConfig: tc.dc})
		apiError(t, err, "ValidationException", tc.want)
	}
}
