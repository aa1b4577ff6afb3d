package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

// envFooter is appended to every deployer command's help: how the environment and credentials work.
const envFooter = `
Every flag falls back to the environment variable named in its help, as the CircleCI
aws-sagemaker orb sets them, so the orb's job steps run unchanged against this binary.

Credentials: the AWS SDK's default chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...). When
CIRCLE_OIDC_TOKEN_V2 (or CIRCLE_OIDC_TOKEN) and SAGEMAKER_EXECUTION_ROLE_ARN are set, sagedeploy
assumes that role with the job's OIDC token instead (see "sagedeploy iam trust"). With
--endpoint-url / AWS_ENDPOINT_URL (a local SageMaker, "sagedeploy local"), no AWS account is needed.

Release reporting: with --releases-url / SAGEDEPLOY_RELEASES_URL and a token in
SAGEDEPLOY_RELEASES_TOKEN (or the orb's CCI_RELEASE_INTEGRATION_TOKEN), each release is reported
to that sagedeploy release server. A refusal of the server (a token of another environment, a
revoked token, a rejected approval) stops the command before SageMaker is touched; an unreachable
server is a warning, except for a gated environment of the pipeline file (--allow-unreported).

Pipeline file: sagedeploy.yaml in this directory or one above (or --pipeline FILE) lists the
environments; any other is refused before an AWS call. Its settings for the environment fill the
flags the command line and the environment variables leave unset (see "sagedeploy pipeline").`

// addDeployerCommands registers the deployer's commands on root.
func addDeployerCommands(root *cobra.Command, g *globals) {
	root.AddCommand(
		newCreateModelCmd(g, "create-model"),
		newCreateEndpointConfigCmd(g, "create-endpoint-config", "create-endpoint-configuration"),
		newDeployCmd(g, "deploy"),
		newPlanCmd(g),
		newPipelineCmd(g),
		newPromoteCmd(g),
		newRollbackCmd(g),
		newScaleCmd(g),
		newStatusCmd(g),
		newHistoryCmd(g),
		newRegisterCmd(g),
		newInvokeCmd(g),
		newIAMCmd(g),
	)
	sm := &cobra.Command{
		Use:   "sagemaker",
		Short: "The CircleCI aws-sagemaker orb's step names, so its job steps run unchanged",
		Long: `The aws-sagemaker orb's steps under their own names:

  sagedeploy sagemaker create-model                    = sagedeploy create-model
  sagedeploy sagemaker create-endpoint-configuration   = sagedeploy create-endpoint-config
  sagedeploy sagemaker upsert-endpoint                 = sagedeploy deploy`,
	}
	sm.AddCommand(
		newCreateModelCmd(g, "create-model"),
		newCreateEndpointConfigCmd(g, "create-endpoint-configuration", "create-endpoint-config"),
		newDeployCmd(g, "upsert-endpoint"),
	)
	root.AddCommand(sm)
}

// conn holds the flags every deployer command shares and builds the deployer from them.
type conn struct {
	b           *binder
	model       string
	region      string
	endpointURL string
	bucket      string
	pipelineID  string
	projectID   string
	releasesURL string
	roleARN     string
	output      string
	pollInitial durationValue
	pollMax     durationValue
	// pipe is the pipeline file (pipeline_flags.go); env the environment when it came from
	// the release token rather than a flag.
	pipe *pipelineFlags
	env  string
}

func bindConn(cmd *cobra.Command, g *globals) *conn {
	c := &conn{b: newBinder(cmd, g)}
	b := c.b
	b.str(&c.model, "model", "", "model name: the model package group in the SageMaker Model Registry", "MODEL_NAME")
	b.str(&c.region, "region", "", "AWS region (default us-east-1)", "REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
	b.str(&c.endpointURL, "endpoint-url", "", "base URL of every AWS service, e.g. a local SageMaker at http://127.0.0.1:4570", "AWS_ENDPOINT_URL")
	b.str(&c.bucket, "bucket", "", "S3 bucket for model artifacts", "S3_BUCKET_NAME")
	b.str(&c.pipelineID, "pipeline-id", "", "CI pipeline id: names what this pipeline creates so a retried step reuses it", "CIRCLE_PIPELINE_ID")
	b.str(&c.projectID, "project-id", "", "CI project id, recorded in tags and on releases", "CIRCLE_PROJECT_ID")
	b.str(&c.releasesURL, "releases-url", "", "sagedeploy release server to report releases to", "SAGEDEPLOY_RELEASES_URL")
	b.str(&c.roleARN, "execution-role-arn", "", "IAM role SageMaker assumes for the models created (required on AWS)", "SAGEMAKER_EXECUTION_ROLE_ARN")
	cmd.Flags().StringVarP(&c.output, "output", "o", "text", "output format: text or json")
	b.duration(&c.pollInitial, "poll-initial", "first interval between endpoint status checks (default 250ms on AWS, 5ms locally)")
	c.pipe = bindPipeline(b)
	b.duration(&c.pollMax, "poll-max", "longest interval between endpoint status checks (default 10s on AWS, 100ms locally)")
	_ = cmd.Flags().MarkHidden("poll-initial")
	_ = cmd.Flags().MarkHidden("poll-max")
	cmd.Long = strings.TrimSpace(cmd.Long) + "\n" + envFooter
	cmd.SetFlagErrorFunc(flagError)
	return c
}

// load fills flags from the environment and validates what every command shares.
func (c *conn) load(cmd *cobra.Command) error {
	if err := c.b.apply(); err != nil {
		return err
	}
	if c.output != "text" && c.output != "json" {
		return usageErr(fmt.Errorf("--output %q: use text or json", c.output))
	}
	if c.endpointURL != "" {
		if u, err := url.Parse(c.endpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageErr(fmt.Errorf("%s %q is not an http(s) URL", c.b.source("endpoint-url"), c.endpointURL))
		}
	}
	if c.releasesURL != "" {
		if u, err := url.Parse(c.releasesURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageErr(fmt.Errorf("%s %q is not an http(s) URL", c.b.source("releases-url"), c.releasesURL))
		}
	}
	return c.loadPipeline(cmd)
}

// needModel checks that a model was given.
func (c *conn) needModel() error {
	if c.model == "" {
		return usageErr(errors.New("no model given: set --model or MODEL_NAME to the model package group name (e.g. abalone)"))
	}
	return nil
}

// deployer builds the deployer with credentials, reporting and progress as configured.
func (c *conn) deployer(cmd *cobra.Command, g *globals, progress func(deploy.Event)) (*deploy.Deployer, error) {
	ctx := cmd.Context()
	opts := deploy.Options{
		Region:           c.region,
		EndpointURL:      c.endpointURL,
		ExecutionRoleARN: c.roleARN,
		Progress:         progress,
		Logger:           g.logger(),
		Version:          g.version.Version,
		// Releases name who started them: the CI user, else the server names the token.
		TriggerUser: cmp.Or(g.getenv("CIRCLE_USERNAME"), g.getenv("GITHUB_ACTOR")),
	}
	c.pipe.configure(targetEnv(cmd, c), &opts)
	if c.pollInitial.d > 0 {
		opts.Poll = deploy.PollSchedule{Initial: c.pollInitial.d, Max: c.pollMax.d, Factor: 1.5}
		if opts.Poll.Max < opts.Poll.Initial {
			opts.Poll.Max = opts.Poll.Initial
		}
	}
	tokenVar := ""
	for _, k := range []string{"CIRCLE_OIDC_TOKEN_V2", "CIRCLE_OIDC_TOKEN"} {
		if g.getenv(k) != "" {
			tokenVar = k
			break
		}
	}
	role := g.getenv("SAGEMAKER_EXECUTION_ROLE_ARN")
	switch {
	case tokenVar != "" && role != "":
		opts.WebIdentity = &deploy.WebIdentity{
			RoleARN:         role,
			RoleSessionName: sessionName(c.pipelineID),
			Token: func() ([]byte, error) {
				t := g.getenv(tokenVar)
				if t == "" {
					return nil, fmt.Errorf("%s is empty", tokenVar)
				}
				return []byte(t), nil
			},
		}
	case g.getenv("AWS_ACCESS_KEY_ID") != "" && g.getenv("AWS_SECRET_ACCESS_KEY") != "":
		opts.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			g.getenv("AWS_ACCESS_KEY_ID"), g.getenv("AWS_SECRET_ACCESS_KEY"), g.getenv("AWS_SESSION_TOKEN")))
	}
	if c.releasesURL != "" {
		token := g.releasesToken()
		if token == "" {
			g.logger().Warn("releases are not reported: SAGEDEPLOY_RELEASES_URL is set but neither SAGEDEPLOY_RELEASES_TOKEN nor CCI_RELEASE_INTEGRATION_TOKEN is", "url", c.releasesURL)
		} else {
			opts.Releases = releases.NewClient(c.releasesURL, token, nil)
		}
	}
	return deploy.New(ctx, opts)
}

// sessionName is the STS session name for web identity: names the pipeline in CloudTrail.
func sessionName(pipelineID string) string {
	s := "sagedeploy"
	if pipelineID != "" {
		var b strings.Builder
		for _, r := range pipelineID {
			if r < 128 && (r == '-' || r == '_' || r == '.' || r == '@' || r == '=' || r == ',' || r == '+' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
				b.WriteRune(r)
			}
		}
		s += "-" + b.String()
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// run wraps a deployer command: progress on stderr, errors mapped to exit codes.
func run(g *globals, c *conn, cmd *cobra.Command, body func(ctx context.Context, d *deploy.Deployer) error) error {
	p := newProgressPrinter(g.stderr)
	d, err := c.deployer(cmd, g, p.event)
	if err != nil {
		return err
	}
	err = body(cmd.Context(), d)
	p.done()
	return exitCode(err)
}

// exitCode maps deployer errors: bad requests exit 2, everything else 1.
func exitCode(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	if errors.Is(err, deploy.ErrInvalid) {
		return &exitError{err: err, code: 2}
	}
	if errors.Is(err, deploy.ErrNoCredentials) {
		// The SDK wraps it in "operation error ..., get identity: get credentials: ..."; the
		// sentence that says what to do is enough.
		return deploy.Reason(err)
	}
	return err
}
