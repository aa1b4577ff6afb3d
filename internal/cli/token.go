package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func newTokenCmd(g *globals, sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke environment-scoped integration tokens",
		Long: `Integration tokens let a deployer report releases of one environment, and an agent take that
environment's commands. A token of dev can neither report to nor command prod. The token is shown
once at creation and stored only as a hash.`,
	}
	cmd.AddCommand(newTokenCreateCmd(g, sf), newTokenListCmd(g, sf), newTokenRevokeCmd(g, sf))
	return cmd
}

func newTokenCreateCmd(g *globals, sf *storeFlags) *cobra.Command {
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
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				if name == "" {
					name = env + "-" + time.Now().UTC().Format("20060102-150405")
				}
				secret, t, err := server.CreateToken(cmd.Context(), st, env, name, "cli:"+g.osUserName())
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "token.create", Environment: env, Target: t.ID, Outcome: "ok", Detail: "name=" + name})
				if output == "json" {
					return writeJSONLine(g.stdout, server.NewToken{Token: t, Secret: secret})
				}
				fmt.Fprintf(g.stdout, "%s\n", secret)
				fmt.Fprintf(g.stderr, "Token %s (%s) for environment %s. It is shown only this once.\nUse it as SAGEDEPLOY_RELEASES_TOKEN (or CCI_RELEASE_INTEGRATION_TOKEN) for the deployer, or --token for the agent, of %s.\n", t.ID, t.Name, t.Environment, t.Environment)
				return nil
			})
		},
	}
	create.Flags().StringVar(&env, "env", "", "environment the token is scoped to (required)")
	create.Flags().StringVar(&name, "name", "", "a name to recognise the token by, e.g. circleci")
	create.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return create
}

func newTokenListCmd(g *globals, sf *storeFlags) *cobra.Command {
	var listOut string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List tokens (never their secrets)",
		Example: "  sagedeploy server token list\n  sagedeploy server token list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				toks, err := st.Tokens(cmd.Context())
				if err != nil {
					return err
				}
				return printList(g.stdout, listOut, toks, tokenColumns())
			})
		},
	}
	list.Flags().StringVarP(&listOut, "output", "o", "text", "output format: text or json")
	return list
}

// tokenColumns is the table of `server token list`: never a secret, only its first characters.
func tokenColumns() columns[store.Token] {
	return columns[store.Token]{
		header: []string{"ID", "ENVIRONMENT", "NAME", "TOKEN", "CREATED", "LAST USED", "STATE"},
		row: func(t store.Token) []string {
			used, state := "never", "active"
			if t.LastUsedAt != nil {
				used = t.LastUsedAt.Format(time.DateTime)
			}
			if t.RevokedAt != nil {
				state = "revoked " + t.RevokedAt.Format(time.DateTime)
			}
			return []string{t.ID, t.Environment, t.Name, t.Hint + "…", t.CreatedAt.Format(time.DateTime), used, state}
		},
	}
}

func newTokenRevokeCmd(g *globals, sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a token: deployers and agents using it are refused from now on",
		Example: "  sagedeploy server token revoke 01931f2c-...",
		Args:    argsNamed(1, "the id of the token to revoke (see `sagedeploy server token list`)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				t, err := st.RevokeToken(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "token.revoke", Environment: t.Environment, Target: t.ID, Outcome: "ok", Detail: "name=" + t.Name})
				fmt.Fprintf(g.stdout, "Revoked token %s (%s) of environment %s.\n", t.ID, t.Name, t.Environment)
				return nil
			})
		},
	}
}
