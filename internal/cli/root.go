// Package cli turns command lines and environment variables into calls to the deployer, the release
// server and the local SageMaker. It holds no logic of its own beyond flags, config and output.
//
// Each command has a file of its own. What commands share: globals (standard streams, the
// environment lookup and the build's version, which commands receive rather than read from the
// process), the flag binder and flag sets of deploy_flags.go, and one printer for lists and
// -o json (printer.go). It is the only package that reads the build stamp (internal/buildinfo).
package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/internal/buildinfo"
)

// Process is what one run of sagedeploy sees of the process around it: its standard streams and
// its environment variables. Tests run commands side by side, each with a Process of its own.
type Process struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// LookupEnv reads an environment variable; os.LookupEnv when nil. Commands read the
	// environment only through it.
	LookupEnv func(key string) (string, bool)
}

// EnvMap is a LookupEnv over a fixed set of variables.
func EnvMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// Execute runs the sagedeploy command line in this process and returns the process exit code.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return Run(ctx, args, Process{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// Run runs the sagedeploy command line in p and returns the exit code.
func Run(ctx context.Context, args []string, p Process) int {
	root := newRoot(newGlobals(p))
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(p.Stderr, "error: %v\n", err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

// globals are what every command receives, in the manner of a factory: the process's streams and
// environment, the build's version, and the flags every command shares.
type globals struct {
	logLevel  string
	logFormat string
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
	// version is the build stamp; commands hand it to the libraries that record it (tags,
	// registry metadata, the dashboard's footer), which never read the stamp themselves.
	version buildinfo.Info
}

func newGlobals(p Process) *globals {
	g := &globals{stdin: p.Stdin, stdout: p.Stdout, stderr: p.Stderr, lookupEnv: p.LookupEnv, version: buildinfo.Get()}
	if g.lookupEnv == nil {
		g.lookupEnv = os.LookupEnv
	}
	return g
}

// getenv reads an environment variable through the process's lookup.
func (g *globals) getenv(key string) string {
	v, _ := g.lookupEnv(key)
	return v
}

// envOr returns the environment variable key, or def when it is unset or empty.
func (g *globals) envOr(key, def string) string { return cmp.Or(g.getenv(key), def) }

// logger builds the structured logger the command's work reports through; logs go to stderr so
// that stdout stays clean for --output json.
func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(g.logLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// NewRootCommand builds the whole command tree for this process.
func NewRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	return newRoot(newGlobals(Process{Stdin: stdin, Stdout: stdout, Stderr: stderr}))
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "sagedeploy",
		Short: "Deploy ML models to SageMaker endpoints across environments, track releases, roll back",
		Long: `sagedeploy moves model versions from the SageMaker Model Registry through environments
(dev, then prod after an approval) as SageMaker endpoints, reports every release to a
self-hosted dashboard, and restores any earlier version in one command.

It also embeds a local SageMaker ("sagedeploy local") that really serves models, so the whole
job runs on one machine with no AWS account.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// A mistyped flag gets a suggestion, as a mistyped command does (flagError, suggest.go).
	root.SetFlagErrorFunc(flagError)
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", g.envOr("SAGEDEPLOY_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env SAGEDEPLOY_LOG_LEVEL)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", g.envOr("SAGEDEPLOY_LOG_FORMAT", "text"), "log format: text or json (env SAGEDEPLOY_LOG_FORMAT)")

	root.AddCommand(newVersionCmd(g))
	addLocalCommands(root, g)
	addDeployerCommands(root, g)
	addReleaseCommands(root, g)
	root.AddCommand(newReleasesCmd(g)) // releases_cli.go
	return root
}
