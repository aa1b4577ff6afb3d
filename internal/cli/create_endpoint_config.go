package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newCreateEndpointConfigCmd(g *globals, use string, aliases ...string) *cobra.Command {
	var env, itype string
	var count, version int
	cmd := &cobra.Command{
		Use:     use,
		Aliases: aliases,
		Short:   "Create the endpoint configuration of a model in an environment",
		Long: `Create the endpoint configuration of a model in an environment: one AllTraffic variant of
the model this pipeline created (create-model), or of the latest Approved version when it did
not (the model is created then too), with the environment's instance type and count.
Configurations are immutable and named after model, environment, version, pipeline and
settings, so running the step again reuses the configuration.`,
		Example: `  MODEL_NAME=abalone DEPLOY_ENVIRONMENT=dev sagedeploy create-endpoint-config
  sagedeploy create-endpoint-config --model abalone --env prod --instance-type ml.m5.large --instance-count 2`,
		Args: cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	c.b.str(&env, "env", "", "environment (dev, staging, prod, ...); default: the release token's", "DEPLOY_ENVIRONMENT")
	c.b.str(&itype, "instance-type", deploy.DefaultInstanceType, "instance type to serve on", "ENDPOINT_INSTANCE_TYPE")
	c.b.integer(&count, "instance-count", deploy.DefaultInstanceCount, "number of instances", "ENDPOINT_INSTANCE_COUNT")
	set := bindSettings(c.b)
	c.b.integer(&version, "version", 0, "model package version to use instead of the pipeline's or the latest Approved one")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		var err error
		if env, err = c.environmentFor(cmd.Context(), g, env); err != nil {
			return err
		}
		settings, err := set.parse(c.b, c.model, env, instancesChosen(c.b))
		if err != nil {
			return err
		}
		if settings.Serverless != nil {
			itype, count = "", 0 // serverless capacity has no instances
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{
				Model: c.model, Environment: env, Version: version, InstanceType: itype, InstanceCount: count, Settings: settings,
				PipelineID: c.pipelineID, ProjectID: c.projectID,
			})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "endpoint configuration %s: version %d of %s on %s × %d (model %s) — %s\n",
					res.EndpointConfigName, res.Version.Number, c.model, res.InstanceType, res.InstanceCount, res.ModelName, createdOr(res.Created, "created", "already existed"))
			})
		})
	}
	return cmd
}
