package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/releases"
)

// A scale-up is a decision about load, not about the version: neither a rollback nor the next
// update may quietly take it back.
func TestRollbackAndUpdateKeepTheInstancesOfAScaleUp(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Scale(ctx, deploy.ScaleRequest{Model: "abalone", Environment: "dev", Instances: 3}); err != nil {
		t.Fatal(err)
	}

	rb, err := d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "dev"})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if rb.Kind != releases.KindRollback || rb.Version.Number != 1 || rb.InstanceCount != 3 {
		t.Errorf("rollback: kind %s, version %d on %d instances; want a rollback to version 1 on 3", rb.Kind, rb.Version.Number, rb.InstanceCount)
	}
	expectVersion(t, d, "abalone-dev", 1)
	if n := aws.ToInt32(describe(t, l, "abalone-dev").ProductionVariants[0].CurrentInstanceCount); n != 3 {
		t.Errorf("after scale --instances 3 and rollback, dev runs %d instances; want 3", n)
	}

	up, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(describe(t, l, "abalone-dev").ProductionVariants[0].CurrentInstanceCount); n != 3 || up.InstanceCount != 3 {
		t.Errorf("an update without --instance-count runs %d instances (result says %d); want the 3 it ran", n, up.InstanceCount)
	}
}

// Settings made outside sagedeploy (here: data capture and a variant named Primary, set through
// the SDK as a console user would) survive the next update and a rollback.
func TestUpdateAndRollbackKeepEndpointSettings(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, ev := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	first, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", InstanceCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	sm := l.sm()
	capture := &types.DataCaptureConfig{EnableCapture: aws.Bool(true), InitialSamplingPercentage: aws.Int32(50),
		DestinationS3Uri: aws.String("s3://models/capture"), CaptureOptions: []types.CaptureOption{{CaptureMode: types.CaptureModeInput}, {CaptureMode: types.CaptureModeOutput}}}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("abalone-dev-captured"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("Primary"), ModelName: aws.String(first.ModelName),
			InstanceType: types.ProductionVariantInstanceTypeMlT2Medium, InitialInstanceCount: aws.Int32(2), InitialVariantWeight: aws.Float32(1)}},
		DataCaptureConfig: capture}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String("abalone-dev-captured")}); err != nil {
		t.Fatal(err)
	}
	w := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("abalone-dev")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	kept := func(step string) {
		t.Helper()
		desc := describe(t, l, "abalone-dev")
		cfg, err := sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: desc.EndpointConfigName})
		if err != nil {
			t.Fatal(err)
		}
		pv := cfg.ProductionVariants[0]
		if dc := cfg.DataCaptureConfig; dc == nil || aws.ToInt32(dc.InitialSamplingPercentage) != 50 || aws.ToString(dc.DestinationS3Uri) != "s3://models/capture" {
			t.Errorf("after %s, configuration %s lost data capture: %+v\n%s", step, aws.ToString(desc.EndpointConfigName), cfg.DataCaptureConfig, ev.text())
		}
		if aws.ToString(pv.VariantName) != "Primary" || aws.ToInt32(desc.ProductionVariants[0].CurrentInstanceCount) != 2 {
			t.Errorf("after %s, the endpoint runs variant %s × %d; want Primary × 2", step, aws.ToString(pv.VariantName), aws.ToInt32(desc.ProductionVariants[0].CurrentInstanceCount))
		}
	}
	register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatalf("update: %v\n%s", err, ev.text())
	}
	expectVersion(t, d, "abalone-dev", 2)
	kept("an update")
	if _, err := d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatalf("rollback: %v\n%s", err, ev.text())
	}
	expectVersion(t, d, "abalone-dev", 1)
	kept("a rollback")
}

// autoscaling is an Application Auto Scaling client on the local SageMaker, for setting up and
// checking a variant's scaling as a user would.
func autoscaling(l *local) *aas.Client {
	return aas.New(aas.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAASSERT", "secret", "")})
}

// registerScaling gives the endpoint's AllTraffic variant 1 to 4 instances and a target-tracking policy.
func registerScaling(t *testing.T, l *local, endpoint string) {
	t.Helper()
	c, res := autoscaling(l), aws.String("endpoint/"+endpoint+"/variant/AllTraffic")
	if _, err := c.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceId: res,
		ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceId: res,
		ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount, PolicyName: aws.String("invocations"),
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(70), PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{
				PredefinedMetricType: aastypes.MetricTypeSageMakerVariantInvocationsPerInstance}}}); err != nil {
		t.Fatal(err)
	}
}

// An update deregisters the variant's autoscaling, as AWS asks, and registers it again after.
func TestAutoscalingSurvivesAnUpdate(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, ev := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	registerScaling(t, l, "abalone-dev")
	register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatalf("update: %v\n%s", err, ev.text())
	}
	expectVersion(t, d, "abalone-dev", 2)
	// A failed verification rolls back through one more update: the scaling survives that too.
	register(t, d, "abalone", 1, true) // version 3
	_, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", RollbackOnFailure: true,
		Verify: &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation("100..200")}})
	if !errors.Is(err, deploy.ErrVerification) {
		t.Fatalf("deploy that fails its verification: %v", err)
	}
	expectVersion(t, d, "abalone-dev", 2)
	c, res := autoscaling(l), "endpoint/abalone-dev/variant/AllTraffic"
	targets, err := c.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceIds: []string{res}})
	if err != nil || len(targets.ScalableTargets) != 1 || aws.ToInt32(targets.ScalableTargets[0].MaxCapacity) != 4 {
		t.Fatalf("scalable target after the update: %+v %v\n%s", targets, err, ev.text())
	}
	pols, err := c.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceId: aws.String(res)})
	if err != nil || len(pols.ScalingPolicies) != 1 || aws.ToString(pols.ScalingPolicies[0].PolicyName) != "invocations" ||
		aws.ToFloat64(pols.ScalingPolicies[0].TargetTrackingScalingPolicyConfiguration.TargetValue) != 70 {
		t.Errorf("scaling policies after the update: %+v %v", pols, err)
	}
	if !strings.Contains(ev.text(), "autoscaling of endpoint/abalone-dev/variant/AllTraffic deregistered for the update (1 to 4 instances, policies invocations)") {
		t.Errorf("the output does not say the autoscaling moved aside:\n%s", ev.text())
	}
}
