package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newHistoryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "history",
		Short:   "Show the versions an environment's endpoint has served",
		Long:    `The configurations — and versions — the environment's endpoint has served, oldest first, from the endpoint's tags.`,
		Example: "  sagedeploy history --model abalone --env prod\n  sagedeploy history --model abalone --env dev -o json",
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	tf := bindTarget(c.b, "environment")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if tf.endpointName == "" {
			if err := c.needModel(); err != nil {
				return err
			}
			if err := tf.needEnv("history"); err != nil {
				return err
			}
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.History(ctx, deploy.HistoryRequest{Model: c.model, Environment: tf.env, EndpointName: tf.endpointName})
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
