package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// newPlanCmd is `sagedeploy plan`: `deploy --dry-run` under its own name.
func newPlanCmd(g *globals) *cobra.Command {
	cmd := newDeployCmd(g, "plan")
	cmd.Short = "Show what a deploy would change on an environment's endpoint, changing nothing"
	cmd.Long = `Show what "sagedeploy deploy" with the same flags would change on the environment's endpoint —
version, model, endpoint configuration, instances, strategy — as a diff, without creating or
changing anything. The environment is checked as a deploy checks it (the pipeline file, the
release server), so a plan of a mistyped or refused environment fails the same way.

"sagedeploy deploy --dry-run" is the same command.`
	cmd.Example = `  sagedeploy plan --model abalone --env prod --version 3
  sagedeploy plan --env prod -o json          # model and settings from sagedeploy.yaml
  sagedeploy deploy --env prod --dry-run`
	_ = cmd.Flags().Set("dry-run", "true")
	_ = cmd.Flags().MarkHidden("dry-run")
	return cmd
}

// runPlan prints the plan of req instead of deploying it.
func runPlan(ctx context.Context, g *globals, c *conn, d *deploy.Deployer, req deploy.DeployRequest) error {
	res, err := d.Plan(ctx, req)
	return emit(g.stdout, c.output, res, err, func(w io.Writer) { planText(w, res, c) })
}

func planText(w io.Writer, p deploy.PlanResult, c *conn) {
	what := map[string]string{deploy.PlanCreate: "create the endpoint", deploy.PlanUpdate: "update the endpoint", deploy.PlanNothing: "nothing to change"}[p.Action]
	fmt.Fprintf(w, "Plan for %s in %s (endpoint %s, %s): %s\n", p.Model, p.Environment, p.Endpoint, p.Region, what)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, ch := range p.Changes {
		mark, from := "  ", ch.From
		switch {
		case ch.Field == "strategy":
			mark, from = "  ", "how traffic moves:"
		case ch.Changed && ch.From == "":
			mark, from = "+ ", "(none)"
		case ch.Changed:
			mark = "~ "
		}
		to := ch.To
		if !ch.Changed && ch.Field != "strategy" {
			to = "(unchanged)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t→ %s\n", mark, ch.Field, from, to)
	}
	_ = tw.Flush()
	switch {
	case p.ModelCreated:
		fmt.Fprintln(w, "A deploy would create the SageMaker model and the endpoint configuration.")
	case p.ConfigCreated:
		fmt.Fprintln(w, "A deploy would create the endpoint configuration (the model exists).")
	}
	fmt.Fprintln(w, "Nothing was changed.")
}
