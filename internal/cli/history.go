package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newHistoryCmd(g *globals) *cobra.Command {
	var env, endpointName string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show the versions an environment's endpoint has served",
		Long:  `The configurations — and versions — the environment's endpoint has served, oldest first, from the endpoint's tags.`,
		Args:  cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	c.b.str(&env, "env", "", "environment", "DEPLOY_ENVIRONMENT")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint instead of {model}-{environment}", "ENDPOINT_NAME")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if endpointName == "" {
			if err := c.needModel(); err != nil {
				return err
			}
			if env == "" {
				return usageErr(errors.New("history needs --env (or DEPLOY_ENVIRONMENT)"))
			}
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.History(ctx, deploy.HistoryRequest{Model: c.model, Environment: env, EndpointName: endpointName})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "\tTIME\tVERSION\tHOW\tENDPOINT CONFIG")
				for _, e := range res.Entries {
					mark := ""
					if e.Current {
						mark = "*"
					}
					fmt.Fprintf(tw, "%s\t%s\tv%d\t%s\t%s\n", mark, e.Time.UTC().Format(time.RFC3339), e.Version, e.Kind, e.EndpointConfigName)
				}
				tw.Flush()
			})
		})
	}
	return cmd
}
