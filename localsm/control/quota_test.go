package control_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// As on AWS, an endpoint's fleet must fit the account's endpoint quota of its instance type beside
// every other endpoint's: CreateEndpoint and UpdateEndpoint refuse with ResourceLimitExceeded and
// change nothing; a rolling update needs room for one batch only; a deleted endpoint frees its
// instances.
func TestEndpointQuotaIsEnforced(t *testing.T) {
	c := newCP(t, cpOptions{quota: func(itype string) float64 {
		if itype == string(smtypes.ProductionVariantInstanceTypeMlM5Large) {
			return 3
		}
		return 10
	}})
	ctx := context.Background()
	c.model("m")
	c.config("two", variant("AllTraffic", "m", 2, 1))
	c.config("two-b", variant("AllTraffic", "m", 2, 1))
	c.config("one", variant("AllTraffic", "m", 1, 1))
	c.config("two-more", variant("AllTraffic", "m", 2, 1))
	create := func(endpoint, config string) error {
		_, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(endpoint), EndpointConfigName: aws.String(config)})
		return err
	}
	if err := create("a", "two"); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("a", smtypes.EndpointStatusInService)
	apiError(t, create("b", "two-more"), "ResourceLimitExceeded",
		"The account-level service limit 'ml.m5.large for endpoint usage' is 3 Instances, with current utilization of 2 Instances and a request delta of 2 Instances.")
	if _, err := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("b")}); err == nil {
		t.Fatal("a refused CreateEndpoint left endpoint b behind")
	}

	// Blue/green runs both fleets: 2 + 2 > 3. A rolling update of one instance at a time fits.
	_, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("a"), EndpointConfigName: aws.String("two-b")})
	apiError(t, err, "ResourceLimitExceeded", "current utilization of 2 Instances and a request delta of 2 Instances")
	if got := c.describe("a"); got.EndpointStatus != smtypes.EndpointStatusInService || aws.ToString(got.EndpointConfigName) != "two" {
		t.Fatalf("a refused update changed the endpoint: %s on %s", got.EndpointStatus, aws.ToString(got.EndpointConfigName))
	}
	_, err = c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("a"), EndpointConfigName: aws.String("two-b"),
		DeploymentConfig: &smtypes.DeploymentConfig{RollingUpdatePolicy: &smtypes.RollingUpdatePolicy{
			MaximumBatchSize:      &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeInstanceCount, Value: aws.Int32(1)},
			WaitIntervalInSeconds: aws.Int32(0)}}})
	if err != nil {
		t.Fatalf("rolling update one instance at a time: %v", err)
	}
	c.waitStatus("a", smtypes.EndpointStatusInService)

	if err := create("c", "one"); err != nil {
		t.Fatalf("one more instance within the quota: %v", err)
	}
	c.waitStatus("c", smtypes.EndpointStatusInService)
	if _, err := c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, "a")
	if err := create("b", "two-more"); err != nil {
		t.Fatalf("after deleting a, its instances are free: %v", err)
	}
}
