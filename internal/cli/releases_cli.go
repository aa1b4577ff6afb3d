package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

// releasesConn is how `sagedeploy releases ...` reaches the release server: its URL, and a
// user's credentials (approvals need a user) or else the environment's integration token.
type releasesConn struct {
	b      *binder
	url    string
	user   string
	output string
}

func bindReleasesConn(cmd *cobra.Command, g *globals) *releasesConn {
	c := &releasesConn{b: newBinder(cmd, g)}
	c.b.str(&c.url, "releases-url", "", "the sagedeploy release server, e.g. http://127.0.0.1:4571", "SAGEDEPLOY_RELEASES_URL")
	c.b.str(&c.user, "user", "", "dashboard user to act as (password in SAGEDEPLOY_PASSWORD); else the integration token in SAGEDEPLOY_RELEASES_TOKEN is used", "SAGEDEPLOY_USER")
	cmd.Flags().StringVarP(&c.output, "output", "o", "text", "output format: text or json")
	cmd.SetFlagErrorFunc(flagError)
	return c
}

// client checks the flags and returns the client they describe.
func (c *releasesConn) client(g *globals) (*releases.Client, error) {
	if err := c.b.apply(); err != nil {
		return nil, err
	}
	if c.output != "text" && c.output != "json" {
		return nil, usageErr(fmt.Errorf("--output %q: use text or json", c.output))
	}
	if c.url == "" {
		return nil, usageErr(errors.New("no release server given: set --releases-url or SAGEDEPLOY_RELEASES_URL (e.g. http://127.0.0.1:4571, as `sagedeploy up` prints)"))
	}
	if c.user != "" {
		pw := g.getenv("SAGEDEPLOY_PASSWORD")
		if pw == "" {
			return nil, usageErr(fmt.Errorf("--user %s needs the password in SAGEDEPLOY_PASSWORD", c.user))
		}
		return releases.NewUserClient(c.url, c.user, pw, nil), nil
	}
	token := g.releasesToken()
	if token == "" {
		return nil, usageErr(errors.New("no credentials for the release server: set --user NAME with SAGEDEPLOY_PASSWORD, or an integration token in SAGEDEPLOY_RELEASES_TOKEN"))
	}
	return releases.NewClient(c.url, token, nil), nil
}

func newReleasesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List, show, approve, reject and cancel releases on the release server",
		Long: `Work with the releases a release server records, as the dashboard does: list them, show one
with its progress events, and decide on releases waiting at an environment's approval gate.
Approving and rejecting need a dashboard user (--user with SAGEDEPLOY_PASSWORD) other than the
one who requested the release, unless the environment allows self-approval.`,
		Example: `  export SAGEDEPLOY_RELEASES_URL=http://127.0.0.1:4571 SAGEDEPLOY_USER=alice SAGEDEPLOY_PASSWORD=...
  sagedeploy releases list --env prod --status pending
  sagedeploy releases approve 01931f2c-...`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newReleasesListCmd(g), newReleasesShowCmd(g),
		newReleasesDecideCmd(g, true), newReleasesDecideCmd(g, false), newReleasesCancelCmd(g))
	return cmd
}

func newReleasesListCmd(g *globals) *cobra.Command {
	var f releases.ReleaseFilter
	var status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the newest releases, optionally of one environment, model or status",
		Example: `  sagedeploy releases list
  sagedeploy releases list --env prod --status pending
  sagedeploy releases list --model abalone --limit 5 -o json`,
		Args: cobra.NoArgs,
	}
	c := bindReleasesConn(cmd, g)
	c.b.str(&f.Environment, "env", "", "only releases of this environment")
	c.b.str(&f.Model, "model", "", "only releases of this model", "MODEL_NAME")
	c.b.str(&status, "status", "", "only releases in this status: pending, running, succeeded, failed or canceled")
	c.b.integer(&f.Limit, "limit", 20, "how many releases, newest first (1 to 200)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		rc, err := c.client(g)
		if err != nil {
			return err
		}
		f.Status = releases.Status(status)
		page, err := rc.ListReleases(cmd.Context(), f)
		if err != nil {
			return err
		}
		return printList(g.stdout, c.output, page.Releases, releaseColumns())
	}
	return cmd
}

// releaseColumns is the table of `releases list`.
func releaseColumns() columns[releases.Release] {
	return columns[releases.Release]{
		header: []string{"ID", "ENVIRONMENT", "MODEL", "KIND", "VERSION", "STATUS", "TRIGGERED BY", "CREATED"},
		row: func(r releases.Release) []string {
			v := "-"
			if r.Version.Number > 0 {
				v = "v" + strconv.Itoa(r.Version.Number)
			}
			st := string(r.Status)
			if r.AwaitingApproval() {
				st += " (awaiting approval)"
			}
			return []string{r.ID, r.Environment, r.Model, string(r.Kind), v, st, triggeredBy(r.Trigger), r.CreatedAt.Local().Format(time.DateTime)}
		},
	}
}

func triggeredBy(t releases.Trigger) string {
	switch {
	case t.User != "" && t.PipelineID != "":
		return t.User + " (pipeline " + t.PipelineID + ")"
	case t.User != "":
		return t.User
	case t.PipelineID != "":
		return "pipeline " + t.PipelineID
	}
	return cmp.Or(string(t.Type), "-")
}

func newReleasesShowCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one release with its progress events and its link",
		Example: `  sagedeploy releases show 01931f2c-...`,
		Args:    argsNamed(1, "the id of the release (see `sagedeploy releases list`)"),
	}
	c := bindReleasesConn(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		rc, err := c.client(g)
		if err != nil {
			return err
		}
		r, err := rc.Release(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return emit(g.stdout, c.output, r, nil, func(w io.Writer) { releaseText(w, rc, r) })
	}
	return cmd
}

// releaseText renders one release: what, where, how it ended, its events, its page.
func releaseText(w io.Writer, rc *releases.Client, r releases.Release) {
	fmt.Fprintf(w, "%s of %s to %s, version %d: %s", r.Kind, r.Model, r.Environment, r.Version.Number, r.Status)
	if r.Reason != "" {
		fmt.Fprintf(w, " (%s)", r.Reason)
	}
	fmt.Fprintln(w)
	if r.FailureReason != "" {
		fmt.Fprintf(w, "  %s\n", r.FailureReason)
	}
	fmt.Fprintf(w, "triggered by %s; created %s", triggeredBy(r.Trigger), r.CreatedAt.Local().Format(time.DateTime))
	if r.ApprovedBy != "" {
		fmt.Fprintf(w, "; approved by %s", r.ApprovedBy)
	}
	if r.RejectedBy != "" {
		fmt.Fprintf(w, "; rejected by %s", r.RejectedBy)
	}
	fmt.Fprintln(w)
	for _, e := range r.Events {
		fmt.Fprintf(w, "  %s [%s] %s\n", e.Time.Local().Format("15:04:05"), e.Phase, e.Message)
	}
	releaseLine(w, deploy.ReleaseURL(rc, r.ID))
}

func newReleasesDecideCmd(g *globals, approve bool) *cobra.Command {
	var reason string
	use, short, example := "approve ID", "Approve a release waiting at its environment's gate", `  SAGEDEPLOY_USER=alice SAGEDEPLOY_PASSWORD=... sagedeploy releases approve 01931f2c-...`
	if !approve {
		use, short, example = "reject ID", "Reject a release waiting at its environment's gate (it ends canceled; nothing is deployed)", `  sagedeploy releases reject 01931f2c-... --reason "v4 fails the fairness check"`
	}
	cmd := &cobra.Command{Use: use, Short: short, Example: example,
		Args: argsNamed(1, "the id of the release (see `sagedeploy releases list --status pending`)")}
	c := bindReleasesConn(cmd, g)
	c.b.str(&reason, "reason", "", "why, recorded on the release and in the audit log")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		rc, err := c.client(g)
		if err != nil {
			return err
		}
		if c.user == "" {
			return usageErr(errors.New("approving or rejecting a release needs a dashboard user, not an integration token: set --user NAME (or SAGEDEPLOY_USER) and SAGEDEPLOY_PASSWORD"))
		}
		r, err := rc.Decide(cmd.Context(), args[0], approve, reason)
		if err != nil {
			return err
		}
		return emit(g.stdout, c.output, r, nil, func(w io.Writer) {
			verb := "approved"
			if !approve {
				verb = "rejected"
			}
			fmt.Fprintf(w, "%s release %s (%s of %s to %s, version %d): now %s\n", verb, r.ID, r.Kind, r.Model, r.Environment, r.Version.Number, r.Status)
			releaseLine(w, deploy.ReleaseURL(rc, r.ID))
		})
	}
	return cmd
}

func newReleasesCancelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "cancel ID",
		Short:   "Cancel a pending release that no agent carries out yet",
		Example: `  sagedeploy releases cancel 01931f2c-...`,
		Args:    argsNamed(1, "the id of the release (see `sagedeploy releases list --status pending`)"),
	}
	c := bindReleasesConn(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		rc, err := c.client(g)
		if err != nil {
			return err
		}
		r, err := rc.Cancel(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return emit(g.stdout, c.output, r, nil, func(w io.Writer) {
			fmt.Fprintf(w, "canceled release %s (%s of %s to %s)\n", r.ID, r.Kind, r.Model, r.Environment)
			releaseLine(w, deploy.ReleaseURL(rc, r.ID))
		})
	}
	return cmd
}
