package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func newEnvCmd(g *globals, sf *storeFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Manage environments (dev, staging, prod, ...)"}
	cmd.AddCommand(newEnvAddCmd(g, sf), newEnvListCmd(g, sf))
	return cmd
}

func newEnvAddCmd(g *globals, sf *storeFlags) *cobra.Command {
	var e releases.Environment
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add an environment, or update the one of that name",
		Example: `  sagedeploy server env add dev --kind local --endpoint-url http://127.0.0.1:4570
  sagedeploy server env add prod --kind sagemaker --region eu-west-1 --account 123456789012 --requires-approval --position 1`,
		Args: argsNamed(1, "the environment's name, e.g. dev"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e.Name = args[0]
			if e.Kind == releases.EnvironmentSageMaker && e.Region == "" {
				return fmt.Errorf("environment %s of kind sagemaker needs --region (e.g. --region eu-west-1) for console links", e.Name)
			}
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				if err := server.EnsureEnvironment(cmd.Context(), st, e); err != nil {
					return err
				}
				g.auditCLI(cmd.Context(), st, store.AuditEntry{Action: "environment.save", Environment: e.Name, Target: e.Name, Outcome: "ok",
					Detail: fmt.Sprintf("kind=%s region=%s approval=%t self_approval=%t position=%d", e.Kind, e.Region, e.RequiresApproval, e.AllowSelfApproval, e.Position)})
				gate := ""
				if e.RequiresApproval {
					gate = ", deploys and promotions wait for an approval by someone other than who asked"
					if e.AllowSelfApproval {
						gate = ", deploys and promotions wait for an approval (the requester may approve)"
					}
				}
				fmt.Fprintf(g.stdout, "Environment %s saved (%s, position %d%s).\n", e.Name, e.Kind, e.Position, gate)
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar((*string)(&e.Kind), "kind", string(releases.EnvironmentSageMaker), "sagemaker (AWS) or local (sagedeploy local)")
	f.StringVar(&e.Region, "region", "", "AWS region of a sagemaker environment, e.g. eu-west-1")
	f.StringVar(&e.Account, "account", "", "AWS account id, shown on the dashboard")
	f.StringVar(&e.EndpointURL, "endpoint-url", "", "URL of the local SageMaker, for a local environment")
	f.BoolVar(&e.RequiresApproval, "requires-approval", false, "make deploys and promotions into this environment wait for an approval")
	f.BoolVar(&e.AllowSelfApproval, "allow-self-approval", false, "let the user who asked for a release approve it too (off: four eyes, someone else must approve)")
	f.IntVar(&e.Position, "position", 0, "order along the pipeline: dev 0, staging 1, prod 2 (promote goes to the next)")
	return add
}

func newEnvListCmd(g *globals, sf *storeFlags) *cobra.Command {
	var listOut string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List environments in pipeline order",
		Example: "  sagedeploy server env list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.withStore(cmd.Context(), func(st *store.Store) error {
				envs, err := st.Environments(cmd.Context())
				if err != nil {
					return err
				}
				return printList(g.stdout, listOut, envs, envColumns())
			})
		},
	}
	list.Flags().StringVarP(&listOut, "output", "o", "text", "output format: text or json")
	return list
}

// envColumns is the table of `server env list`: where each environment's endpoints live.
func envColumns() columns[releases.Environment] {
	return columns[releases.Environment]{
		header: []string{"POSITION", "NAME", "KIND", "REGION/URL", "APPROVAL"},
		row: func(e releases.Environment) []string {
			where := e.Region
			if e.Kind == releases.EnvironmentLocal {
				where = e.EndpointURL
			}
			return []string{strconv.Itoa(e.Position), e.Name, string(e.Kind), where, strconv.FormatBool(e.RequiresApproval)}
		},
	}
}
