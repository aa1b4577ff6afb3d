package control_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

const epARN = "arn:aws:sagemaker:us-west-2:000000000000:endpoint/ep"

// TestEndpointStatusOverTime watches an endpoint while the serving layer works: Creating with the
// configuration being deployed, changes refused while in progress, Updating that still reports
// the configuration in use next to the pending one, and a failed update that rolls back.
func TestEndpointStatusOverTime(t *testing.T) {
	serving := newGatedServing(true)
	c := newCP(t, cpOptions{serving: serving})
	ctx := context.Background()
	c.model("m1")
	c.model("m2")
	c.config("cfg1", variant("AllTraffic", "m1", 1, 1))
	c.config("cfg2", variant("AllTraffic", "m2", 2, 1))

	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	serving.waitStarted(t, "deploy ep cfg1")
	out := c.describe("ep")
	if out.EndpointStatus != smtypes.EndpointStatusCreating || aws.ToString(out.EndpointConfigName) != "cfg1" {
		t.Fatalf("while creating: %s on %s", out.EndpointStatus, aws.ToString(out.EndpointConfigName))
	}
	if p := out.PendingDeploymentSummary; p == nil || aws.ToString(p.EndpointConfigName) != "cfg1" || len(p.ProductionVariants) != 1 ||
		aws.ToInt32(p.ProductionVariants[0].DesiredInstanceCount) != 1 || p.StartTime == nil {
		t.Fatalf("pending deployment while creating: %+v", out.PendingDeploymentSummary)
	}
	if len(out.ProductionVariants) != 0 {
		t.Fatalf("a creating endpoint reports serving variants: %+v", out.ProductionVariants)
	}
	_, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg2")})
	apiError(t, err, "ValidationException", `Cannot update in-progress endpoint "`+epARN+`".`)
	_, err = c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("ep"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(2)}}})
	apiError(t, err, "ValidationException", `Cannot update in-progress endpoint "`+epARN+`".`)
	_, err = c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("EP"), EndpointConfigName: aws.String("cfg1")})
	apiError(t, err, "ValidationException", `Cannot create already existing endpoint "`+epARN+`".`)
	list, err := c.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{StatusEquals: smtypes.EndpointStatusCreating})
	if err != nil || len(list.Endpoints) != 1 {
		t.Fatalf("ListEndpoints StatusEquals=Creating: %v %+v", err, list)
	}

	serving.finish(t, nil)
	out = c.waitStatus("ep", smtypes.EndpointStatusInService)
	if out.PendingDeploymentSummary != nil || len(out.ProductionVariants) != 1 || out.FailureReason != nil {
		t.Fatalf("in service: pending %+v, variants %+v, reason %v", out.PendingDeploymentSummary, out.ProductionVariants, out.FailureReason)
	}
	created := *out.CreationTime

	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg2")}); err != nil {
		t.Fatal(err)
	}
	serving.waitStarted(t, "deploy ep cfg2")
	out = c.describe("ep")
	// During an update AWS keeps reporting the configuration in use; the new one is pending.
	if out.EndpointStatus != smtypes.EndpointStatusUpdating || aws.ToString(out.EndpointConfigName) != "cfg1" {
		t.Fatalf("while updating: %s on %s", out.EndpointStatus, aws.ToString(out.EndpointConfigName))
	}
	if p := out.PendingDeploymentSummary; p == nil || aws.ToString(p.EndpointConfigName) != "cfg2" || aws.ToInt32(p.ProductionVariants[0].DesiredInstanceCount) != 2 {
		t.Fatalf("pending deployment while updating: %+v", p)
	}
	if len(out.ProductionVariants) != 1 || aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) != 1 {
		t.Fatalf("serving variants while updating: %+v", out.ProductionVariants)
	}
	_, err = c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")})
	apiError(t, err, "ValidationException", "Cannot update in-progress endpoint")
	serving.finish(t, nil)
	out = c.waitStatus("ep", smtypes.EndpointStatusInService)
	if aws.ToString(out.EndpointConfigName) != "cfg2" || aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) != 2 {
		t.Fatalf("after update: %s, variants %+v", aws.ToString(out.EndpointConfigName), out.ProductionVariants)
	}
	if !out.CreationTime.Equal(created) || !out.LastModifiedTime.After(created) {
		t.Fatalf("times after update: created %v (was %v), modified %v", out.CreationTime, created, out.LastModifiedTime)
	}

	// A failed update: Updating, then straight back to InService on the previous configuration
	// with the reason, as SageMaker shows it (never RollingBack, which belongs to failed weight
	// and capacity changes).
	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	serving.waitStarted(t, "deploy ep cfg1")
	serving.finish(t, errors.New("container for variant AllTraffic did not pass its health check"))
	out = c.waitLeaves("ep", smtypes.EndpointStatusUpdating)
	if out.EndpointStatus != smtypes.EndpointStatusInService || out.PendingDeploymentSummary != nil {
		t.Fatalf("a failed update went from Updating to %s (pending %+v), want InService", out.EndpointStatus, out.PendingDeploymentSummary)
	}
	if aws.ToString(out.EndpointConfigName) != "cfg2" || aws.ToString(out.FailureReason) != "container for variant AllTraffic did not pass its health check" {
		t.Fatalf("after failed update: config %s, reason %q", aws.ToString(out.EndpointConfigName), aws.ToString(out.FailureReason))
	}

	// A failed create ends Failed with the serving layer's reason.
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep2"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	serving.waitStarted(t, "deploy ep2 cfg1")
	serving.finish(t, errors.New("could not download model data from s3://b/m1.tar.gz"))
	out = c.waitStatus("ep2", smtypes.EndpointStatusFailed)
	if aws.ToString(out.FailureReason) != "could not download model data from s3://b/m1.tar.gz" {
		t.Fatalf("failed create reason = %q", aws.ToString(out.FailureReason))
	}
	failed, err := c.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{StatusEquals: smtypes.EndpointStatusFailed})
	if err != nil || names(failed.Endpoints, func(e smtypes.EndpointSummary) *string { return e.EndpointName }) != "ep2" {
		t.Fatalf("ListEndpoints StatusEquals=Failed: %v %+v", err, failed)
	}
}

// TestVariantPropertiesAndStrategy: RetainAllVariantProperties keeps live weights and counts,
// ExcludeRetainedVariantProperties takes some from the new configuration, and DeploymentConfig
// becomes the serving layer's traffic-shift strategy.
func TestVariantPropertiesAndStrategy(t *testing.T) {
	serving := newGatedServing(false)
	c := newCP(t, cpOptions{serving: serving})
	ctx := context.Background()
	c.model("m1")
	c.config("cfg1", variant("A", "m1", 1, 1))
	c.config("cfg2", variant("A", "m1", 1, 1), variant("B", "m1", 1, 1))
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("ep", smtypes.EndpointStatusInService)
	if _, err := c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("ep"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("A"), DesiredInstanceCount: aws.Int32(3), DesiredWeight: aws.Float32(2)}}}); err != nil {
		t.Fatal(err)
	}
	out := c.waitStatus("ep", smtypes.EndpointStatusInService)
	if v := out.ProductionVariants[0]; aws.ToInt32(v.CurrentInstanceCount) != 3 || aws.ToFloat32(v.CurrentWeight) != 2 || aws.ToInt32(v.DesiredInstanceCount) != 3 {
		t.Fatalf("after scaling: %+v", v)
	}

	dc := &smtypes.DeploymentConfig{BlueGreenUpdatePolicy: &smtypes.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &smtypes.TrafficRoutingConfig{Type: smtypes.TrafficRoutingConfigTypeCanary, WaitIntervalInSeconds: aws.Int32(5),
			CanarySize: &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeCapacityPercent, Value: aws.Int32(25)}},
		TerminationWaitInSeconds: aws.Int32(10)}}
	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg2"),
		RetainAllVariantProperties: aws.Bool(true), DeploymentConfig: dc}); err != nil {
		t.Fatal(err)
	}
	out = c.waitStatus("ep", smtypes.EndpointStatusInService)
	serving.mu.Lock()
	last := serving.deploys[len(serving.deploys)-1]
	serving.mu.Unlock()
	if last.Variants[0].InstanceCount != 3 || last.Variants[0].Weight != 2 || last.Variants[1].InstanceCount != 1 {
		t.Fatalf("retained properties not deployed: %+v", last.Variants)
	}
	if s := last.Strategy; s == nil || s.Type != "CANARY" || s.Canary == nil || s.Canary.Type != "CAPACITY_PERCENT" || s.Canary.Value != 25 ||
		s.WaitInterval.Seconds() != 5 || s.TerminationWait.Seconds() != 10 {
		t.Fatalf("strategy = %+v", last.Strategy)
	}
	if ldc := out.LastDeploymentConfig; ldc == nil || ldc.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.Type != smtypes.TrafficRoutingConfigTypeCanary {
		t.Fatalf("LastDeploymentConfig = %+v", out.LastDeploymentConfig)
	}

	// Exclude DesiredInstanceCount: counts come from the configuration, weights stay.
	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg2"),
		RetainAllVariantProperties: aws.Bool(true), RetainDeploymentConfig: aws.Bool(true),
		ExcludeRetainedVariantProperties: []smtypes.VariantProperty{{VariantPropertyType: smtypes.VariantPropertyTypeDesiredInstanceCount}}}); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("ep", smtypes.EndpointStatusInService)
	serving.mu.Lock()
	last = serving.deploys[len(serving.deploys)-1]
	serving.mu.Unlock()
	if last.Variants[0].InstanceCount != 1 || last.Variants[0].Weight != 2 {
		t.Fatalf("exclude DesiredInstanceCount: %+v", last.Variants)
	}
	if last.Strategy == nil || last.Strategy.Type != "CANARY" {
		t.Fatalf("RetainDeploymentConfig did not reuse the canary strategy: %+v", last.Strategy)
	}

	// Without retention the configuration's values apply.
	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	out = c.waitStatus("ep", smtypes.EndpointStatusInService)
	if v := out.ProductionVariants; len(v) != 1 || aws.ToInt32(v[0].DesiredInstanceCount) != 1 || aws.ToFloat32(v[0].DesiredWeight) != 1 || out.LastDeploymentConfig != nil {
		t.Fatalf("plain update: variants %+v, LastDeploymentConfig %+v", v, out.LastDeploymentConfig)
	}

	bad := &smtypes.DeploymentConfig{BlueGreenUpdatePolicy: &smtypes.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &smtypes.TrafficRoutingConfig{Type: smtypes.TrafficRoutingConfigTypeLinear, WaitIntervalInSeconds: aws.Int32(5)}}}
	_, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg2"), DeploymentConfig: bad})
	apiError(t, err, "ValidationException", "LINEAR needs LinearStepSize")
	_, err = c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("nope")})
	apiError(t, err, "ValidationException", `Could not find endpoint configuration "arn:aws:sagemaker:us-west-2:000000000000:endpoint-config/nope".`)
	_, err = c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("nope"), EndpointConfigName: aws.String("cfg2")})
	apiError(t, err, "ValidationException", `Could not find endpoint "arn:aws:sagemaker:us-west-2:000000000000:endpoint/nope".`)
}

// TestWeightsUpdateFailureRollsBack: a capacity change the serving layer cannot make passes
// through RollingBack and leaves the previous weights and counts, with the reason.
func TestWeightsUpdateFailureRollsBack(t *testing.T) {
	serving := newGatedServing(false)
	c := newCP(t, cpOptions{serving: serving})
	ctx := context.Background()
	c.model("m1")
	c.config("cfg1", variant("A", "m1", 2, 1))
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("ep", smtypes.EndpointStatusInService)
	serving.mu.Lock()
	serving.gated = true
	serving.mu.Unlock()
	if _, err := c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("ep"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("A"), DesiredInstanceCount: aws.Int32(5)}}}); err != nil {
		t.Fatal(err)
	}
	serving.waitStarted(t, "update ep")
	out := c.describe("ep")
	if out.EndpointStatus != smtypes.EndpointStatusUpdating || aws.ToInt32(out.ProductionVariants[0].DesiredInstanceCount) != 5 ||
		aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) != 2 {
		t.Fatalf("while scaling: %s %+v", out.EndpointStatus, out.ProductionVariants)
	}
	serving.finish(t, errors.New("not enough capacity for 5 instances"))
	c.waitStatus("ep", smtypes.EndpointStatusRollingBack)
	out = c.waitStatus("ep", smtypes.EndpointStatusInService)
	if v := out.ProductionVariants[0]; aws.ToInt32(v.DesiredInstanceCount) != 2 || aws.ToString(out.FailureReason) != "not enough capacity for 5 instances" {
		t.Fatalf("after failed scaling: desired %d, reason %q", aws.ToInt32(v.DesiredInstanceCount), aws.ToString(out.FailureReason))
	}
}

// TestDeleteWhileCreating abandons a create in flight: Deleting, then gone, servers removed.
func TestDeleteWhileCreating(t *testing.T) {
	serving := newGatedServing(true)
	c := newCP(t, cpOptions{serving: serving})
	ctx := context.Background()
	c.model("m1")
	c.config("cfg1", variant("A", "m1", 1, 1))
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	serving.waitStarted(t, "deploy ep cfg1")
	if _, err := c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("ep")}); err != nil {
		t.Fatal(err)
	}
	// Deleting twice is harmless while the first delete runs or after it finished.
	_, err := c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("ep")})
	if err != nil {
		apiError(t, err, "ValidationException", "Could not find endpoint")
	}
	waitGone(t, c, "ep")
	serving.mu.Lock()
	removed := append([]string(nil), serving.removed...)
	serving.mu.Unlock()
	if len(removed) != 1 || removed[0] != "ep" {
		t.Fatalf("servers removed for %v", removed)
	}
	// The name is free again.
	serving.mu.Lock()
	serving.gated = false
	serving.mu.Unlock()
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("ep", smtypes.EndpointStatusInService)
}

func waitGone(t *testing.T, c *cp, name string) {
	t.Helper()
	for i := 0; ; i++ {
		_, err := c.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if err != nil {
			apiError(t, err, "ValidationException", "Could not find endpoint")
			return
		}
		if i > 6000 {
			t.Fatalf("endpoint %s not gone after DeleteEndpoint", name)
		}
		sleepTick()
	}
}

// TestRestartResumesWork: a shutdown in the middle of a create and an update leaves them to the
// next start, which finishes them; InService endpoints report SystemUpdating until they serve
// again.
func TestRestartResumesWork(t *testing.T) {
	dir := t.TempDir()
	serving := newGatedServing(true)
	c := newCP(t, cpOptions{dir: dir, serving: serving})
	ctx := context.Background()
	c.model("m1")
	c.model("m2")
	c.config("cfg1", variant("A", "m1", 1, 1))
	c.config("cfg2", variant("A", "m2", 1, 1))
	for _, ep := range []string{"updating", "steady"} {
		if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(ep), EndpointConfigName: aws.String("cfg1")}); err != nil {
			t.Fatal(err)
		}
		serving.waitStarted(t, "deploy "+ep+" cfg1")
		serving.finish(t, nil)
		c.waitStatus(ep, smtypes.EndpointStatusInService)
	}
	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("updating"), EndpointConfigName: aws.String("cfg2")}); err != nil {
		t.Fatal(err)
	}
	serving.waitStarted(t, "deploy updating cfg2")
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("creating"), EndpointConfigName: aws.String("cfg2")}); err != nil {
		t.Fatal(err)
	}
	serving.waitStarted(t, "deploy creating cfg2")
	c.close() // deploys in flight are cancelled, their endpoints stay Creating / Updating on disk

	serving2 := newGatedServing(true)
	c2 := newCP(t, cpOptions{dir: dir, serving: serving2})
	c2.ctl.Restore()
	if got := c2.describe("steady").EndpointStatus; got != smtypes.EndpointStatusSystemUpdating {
		t.Fatalf("an endpoint being redeployed after a restart reports %s, want SystemUpdating", got)
	}
	if got := c2.describe("creating").EndpointStatus; got != smtypes.EndpointStatusCreating {
		t.Fatalf("an endpoint caught creating reports %s after the restart", got)
	}
	// Three endpoints restore in any order; let each deploy through: the updating one first
	// gets cfg1 back, then cfg2.
	for i := 0; i < 4; i++ {
		serving2.finish(t, nil)
	}
	for _, ep := range []string{"steady", "creating", "updating"} {
		c2.waitStatus(ep, smtypes.EndpointStatusInService)
	}
	if got := aws.ToString(c2.describe("updating").EndpointConfigName); got != "cfg2" {
		t.Fatalf("the interrupted update ended on %s, want cfg2", got)
	}
	serving2.mu.Lock()
	var order []string
	for _, d := range serving2.deploys {
		if d.Endpoint == "updating" {
			order = append(order, d.Config)
		}
	}
	serving2.mu.Unlock()
	if len(order) != 2 || order[0] != "cfg1" || order[1] != "cfg2" {
		t.Fatalf("the interrupted update was resumed as %v, want [cfg1 cfg2]", order)
	}
}

// TestServingPanicFailsOneEndpoint: a panic in the serving layer fails that deploy with a reason
// and leaves the server running.
func TestServingPanicFailsOneEndpoint(t *testing.T) {
	serving := newGatedServing(false)
	serving.panicOn = "bad"
	c := newCP(t, cpOptions{serving: serving})
	ctx := context.Background()
	c.model("m1")
	c.config("bad", variant("A", "m1", 1, 1))
	c.config("good", variant("A", "m1", 1, 1))
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("bad")}); err != nil {
		t.Fatal(err)
	}
	out := c.waitStatus("ep", smtypes.EndpointStatusFailed)
	if r := aws.ToString(out.FailureReason); r != "internal error in the local serving layer during deploy: serving layer bug" {
		t.Fatalf("FailureReason = %q", r)
	}
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep2"), EndpointConfigName: aws.String("good")}); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("ep2", smtypes.EndpointStatusInService)
}
