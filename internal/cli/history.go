package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
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
				historyColumns().write(w, res.Entries)
			})
		})
	}
	return cmd
}

// historyColumns is the table of `history`, oldest first; * marks what the endpoint serves now.
func historyColumns() columns[deploy.HistoryEntry] {
	return columns[deploy.HistoryEntry]{
		header: []string{"", "TIME", "VERSION", "HOW", "ENDPOINT CONFIG"},
		row: func(e deploy.HistoryEntry) []string {
			mark := ""
			if e.Current {
				mark = "*"
			}
			return []string{mark, e.Time.UTC().Format(time.RFC3339), fmt.Sprintf("v%d", e.Version), fmt.Sprint(e.Kind), e.EndpointConfigName}
		},
	}
}
