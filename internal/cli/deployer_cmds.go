package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

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
to that sagedeploy release server. Reporting failures are warnings, never failures.`

// addDeployerCommands registers the deployer's commands on root.
func addDeployerCommands(root *cobra.Command, g *globals) {
	root.AddCommand(
		newCreateModelCmd(g, "create-model"),
		newCreateEndpointConfigCmd(g, "create-endpoint-config", "create-endpoint-configuration"),
		newDeployCmd(g, "deploy"),
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
}

func bindConn(cmd *cobra.Command) *conn {
	c := &conn{b: newBinder(cmd)}
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
	b.duration(&c.pollMax, "poll-max", "longest interval between endpoint status checks (default 10s on AWS, 100ms locally)")
	_ = cmd.Flags().MarkHidden("poll-initial")
	_ = cmd.Flags().MarkHidden("poll-max")
	cmd.Long = strings.TrimSpace(cmd.Long) + "\n" + envFooter
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	return c
}

// load fills flags from the environment and validates what every command shares.
func (c *conn) load(cmd *cobra.Command) error {
	if err := c.b.apply(cmd.Context()); err != nil {
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
	return nil
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
	}
	if c.pollInitial.d > 0 {
		opts.Poll = deploy.PollSchedule{Initial: c.pollInitial.d, Max: c.pollMax.d, Factor: 1.5}
		if opts.Poll.Max < opts.Poll.Initial {
			opts.Poll.Max = opts.Poll.Initial
		}
	}
	tokenVar := ""
	for _, k := range []string{"CIRCLE_OIDC_TOKEN_V2", "CIRCLE_OIDC_TOKEN"} {
		if getenv(ctx, k) != "" {
			tokenVar = k
			break
		}
	}
	role := getenv(ctx, "SAGEMAKER_EXECUTION_ROLE_ARN")
	switch {
	case tokenVar != "" && role != "":
		opts.WebIdentity = &deploy.WebIdentity{
			RoleARN:         role,
			RoleSessionName: sessionName(c.pipelineID),
			Token: func() ([]byte, error) {
				t := getenv(ctx, tokenVar)
				if t == "" {
					return nil, fmt.Errorf("%s is empty", tokenVar)
				}
				return []byte(t), nil
			},
		}
	case getenv(ctx, "AWS_ACCESS_KEY_ID") != "" && getenv(ctx, "AWS_SECRET_ACCESS_KEY") != "":
		opts.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			getenv(ctx, "AWS_ACCESS_KEY_ID"), getenv(ctx, "AWS_SECRET_ACCESS_KEY"), getenv(ctx, "AWS_SESSION_TOKEN")))
	}
	if c.releasesURL != "" {
		token := getenv(ctx, "SAGEDEPLOY_RELEASES_TOKEN")
		if token == "" {
			token = getenv(ctx, "CCI_RELEASE_INTEGRATION_TOKEN")
		}
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

// rolloutFlags are what deploy and promote share: instance settings, how long to wait, how
// traffic moves and how the new version is verified.
type rolloutFlags struct {
	itype                string
	count                int
	timeout, lockTimeout durationValue
	strat                *strategyFlags
	ver                  *verifyFlags
}

// rollout is rolloutFlags parsed. instanceType and instanceCount are empty unless given: the
// configuration in place (the pipeline's, or what the environment runs) then decides.
type rollout struct {
	instanceType         string
	instanceCount        int
	timeout, lockTimeout time.Duration
	strategy             deploy.Strategy
	verify               *deploy.Verification
	rollbackOnFailure    bool
}

// bindRollout defines the shared flags; where and which say what the instance and lock flags apply
// to in this command's help ("when a configuration is created", "of --to").
func bindRollout(cmd *cobra.Command, b *binder, where, which string) *rolloutFlags {
	r := &rolloutFlags{}
	b.str(&r.itype, "instance-type", deploy.DefaultInstanceType, "instance type, "+where, "ENDPOINT_INSTANCE_TYPE")
	b.integer(&r.count, "instance-count", deploy.DefaultInstanceCount, "number of instances, "+where, "ENDPOINT_INSTANCE_COUNT")
	b.duration(&r.timeout, "timeout", "how long to wait for InService (default 30m)")
	b.duration(&r.lockTimeout, "lock-timeout", "how long to wait for another deployment "+which+" to finish first (default: --timeout)")
	r.strat = bindStrategy(cmd, b)
	r.ver = bindVerify(b)
	return r
}

func (r *rolloutFlags) parse(b *binder, stdin io.Reader) (rollout, error) {
	st, err := r.strat.strategy()
	if err != nil {
		return rollout{}, err
	}
	vr, err := r.ver.verification(stdin)
	if err != nil {
		return rollout{}, err
	}
	out := rollout{timeout: r.timeout.d, lockTimeout: r.lockTimeout.d, strategy: st, verify: vr, rollbackOnFailure: r.ver.rollbackOnFailure}
	if b.isGiven("instance-type") {
		out.instanceType = r.itype
	}
	if b.isGiven("instance-count") {
		out.instanceCount = r.count
	}
	return out, nil
}

// strategyFlags are the deployment strategy flags of deploy and promote.
type strategyFlags struct {
	canary, linear int
	bake           durationValue
	alarms         []string
}

func bindStrategy(cmd *cobra.Command, b *binder) *strategyFlags {
	s := &strategyFlags{}
	b.integer(&s.canary, "canary", 0, "blue/green canary: shift PERCENT of capacity first, the rest after --bake")
	b.integer(&s.linear, "linear", 0, "blue/green linear: shift PERCENT of capacity per step, every --bake")
	b.duration(&s.bake, "bake", "how long each traffic shift serves before the next (with --canary or --linear; e.g. 5m)")
	cmd.Flags().StringArrayVar(&s.alarms, "rollback-alarm", nil, "CloudWatch alarm that rolls the update back when it fires (repeatable)")
	return s
}

func (s *strategyFlags) strategy() (deploy.Strategy, error) {
	st := deploy.Strategy{Bake: s.bake.d, RollbackAlarms: s.alarms}
	switch {
	case s.canary != 0 && s.linear != 0:
		return st, usageErr(errors.New("--canary and --linear exclude each other: pick one traffic shift"))
	case s.canary != 0:
		st.Type, st.Percent = deploy.Canary, s.canary
	case s.linear != 0:
		st.Type, st.Percent = deploy.Linear, s.linear
	default:
		st.Type = deploy.AllAtOnce
	}
	if _, err := st.DeploymentConfig(); err != nil {
		return st, usageErr(err)
	}
	return st, nil
}

// verifyFlags are the post-deploy verification flags.
type verifyFlags struct {
	body, contentType, accept, expect string
	rollbackOnFailure                 bool
}

func bindVerify(b *binder) *verifyFlags {
	v := &verifyFlags{}
	b.str(&v.body, "verify-body", "", "after InService, invoke the endpoint with this FILE's content (- for stdin)")
	b.str(&v.contentType, "verify-content-type", "text/csv", "content type of the verification request")
	b.str(&v.expect, "verify-expect", "", "what every line of the answer must be: a range like 1..30, or a regular expression")
	b.boolean(&v.rollbackOnFailure, "rollback-on-failure", false, "restore the previous version when verification fails")
	return v
}

func (v *verifyFlags) verification(stdin io.Reader) (*deploy.Verification, error) {
	if v.body == "" {
		if v.expect != "" || v.rollbackOnFailure {
			return nil, usageErr(errors.New("--verify-expect and --rollback-on-failure need --verify-body FILE (the request to send)"))
		}
		return nil, nil
	}
	body, err := readBody(strings.TrimPrefix(v.body, "@"), stdin, true)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--verify-body: %w", err))
	}
	if _, err := deploy.ParseExpectation(v.expect); err != nil {
		return nil, usageErr(err)
	}
	return &deploy.Verification{Body: body, ContentType: v.contentType, Expect: v.expect}, nil
}

// readBody reads "-" (stdin), a file, or — unless fileOnly — a literal.
func readBody(spec string, stdin io.Reader, fileOnly bool) ([]byte, error) {
	switch {
	case spec == "-":
		return io.ReadAll(stdin)
	case fileOnly || strings.HasPrefix(spec, "@"):
		b, err := os.ReadFile(strings.TrimPrefix(spec, "@"))
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return []byte(spec), nil
}

// ---- create-model ----

func newCreateModelCmd(g *globals, use string) *cobra.Command {
	var env string
	var version int
	cmd := &cobra.Command{
		Use:   use,
		Short: "Create the SageMaker model of the latest Approved version (or --version) of a model",
		Long: `Create the SageMaker model of a registry version: the latest Approved model package of the
model's group, or the version given with --version. The model is named after the model,
version and pipeline; running the step again in the same pipeline reuses it (and keeps the
version it chose first), so a retried CI job succeeds.`,
		Example: `  MODEL_NAME=abalone CIRCLE_PIPELINE_ID=$CIRCLE_PIPELINE_ID sagedeploy create-model
  sagedeploy create-model --model abalone --version 3`,
		Args: cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&env, "env", "", "environment the model is for (recorded in tags only)", "DEPLOY_ENVIRONMENT")
	c.b.integer(&version, "version", 0, "model package version to use instead of the latest Approved one")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: c.model, Version: version, Environment: env, PipelineID: c.pipelineID, ProjectID: c.projectID})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "model %s serves version %d of %s (%s) — %s\n", res.ModelName, res.Version.Number, c.model, res.Version.ARN, createdOr(res.Created, "created", "already existed"))
			})
		})
	}
	return cmd
}

// ---- create-endpoint-config ----

func newCreateEndpointConfigCmd(g *globals, use string, aliases ...string) *cobra.Command {
	var env, itype string
	var count, version int
	cmd := &cobra.Command{
		Use:     use,
		Aliases: aliases,
		Short:   "Create the endpoint configuration of a model in an environment",
		Long: `Create the endpoint configuration of a model in an environment: one AllTraffic variant of
the model this pipeline created (create-model), or of the latest Approved version when it did
not (the model is created then too), with the environment's instance type and count.
Configurations are immutable and named after model, environment, version, pipeline and
settings, so running the step again reuses the configuration.`,
		Example: `  MODEL_NAME=abalone DEPLOY_ENVIRONMENT=dev sagedeploy create-endpoint-config
  sagedeploy create-endpoint-config --model abalone --env prod --instance-type ml.m5.large --instance-count 2`,
		Args: cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&env, "env", "", "environment (dev, staging, prod, ...); default: the release token's", "DEPLOY_ENVIRONMENT")
	c.b.str(&itype, "instance-type", deploy.DefaultInstanceType, "instance type to serve on", "ENDPOINT_INSTANCE_TYPE")
	c.b.integer(&count, "instance-count", deploy.DefaultInstanceCount, "number of instances", "ENDPOINT_INSTANCE_COUNT")
	c.b.integer(&version, "version", 0, "model package version to use instead of the pipeline's or the latest Approved one")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		var err error
		if env, err = c.environmentFor(cmd.Context(), env, g.logger()); err != nil {
			return err
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{
				Model: c.model, Environment: env, Version: version, InstanceType: itype, InstanceCount: count,
				PipelineID: c.pipelineID, ProjectID: c.projectID,
			})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "endpoint configuration %s: version %d of %s on %s × %d (model %s) — %s\n",
					res.EndpointConfigName, res.Version.Number, c.model, res.InstanceType, res.InstanceCount, res.ModelName, createdOr(res.Created, "created", "already existed"))
			})
		})
	}
	return cmd
}

// ---- deploy / upsert-endpoint ----

func newDeployCmd(g *globals, use string) *cobra.Command {
	var env, configName, endpointName, desc string
	var version int
	var restore, scale bool
	cmd := &cobra.Command{
		Use:   use,
		Short: "Create or update an environment's endpoint and wait until it serves the new version",
		Long: `Make the environment's endpoint ({model}-{environment} unless --endpoint-name) serve a version:
the endpoint configuration this pipeline created (create-endpoint-config), or the one given
with --endpoint-config-name, or else a new one for the latest Approved version (--version pins
one; the model and configuration are created as needed). The endpoint is created or updated,
then sagedeploy waits until it is InService, showing progress.

SageMaker rolls a failed update back silently; sagedeploy checks that the endpoint serves the
requested configuration afterwards and otherwise fails, naming the version still serving.
Another deployment to the same endpoint is waited for (up to --lock-timeout), never interleaved.

Traffic shifting: all at once by default; --canary PERCENT --bake 5m or --linear PERCENT
--bake 2m for blue/green steps, with --rollback-alarm NAME for automatic rollback.
Verification: --verify-body FILE [--verify-content-type T] [--verify-expect 1..30] invokes the
new version; with --rollback-on-failure a failed check restores the previous version.`,
		Example: `  MODEL_NAME=abalone DEPLOY_ENVIRONMENT=dev sagedeploy deploy
  sagedeploy deploy --model abalone --env prod --version 3 --canary 10 --bake 5m
  sagedeploy deploy --model abalone --env dev --verify-body sample.csv --verify-expect 1..30 --rollback-on-failure`,
		Args: cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&env, "env", "", "environment (dev, staging, prod, ...); default: the release token's", "DEPLOY_ENVIRONMENT")
	c.b.integer(&version, "version", 0, "model package version to deploy instead of the pipeline's or the latest Approved one")
	ro := bindRollout(cmd, c.b, "when a configuration is created", "of the endpoint")
	c.b.str(&configName, "endpoint-config-name", "", "deploy this existing endpoint configuration", "ENDPOINT_CONFIGURATION_NAME")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint to create or update instead of {model}-{environment}", "ENDPOINT_NAME")
	c.b.str(&desc, "description", "", "model description, shown on the release", "MODEL_DESC")
	c.b.boolean(&restore, "restore-enabled", true, "let the release dashboard restore earlier versions of this component", "RESTORE_VERSION_ENABLED")
	c.b.boolean(&scale, "scale-enabled", true, "let the release dashboard scale this component", "SCALE_COMPONENT_ENABLED")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		var err error
		if env, err = c.environmentFor(cmd.Context(), env, g.logger()); err != nil {
			return err
		}
		r, err := ro.parse(c.b, g.stdin)
		if err != nil {
			return err
		}
		req := deploy.DeployRequest{
			Model: c.model, Environment: env, EndpointName: endpointName, EndpointConfigName: configName,
			Version: version, PipelineID: c.pipelineID, ProjectID: c.projectID, Description: desc,
			InstanceType: r.instanceType, InstanceCount: r.instanceCount,
			Strategy: r.strategy, Verify: r.verify, RollbackOnFailure: r.rollbackOnFailure,
			Timeout: r.timeout, LockTimeout: r.lockTimeout, RestoreEnabled: &restore, ScaleEnabled: &scale,
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Deploy(ctx, req)
			return emit(g.stdout, c.output, res, err, func(w io.Writer) { deployText(w, res) })
		})
	}
	return cmd
}

func deployText(w io.Writer, r deploy.DeployResult) {
	if !r.Changed {
		fmt.Fprintf(w, "%s already serves version %d of %s (%s); nothing changed\n", r.Endpoint, r.Version.Number, r.Model, r.EndpointConfigName)
		return
	}
	prev := "nothing before"
	if r.PreviousVersion != nil {
		prev = fmt.Sprintf("version %d before", r.PreviousVersion.Number)
	}
	fmt.Fprintf(w, "%s (%s) serves version %d of %s on %s × %d — %s after %s (%s)\n",
		r.Endpoint, r.Environment, r.Version.Number, r.Model, r.InstanceType, r.InstanceCount, r.EndpointStatus, r.Duration.Round(time.Millisecond), prev)
	if r.Verification != nil && r.Verification.Passed {
		fmt.Fprintf(w, "verification passed (variant %s)\n", r.Verification.Variant)
	}
}

// ---- promote ----

func newPromoteCmd(g *globals) *cobra.Command {
	var from, to, endpointName, desc string
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Deploy to one environment exactly the version another one serves",
		Long: `Deploy to --to exactly the version --from serves now: the same SageMaker model, hence the
same model package ARN, found from --from's current endpoint configuration — never "the latest
approved", which may have changed since --from was tested. --to gets its own instance settings
(--instance-type / --instance-count, else what it runs now, else ml.t2.medium × 1).`,
		Example: `  sagedeploy promote --model abalone --from dev --to prod --instance-count 2`,
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&from, "from", "dev", "environment whose running version is promoted")
	c.b.str(&to, "to", "", "environment to deploy it to", "DEPLOY_ENVIRONMENT")
	ro := bindRollout(cmd, c.b, "in --to", "of --to")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint of --to instead of {model}-{to}", "ENDPOINT_NAME")
	c.b.str(&desc, "description", "", "description shown on the release", "MODEL_DESC")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		if to == "" {
			return usageErr(errors.New("promote needs --to (the environment to deploy to, e.g. prod)"))
		}
		r, err := ro.parse(c.b, g.stdin)
		if err != nil {
			return err
		}
		req := deploy.PromoteRequest{Model: c.model, From: from, To: to, EndpointName: endpointName, PipelineID: c.pipelineID, ProjectID: c.projectID,
			Description: desc, InstanceType: r.instanceType, InstanceCount: r.instanceCount,
			Strategy: r.strategy, Verify: r.verify, RollbackOnFailure: r.rollbackOnFailure, Timeout: r.timeout, LockTimeout: r.lockTimeout}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Promote(ctx, req)
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "promoted version %d of %s from %s to %s (%s)\n", res.Version.Number, c.model, from, to, res.Version.ARN)
				deployText(w, res.DeployResult)
			})
		})
	}
	return cmd
}

// ---- rollback ----

func newRollbackCmd(g *globals) *cobra.Command {
	var env, endpointName string
	var toVersion int
	var timeout, lockTimeout durationValue
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Serve the previous version (or --to-version) again",
		Long: `Put the version served before the current one (or --to-version N) back on the environment's
endpoint, by re-pointing it at the endpoint configuration that served that version — same
model, same instance settings — found in the endpoint's history (see "sagedeploy history").`,
		Example: `  sagedeploy rollback --model abalone --env prod
  sagedeploy rollback --model abalone --env prod --to-version 2`,
		Args: cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&env, "env", "", "environment to roll back", "DEPLOY_ENVIRONMENT")
	c.b.integer(&toVersion, "to-version", 0, "version to restore; 0 means the one served before the current one")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint instead of {model}-{environment}", "ENDPOINT_NAME")
	c.b.duration(&timeout, "timeout", "how long to wait for InService (default 30m)")
	c.b.duration(&lockTimeout, "lock-timeout", "how long to wait for another deployment to finish first (default: --timeout)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		if env == "" {
			return usageErr(errors.New("rollback needs --env (or DEPLOY_ENVIRONMENT)"))
		}
		if toVersion < 0 {
			return usageErr(fmt.Errorf("--to-version %d: give a version number, or 0 for the previous one", toVersion))
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Rollback(ctx, deploy.RollbackRequest{Model: c.model, Environment: env, EndpointName: endpointName, ToVersion: toVersion,
				PipelineID: c.pipelineID, ProjectID: c.projectID, Timeout: timeout.d, LockTimeout: lockTimeout.d})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) { deployText(w, res) })
		})
	}
	return cmd
}

// ---- scale ----

func newScaleCmd(g *globals) *cobra.Command {
	var env, endpointName, variant string
	var instances int
	var timeout, lockTimeout durationValue
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Change the number of instances serving an environment",
		Long: `Set the instance count of the environment's endpoint live (no new configuration, no
redeployment) and wait until it is InService with that many instances.`,
		Example: `  sagedeploy scale --model abalone --env prod --instances 3`,
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&env, "env", "", "environment to scale", "DEPLOY_ENVIRONMENT")
	c.b.integer(&instances, "instances", 0, "number of instances (1 or more)")
	c.b.str(&variant, "variant", "", "production variant to scale (default: the endpoint's only one)")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint instead of {model}-{environment}", "ENDPOINT_NAME")
	c.b.duration(&timeout, "timeout", "how long to wait for InService (default 30m)")
	c.b.duration(&lockTimeout, "lock-timeout", "how long to wait for another deployment to finish first (default: --timeout)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		if env == "" {
			return usageErr(errors.New("scale needs --env (or DEPLOY_ENVIRONMENT)"))
		}
		if instances < 1 {
			return usageErr(fmt.Errorf("scale needs --instances N with N ≥ 1 (got %d)", instances))
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Scale(ctx, deploy.ScaleRequest{Model: c.model, Environment: env, EndpointName: endpointName, Instances: instances, Variant: variant,
				PipelineID: c.pipelineID, ProjectID: c.projectID, Timeout: timeout.d, LockTimeout: lockTimeout.d})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				if !res.Changed {
					fmt.Fprintf(w, "%s already runs %d instances; nothing changed\n", res.Endpoint, res.Instances)
					return
				}
				fmt.Fprintf(w, "%s (%s) runs %d instances of %s (was %d) — %s after %s\n", res.Endpoint, env, res.Instances, res.Variant, res.PreviousInstances, res.EndpointStatus, res.Duration.Round(time.Millisecond))
			})
		})
	}
	return cmd
}

// ---- status ----

func newStatusCmd(g *globals) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what every environment serves: version, endpoint status, instances",
		Long:  `A table of the environments and models sagedeploy manages: version served, endpoint status, instances, last change.`,
		Args:  cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&env, "env", "", "only this environment")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Status(ctx, deploy.StatusRequest{Model: c.model, Environment: env})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				if len(res.Components) == 0 {
					fmt.Fprintln(w, "no endpoints managed by sagedeploy")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "MODEL\tENVIRONMENT\tVERSION\tSTATUS\tINSTANCES\tTYPE\tLAST CHANGE\tENDPOINT")
				for _, c := range res.Components {
					st := c.EndpointStatus
					if c.Deploying != "" {
						st += " (" + c.Deploying + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Model, c.Environment, versionText(c.Version), st, c.Instances, c.InstanceType, ago(c.LastChange), c.Endpoint)
				}
				tw.Flush()
			})
		})
	}
	return cmd
}

// ---- history ----

func newHistoryCmd(g *globals) *cobra.Command {
	var env, endpointName string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show the versions an environment's endpoint has served",
		Long:  `The configurations — and versions — the environment's endpoint has served, oldest first, from the endpoint's tags.`,
		Args:  cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&env, "env", "", "environment", "DEPLOY_ENVIRONMENT")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint instead of {model}-{environment}", "ENDPOINT_NAME")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if endpointName == "" {
			if err := c.needModel(); err != nil {
				return err
			}
			if env == "" {
				return usageErr(errors.New("history needs --env (or DEPLOY_ENVIRONMENT)"))
			}
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.History(ctx, deploy.HistoryRequest{Model: c.model, Environment: env, EndpointName: endpointName})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "\tTIME\tVERSION\tHOW\tENDPOINT CONFIG")
				for _, e := range res.Entries {
					mark := ""
					if e.Current {
						mark = "*"
					}
					fmt.Fprintf(tw, "%s\t%s\tv%d\t%s\t%s\n", mark, e.Time.UTC().Format(time.RFC3339), e.Version, e.Kind, e.EndpointConfigName)
				}
				tw.Flush()
			})
		})
	}
	return cmd
}

// ---- register ----

func newRegisterCmd(g *globals) *cobra.Command {
	var artifact, image, desc, commit, contentType string
	var approve bool
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Upload a model artifact and add it as a new version to the model registry",
		Long: `Upload a model artifact to S3 and register it as a new version of the model's package group
(created when missing). --artifact is a model.tar.gz, a single model file or a directory (packed
into a model.tar.gz; a lone file is named xgboost-model for the XGBoost image), or an s3:// URL
of an uploaded model.tar.gz. Local artifacts go to --bucket (created when missing) under a
content-addressed key. The image defaults to SageMaker's XGBoost image of the region. When the
latest version already has this artifact and image, it is reused instead of duplicated.`,
		Example: `  sagedeploy register --model abalone --artifact model.tar.gz --bucket my-models --approve`,
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&artifact, "artifact", "", "model.tar.gz, model file, directory, or s3:// URL")
	c.b.str(&image, "image", "", "inference image (default: SageMaker's XGBoost "+deploy.XGBoostVersion+" image of the region)")
	c.b.boolean(&approve, "approve", false, "register the version as Approved (default PendingManualApproval)")
	c.b.str(&desc, "description", "", "version description", "MODEL_DESC")
	c.b.str(&commit, "commit", "", "source commit, recorded in the version's metadata", "CIRCLE_SHA1", "GITHUB_SHA")
	c.b.str(&contentType, "content-type", "text/csv", "content type the model accepts and answers with")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		if artifact == "" {
			return usageErr(errors.New("register needs --artifact (a model.tar.gz, a model file, a directory or an s3:// URL)"))
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Register(ctx, deploy.RegisterRequest{
				Model: c.model, Artifact: artifact, Bucket: c.bucket, Image: image, Approve: approve, Description: desc,
				PipelineID: c.pipelineID, ProjectID: c.projectID, Commit: commit, ContentTypes: []string{contentType},
			})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "%s version %d of %s (%s): %s\nartifact %s\n", createdOr(res.Created, "registered", "reused"), res.Version.Number, c.model, res.Version.ApprovalStatus, res.Version.ARN, res.ArtifactURL)
			})
		})
	}
	return cmd
}

// ---- invoke ----

func newInvokeCmd(g *globals) *cobra.Command {
	var env, endpointName, body, contentType, accept, variant string
	cmd := &cobra.Command{
		Use:   "invoke",
		Short: "Call an environment's endpoint and print the answer",
		Long: `Send a request to the environment's endpoint and print the answer on stdout, and the
production variant that answered on stderr. --body is @FILE, - for stdin, or the literal body.`,
		Example: `  sagedeploy invoke --model abalone --env dev --body @sample.csv --content-type text/csv`,
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd)
	c.b.str(&env, "env", "", "environment", "DEPLOY_ENVIRONMENT")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint instead of {model}-{environment}", "ENDPOINT_NAME")
	c.b.str(&body, "body", "", "request body: @FILE, - (stdin) or a literal")
	c.b.str(&contentType, "content-type", "text/csv", "request content type")
	c.b.str(&accept, "accept", "", "content type to ask for in the answer")
	c.b.str(&variant, "variant", "", "send to this production variant")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if endpointName == "" {
			if err := c.needModel(); err != nil {
				return err
			}
			if env == "" {
				return usageErr(errors.New("invoke needs --env (or DEPLOY_ENVIRONMENT) or --endpoint-name"))
			}
		}
		if body == "" {
			return usageErr(errors.New("invoke needs --body (@FILE, - for stdin, or the body itself)"))
		}
		data, err := readBody(body, g.stdin, false)
		if err != nil {
			return usageErr(fmt.Errorf("--body: %w", err))
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Invoke(ctx, deploy.InvokeRequest{Model: c.model, Environment: env, EndpointName: endpointName, Body: data,
				ContentType: contentType, Accept: accept, TargetVariant: variant})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				io.WriteString(w, res.Body)
				if !strings.HasSuffix(res.Body, "\n") {
					io.WriteString(w, "\n")
				}
				fmt.Fprintf(g.stderr, "answered by variant %s of %s\n", res.Variant, res.Endpoint)
			})
		})
	}
	return cmd
}
