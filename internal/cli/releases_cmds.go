package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/releases/store"
)

// DefaultServerAddr is where `sagedeploy server` listens unless told otherwise.
const DefaultServerAddr = "127.0.0.1:4571"

// storeFlags say where the release server keeps its state; every `server` subcommand shares them.
type storeFlags struct {
	dataDir     string
	databaseURL string
	// logger is the command's logger, built when the store opens (after flags set the level); it
	// gets the store's warnings, such as permissions fixed on the data dir.
	logger func() *slog.Logger
}

func (f *storeFlags) open(ctx context.Context) (*store.Store, error) {
	cfg := store.Config{DataDir: f.dataDir, DatabaseURL: f.databaseURL}
	if f.logger != nil {
		cfg.Logger = f.logger()
	}
	return store.Open(ctx, cfg)
}

// defaultDataDir is $SAGEDEPLOY_DATA_DIR, else $XDG_DATA_HOME/sagedeploy, else ~/.local/share/sagedeploy.
func defaultDataDir(g *globals) string {
	if v := g.getenv("SAGEDEPLOY_DATA_DIR"); v != "" {
		return v
	}
	if v := g.getenv("XDG_DATA_HOME"); v != "" {
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

// argsNamed is cobra.ExactArgs with a message that says what the argument is.
func argsNamed(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument: %s (got %d)", cmd.CommandPath(), n, what, len(args))
		}
		return nil
	}
}

func (g *globals) osUserName() string {
	for _, k := range []string{"USER", "LOGNAME", "USERNAME"} {
		if v := g.getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}

// withStore opens the release store for one command, runs fn with it, and closes it.
func (f *storeFlags) withStore(ctx context.Context, fn func(*store.Store) error) error {
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// auditCLI records a change made on the command line, as its operating-system user. The change
// is already made: a failed audit write loses only the entry, so it does not fail the command.
func (g *globals) auditCLI(ctx context.Context, st *store.Store, e store.AuditEntry) {
	e.Actor = "cli:" + g.osUserName()
	_ = st.AddAudit(ctx, e)
}
