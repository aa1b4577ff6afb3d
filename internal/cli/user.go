package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

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
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				pw, err = server.AddUser(cmd.Context(), st, args[0], role, pw, 0)
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "user.add", Target: args[0], Outcome: "ok", Detail: "role=" + role})
				if generated {
					fmt.Fprintf(g.stdout, "Added %s (%s) with password\n\n    %s\n\nIt is shown only this once.\n", args[0], role, pw)
					return nil
				}
				fmt.Fprintf(g.stdout, "Added %s (%s).\n", args[0], role)
				return nil
			})
		},
	}
	add.Flags().StringVar(&role, "role", store.RoleViewer, "viewer, deployer or admin")
	add.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.AddCommand(add, newUserListCmd(g, sf), newUserRemoveCmd(g, sf), newUserRoleCmd(g, sf), newUserPasswordCmd(g, sf), newUserSignOutCmd(g, sf))
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
