// Package cli turns command lines and environment variables into calls to the deployer, the release
// server and the local SageMaker. It holds no logic of its own beyond flags, config and output.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Execute runs the sagedeploy command line and returns the process exit code.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := NewRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

// globals are the flags every command shares.
type globals struct {
	logLevel  string
	logFormat string
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
}

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

// NewRootCommand builds the whole command tree.
func NewRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
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
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", envOr("SAGEDEPLOY_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env SAGEDEPLOY_LOG_LEVEL)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", envOr("SAGEDEPLOY_LOG_FORMAT", "text"), "log format: text or json (env SAGEDEPLOY_LOG_FORMAT)")

	root.AddCommand(newVersionCmd(g))
	addLocalCommands(root, g)
	addDeployerCommands(root, g)
	addReleaseCommands(root, g)
	return root
}

// envOr returns the environment variable key, or def when it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
