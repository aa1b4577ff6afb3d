package deploy

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	return o, nil
}

// CloudWatch is a CloudWatch client with the deployer's credentials and endpoint, for reading
// endpoint metrics.
func (d *Deployer) CloudWatch() *cloudwatch.Client {
	return cloudwatch.NewFromConfig(d.cfg, func(o *cloudwatch.Options) {
		if d.local {
			o.BaseEndpoint = aws.String(d.opts.EndpointURL)
		}
	})
}
