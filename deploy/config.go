package deploy

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy/naming"
	"github.com/sagedeploy/sagedeploy/releases"
)

// Instance defaults, as the orb's.
const (
	DefaultInstanceType  = "ml.t2.medium"
	DefaultInstanceCount = 1
	// DefaultVariant is the production variant sagedeploy's configurations define.
	DefaultVariant = "AllTraffic"
)

// CreateEndpointConfigRequest asks for the endpoint configuration of a model in an environment.
type CreateEndpointConfigRequest struct {
	Model       string
	Environment string
	// Version pins a version; 0 means the pipeline's model, else the latest Approved version.
	Version int
	// ModelName uses an existing SageMaker model (e.g. the one another environment serves)
	// instead of resolving a version.
	ModelName string
	// InstanceType and InstanceCount default to ml.t2.medium and 1.
	InstanceType  string
	InstanceCount int
	PipelineID    string
	ProjectID     string
	// Settings asked for; what they leave open is carried over from the running configuration.
	Settings EndpointSettings

	// settings, when set, are carried over from the configuration the endpoint runs.
	settings *endpointSettings
}

// CreateEndpointConfigResult names the configuration and what it serves.
type CreateEndpointConfigResult struct {
	EndpointConfigName string  `json:"endpoint_config_name"`
	EndpointConfigARN  string  `json:"endpoint_config_arn,omitempty"`
	ModelName          string  `json:"model_name"`
	Version            Version `json:"version"`
	InstanceType       string  `json:"instance_type"`
	InstanceCount      int     `json:"instance_count"`
	Created            bool    `json:"created"`
	// ModelCreated is true when this call also had to create the model.
	ModelCreated bool `json:"model_created"`
}

// CreateEndpointConfig makes sure the endpoint configuration of a model, environment, version,
// pipeline and instance settings exists (one AllTraffic variant), creating the model first when the
// pipeline has not. Endpoint configurations are immutable; the name (naming.EndpointConfig) covers
// every input, so re-running it reuses the configuration and changed settings make a new one.
func (d *Deployer) CreateEndpointConfig(ctx context.Context, req CreateEndpointConfigRequest) (CreateEndpointConfigResult, error) {
	ctx, err := d.checkEnvironment(ctx, req.Model, req.Environment)
	if err != nil {
		return CreateEndpointConfigResult{}, err
	}
	if err := req.Settings.Check(req.Model, req.Environment, req.InstanceType != "" || req.InstanceCount != 0); err != nil {
		return CreateEndpointConfigResult{}, err
	}
	return d.createEndpointConfig(ctx, req, nil)
}

func (d *Deployer) createEndpointConfig(ctx context.Context, req CreateEndpointConfigRequest, sink func(Event)) (CreateEndpointConfigResult, error) {
	plan, err := d.planConfig(ctx, req, sink)
	if err != nil {
		return CreateEndpointConfigResult{}, err
	}
	return d.applyConfig(ctx, plan, sink)
}

// configPlan is an endpoint configuration about to be made (or reused): everything is known —
// version, model and name — but nothing is created yet, so that a release can be reported and
// pass its approval gate before anything changes.
type configPlan struct {
	req       CreateEndpointConfigRequest
	model     *modelPlan // nil when req.ModelName names an existing model
	modelName string
	version   Version
	itype     string
	count     int
	name      string
	settings  endpointSettings
}

func (p configPlan) info() configInfo {
	return configInfo{Name: p.name, ModelName: p.modelName, Version: p.version, InstanceType: p.itype, InstanceCount: p.count,
		Variant: p.settings.variant(), Settings: p.settings}
}

func (d *Deployer) planConfig(ctx context.Context, req CreateEndpointConfigRequest, sink func(Event)) (configPlan, error) {
	if err := checkTarget(req.Model, req.Environment); err != nil {
		return configPlan{}, err
	}
	var kept endpointSettings
	if req.settings != nil {
		kept = *req.settings
	}
	asked := req.Settings
	// Serverless capacity asked for wins over the instances an update carries over; async (which
	// needs instances) or instances asked for end the serverless capacity carried over.
	serverless := asked.Serverless != nil || asked.Async == nil && kept.serverlessUnlessAsked(req.InstanceType, req.InstanceCount)
	kept = asked.over(kept)
	itype, count := "", 0
	if !serverless {
		var err error
		if itype, count, err = instanceSettings(req.InstanceType, req.InstanceCount); err != nil {
			return configPlan{}, err
		}
		kept.Serverless = nil
	}
	p := configPlan{req: req, itype: itype, count: count, settings: kept}
	if req.ModelName != "" {
		v, err := d.modelVersion(ctx, req.ModelName)
		if err != nil {
			return p, err
		}
		p.modelName, p.version = req.ModelName, v
	} else {
		m, err := d.planModel(ctx, CreateModelRequest{Model: req.Model, Version: req.Version, Environment: req.Environment, PipelineID: req.PipelineID, ProjectID: req.ProjectID}, sink)
		if err != nil {
			return p, err
		}
		p.model, p.modelName, p.version = &m, m.name, m.version
	}
	parts := []string{p.modelName, itype, strconv.Itoa(count), kept.variant()}
	if k := kept.key(); k != "" {
		parts = append(parts, k)
	}
	settings := strings.Join(parts, "|")
	p.name = naming.EndpointConfig(req.Model, req.Environment, p.version.Number, req.PipelineID, settings)
	return p, nil
}

func (d *Deployer) applyConfig(ctx context.Context, p configPlan, sink func(Event)) (CreateEndpointConfigResult, error) {
	req := p.req
	res := CreateEndpointConfigResult{EndpointConfigName: p.name, ModelName: p.modelName, Version: p.version, InstanceType: p.itype, InstanceCount: p.count}
	if p.model != nil {
		m, err := d.applyModel(ctx, *p.model, sink)
		if err != nil {
			return res, err
		}
		res.ModelCreated = m.Created
	}
	name := p.name
	tags := versionTags(d.baseTags(req.Model, req.Environment, req.PipelineID, req.ProjectID), res.Version)
	for k, v := range req.Settings.Tags {
		if _, own := tags[k]; !own && !strings.HasPrefix(k, "sagedeploy:") {
			tags[k] = v
		}
	}
	// Create first, describe only when it exists (a retried step): the name covers every input, so
	// an existing configuration of that name is this one, and the common case costs one call.
	out, err := d.sm.CreateEndpointConfig(ctx, configInput(p, tags))
	switch {
	case isAlreadyExists(err):
		return d.reuseConfig(ctx, res, sink)
	case err != nil:
		return res, fmt.Errorf("create endpoint configuration %s for %s in %s: %w", name, req.Model, req.Environment, err)
	}
	res.EndpointConfigARN = aws.ToString(out.EndpointConfigArn)
	res.Created = true
	what := fmt.Sprintf("%s × %d", p.itype, p.count)
	if p.settings.Serverless != nil {
		what = "serverless"
	}
	if kept := p.settings.describe(); kept != "" {
		what += ", with " + kept
	}
	d.emit(Event{Phase: releases.PhaseEndpointConfig, Message: fmt.Sprintf("created endpoint configuration %s: %s serving model %s as variant %s", name, what, res.ModelName, p.settings.variant())}, sink)
	return res, nil
}

// reuseConfig takes the configuration a retried (or concurrent) step made under the same name.
func (d *Deployer) reuseConfig(ctx context.Context, res CreateEndpointConfigResult, sink func(Event)) (CreateEndpointConfigResult, error) {
	name := res.EndpointConfigName
	existing, err := d.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String(name)})
	if err != nil {
		return res, fmt.Errorf("describe endpoint configuration %s: %w", name, err)
	}
	res.EndpointConfigARN = aws.ToString(existing.EndpointConfigArn)
	d.emit(Event{Phase: releases.PhaseEndpointConfig, Message: fmt.Sprintf("endpoint configuration %s already exists; reusing it", name)}, sink)
	return res, nil
}

// configInput is the CreateEndpointConfig call of a plan: one variant with the plan's model,
// instances (or serverless capacity) and the settings carried over.
func configInput(p configPlan, tags map[string]string) *sagemaker.CreateEndpointConfigInput {
	pv := types.ProductionVariant{
		VariantName:          aws.String(p.settings.variant()),
		ModelName:            aws.String(p.modelName),
		InitialVariantWeight: aws.Float32(1),
		ServerlessConfig:     p.settings.Serverless,
	}
	if p.settings.Serverless == nil {
		pv.InstanceType, pv.InitialInstanceCount = types.ProductionVariantInstanceType(p.itype), aws.Int32(int32(p.count))
	}
	in := &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName:   aws.String(p.name),
		ProductionVariants:   []types.ProductionVariant{pv},
		DataCaptureConfig:    p.settings.DataCapture,
		AsyncInferenceConfig: p.settings.Async,
		Tags:                 sdkTags(tags),
	}
	if p.settings.KmsKeyID != "" {
		in.KmsKeyId = aws.String(p.settings.KmsKeyID)
	}
	return in
}

// checkTarget validates the model and environment of a request.
func checkTarget(model, env string) error {
	if model == "" {
		return errorf(ErrInvalid, "no model given: set --model or MODEL_NAME to the model package group name")
	}
	if env == "" {
		return errorf(ErrInvalid, "no environment given for model %s: set --env or DEPLOY_ENVIRONMENT (e.g. dev or prod)", model)
	}
	for _, err := range []error{releases.CheckModelName(model), releases.CheckEnvironmentName(env)} {
		if err != nil {
			return errorf(ErrInvalid, "%s", err)
		}
	}
	return nil
}

// instanceSettings applies defaults and checks the values against SageMaker's.
func instanceSettings(itype string, count int) (string, int, error) {
	itype, count = cmp.Or(itype, DefaultInstanceType), cmp.Or(count, DefaultInstanceCount)
	if count < 0 {
		return "", 0, errorf(ErrInvalid, "instance count %d is not valid: use 1 or more (ENDPOINT_INSTANCE_COUNT / --instance-count)", count)
	}
	if !validInstanceType(itype) {
		return "", 0, errorf(ErrInvalid, "instance type %q is not a SageMaker hosting instance type (e.g. ml.t2.medium, ml.m5.large, ml.c5.xlarge); check ENDPOINT_INSTANCE_TYPE / --instance-type", itype)
	}
	return itype, count, nil
}

func validInstanceType(t string) bool {
	for _, v := range types.ProductionVariantInstanceType("").Values() {
		if string(v) == t {
			return true
		}
	}
	return false
}

// configInfo is what an endpoint configuration serves.
type configInfo struct {
	Name          string
	ARN           string
	ModelName     string
	Version       Version
	InstanceType  string
	InstanceCount int
	Variant       string
	CreatedAt     time.Time
	Settings      endpointSettings
}

// describeConfig reads an endpoint configuration and the version its (first) variant's model serves.
func (d *Deployer) describeConfig(ctx context.Context, name string) (configInfo, error) {
	out, err := d.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String(name)})
	if err != nil {
		return configInfo{}, fmt.Errorf("describe endpoint configuration %s: %w", name, err)
	}
	ci := configInfo{Name: name, ARN: aws.ToString(out.EndpointConfigArn), CreatedAt: aws.ToTime(out.CreationTime)}
	if len(out.ProductionVariants) == 0 {
		return ci, fmt.Errorf("endpoint configuration %s has no production variant", name)
	}
	pv := out.ProductionVariants[0]
	ci.ModelName = aws.ToString(pv.ModelName)
	ci.InstanceType = string(pv.InstanceType)
	ci.InstanceCount = int(aws.ToInt32(pv.InitialInstanceCount))
	ci.Variant = aws.ToString(pv.VariantName)
	ci.Settings = settingsOf(out)
	v, err := d.modelVersion(ctx, ci.ModelName)
	if err != nil {
		return ci, err
	}
	ci.Version = v
	return ci, nil
}

// findPipelineConfig finds the newest configuration this pipeline made for the model in env that
// matches the pinned version and the instance settings given (empty / 0 match anything). One
// filtered list finds the candidates and their names say model, environment and version
// (naming.EndpointConfigVersion); the one taken is described once, with the model it serves.
func (d *Deployer) findPipelineConfig(ctx context.Context, model, env, pipelineID string, pinned int, itype string, count int) (configInfo, bool, error) {
	key := naming.PipelineKey(pipelineID)
	var cands []types.EndpointConfigSummary
	p := sagemaker.NewListEndpointConfigsPaginator(d.sm, &sagemaker.ListEndpointConfigsInput{NameContains: aws.String(key), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return configInfo{}, false, fmt.Errorf("list endpoint configurations of pipeline %s: %w", pipelineID, err)
		}
		for _, c := range page.EndpointConfigs {
			if n, ok := naming.EndpointConfigVersion(aws.ToString(c.EndpointConfigName), model, env, pipelineID); ok && (pinned == 0 || n == pinned) {
				cands = append(cands, c)
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		return aws.ToTime(cands[i].CreationTime).After(aws.ToTime(cands[j].CreationTime))
	})
	for _, c := range cands {
		ci, err := d.describeConfig(ctx, aws.ToString(c.EndpointConfigName))
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return configInfo{}, false, err
		}
		// The model served tells model "a" in env "b-dev" from model "a-b" in "dev" (one name prefix).
		if !strings.EqualFold(ci.Version.Model, model) || (itype != "" && ci.InstanceType != itype) || (count > 0 && ci.InstanceCount != count) {
			continue
		}
		// Names are trusted up to here (the configuration step reads no model); what the model
		// really serves must be what the name promised, or this is not the pipeline's configuration.
		if n, _ := naming.EndpointConfigVersion(ci.Name, model, env, pipelineID); ci.Version.Number != n {
			return ci, false, errorf(ErrInvalid, "endpoint configuration %s is named for version %d of %s, but its model %s serves %s of %s: it was not made by pipeline %s. Nothing was changed: delete the configuration and its model, or use another pipeline id",
				ci.Name, n, model, ci.ModelName, ci.versionString(), ci.Version.Model, pipelineID)
		}
		return ci, true, nil
	}
	return configInfo{}, false, nil
}

// EndpointSettings are the endpoint settings a request asks for; a nil field keeps what the
// endpoint runs (an update carries data capture, async and serverless settings over).
type EndpointSettings struct {
	DataCapture *DataCapture
	Serverless  *Serverless
	Async       *AsyncInference
	// Tags are added to the endpoint configuration; sagedeploy's own keys win.
	Tags map[string]string
}

// DataCapture records a share of the endpoint's requests and answers to S3.
type DataCapture struct {
	DestinationS3URI string
	// SamplingPercent is the share captured, 0 to 100.
	SamplingPercent int
	// Mode is input, output or both ("" is both).
	Mode string
}

// Serverless serves from serverless capacity instead of instances.
type Serverless struct {
	MemoryMB               int
	MaxConcurrency         int
	ProvisionedConcurrency int // 0: none
}

// AsyncInference makes the endpoint asynchronous: InvokeEndpointAsync writes answers to S3.
type AsyncInference struct {
	OutputS3URI  string
	FailureS3URI string // "" keeps failures in OutputS3URI's answers
	// MaxConcurrentInvocations per instance; 0 lets SageMaker choose.
	MaxConcurrentInvocations int
}

// shapesConfig reports whether the settings ask for a configuration of their own (tags alone do
// not: a configuration the pipeline made earlier serves as well).
func (s EndpointSettings) shapesConfig() bool {
	return s.DataCapture != nil || s.Serverless != nil || s.Async != nil
}

// Check refuses settings SageMaker would refuse, in the words of the flags; instancesGiven says
// the request names an instance type or count (which a serverless endpoint has none of).
func (s EndpointSettings) Check(model, env string, instancesGiven bool) error {
	where := fmt.Sprintf("for %s in %s", model, env)
	if s.Serverless != nil && instancesGiven {
		return errorf(ErrInvalid, "serverless capacity %s has no instances: drop --instance-type/--instance-count or the --serverless-* settings", where)
	}
	if s.Serverless != nil && s.Async != nil {
		return errorf(ErrInvalid, "asynchronous inference %s needs instances: SageMaker does not serve async from serverless capacity; drop --serverless-* or --async-*", where)
	}
	for _, err := range []error{s.DataCapture.check(where), s.Serverless.check(where), s.Async.check(where)} {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *DataCapture) check(where string) error {
	switch {
	case c == nil:
		return nil
	case !isS3URI(c.DestinationS3URI):
		return errorf(ErrInvalid, "data capture %s needs an s3://bucket/prefix destination (--data-capture-s3-uri), not %q", where, c.DestinationS3URI)
	case c.SamplingPercent < 0 || c.SamplingPercent > 100:
		return errorf(ErrInvalid, "data capture %s samples %d%% of the requests: use 0 to 100 (--data-capture-percent)", where, c.SamplingPercent)
	}
	if _, ok := captureModes(c.Mode); !ok {
		return errorf(ErrInvalid, "data capture mode %q %s is not one of input, output, both (--data-capture-mode)", c.Mode, where)
	}
	return nil
}

// captureModes are SageMaker's capture options of a mode.
func captureModes(mode string) ([]types.CaptureMode, bool) {
	switch mode {
	case "", "both":
		return []types.CaptureMode{types.CaptureModeInput, types.CaptureModeOutput}, true
	case "input":
		return []types.CaptureMode{types.CaptureModeInput}, true
	case "output":
		return []types.CaptureMode{types.CaptureModeOutput}, true
	}
	return nil, false
}

func (s *Serverless) check(where string) error {
	switch {
	case s == nil:
		return nil
	case s.MemoryMB < 1024 || s.MemoryMB > 6144 || s.MemoryMB%1024 != 0:
		return errorf(ErrInvalid, "serverless memory %d MB %s is not one SageMaker offers: use 1024, 2048, 3072, 4096, 5120 or 6144 (--serverless-memory)", s.MemoryMB, where)
	case s.MaxConcurrency < 1 || s.MaxConcurrency > 200:
		return errorf(ErrInvalid, "serverless max concurrency %d %s is not between 1 and 200 (--serverless-max-concurrency)", s.MaxConcurrency, where)
	case s.ProvisionedConcurrency < 0 || s.ProvisionedConcurrency > s.MaxConcurrency:
		return errorf(ErrInvalid, "serverless provisioned concurrency %d %s must be between 0 and the max concurrency %d (--serverless-provisioned)", s.ProvisionedConcurrency, where, s.MaxConcurrency)
	}
	return nil
}

func (a *AsyncInference) check(where string) error {
	switch {
	case a == nil:
		return nil
	case !isS3URI(a.OutputS3URI):
		return errorf(ErrInvalid, "asynchronous inference %s needs an s3://bucket/prefix for its answers (--async-output-s3), not %q", where, a.OutputS3URI)
	case a.FailureS3URI != "" && !isS3URI(a.FailureS3URI):
		return errorf(ErrInvalid, "asynchronous inference %s: failure location %q is not an s3://bucket/prefix (--async-failure-s3)", where, a.FailureS3URI)
	case a.MaxConcurrentInvocations < 0 || a.MaxConcurrentInvocations > 1000:
		return errorf(ErrInvalid, "asynchronous inference %s: %d concurrent invocations per instance is not between 1 and 1000 (--async-max-concurrency)", where, a.MaxConcurrentInvocations)
	}
	return nil
}

func isS3URI(s string) bool {
	rest, ok := strings.CutPrefix(s, "s3://")
	return ok && rest != "" && !strings.HasPrefix(rest, "/")
}

// over lays the asked settings over the ones carried from the running configuration.
func (s EndpointSettings) over(kept endpointSettings) endpointSettings {
	if c := s.DataCapture; c != nil {
		modes, _ := captureModes(c.Mode)
		opts := make([]types.CaptureOption, 0, len(modes))
		for _, m := range modes {
			opts = append(opts, types.CaptureOption{CaptureMode: m})
		}
		kept.DataCapture = &types.DataCaptureConfig{EnableCapture: aws.Bool(true), DestinationS3Uri: aws.String(c.DestinationS3URI),
			InitialSamplingPercentage: aws.Int32(int32(c.SamplingPercent)), CaptureOptions: opts}
	}
	if v := s.Serverless; v != nil {
		kept.Serverless = &types.ProductionVariantServerlessConfig{MemorySizeInMB: aws.Int32(int32(v.MemoryMB)), MaxConcurrency: aws.Int32(int32(v.MaxConcurrency))}
		if v.ProvisionedConcurrency > 0 {
			kept.Serverless.ProvisionedConcurrency = aws.Int32(int32(v.ProvisionedConcurrency))
		}
		kept.Async = nil
	}
	if a := s.Async; a != nil {
		out := &types.AsyncInferenceOutputConfig{S3OutputPath: aws.String(a.OutputS3URI)}
		if a.FailureS3URI != "" {
			out.S3FailurePath = aws.String(a.FailureS3URI)
		}
		kept.Async = &types.AsyncInferenceConfig{OutputConfig: out}
		if a.MaxConcurrentInvocations > 0 {
			kept.Async.ClientConfig = &types.AsyncInferenceClientConfig{MaxConcurrentInvocationsPerInstance: aws.Int32(int32(a.MaxConcurrentInvocations))}
		}
		kept.Serverless = nil
	}
	return kept
}
