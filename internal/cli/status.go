package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newStatusCmd(g *globals) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what every environment serves: version, endpoint status, instances",
		Long:  `A table of the environments and models sagedeploy manages: version served, endpoint status, instances, last change.`,
		Args:  cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	c.b.str(&env, "env", "", "only this environment")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Status(ctx, deploy.StatusRequest{Model: c.model, Environment: env})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				if len(res.Components) == 0 {
					fmt.Fprintln(w, "no endpoints managed by sagedeploy")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "MODEL\tENVIRONMENT\tVERSION\tSTATUS\tINSTANCES\tTYPE\tLAST CHANGE\tENDPOINT")
				for _, c := range res.Components {
					st := c.EndpointStatus
					if c.Deploying != "" {
						st += " (" + c.Deploying + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Model, c.Environment, versionText(c.Version), st, c.Instances, c.InstanceType, ago(c.LastChange), c.Endpoint)
				}
				tw.Flush()
			})
		})
	}
	return cmd
}
