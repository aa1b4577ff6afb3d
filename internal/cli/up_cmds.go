package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/allinone"
)

// addFirstRunCommands registers `sagedeploy up` and `sagedeploy quickstart`.
func addFirstRunCommands(root *cobra.Command, g *globals) {
	root.AddCommand(newUpCmd(g), newQuickstartCmd(g))
}

// stackFlags configure an all-in-one stack; `up` and `quickstart` share them.
type stackFlags struct {
	dataDir, localAddr, serverAddr, baseURL, region string
	resetAdmin                                      bool
}

func bindStackFlags(cmd *cobra.Command, g *globals, sf *stackFlags) {
	f := cmd.Flags()
	f.StringVar(&sf.dataDir, "data-dir", "", "directory of all state: releases, users, tokens, models, endpoints (default $SAGEDEPLOY_UP_DATA_DIR, $XDG_STATE_HOME/sagedeploy/up or ~/.local/state/sagedeploy/up)")
	f.StringVar(&sf.serverAddr, "addr", g.envOr("SAGEDEPLOY_ADDR", allinone.DefaultServerAddr), "address of the dashboard and release API; port 0 picks a free port (env SAGEDEPLOY_ADDR)")
	f.StringVar(&sf.localAddr, "local-addr", g.envOr("SAGEDEPLOY_LOCAL_ADDR", allinone.DefaultLocalAddr), "address of the local SageMaker; port 0 picks a free port (env SAGEDEPLOY_LOCAL_ADDR)")
	f.StringVar(&sf.baseURL, "base-url", g.getenv("SAGEDEPLOY_BASE_URL"), "URL users reach the dashboard at, for links (env SAGEDEPLOY_BASE_URL)")
	f.StringVar(&sf.region, "region", allinone.DefaultRegion, "AWS region the local SageMaker names in its ARNs")
	f.BoolVar(&sf.resetAdmin, "reset-admin-password", false, "give the dashboard user admin a new password and print it")
}

// start starts the stack the flags describe, logging through log.
func (sf *stackFlags) start(ctx context.Context, g *globals, log *slog.Logger) (*allinone.Stack, error) {
	dir := sf.dataDir
	if dir == "" {
		var err error
		if dir, err = allinone.DefaultDataDir(g.getenv); err != nil {
			return nil, err
		}
	}
	localGC(g)
	s, err := allinone.Start(ctx, allinone.Options{DataDir: dir, LocalAddr: sf.localAddr, ServerAddr: sf.serverAddr,
		BaseURL: sf.baseURL, Region: sf.region, Logger: log, ResetAdminPassword: sf.resetAdmin, Version: g.version.Version})
	if err != nil && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "is in use by another")) {
		return nil, fmt.Errorf("%w\n(is `sagedeploy up` or a quickstart already running? It uses the same ports and data directory: stop it, or pass other --addr, --local-addr and --data-dir)", err)
	}
	return s, err
}

// stopStack closes the stack with a deadline of its own: ctx has usually ended (Ctrl-C).
func stopStack(ctx context.Context, g *globals, s *allinone.Stack) error {
	g.logger().Info("stopping the agent, the release server and the local SageMaker")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return s.Close(sctx)
}

func newUpCmd(g *globals) *cobra.Command {
	sf := &stackFlags{}
	var output string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run everything on this machine: local SageMaker, release server (dashboard) and agent",
		Long: `Run sagedeploy's whole stack in one process, over one data directory: the local SageMaker
(on --local-addr), the release server with its dashboard (on --addr) and an agent that executes
the dashboard's commands (rollback, restore, scale, promote) against that local SageMaker.

On the first start it creates the environments dev and prod (prod behind an approval gate) and
the dashboard user admin, whose password it prints once. Later starts find everything again:
releases, users, tokens, registered models and the endpoints, which serve again.

It prints what to export so that "sagedeploy deploy" (or any AWS SDK or CLI) in another shell
talks to the local SageMaker and reports its releases to the dashboard. Stop it with Ctrl-C.

Manage it with the server's commands on the same data directory, e.g.
  sagedeploy server user add carol --role deployer --data-dir DIR
  sagedeploy server token create --env prod --data-dir DIR`,
		Example: `  sagedeploy up
  sagedeploy up --data-dir /tmp/demo --addr 127.0.0.1:8080 --local-addr 127.0.0.1:8081
  sagedeploy up --reset-admin-password     # forgot the admin password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErr(fmt.Errorf("--output %q: use text or json", output))
			}
			ctx := cmd.Context()
			s, err := sf.start(ctx, g, g.logger())
			if err != nil {
				return err
			}
			if err := printUp(ctx, g.stdout, output, s); err != nil {
				_ = stopStack(ctx, g, s)
				return err
			}
			select {
			case <-ctx.Done():
			case <-s.Done():
				if err := s.Err(); err != nil {
					_ = stopStack(ctx, g, s)
					return fmt.Errorf("the release server stopped: %w", err)
				}
			}
			return stopStack(ctx, g, s)
		},
	}
	bindStackFlags(cmd, g, sf)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format of the startup message: text or json (with the dev token when this start made it)")
	return cmd
}

// upInfo is the startup message of `up` for --output json.
type upInfo struct {
	DashboardURL string            `json:"dashboard_url"`
	LocalURL     string            `json:"local_url"`
	DataDir      string            `json:"data_dir"`
	Login        allinone.Login    `json:"login"`
	Environments []string          `json:"environments"`
	Env          map[string]string `json:"env"`
	// TokenNote says where the dev token is when Env leaves it out: it is printed only by the
	// start that made it.
	TokenNote string `json:"token_note,omitempty"`
}

const releasesTokenVar = "SAGEDEPLOY_RELEASES_TOKEN"

// tokenNote tells a later start's reader where the dev token printed at the first start is.
func tokenNote(s *allinone.Stack) string {
	return fmt.Sprintf("%s: the dev token printed when it was made (kept in %s, readable only by you); a new one: sagedeploy server token create --env dev --data-dir %s",
		releasesTokenVar, s.TokenFile(), s.DataDir())
}

// releasesExports is what to export to report releases of dev: the token only when this start
// made it, since secrets printed at every start end up in every terminal log.
func releasesExports(ctx context.Context, s *allinone.Stack) (kv [][2]string, note string, err error) {
	rel, err := s.ReleasesEnv(ctx, "dev")
	if err != nil || s.TokenCreated("dev") {
		return rel, "", err
	}
	for _, p := range rel {
		if p[0] != releasesTokenVar {
			kv = append(kv, p)
		}
	}
	return kv, tokenNote(s), nil
}

func printUp(ctx context.Context, w io.Writer, output string, s *allinone.Stack) error {
	rel, note, err := releasesExports(ctx, s)
	if err != nil {
		return err
	}
	if output == "json" {
		env := map[string]string{}
		for _, kv := range append(s.AWSEnv(), rel...) {
			env[kv[0]] = kv[1]
		}
		return writeJSONLine(w, upInfo{DashboardURL: s.ServerURL(), LocalURL: s.LocalURL(), DataDir: s.DataDir(),
			Login: s.AdminLogin(), Environments: s.Environments(), Env: env, TokenNote: note})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sagedeploy is up (data in %s)\n\n", s.DataDir())
	writeStackSummary(&b, s, true)
	fmt.Fprintf(&b, "\nDeploy from another shell — the deployer and AWS tools use the local SageMaker, and releases\nof dev appear on the dashboard:\n\n")
	fmt.Fprintf(&b, "  export %s\n  export %s\n", exports(s.AWSEnv()), exports(rel))
	if note != "" {
		fmt.Fprintf(&b, "  # %s\n", note)
	} else {
		fmt.Fprintf(&b, "  (the token is shown only at this start)\n")
	}
	fmt.Fprintf(&b, "  sagedeploy register --model abalone --artifact examples/abalone/model-v1/model.tar.gz --bucket models --approve\n")
	fmt.Fprintf(&b, "  sagedeploy deploy --model abalone --env dev\n")
	fmt.Fprintf(&b, "\nPress Ctrl-C to stop; the data stays for the next start.\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// writeStackSummary says where the dashboard is and how to sign in. A new password is written
// only when showPassword: with --output json it goes in the result on stdout instead, never in
// the story on stderr that CI logs keep.
func writeStackSummary(b *strings.Builder, s *allinone.Stack, showPassword bool) {
	login := s.AdminLogin()
	fmt.Fprintf(b, "  Dashboard        %s\n", s.ServerURL())
	switch {
	case login.Password != "" && showPassword:
		fmt.Fprintf(b, "  Sign in          user %s, password %s   (shown only this once)\n", login.User, login.Password)
	case login.Password != "":
		fmt.Fprintf(b, "  Sign in          user %s, with the new password in the JSON result on stdout (login.password)\n", login.User)
	default:
		fmt.Fprintf(b, "  Sign in          user %s, with the password printed at the first start\n", login.User)
		fmt.Fprintf(b, "                   (forgot it? restart with --reset-admin-password)\n")
	}
	fmt.Fprintf(b, "  Local SageMaker  %s\n", s.LocalURL())
	fmt.Fprintf(b, "  Environments     %s; an agent runs the dashboard's commands\n", describeEnvs(s))
}

func describeEnvs(s *allinone.Stack) string {
	var parts []string
	for _, name := range s.Environments() {
		e, err := s.Store().Environment(context.Background(), name)
		if err == nil && e.RequiresApproval {
			name += " (approval gate)"
		}
		parts = append(parts, name)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " → ")
}

func exports(kv [][2]string) string {
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p[0] + "=" + p[1]
	}
	return strings.Join(parts, " ")
}
