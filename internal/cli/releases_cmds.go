package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sagedeploy/sagedeploy/agent"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/internal/buildinfo"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// DefaultServerAddr is where `sagedeploy server` listens unless told otherwise.
const DefaultServerAddr = "127.0.0.1:4571"

// storeFlags say where the release server keeps its state; every `server` subcommand shares them.
type storeFlags struct {
	dataDir     string
	databaseURL string
}

func (f *storeFlags) open(ctx context.Context) (*store.Store, error) {
	return store.Open(ctx, store.Config{DataDir: f.dataDir, DatabaseURL: f.databaseURL})
}

// defaultDataDir is $SAGEDEPLOY_DATA_DIR, else $XDG_DATA_HOME/sagedeploy, else ~/.local/share/sagedeploy.
func defaultDataDir() string {
	if v := os.Getenv("SAGEDEPLOY_DATA_DIR"); v != "" {
		return v
	}
	if v := os.Getenv("XDG_DATA_HOME"); v != "" {
		return filepath.Join(v, "sagedeploy")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "sagedeploy")
	}
	return "sagedeploy-data"
}

// addReleaseCommands registers `sagedeploy server ...` and `sagedeploy agent`.
func addReleaseCommands(root *cobra.Command, g *globals) {
	root.AddCommand(newServerCmd(g), newAgentCmd(g))
	addFirstRunCommands(root, g) // up_cmds.go: `up` and `quickstart`, which run the server too
}

// ReleaseServerConfig is what `sagedeploy server` (and `sagedeploy up`) runs a release server with.
type ReleaseServerConfig struct {
	Addr           string
	BaseURL        string
	CommandTimeout time.Duration
	RunningTimeout time.Duration
}

func newServerCmd(g *globals) *cobra.Command {
	sf := &storeFlags{}
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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReleaseServer(cmd.Context(), g, sf, cfg)
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&sf.dataDir, "data-dir", defaultDataDir(), "directory of the SQLite database (env SAGEDEPLOY_DATA_DIR)")
	pf.StringVar(&sf.databaseURL, "database-url", os.Getenv("SAGEDEPLOY_DATABASE_URL"), "PostgreSQL URL, postgres://user:pass@host:5432/db, instead of SQLite (env SAGEDEPLOY_DATABASE_URL)")
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", envOr("SAGEDEPLOY_ADDR", DefaultServerAddr), "address to listen on (env SAGEDEPLOY_ADDR); use 0.0.0.0:4571 to accept other machines")
	f.StringVar(&cfg.BaseURL, "base-url", os.Getenv("SAGEDEPLOY_BASE_URL"), "URL users reach the server at, for links and hints, e.g. https://deploy.example.com (env SAGEDEPLOY_BASE_URL)")
	f.DurationVar(&cfg.CommandTimeout, "command-timeout", 5*time.Minute, "after this long without an agent taking a command, say so on its release (it stays queued)")
	f.DurationVar(&cfg.RunningTimeout, "running-timeout", 30*time.Minute, "mark a running release failed after this long without any progress report")
	cmd.AddCommand(newTokenCmd(g, sf), newUserCmd(g, sf), newEnvCmd(g, sf))
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
	r, err := server.Listen(ctx, cfg.Addr, server.Options{Store: st, Logger: log, BaseURL: cfg.BaseURL, CommandTimeout: cfg.CommandTimeout, RunningTimeout: cfg.RunningTimeout, Version: buildinfo.Version()})
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

func newTokenCmd(g *globals, sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke environment-scoped integration tokens",
		Long: `Integration tokens let a deployer report releases of one environment, and an agent take that
environment's commands. A token of dev can neither report to nor command prod. The token is shown
once at creation and stored only as a hash.`,
	}
	var env, name, output string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a token for one environment and print it (once)",
		Example: "  sagedeploy server token create --env dev --name circleci",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if env == "" {
				return errors.New("--env is required: the environment the token may report to, e.g. --env dev")
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if name == "" {
				name = env + "-" + time.Now().UTC().Format("20060102-150405")
			}
			secret, t, err := server.CreateToken(cmd.Context(), st, env, name, "cli:"+osUserName())
			if err != nil {
				return err
			}
			_ = st.AddAudit(cmd.Context(), store.AuditEntry{Actor: "cli:" + osUserName(), Action: "token.create", Environment: env, Target: t.ID, Outcome: "ok", Detail: "name=" + name})
			if output == "json" {
				return json.NewEncoder(g.stdout).Encode(server.NewToken{Token: t, Secret: secret})
			}
			fmt.Fprintf(g.stdout, "%s\n", secret)
			fmt.Fprintf(g.stderr, "Token %s (%s) for environment %s. It is shown only this once.\nUse it as SAGEDEPLOY_RELEASES_TOKEN (or CCI_RELEASE_INTEGRATION_TOKEN) for the deployer, or --token for the agent, of %s.\n", t.ID, t.Name, t.Environment, t.Environment)
			return nil
		},
	}
	create.Flags().StringVar(&env, "env", "", "environment the token is scoped to (required)")
	create.Flags().StringVar(&name, "name", "", "a name to recognise the token by, e.g. circleci")
	create.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")

	var listOut string
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			toks, err := st.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if listOut == "json" {
				if toks == nil {
					toks = []store.Token{}
				}
				return json.NewEncoder(g.stdout).Encode(toks)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tENVIRONMENT\tNAME\tTOKEN\tCREATED\tLAST USED\tSTATE")
			for _, t := range toks {
				used, state := "never", "active"
				if t.LastUsedAt != nil {
					used = t.LastUsedAt.Format(time.DateTime)
				}
				if t.RevokedAt != nil {
					state = "revoked " + t.RevokedAt.Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s…\t%s\t%s\t%s\n", t.ID, t.Environment, t.Name, t.Hint, t.CreatedAt.Format(time.DateTime), used, state)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVarP(&listOut, "output", "o", "text", "output format: text or json")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: deployers and agents using it are refused from now on",
		Args:  argsNamed(1, "the id of the token to revoke (see `sagedeploy server token list`)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			t, err := st.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_ = st.AddAudit(cmd.Context(), store.AuditEntry{Actor: "cli:" + osUserName(), Action: "token.revoke", Environment: t.Environment, Target: t.ID, Outcome: "ok", Detail: "name=" + t.Name})
			fmt.Fprintf(g.stdout, "Revoked token %s (%s) of environment %s.\n", t.ID, t.Name, t.Environment)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newUserCmd(g *globals, sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage dashboard users"}
	var role string
	var passwordStdin bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a dashboard user",
		Long: `Add a dashboard user with a role: viewer (reads), deployer (also restores, scales, promotes
and approves) or admin (also manages environments, tokens and users).

The password is asked for on a terminal, read from standard input with --password-stdin, or else
generated and printed once.`,
		Example: "  sagedeploy server user add carol --role deployer\n  echo \"$PW\" | sagedeploy server user add ci-bot --role viewer --password-stdin",
		Args:    argsNamed(1, "the user's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !store.ValidRole(role) {
				return fmt.Errorf("--role %q is not valid: use viewer, deployer or admin", role)
			}
			pw, generated, err := readPassword(g, passwordStdin)
			if err != nil {
				return err
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			pw, err = server.AddUser(cmd.Context(), st, args[0], role, pw, 0)
			if err != nil {
				return err
			}
			_ = st.AddAudit(cmd.Context(), store.AuditEntry{Actor: "cli:" + osUserName(), Action: "user.add", Target: args[0], Outcome: "ok", Detail: "role=" + role})
			if generated {
				fmt.Fprintf(g.stdout, "Added %s (%s) with password\n\n    %s\n\nIt is shown only this once.\n", args[0], role, pw)
				return nil
			}
			fmt.Fprintf(g.stdout, "Added %s (%s).\n", args[0], role)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", store.RoleViewer, "viewer, deployer or admin")
	add.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.AddCommand(add)
	return cmd
}

// readPassword asks on a terminal, reads stdin with --password-stdin, or leaves the password to be
// generated (generated=true).
func readPassword(g *globals, fromStdin bool) (pw string, generated bool, err error) {
	if fromStdin {
		line, err := bufio.NewReader(g.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, fmt.Errorf("read the password from standard input: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", false, errors.New("--password-stdin: standard input held no password")
		}
		return pw, false, nil
	}
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", true, nil
	}
	fmt.Fprint(g.stderr, "Password (empty: generate one): ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", false, fmt.Errorf("read the password: %w", err)
	}
	if len(b) == 0 {
		return "", true, nil
	}
	fmt.Fprint(g.stderr, "Again: ")
	again, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", false, fmt.Errorf("read the password: %w", err)
	}
	if string(again) != string(b) {
		return "", false, errors.New("the two passwords differ; nothing was changed")
	}
	return string(b), false, nil
}

func newEnvCmd(g *globals, sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Manage environments (dev, staging, prod, ...)"}
	var e releases.Environment
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add an environment, or update the one of that name",
		Example: `  sagedeploy server env add dev --kind local --endpoint-url http://127.0.0.1:4570
  sagedeploy server env add prod --kind sagemaker --region eu-west-1 --account 123456789012 --requires-approval --position 1`,
		Args: argsNamed(1, "the environment's name, e.g. dev"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e.Name = args[0]
			if e.Kind == "sagemaker" && e.Region == "" {
				return fmt.Errorf("environment %s of kind sagemaker needs --region (e.g. --region eu-west-1) for console links", e.Name)
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := server.EnsureEnvironment(cmd.Context(), st, e); err != nil {
				return err
			}
			_ = st.AddAudit(cmd.Context(), store.AuditEntry{Actor: "cli:" + osUserName(), Action: "environment.save", Environment: e.Name, Target: e.Name, Outcome: "ok",
				Detail: fmt.Sprintf("kind=%s region=%s approval=%t position=%d", e.Kind, e.Region, e.RequiresApproval, e.Position)})
			gate := ""
			if e.RequiresApproval {
				gate = ", deploys and promotions wait for an approval"
			}
			fmt.Fprintf(g.stdout, "Environment %s saved (%s, position %d%s).\n", e.Name, e.Kind, e.Position, gate)
			return nil
		},
	}
	f := add.Flags()
	f.StringVar((*string)(&e.Kind), "kind", "sagemaker", "sagemaker (AWS) or local (sagedeploy local)")
	f.StringVar(&e.Region, "region", "", "AWS region of a sagemaker environment, e.g. eu-west-1")
	f.StringVar(&e.Account, "account", "", "AWS account id, shown on the dashboard")
	f.StringVar(&e.EndpointURL, "endpoint-url", "", "URL of the local SageMaker, for a local environment")
	f.BoolVar(&e.RequiresApproval, "requires-approval", false, "make deploys and promotions into this environment wait for an approval")
	f.IntVar(&e.Position, "position", 0, "order along the pipeline: dev 0, staging 1, prod 2 (promote goes to the next)")

	var listOut string
	list := &cobra.Command{
		Use:   "list",
		Short: "List environments in pipeline order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			envs, err := st.Environments(cmd.Context())
			if err != nil {
				return err
			}
			if listOut == "json" {
				if envs == nil {
					envs = []releases.Environment{}
				}
				return json.NewEncoder(g.stdout).Encode(envs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POSITION\tNAME\tKIND\tREGION/URL\tAPPROVAL")
			for _, e := range envs {
				where := e.Region
				if e.Kind == "local" {
					where = e.EndpointURL
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%t\n", e.Position, e.Name, e.Kind, where, e.RequiresApproval)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVarP(&listOut, "output", "o", "text", "output format: text or json")
	cmd.AddCommand(add, list)
	return cmd
}

func newAgentCmd(g *globals) *cobra.Command {
	var serverURL string
	var tokens []string
	var pollWait time.Duration
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Execute dashboard commands (restore, rollback, scale, promote) with local credentials",
		Long: `Run an agent: it long-polls the release server for the commands users give on the dashboard
and executes them with the deployer, using this machine's AWS credentials (or the local
SageMaker). The server never holds cloud credentials.

Pass one --token per environment the agent serves (tokens are scoped to one environment).
Each command reports its progress into the release the dashboard shows.

Credentials are the deployer's: the AWS SDK's default chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, an
instance role, AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, ...), or CircleCI's OIDC token when
CIRCLE_OIDC_TOKEN_V2 (or CIRCLE_OIDC_TOKEN) and SAGEMAKER_EXECUTION_ROLE_ARN are set. With
--endpoint-url (a local SageMaker) no AWS account is needed. aws-sdk-go-v2 ignores
AWS_ENDPOINT_URL for the STS call of AWS_WEB_IDENTITY_TOKEN_FILE credentials: export
AWS_ENDPOINT_URL_STS too when that call must go elsewhere.`,
		Example: `  # Serve dev and prod of a release server, with this machine's AWS credentials:
  sagedeploy agent --server https://deploy.example.com --token $DEV_TOKEN --token $PROD_TOKEN \
    --region eu-west-1 --execution-role-arn arn:aws:iam::123456789012:role/sagemaker-execution

  # Against a local SageMaker:
  sagedeploy agent --server http://127.0.0.1:4571 --token $DEV_TOKEN --endpoint-url http://127.0.0.1:4570`,
		Args: cobra.NoArgs,
	}
	aws := bindAgentAWS(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if serverURL == "" {
			return errors.New("--server is required: the release server's URL, e.g. --server http://127.0.0.1:4571 (env SAGEDEPLOY_SERVER or SAGEDEPLOY_RELEASES_URL)")
		}
		if len(tokens) == 0 {
			return errors.New("--token is required: an integration token per environment to serve (create one with `sagedeploy server token create --env dev`; env SAGEDEPLOY_TOKEN or SAGEDEPLOY_RELEASES_TOKEN)")
		}
		if err := aws.load(cmd); err != nil {
			return err
		}
		ex, err := newAgentExecutor(cmd, g, aws)
		if err != nil {
			return err
		}
		var clients []*releases.Client
		for _, t := range tokens {
			clients = append(clients, releases.NewClient(serverURL, strings.TrimSpace(t), nil))
		}
		return agent.Run(cmd.Context(), agent.Options{Clients: clients, Executor: ex, Logger: g.logger(), PollWait: pollWait})
	}
	// The deployer's SAGEDEPLOY_RELEASES_URL / _TOKEN work too, so the exports `sagedeploy up`
	// prints start an agent as well as a deployer.
	cmd.Flags().StringVar(&serverURL, "server", envOr("SAGEDEPLOY_SERVER", os.Getenv("SAGEDEPLOY_RELEASES_URL")), "release server URL (env SAGEDEPLOY_SERVER or SAGEDEPLOY_RELEASES_URL)")
	cmd.Flags().StringArrayVar(&tokens, "token", splitTokenList(envOr("SAGEDEPLOY_TOKEN", os.Getenv("SAGEDEPLOY_RELEASES_TOKEN"))), "integration token of an environment to serve; repeat for several (env SAGEDEPLOY_TOKEN, comma-separated, or SAGEDEPLOY_RELEASES_TOKEN)")
	cmd.Flags().DurationVar(&pollWait, "poll-wait", 30*time.Second, "how long one poll waits for a command")
	return cmd
}

// bindAgentAWS defines the agent's AWS flags, named and read from the environment as the
// deployer's commands do (see bindConn).
func bindAgentAWS(cmd *cobra.Command) *conn {
	c := &conn{b: newBinder(cmd), output: "text"}
	c.b.str(&c.region, "region", "", "AWS region (default us-east-1)", "REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
	c.b.str(&c.endpointURL, "endpoint-url", "", "base URL of every AWS service, e.g. a local SageMaker at http://127.0.0.1:4570", "AWS_ENDPOINT_URL")
	c.b.str(&c.roleARN, "execution-role-arn", "", "IAM role SageMaker assumes for the models the agent creates (required on AWS)", "SAGEMAKER_EXECUTION_ROLE_ARN")
	return c
}

// newAgentExecutor builds what executes the agent's commands: one deployer for the process (its
// AWS clients and credentials are shared), reporting each command into its release with the
// token of the command's environment, which the agent passes to Execute.
func newAgentExecutor(cmd *cobra.Command, g *globals, c *conn) (agent.Executor, error) {
	d, err := c.deployer(cmd, g, nil)
	if err != nil {
		return nil, err
	}
	return deployExecutor(d), nil
}

// deployExecutor runs commands with d, reporting through the client of the command's environment.
func deployExecutor(d *deploy.Deployer) agent.Executor {
	return d
}

func splitTokenList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// argsNamed is cobra.ExactArgs with a message that says what the argument is.
func argsNamed(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument: %s (got %d)", cmd.CommandPath(), n, what, len(args))
		}
		return nil
	}
}

func osUserName() string {
	for _, k := range []string{"USER", "LOGNAME", "USERNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}
