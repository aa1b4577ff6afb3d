package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

// statusView is `status`: what SageMaker says, and — when a release server is configured
// (SAGEDEPLOY_RELEASES_URL and a token) — what the server knows beside it: endpoints changed
// outside sagedeploy (drift) and how far each environment is behind the one before it.
type statusView struct {
	deploy.StatusResult
	Drift     []releases.Drift     `json:"drift,omitempty"`
	Freshness []releases.Freshness `json:"freshness,omitempty"`
}

// withServerNotes adds the release server's drift and freshness for the listed components. A
// server that does not answer is logged and left out: status is about SageMaker first.
func withServerNotes(ctx context.Context, g *globals, c *conn, res deploy.StatusResult, env string) statusView {
	v := statusView{StatusResult: res}
	token := g.releasesToken()
	if c.releasesURL == "" || token == "" {
		return v
	}
	rc := releases.NewClient(c.releasesURL, token, nil)
	drift, err := rc.Drift(ctx)
	if err != nil {
		g.logger().Warn("status: cannot read drift from the release server", "url", c.releasesURL, "err", err)
	}
	fresh, err := rc.Freshness(ctx, c.model)
	if err != nil {
		g.logger().Warn("status: cannot read freshness from the release server", "url", c.releasesURL, "err", err)
	}
	keep := func(e, m string) bool { return (env == "" || e == env) && (c.model == "" || m == c.model) }
	for _, d := range drift {
		if keep(d.Environment, d.Model) {
			v.Drift = append(v.Drift, d)
		}
	}
	for _, f := range fresh {
		if keep(f.Environment, f.Model) {
			v.Freshness = append(v.Freshness, f)
		}
	}
	return v
}

// writeNotes prints drift and freshness under the table.
func (v statusView) writeNotes(w io.Writer) {
	if len(v.Drift) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "CHANGED OUTSIDE SAGEDEPLOY (adopt or redeploy on the dashboard):")
		for _, d := range v.Drift {
			fmt.Fprintf(w, "  %s in %s: %s\n", d.Model, d.Environment, d.Summary())
		}
	}
	var behind []releases.Freshness
	for _, f := range v.Freshness {
		if f.VersionsBehind > 0 {
			behind = append(behind, f)
		}
	}
	if len(behind) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "BEHIND:")
		for _, f := range behind {
			fmt.Fprintf(w, "  %s: %s\n", f.Model, f.Text)
		}
	}
}
