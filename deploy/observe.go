package deploy

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/sagedeploy/sagedeploy/releases"
)

// ObserveEndpoint reads what an endpoint serves now — status, configuration, version (from the
// configuration's model tags) and instances — for the agent's drift check. An endpoint that
// does not exist is an observation with Missing set, not an error.
func (d *Deployer) ObserveEndpoint(ctx context.Context, name string) (releases.Observation, error) {
	o := releases.Observation{EndpointName: name}
	c, _, err := d.component(ctx, name)
	if isNotFound(err) {
		o.Missing = true
		return o, nil
	}
	if err != nil {
		return o, err
	}
	o.EndpointStatus, o.EndpointConfigName = c.EndpointStatus, c.EndpointConfigName
	o.InstanceType, o.InstanceCount = c.InstanceType, c.Instances
	if c.Version != nil {
		o.Version = c.Version.Number
	}
	// Without the autoscaling range (no permission to read it, say) the observation still counts;
	// an autoscaled instance count may then show as drift.
	if o.AutoscaleMin, o.AutoscaleMax, err = d.autoscaleRange(ctx, name); err != nil {
		d.log.Warn("observe endpoint: autoscaling range unknown", "endpoint", name, "err", err)
	}
	return o, nil
}

// autoscaleRange is the instance range Application Auto Scaling keeps sagedeploy's variant of
// the endpoint in; 0, 0 when it is not a scalable target.
func (d *Deployer) autoscaleRange(ctx context.Context, endpoint string) (int, int, error) {
	out, err := d.aas.DescribeScalableTargets(ctx, &applicationautoscaling.DescribeScalableTargetsInput{
		ServiceNamespace:  aastypes.ServiceNamespaceSagemaker,
		ResourceIds:       []string{"endpoint/" + endpoint + "/variant/" + DefaultVariant},
		ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read the autoscaling of endpoint %s: %w", endpoint, err)
	}
	for _, t := range out.ScalableTargets {
		return int(aws.ToInt32(t.MinCapacity)), int(aws.ToInt32(t.MaxCapacity)), nil
	}
	return 0, 0, nil
}

// CloudWatch is the deployer's CloudWatch client (its credentials and endpoint), for reading
// endpoint metrics.
func (d *Deployer) CloudWatch() *cloudwatch.Client { return d.cw }
