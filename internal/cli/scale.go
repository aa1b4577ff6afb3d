package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newScaleCmd(g *globals) *cobra.Command {
	var variant string
	var instances int
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Change the number of instances serving an environment",
		Long: `Set the instance count of the environment's endpoint live (no new configuration, no
redeployment) and wait until it is InService with that many instances.`,
		Example: `  sagedeploy scale --model abalone --env prod --instances 3`,
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	tf := bindTarget(c.b, "environment to scale")
	c.b.integer(&instances, "instances", 0, "number of instances (1 or more)")
	c.b.str(&variant, "variant", "", "production variant to scale (default: the endpoint's only one)")
	wf := bindWait(c.b)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		if err := tf.needEnv("scale"); err != nil {
			return err
		}
		if instances < 1 {
			return usageErr(fmt.Errorf("scale needs --instances N with N ≥ 1 (got %d)", instances))
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Scale(ctx, deploy.ScaleRequest{Model: c.model, Environment: tf.env, EndpointName: tf.endpointName, Instances: instances, Variant: variant,
				PipelineID: c.pipelineID, ProjectID: c.projectID, Timeout: wf.timeout.d, LockTimeout: wf.lockTimeout.d})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				defer releaseLine(w, res.ReleaseURL)
				if !res.Changed {
					fmt.Fprintf(w, "%s already runs %d instances; nothing changed\n", res.Endpoint, res.Instances)
					return
				}
				fmt.Fprintf(w, "%s (%s) runs %d instances of %s (was %d) — %s after %s\n", res.Endpoint, tf.env, res.Instances, res.Variant, res.PreviousInstances, res.EndpointStatus, res.Duration.Round(time.Millisecond))
			})
		})
	}
	return cmd
}
