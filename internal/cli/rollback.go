package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newRollbackCmd(g *globals) *cobra.Command {
	var toVersion int
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Serve the previous version (or --to-version) again",
		Long: `Put the version served before the current one (or --to-version N) back on the environment's
endpoint, by re-pointing it at the endpoint configuration that served that version — same
model, same instance settings — found in the endpoint's history (see "sagedeploy history").`,
		Example: `  sagedeploy rollback --model abalone --env prod
  sagedeploy rollback --model abalone --env prod --to-version 2`,
		Args: cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	tf := bindTarget(c.b, "environment to roll back")
	c.b.integer(&toVersion, "to-version", 0, "version to restore; 0 means the one served before the current one")
	wf := bindWait(c.b)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		if err := tf.needEnv("rollback"); err != nil {
			return err
		}
		if toVersion < 0 {
			return usageErr(fmt.Errorf("--to-version %d: give a version number, or 0 for the previous one", toVersion))
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Rollback(ctx, deploy.RollbackRequest{Model: c.model, Environment: tf.env, EndpointName: tf.endpointName, ToVersion: toVersion,
				PipelineID: c.pipelineID, ProjectID: c.projectID, Timeout: wf.timeout.d, LockTimeout: wf.lockTimeout.d})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) { deployText(w, res) })
		})
	}
	return cmd
}
