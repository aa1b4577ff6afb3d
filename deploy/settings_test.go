package deploy_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
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
