package cli

import (
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/agent"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

func newAgentCmd(g *globals) *cobra.Command {
	var serverURL string
	var tokens []string
	var pollWait, observeEvery time.Duration
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Execute dashboard commands (restore, rollback, scale, promote) with local credentials",
		Long: `Run an agent: it long-polls the release server for the commands users give on the dashboard
and executes them with the deployer, using this machine's AWS credentials (or the local
SageMaker). The server never holds cloud credentials.

Pass one --token per environment the agent serves (tokens are scoped to one environment).
Each command reports its progress into the release the dashboard shows.

Every --observe-interval the agent also reads each component's endpoint (DescribeEndpoint, its
configuration and tags) and its CloudWatch metrics, and reports them: the dashboard marks
endpoints changed outside sagedeploy and draws traffic, error and latency charts. Throttled
rounds make it observe less often.

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
	aws := bindAgentAWS(cmd, g)
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
		d, err := aws.deployer(cmd, g, nil)
		if err != nil {
			return err
		}
		var clients []*releases.Client
		for _, t := range tokens {
			clients = append(clients, releases.NewClient(serverURL, strings.TrimSpace(t), nil))
		}
		return runAgent(cmd.Context(), agent.Options{Clients: clients, Executor: deployExecutor(d), Logger: g.logger(), PollWait: pollWait},
			observeOptions(d, clients, observeEvery, g))
	}
	// The deployer's SAGEDEPLOY_RELEASES_URL / _TOKEN work too, so the exports `sagedeploy up`
	// prints start an agent as well as a deployer.
	cmd.Flags().StringVar(&serverURL, "server", g.envOr("SAGEDEPLOY_SERVER", g.getenv("SAGEDEPLOY_RELEASES_URL")), "release server URL (env SAGEDEPLOY_SERVER or SAGEDEPLOY_RELEASES_URL)")
	cmd.Flags().StringArrayVar(&tokens, "token", splitTokenList(g.envOr("SAGEDEPLOY_TOKEN", g.getenv("SAGEDEPLOY_RELEASES_TOKEN"))), "integration token of an environment to serve; repeat for several (env SAGEDEPLOY_TOKEN, comma-separated, or SAGEDEPLOY_RELEASES_TOKEN)")
	cmd.Flags().DurationVar(&pollWait, "poll-wait", 30*time.Second, "how long one poll waits for a command")
	cmd.Flags().DurationVar(&observeEvery, "observe-interval", time.Minute, "how often to look at every endpoint for changes made outside sagedeploy and read its metrics (0: never)")
	return cmd
}

// bindAgentAWS defines the agent's AWS flags, named and read from the environment as the
// deployer's commands do (see bindConn).
func bindAgentAWS(cmd *cobra.Command, g *globals) *conn {
	c := &conn{b: newBinder(cmd, g), output: "text"}
	c.b.str(&c.region, "region", "", "AWS region (default us-east-1)", "REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
	c.b.str(&c.endpointURL, "endpoint-url", "", "base URL of every AWS service, e.g. a local SageMaker at http://127.0.0.1:4570", "AWS_ENDPOINT_URL")
	c.b.str(&c.roleARN, "execution-role-arn", "", "IAM role SageMaker assumes for the models the agent creates (required on AWS)", "SAGEMAKER_EXECUTION_ROLE_ARN")
	return c
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
