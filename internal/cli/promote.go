package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newPromoteCmd(g *globals) *cobra.Command {
	var from, to, endpointName, desc string
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Deploy to one environment exactly the version another one serves",
		Long: `Deploy to --to exactly the version --from serves now: the same SageMaker model, hence the
same model package ARN, found from --from's current endpoint configuration — never "the latest
approved", which may have changed since --from was tested. --to gets its own instance settings
(--instance-type / --instance-count, else what it runs now, else ml.t2.medium × 1).`,
		Example: `  sagedeploy promote --model abalone --from dev --to prod --instance-count 2`,
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	c.b.str(&from, "from", "dev", "environment whose running version is promoted")
	c.b.str(&to, "to", "", "environment to deploy it to", "DEPLOY_ENVIRONMENT")
	ro := bindRollout(cmd, c.b, "in --to", "of --to")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint of --to instead of {model}-{to}", "ENDPOINT_NAME")
	c.b.str(&desc, "description", "", "description shown on the release", "MODEL_DESC")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		if to == "" {
			return usageErr(errors.New("promote needs --to (the environment to deploy to, e.g. prod)"))
		}
		r, err := ro.parse(c.b, g.stdin, c.model, to)
		if err != nil {
			return err
		}
		req := deploy.PromoteRequest{Model: c.model, From: from, To: to, EndpointName: endpointName, PipelineID: c.pipelineID, ProjectID: c.projectID,
			Description: desc, InstanceType: r.instanceType, InstanceCount: r.instanceCount,
			Strategy: r.strategy, Verify: r.verify, RollbackOnFailure: r.rollbackOnFailure, Timeout: r.timeout, LockTimeout: r.lockTimeout,
			SkipPreflight: r.skipPreflight, Settings: r.settings}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Promote(ctx, req)
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "promoted version %d of %s from %s to %s (%s)\n", res.Version.Number, c.model, from, to, res.Version.ARN)
				deployText(w, res.DeployResult)
			})
		})
	}
	return cmd
}
