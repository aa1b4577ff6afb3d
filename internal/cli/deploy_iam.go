package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newIAMCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "iam",
		Short: "Print the IAM policies sagedeploy needs, and who it runs as",
		Long: `IAM helpers: "iam policy" prints the least-privilege permissions policy of the identity that
runs sagedeploy; "iam trust" the trust policy that lets CircleCI jobs assume that role with
their OIDC token; "iam whoami" asks STS who sagedeploy's calls run as.`,
	}
	cmd.AddCommand(newIAMPolicyCmd(g), newIAMTrustCmd(g), newIAMWhoamiCmd(g))
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newIAMPolicyCmd(g *globals) *cobra.Command {
	var bucket, region, account, role, output string
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print the least-privilege permissions policy for running sagedeploy",
		Long: `Print the IAM permissions policy for the identity that runs sagedeploy: exactly the SageMaker
actions the deployer calls, S3 on the artifact bucket, and iam:PassRole of the models'
execution role to SageMaker.`,
		Example: `  sagedeploy iam policy --bucket my-models --account 123456789012 > policy.json`,
		Args:    cobra.NoArgs,
	}
	b := newBinder(cmd, g)
	b.str(&bucket, "bucket", "", "S3 bucket of the model artifacts", "S3_BUCKET_NAME")
	b.str(&region, "region", "", "narrow SageMaker resources to this region (default any)", "REGION_NAME")
	b.str(&account, "account", "", "narrow resources to this AWS account (default any)")
	b.str(&role, "execution-role-arn", "", "the only role sagedeploy may pass to SageMaker (default any role of the account)", "SAGEMAKER_EXECUTION_ROLE_ARN")
	cmd.Flags().StringVarP(&output, "output", "o", "json", "output format: json (a policy document is JSON either way)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.apply(); err != nil {
			return err
		}
		doc, err := deploy.PermissionsPolicy(deploy.PolicyOptions{Bucket: bucket, Region: region, Account: account, ExecutionRoleARN: role})
		if err != nil {
			return exitCode(err)
		}
		return writeJSON(g.stdout, doc)
	}
	return cmd
}

func newIAMTrustCmd(g *globals) *cobra.Command {
	var account, org, project, output string
	var noSageMaker bool
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Print the trust policy letting CircleCI jobs assume sagedeploy's role with OIDC",
		Long: `Print the role trust policy for CircleCI's OIDC tokens: the identity provider
oidc.circleci.com/org/ORG_ID, audience ORG_ID, and subjects of the project
(org/ORG_ID/project/PROJECT_ID/user/*). Since the orb passes the same role
(SAGEMAKER_EXECUTION_ROLE_ARN) to SageMaker as the models' execution role, the policy also
lets sagemaker.amazonaws.com assume it, unless --no-sagemaker.`,
		Example: `  sagedeploy iam trust --account 123456789012 --org-id $ORG_ID --project-id $CIRCLE_PROJECT_ID`,
		Args:    cobra.NoArgs,
	}
	b := newBinder(cmd, g)
	b.str(&account, "account", "", "AWS account id holding the OIDC provider")
	b.str(&org, "org-id", "", "CircleCI organization id")
	b.str(&project, "project-id", "", "CircleCI project id (* for every project of the org)", "CIRCLE_PROJECT_ID")
	b.boolean(&noSageMaker, "no-sagemaker", false, "do not let SageMaker assume the role")
	cmd.Flags().StringVarP(&output, "output", "o", "json", "output format: json (a policy document is JSON either way)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.apply(); err != nil {
			return err
		}
		doc, err := deploy.TrustPolicy(deploy.TrustOptions{Account: account, OrgID: org, ProjectID: project, SageMaker: !noSageMaker})
		if err != nil {
			return exitCode(err)
		}
		return writeJSON(g.stdout, doc)
	}
	return cmd
}

func newIAMWhoamiCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "whoami",
		Short:   "Print the identity sagedeploy's AWS calls run as",
		Long:    `Ask STS (GetCallerIdentity) who sagedeploy's calls run as — with CIRCLE_OIDC_TOKEN_V2 and SAGEMAKER_EXECUTION_ROLE_ARN, the assumed role.`,
		Example: "  sagedeploy iam whoami\n  AWS_PROFILE=prod sagedeploy iam whoami -o json",
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			id, err := d.Identity(ctx)
			return emit(g.stdout, c.output, id, err, func(w io.Writer) {
				fmt.Fprintf(w, "%s (account %s)\n", id.ARN, id.Account)
			})
		})
	}
	return cmd
}
