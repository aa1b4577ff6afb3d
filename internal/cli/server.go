package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// ReleaseServerConfig is what `sagedeploy server` (and `sagedeploy up`) runs a release server with.
type ReleaseServerConfig struct {
	Addr           string
	BaseURL        string
	CommandTimeout time.Duration
	RunningTimeout time.Duration
	// Version is sagedeploy's version, shown on the dashboard.
	Version string
	// Webhooks configure notifications (the key comes from the data dir; see webhook.go).
	Webhooks server.WebhookOptions
	// Pipeline, when set, is a pipeline file whose environments are saved at start (pipeline.go).
	Pipeline string
}

func newServerCmd(g *globals) *cobra.Command {
	sf := &storeFlags{logger: g.logger}
	cfg := ReleaseServerConfig{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the release server: dashboard, release API, approvals, tokens",
		Long: `Run the release server: the dashboard where releases appear live, and the API the deployer
reports to and agents take commands from.

State lives in SQLite in --data-dir (default), or in PostgreSQL with --database-url. On the first
start the server creates the user "admin" and prints its password once.

Then add environments and a token per environment:

  sagedeploy server env add dev --kind local --endpoint-url http://127.0.0.1:4570
  sagedeploy server env add prod --kind sagemaker --region eu-west-1 --requires-approval --position 1
  sagedeploy server token create --env dev --name circleci

Give the deployer the server URL and the token (SAGEDEPLOY_RELEASES_URL and
SAGEDEPLOY_RELEASES_TOKEN, or the orb's CCI_RELEASE_INTEGRATION_TOKEN), and run an agent next to
your AWS credentials to execute dashboard commands (sagedeploy agent --help).

To try everything on one machine, "sagedeploy up" runs this server together with a local
SageMaker and an agent.`,
		Example: "  sagedeploy server\n  sagedeploy server --addr 0.0.0.0:4571 --base-url https://deploy.example.com --database-url postgres://...",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReleaseServer(cmd.Context(), g, sf, cfg)
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&sf.dataDir, "data-dir", defaultDataDir(g), "directory of the SQLite database (env SAGEDEPLOY_DATA_DIR)")
	pf.StringVar(&sf.databaseURL, "database-url", g.getenv("SAGEDEPLOY_DATABASE_URL"), "PostgreSQL URL, postgres://user:pass@host:5432/db, instead of SQLite (env SAGEDEPLOY_DATABASE_URL)")
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", g.envOr("SAGEDEPLOY_ADDR", DefaultServerAddr), "address to listen on (env SAGEDEPLOY_ADDR); use 0.0.0.0:4571 to accept other machines")
	f.StringVar(&cfg.BaseURL, "base-url", g.getenv("SAGEDEPLOY_BASE_URL"), "URL users reach the server at, for links and hints, e.g. https://deploy.example.com (env SAGEDEPLOY_BASE_URL)")
	f.DurationVar(&cfg.CommandTimeout, "command-timeout", 5*time.Minute, "after this long without an agent taking a command, say so on its release (it stays queued)")
	f.StringVar(&cfg.Pipeline, "pipeline", g.getenv("SAGEDEPLOY_PIPELINE"), "pipeline file whose environments and gates the server takes at start, as `sagedeploy pipeline apply` (env SAGEDEPLOY_PIPELINE)")
	f.DurationVar(&cfg.RunningTimeout, "running-timeout", 30*time.Minute, "mark a running release failed after this long without any progress report")
	f.DurationVar(&cfg.Webhooks.RetryBase, "webhook-retry", 10*time.Second, "wait after a failed webhook delivery; it doubles at each next attempt, up to an hour")
	cmd.AddCommand(newTokenCmd(g, sf), newUserCmd(g, sf), newEnvCmd(g, sf), newWebhookCmd(g, sf))
	return cmd
}

// ReleaseServer is a release server listening on a port, for `server`.
type ReleaseServer struct {
	*server.Running
	Store *store.Store
}

// StartReleaseServer serves st on cfg.Addr until Stop (server.Listen), printing the first
// admin's password to out when this start created it.
func StartReleaseServer(ctx context.Context, log *slog.Logger, out io.Writer, st *store.Store, cfg ReleaseServerConfig) (*ReleaseServer, error) {
	r, err := server.Listen(ctx, cfg.Addr, server.Options{Store: st, Logger: log, BaseURL: cfg.BaseURL, CommandTimeout: cfg.CommandTimeout, RunningTimeout: cfg.RunningTimeout, Version: cfg.Version, Webhooks: cfg.Webhooks})
	if err != nil {
		return nil, fmt.Errorf("%w (--addr)", err)
	}
	base := cfg.BaseURL
	if base == "" {
		base = r.URL
	}
	if r.FirstAdminPassword != "" {
		fmt.Fprintf(out, "\nFirst start: created dashboard user \"admin\" with password\n\n    %s\n\nIt is shown only this once. Sign in at %s/login and add users in Settings.\n\n", r.FirstAdminPassword, base)
	}
	return &ReleaseServer{Running: r, Store: st}, nil
}

func runReleaseServer(ctx context.Context, g *globals, sf *storeFlags, cfg ReleaseServerConfig) error {
	log := g.logger()
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Pipeline != "" {
		if err := applyPipeline(ctx, g, st, cfg.Pipeline); err != nil {
			return err
		}
	}
	cfg.Version = g.version.Version
	if cfg.Webhooks.Key, err = server.LoadWebhookKey(sf.dataDir); err != nil {
		return err
	}
	rs, err := StartReleaseServer(ctx, log, g.stdout, st, cfg)
	if err != nil {
		return err
	}
	log.Info("release server listening", "url", rs.URL, "database", st.Backend(), "location", st.Location())
	if envs, err := st.Environments(ctx); err == nil && len(envs) == 0 {
		log.Info("no environments yet: add them in Settings or with `sagedeploy server env add dev --kind local`")
	}
	select {
	case <-ctx.Done():
		log.Info("stopping release server")
	case <-rs.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	return rs.Stop(sctx)
}
