package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newStatusCmd(g *globals) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what every environment serves: version, endpoint status, instances",
		Long: `A table of the environments and models sagedeploy manages: version served, endpoint status, instances, last change.
With a release server (SAGEDEPLOY_RELEASES_URL and a token), also the endpoints changed outside sagedeploy and how
far each environment is behind the one before it.`,
		Example: "  sagedeploy status\n  sagedeploy status --endpoint-url http://127.0.0.1:4570 -o json",
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	c.b.str(&env, "env", "", "only this environment")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Status(ctx, deploy.StatusRequest{Model: c.model, Environment: env})
			view := withServerNotes(ctx, g, c, res, env)
			return emit(g.stdout, c.output, view, err, func(w io.Writer) {
				if len(res.Components) == 0 {
					fmt.Fprintln(w, "no endpoints managed by sagedeploy")
					return
				}
				statusColumns().write(w, res.Components)
				view.writeNotes(w)
			})
		})
	}
	return cmd
}

// statusColumns is the table of `status`: a row per environment of each model.
func statusColumns() columns[deploy.Component] {
	return columns[deploy.Component]{
		header: []string{"MODEL", "ENVIRONMENT", "VERSION", "STATUS", "INSTANCES", "TYPE", "LAST CHANGE", "ENDPOINT"},
		row: func(c deploy.Component) []string {
			st := c.EndpointStatus
			if c.Deploying != "" {
				st += " (" + c.Deploying + ")"
			}
			return []string{c.Model, c.Environment, versionText(c.Version), st, strconv.Itoa(c.Instances), c.InstanceType, ago(c.LastChange), c.Endpoint}
		},
	}
}
