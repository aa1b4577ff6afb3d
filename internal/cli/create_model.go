package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newCreateModelCmd(g *globals, use string) *cobra.Command {
	var env string
	var version int
	cmd := &cobra.Command{
		Use:   use,
		Short: "Create the SageMaker model of the latest Approved version (or --version) of a model",
		Long: `Create the SageMaker model of a registry version: the latest Approved model package of the
model's group, or the version given with --version. The model is named after the model,
version and pipeline; running the step again in the same pipeline reuses it (and keeps the
version it chose first), so a retried CI job succeeds.`,
		Example: `  MODEL_NAME=abalone CIRCLE_PIPELINE_ID=$CIRCLE_PIPELINE_ID sagedeploy create-model
  sagedeploy create-model --model abalone --version 3`,
		Args: cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	c.b.str(&env, "env", "", "environment the model is for (recorded in tags only)", "DEPLOY_ENVIRONMENT")
	c.b.integer(&version, "version", 0, "model package version to use instead of the latest Approved one")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: c.model, Version: version, Environment: env, PipelineID: c.pipelineID, ProjectID: c.projectID})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "model %s serves version %d of %s (%s) — %s\n", res.ModelName, res.Version.Number, c.model, res.Version.ARN, createdOr(res.Created, "created", "already existed"))
			})
		})
	}
	return cmd
}
