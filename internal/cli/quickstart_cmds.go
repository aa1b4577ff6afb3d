package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/quickstart"
)

// quickstartLong and quickstartExample are the help of `sagedeploy quickstart`.
const (
	quickstartLong = `Run sagedeploy's whole workflow for real on this machine, with no AWS account and no Python:
it starts everything "sagedeploy up" starts (local SageMaker, release server with its dashboard,
agent), then

  1. registers the abalone example's two XGBoost model versions (embedded in the binary) as
     Approved versions of the model package group abalone, uploading them to the local S3
  2. deploys v1 to dev (a release on the dashboard, with its progress)
  3. sends every abalone of the data set to dev and compares the predicted rings with the labels
  4. promotes dev's v1 to prod — prod has an approval gate: click Approve on the dashboard (the
     link is printed), or pass --yes to approve it from here
  5. deploys v2 to dev and  6. evaluates it
  7. rolls dev back to v1

and leaves the dashboard running, with that history to look at, until Ctrl-C (--exit stops
right away, for CI).

It uses the data directory of "sagedeploy up" (--data-dir to choose another), so "sagedeploy
up" shows the same dashboard later. Running it again is safe: it reuses the registered versions
and makes each environment serve the same versions again, adding new releases. Ctrl-C at any
point stops cleanly; the next run continues.`
	quickstartExample = `  go run ./cmd/sagedeploy quickstart
  sagedeploy quickstart --yes --exit                      # no click needed, stop at the end (CI)
  sagedeploy quickstart --data-dir "$(mktemp -d)" --addr 127.0.0.1:0 --local-addr 127.0.0.1:0`
)

// quickstartFlags are the flags of `sagedeploy quickstart`: those of the stack it starts, and its own.
type quickstartFlags struct {
	stack              stackFlags
	yes, exit, verbose bool
	output             string
}

func newQuickstartCmd(g *globals) *cobra.Command {
	qf := &quickstartFlags{}
	cmd := &cobra.Command{
		Use:     "quickstart",
		Short:   "See sagedeploy work in a minute: register, deploy, evaluate, approve, promote, roll back — locally",
		Long:    quickstartLong,
		Example: quickstartExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runQuickstart(cmd, g, qf)
		},
	}
	bindStackFlags(cmd, g, &qf.stack)
	f := cmd.Flags()
	f.BoolVarP(&qf.yes, "yes", "y", false, "approve the promotion to prod from here instead of waiting for a click on the dashboard")
	f.BoolVar(&qf.exit, "exit", false, "stop once the workflow is done instead of leaving the dashboard running (CI)")
	f.BoolVarP(&qf.verbose, "verbose", "v", false, "print every progress event of the deployer")
	f.StringVarP(&qf.output, "output", "o", "text", "text, or json: the result (releases, metrics, what serves where) on stdout, the story on stderr")
	return cmd
}

// runQuickstart starts the stack, runs the workflow on it, and keeps the dashboard up until
// Ctrl-C unless --exit.
func runQuickstart(cmd *cobra.Command, g *globals, qf *quickstartFlags) error {
	ctx := cmd.Context()
	if qf.output != "text" && qf.output != "json" {
		return usageErr(fmt.Errorf("--output %q: use text or json", qf.output))
	}
	// With --output json, stdout holds only the result; the story goes to stderr.
	story := g.stdout
	if qf.output == "json" {
		story = g.stderr
	}
	t0 := time.Now()
	fmt.Fprintf(story, "sagedeploy quickstart: the abalone model from the registry to prod, on this machine\n\n")
	s, err := qf.stack.start(ctx, g, quietLogger(cmd, g))
	if err != nil {
		return err
	}
	var b strings.Builder
	writeStackSummary(&b, s, qf.output != "json")
	fmt.Fprintf(story, "%s  Data             %s\n\nStarted in %s. Open the dashboard to watch the releases arrive.\n", b.String(), s.DataDir(), quickstart.Round(time.Since(t0)))

	res, err := quickstart.Run(ctx, quickstart.Options{Stack: s, Out: story, Yes: qf.yes, Verbose: qf.verbose})
	if err != nil {
		_ = stopStack(ctx, g, s)
		return err
	}
	writeQuickstartDone(story, s.ServerURL(), res, qf.exit)
	if qf.output == "json" {
		if err := writeJSONLine(g.stdout, quickstartOutput{Result: res, Login: newLogin(s)}); err != nil {
			_ = stopStack(ctx, g, s)
			return err
		}
	}
	if !qf.exit {
		select {
		case <-ctx.Done():
		case <-s.Done():
		}
	}
	return stopStack(ctx, g, s)
}

// quickstartOutput is the result of `quickstart -o json`: the workflow's, and the admin's login
// when this run made or reset its password (the only place that password is printed).
type quickstartOutput struct {
	*quickstart.Result
	Login *allinone.Login `json:"login,omitempty"`
}

func newLogin(s *allinone.Stack) *allinone.Login {
	if l := s.AdminLogin(); l.Password != "" {
		return &l
	}
	return nil
}

func writeQuickstartDone(w io.Writer, dashboard string, res *quickstart.Result, exit bool) {
	fmt.Fprintf(w, "\nDone in %s: prod serves v%d, dev serves v%d (v2 was deployed to dev and rolled back).\n",
		quickstart.Round(res.Duration), res.Serving[quickstart.Prod], res.Serving[quickstart.Dev])
	if m1, ok := res.Metrics[1]; ok {
		if m2, ok := res.Metrics[2]; ok {
			fmt.Fprintf(w, "Error of the predicted rings: v1 RMSE %.3f / MAE %.3f, v2 RMSE %.3f / MAE %.3f.\n", m1.RMSE, m1.MAE, m2.RMSE, m2.MAE)
		}
	}
	if exit {
		return
	}
	fmt.Fprintf(w, `
Look around on %[1]s:
  Overview         what dev and prod serve, and the latest releases
  Releases         each release of this run, with its progress events and who approved it
  abalone in dev   %[1]s/components/dev/abalone — version history; Roll back, Restore and Scale
                   run through the agent against the local SageMaker (watch them live)
  Approvals        try "Promote" on dev's page: prod's gate waits for you here
  Audit            who did what

Everything keeps running until Ctrl-C; "sagedeploy up" brings it back later.
`, dashboard)
}

// quietLogger is the global logger at level warn unless a level was asked for (--log-level or
// SAGEDEPLOY_LOG_LEVEL): the quickstart tells its own story, which a log line per AWS call would
// drown.
func quietLogger(cmd *cobra.Command, g *globals) *slog.Logger {
	if f := cmd.Flags().Lookup("log-level"); (f != nil && f.Changed) || g.getenv("SAGEDEPLOY_LOG_LEVEL") != "" {
		return g.logger()
	}
	q := *g
	q.logLevel = "warn"
	return q.logger()
}
