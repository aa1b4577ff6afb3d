package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// The user commands beside `add`: each change ends the user's dashboard sessions at once, so it
// applies to their next request, not when their session would have expired.

func newUserListCmd(g *globals, sf *storeFlags) *cobra.Command {
	var output string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List dashboard users with their role and open sessions",
		Example: "  sagedeploy server user list\n  sagedeploy server user list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				users, err := st.UserList(cmd.Context())
				if err != nil {
					return err
				}
				return printList(g.stdout, output, users, columns[store.UserSummary]{
					header: []string{"NAME", "ROLE", "SINCE", "SESSIONS"},
					row: func(u store.UserSummary) []string {
						return []string{u.Name, u.Role, u.CreatedAt.Format(time.DateTime), strconv.Itoa(u.Sessions)}
					},
				})
			})
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return list
}

func newUserRemoveCmd(g *globals, sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Short:   "Remove a dashboard user and sign them out everywhere",
		Example: "  sagedeploy server user remove carol",
		Args:    argsNamed(1, "the user's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				ended, err := st.RemoveUser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "user.remove", Target: args[0], Outcome: "ok", Detail: fmt.Sprintf("sessions ended: %d", ended)})
				fmt.Fprintf(g.stdout, "Removed %s; %d session(s) ended.\n", args[0], ended)
				return nil
			})
		},
	}
}

func newUserRoleCmd(g *globals, sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "role NAME ROLE",
		Short:   "Change a user's role (viewer, deployer or admin); their sessions end",
		Example: "  sagedeploy server user role carol admin",
		Args:    argsNamed(2, "the user's name and the new role"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				ended, err := st.SetUserRole(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "user.role", Target: args[0], Outcome: "ok", Detail: fmt.Sprintf("role=%s sessions ended: %d", args[1], ended)})
				fmt.Fprintf(g.stdout, "%s is now %s; %d session(s) ended.\n", args[0], args[1], ended)
				return nil
			})
		},
	}
}

func newUserPasswordCmd(g *globals, sf *storeFlags) *cobra.Command {
	var passwordStdin bool
	pw := &cobra.Command{
		Use:   "password NAME",
		Short: "Set a user's password and sign them out everywhere",
		Long: `Set a user's password: asked for on a terminal, read from standard input with --password-stdin,
or else generated and printed once. Every session of the user ends at once.`,
		Example: "  sagedeploy server user password carol\n  echo \"$PW\" | sagedeploy server user password ci-bot --password-stdin",
		Args:    argsNamed(1, "the user's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			given, generated, err := readPassword(g, passwordStdin)
			if err != nil {
				return err
			}
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				pw, ended, err := server.ResetPassword(cmd.Context(), st, args[0], given, 0)
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "user.password", Target: args[0], Outcome: "ok", Detail: fmt.Sprintf("sessions ended: %d", ended)})
				if generated {
					fmt.Fprintf(g.stdout, "New password of %s:\n\n    %s\n\nIt is shown only this once. %d session(s) ended.\n", args[0], pw, ended)
					return nil
				}
				fmt.Fprintf(g.stdout, "Password of %s changed; %d session(s) ended.\n", args[0], ended)
				return nil
			})
		},
	}
	pw.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	return pw
}

func newUserSignOutCmd(g *globals, sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "signout NAME",
		Short:   "End every dashboard session of a user (they sign in again)",
		Example: "  sagedeploy server user signout carol",
		Args:    argsNamed(1, "the user's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				ended, err := st.EndSessions(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "user.signout", Target: args[0], Outcome: "ok", Detail: fmt.Sprintf("sessions ended: %d", ended)})
				fmt.Fprintf(g.stdout, "Signed %s out: %d session(s) ended.\n", args[0], ended)
				return nil
			})
		},
	}
}
