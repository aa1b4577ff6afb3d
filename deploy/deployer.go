// Package deploy is sagedeploy's deployer: it moves model versions from the SageMaker Model
// Registry onto SageMaker endpoints, one environment at a time, through aws-sdk-go-v2 only — the
// same code against AWS or the local SageMaker, which differ only by endpoint URL.
//
// A Deployer is built once with New and is safe for concurrent use. Each operation takes a request
// struct and returns a result struct that marshals to the JSON the CLI prints for --output json:
//
//	CreateModel          the SageMaker model of a registry version (latest Approved by default)
//	CreateEndpointConfig the endpoint configuration of a model in an environment
//	Deploy               create or update the environment's endpoint and wait until it serves
//	                     (does the two steps above too when they were not run)
//	Promote              serve in one environment exactly what another one serves
//	Rollback             serve the previous (or a given) version again
//	Scale                change the instance count
//	Status, History      what every environment serves; what one endpoint has served
//	Register             upload an artifact and add a version to the registry
//	Invoke               call an endpoint
//	Execute              run a release-server command (the agent's executor)
//
// Every step is idempotent: names derive from model, environment, version and pipeline id (see
// package naming), so a retried CI step, in a new process, finds and reuses what the first attempt
// made. What sagedeploy creates carries tags (TagModel, TagVersion, …) recording model, version,
// environment, pipeline, project and sagedeploy's version; the endpoint's tags also keep the
// history of configurations it served, which Rollback and History read.
package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/sagedeploy/sagedeploy/releases"
)

// DefaultRegion is used when no region is configured.
const DefaultRegion = "us-east-1"

// Options configure a Deployer. The zero value talks to AWS in us-east-1 with the SDK's default
// credential chain and reports nowhere.
type Options struct {
	// Region is the AWS region; DefaultRegion when empty.
	Region string
	// EndpointURL, when set, is the base URL of every service (SageMaker, its runtime, S3 with
	// path-style addressing, STS) — the local SageMaker's URL, e.g. http://127.0.0.1:4570.
	EndpointURL string
	// Credentials, when set, sign every call. Otherwise WebIdentity is used when set, else the
	// SDK's default chain; with an EndpointURL, a local SageMaker needs no real credentials, so
	// the default chain skips EC2 instance metadata and falls back to placeholder keys.
	Credentials aws.CredentialsProvider
	// WebIdentity, when set (and Credentials is not), obtains temporary credentials for a role
	// with an OIDC token, e.g. CircleCI's CIRCLE_OIDC_TOKEN_V2.
	WebIdentity *WebIdentity
	// ExecutionRoleARN is the IAM role SageMaker assumes for the models this deployer creates.
	// Required on AWS; with an EndpointURL it defaults to arn:aws:iam::{account}:role/sagedeploy-local.
	ExecutionRoleARN string
	// Releases, when set, receives a release per deploy, promote, rollback and scale, with its
	// progress. A refusal of the server stops the operation before SageMaker is touched (gate.go);
	// other reporting failures are logged and never fail it.
	Releases *releases.Client
	// Environments, when set, lists the environments of the pipeline file: any other is refused
	// before an AWS call (see checkEnvironment in gate.go).
	Environments *Environments
	// AssumeRoleARN, when set, is assumed (STS AssumeRole) with the credentials above for every
	// call: the environment's role in another account.
	AssumeRoleARN string
	// ApprovalPoll is the longest interval between checks of a release pending at an approval
	// gate (checks start at 50ms and back off to it); 2s when zero.
	ApprovalPoll time.Duration
	// TriggerUser is who runs the deployer — the CI user (CIRCLE_USERNAME, GITHUB_ACTOR) or the
	// person at the terminal — recorded on releases as who triggered them.
	TriggerUser string
	// Heartbeat is how often a wait tells the release server the deployer is alive (a bake
	// reports nothing for minutes); DefaultHeartbeat when zero, more often when the server asks.
	Heartbeat time.Duration
	// Progress, when set, receives every progress event (including Tick events while waiting).
	// It is called from the goroutine running the operation.
	Progress func(Event)
	// Poll is how often waits check the endpoint; DefaultPoll (AWS) or LocalPoll (EndpointURL) when zero.
	Poll PollSchedule
	// Logger receives structured logs; slog.Default when nil.
	Logger *slog.Logger
	// HTTPClient and APIOptions are passed to every AWS client (APIOptions lets tests and tools
	// observe the calls made).
	HTTPClient aws.HTTPClient
	APIOptions []func(*middleware.Stack) error
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Version is sagedeploy's version, recorded on what the deployer creates (TagCreatedBy, the
	// registry's metadata); "dev" when empty. The CLI sets the binary's build stamp.
	Version string
}

// WebIdentity describes OIDC web-identity credentials: STS AssumeRoleWithWebIdentity for RoleARN
// with the token Token returns (read at every refresh).
type WebIdentity struct {
	RoleARN         string
	RoleSessionName string // "sagedeploy" when empty
	Token           func() ([]byte, error)
}

// GetIdentityToken implements stscreds.IdentityTokenRetriever.
func (w *WebIdentity) GetIdentityToken() ([]byte, error) { return w.Token() }

// Deployer runs deployments. Create it with New.
type Deployer struct {
	opts    Options
	log     *slog.Logger
	sm      *sagemaker.Client
	rt      *sagemakerruntime.Client
	s3      *s3.Client
	sts     *sts.Client
	cw      *cloudwatch.Client
	aas     *applicationautoscaling.Client
	sq      *servicequotas.Client
	region  string
	local   bool
	now     func() time.Time
	account *accountOnce
}

// accountOnce caches the caller's account id, shared by copies of a Deployer.
type accountOnce struct {
	once sync.Once
	id   string
	err  error
}

// New builds a Deployer: AWS clients for SageMaker, its runtime, S3 and STS, with credentials
// resolved as Options describes. It makes no call yet.
func New(ctx context.Context, opts Options) (*Deployer, error) {
	region := cmp.Or(opts.Region, DefaultRegion)
	local := opts.EndpointURL != ""
	if opts.Poll.Initial <= 0 {
		opts.Poll = DefaultPoll
		if local {
			opts.Poll = LocalPoll
		}
	}
	cfg, err := loadConfig(ctx, opts, region, local)
	if err != nil {
		return nil, err
	}
	if err := setCredentials(&cfg, opts, region, local); err != nil {
		return nil, err
	}
	assumeRole(&cfg, opts, local)
	if local {
		// One endpoint for every service: the local SageMaker routes by protocol.
		cfg.BaseEndpoint = aws.String(opts.EndpointURL)
	}
	d := &Deployer{
		opts:    opts,
		log:     cmp.Or(opts.Logger, slog.Default()),
		region:  region,
		local:   local,
		now:     opts.Now,
		account: &accountOnce{},
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.sts = sts.NewFromConfig(cfg)
	d.sm = sagemaker.NewFromConfig(cfg)
	d.rt = sagemakerruntime.NewFromConfig(cfg)
	d.aas = applicationautoscaling.NewFromConfig(cfg)
	d.cw = cloudwatch.NewFromConfig(cfg)
	d.sq = servicequotas.NewFromConfig(cfg)
	d.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = local })
	return d, nil
}

// loadConfig loads the SDK's configuration for region with the options' HTTP client and API options.
func loadConfig(ctx context.Context, opts Options, region string, local bool) (aws.Config, error) {
	loadOpts := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if opts.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(opts.HTTPClient))
	}
	if len(opts.APIOptions) > 0 {
		loadOpts = append(loadOpts, config.WithAPIOptions(opts.APIOptions))
	}
	if local {
		// Instance metadata does not exist next to a local SageMaker; probing it only adds seconds.
		loadOpts = append(loadOpts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return cfg, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// setCredentials picks the credentials of cfg: the given ones, web identity, placeholder keys
// for a local SageMaker when the default chain has none, or the default chain explained.
func setCredentials(cfg *aws.Config, opts Options, region string, local bool) error {
	switch {
	case opts.Credentials != nil:
	case opts.WebIdentity != nil:
		if opts.WebIdentity.RoleARN == "" || opts.WebIdentity.Token == nil {
			return errors.New("web identity credentials need a role ARN and a token")
		}
		stsClient := sts.NewFromConfig(*cfg, func(o *sts.Options) {
			if local {
				o.BaseEndpoint = aws.String(opts.EndpointURL)
			}
		})
		name := cmp.Or(opts.WebIdentity.RoleSessionName, "sagedeploy")
		p := stscreds.NewWebIdentityRoleProvider(stsClient, opts.WebIdentity.RoleARN, opts.WebIdentity, func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = name
		})
		cfg.Credentials = aws.NewCredentialsCache(p)
	case local:
		cfg.Credentials = aws.NewCredentialsCache(&fallbackCredentials{
			primary:  cfg.Credentials,
			fallback: credentials.NewStaticCredentialsProvider("sagedeploy-local", "sagedeploy-local", ""),
		})
	default:
		cfg.Credentials = aws.NewCredentialsCache(&explainedCredentials{inner: cfg.Credentials, region: region})
	}
	return nil
}

// WithReleases returns a Deployer that shares d's AWS clients and reports releases to c (nowhere
// when nil) — e.g. an agent serving several environments, each command with its environment's
// token.
func (d *Deployer) WithReleases(c *releases.Client) *Deployer {
	cp := *d
	cp.opts.Releases = c
	return &cp
}

// Region is the region the deployer works in.
func (d *Deployer) Region() string { return d.region }

// Local reports whether the deployer talks to a custom endpoint (the local SageMaker) rather than AWS.
func (d *Deployer) Local() bool { return d.local }

// fallbackCredentials uses primary (the SDK's default chain) when it yields credentials, else
// fallback: any keys sign requests a local SageMaker accepts.
type fallbackCredentials struct {
	primary  aws.CredentialsProvider
	fallback aws.CredentialsProvider
}

func (f *fallbackCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if f.primary != nil {
		if c, err := f.primary.Retrieve(ctx); err == nil && c.HasKeys() {
			return c, nil
		}
	}
	return f.fallback.Retrieve(ctx)
}

// explainedCredentials turns the default chain's failure — a list of every provider it tried,
// ending in an instance-metadata timeout — into what a user can do about it.
type explainedCredentials struct {
	inner  aws.CredentialsProvider
	region string
}

func (e *explainedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if e.inner == nil {
		return aws.Credentials{}, errorf(ErrNoCredentials, "no AWS credentials found for %s; %s", e.region, credentialsHelp)
	}
	c, err := e.inner.Retrieve(ctx)
	if err != nil {
		return c, errorf(ErrNoCredentials, "no AWS credentials found for %s; %s (the SDK said: %w)", e.region, credentialsHelp, err)
	}
	return c, nil
}

const credentialsHelp = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in CircleCI set " +
	"SAGEMAKER_EXECUTION_ROLE_ARN so the job's CIRCLE_OIDC_TOKEN assumes that role; or deploy to a local " +
	"SageMaker with --endpoint-url / AWS_ENDPOINT_URL (see `sagedeploy up`)"

// Identity is who the deployer's calls run as (STS GetCallerIdentity).
type Identity struct {
	Account string `json:"account"`
	ARN     string `json:"arn"`
	UserID  string `json:"user_id"`
}

// Identity asks STS who the deployer's credentials belong to — with web identity credentials, the
// assumed role.
func (d *Deployer) Identity(ctx context.Context) (Identity, error) {
	out, err := d.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("get caller identity: %w", err)
	}
	return Identity{Account: aws.ToString(out.Account), ARN: aws.ToString(out.Arn), UserID: aws.ToString(out.UserId)}, nil
}

// accountID is the caller's account, asked once.
func (d *Deployer) accountID(ctx context.Context) (string, error) {
	d.account.once.Do(func() {
		id, err := d.Identity(ctx)
		d.account.id, d.account.err = id.Account, err
	})
	return d.account.id, d.account.err
}

// executionRole is the role for CreateModel.
func (d *Deployer) executionRole(ctx context.Context) (string, error) {
	if d.opts.ExecutionRoleARN != "" {
		return d.opts.ExecutionRoleARN, nil
	}
	if !d.local {
		return "", errors.New("SageMaker needs an execution role to create a model: set SAGEMAKER_EXECUTION_ROLE_ARN or --execution-role-arn (the role SageMaker assumes to read the artifact; `sagedeploy iam policy` prints the deployer's own permissions)")
	}
	acct, err := d.accountID(ctx)
	if err != nil || acct == "" {
		acct = "000000000000"
	}
	return "arn:aws:iam::" + acct + ":role/sagedeploy-local", nil
}

// emit sends an event to the Progress callback and to the logger.
func (d *Deployer) emit(e Event, sink func(Event)) {
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	if !e.Tick {
		d.log.Debug(e.Message, "phase", e.Phase, "endpoint", e.Endpoint, "status", e.EndpointStatus)
	}
	if sink != nil {
		sink(e)
	}
	if d.opts.Progress != nil {
		d.opts.Progress(e)
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// httpStatus extracts the HTTP status of an SDK error, 0 when there is none.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
