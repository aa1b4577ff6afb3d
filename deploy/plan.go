package deploy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// Plan actions: what a deploy would do to the endpoint.
const (
	PlanCreate  = "create"  // the endpoint does not exist yet
	PlanUpdate  = "update"  // the endpoint would serve another configuration
	PlanNothing = "nothing" // the endpoint already serves what the deploy asks for
)

// PlanResult is what a deploy would change on an environment's endpoint, computed with reads
// only: `sagedeploy plan` and `deploy --dry-run`.
type PlanResult struct {
	Model       string `json:"model"`
	Environment string `json:"environment"`
	Endpoint    string `json:"endpoint"`
	Region      string `json:"region"`
	// Action is PlanCreate, PlanUpdate or PlanNothing.
	Action string `json:"action"`
	// EndpointStatus is the endpoint's status now ("" when it does not exist).
	EndpointStatus string `json:"endpoint_status,omitempty"`
	// Changes lists every field the deploy sets, changed or not, in a fixed order; data_capture,
	// serverless and async only when the endpoint has them or the deploy sets them.
	Changes []Change `json:"changes"`
	// ModelCreated and ConfigCreated say the deploy would create the SageMaker model and the
	// endpoint configuration (else it reuses existing ones).
	ModelCreated  bool `json:"model_created"`
	ConfigCreated bool `json:"endpoint_config_created"`
}

// Change is one field of the endpoint before and after the deploy.
type Change struct {
	Field   string `json:"field"`
	From    string `json:"from"`
	To      string `json:"to"`
	Changed bool   `json:"changed"`
}

// Plan says what Deploy(req) would change, without changing anything: the environment is checked
// as Deploy checks it (pipeline file, release server), the version resolved, the configuration
// named, and the endpoint read.
func (d *Deployer) Plan(ctx context.Context, req DeployRequest) (PlanResult, error) {
	var dr DeployResult
	req, err := d.checkDeploy(req, &dr)
	if err != nil {
		return PlanResult{}, err
	}
	if ctx, err = d.checkEnvironment(ctx, req.Model, req.Environment); err != nil {
		return PlanResult{}, err
	}
	res := PlanResult{Model: req.Model, Environment: req.Environment, Endpoint: dr.Endpoint, Region: d.region}
	// The endpoint first: the plan keeps its instances and settings, as Deploy does.
	snap, err := d.readEndpoint(ctx, dr.Endpoint)
	if err != nil {
		return res, err
	}
	cfg, apply, err := d.prepare(ctx, req, snap, nil, nil)
	if err != nil {
		return res, err
	}
	if apply != nil {
		res.ConfigCreated, res.ModelCreated = d.configMissing(ctx, cfg)
	}
	var cur configInfo
	count := 0
	if snap.exists() {
		res.EndpointStatus = string(snap.status())
		if c, ok := snap.serving(); ok {
			cur, count = c, snap.instances()
		}
	}
	res.Changes = planChanges(cur, count, cfg, req.Strategy, snap.exists())
	res.Action = planAction(snap.exists(), res.Changes)
	return res, nil
}

// configMissing says whether the configuration, and its model, would have to be created.
func (d *Deployer) configMissing(ctx context.Context, cfg configInfo) (config, model bool) {
	if _, err := d.describeConfig(ctx, cfg.Name); err == nil {
		return false, false
	}
	_, err := d.modelVersion(ctx, cfg.ModelName)
	return true, isNotFound(err)
}

func planChanges(cur configInfo, count int, next configInfo, st Strategy, exists bool) []Change {
	ver := func(c configInfo) string {
		if c.Name == "" {
			return ""
		}
		return c.versionString()
	}
	n := func(i int) string {
		if i == 0 {
			return ""
		}
		return strconv.Itoa(i)
	}
	strategy := st.String()
	if !exists {
		strategy = "all at once (a new endpoint)"
	}
	out := []Change{
		{Field: "version", From: ver(cur), To: ver(next)},
		{Field: "model", From: cur.ModelName, To: next.ModelName},
		{Field: "endpoint_config", From: cur.Name, To: next.Name},
		{Field: "instance_type", From: cur.InstanceType, To: next.InstanceType},
		{Field: "instance_count", From: n(count), To: n(next.InstanceCount)},
		{Field: "variant", From: cur.Variant, To: next.Variant},
	}
	for i := range out {
		out[i].Changed = out[i].From != out[i].To
	}
	out = append(out, settingsChanges(cur.Settings, next.Settings)...)
	changed := out[2].Changed
	return append(out, Change{Field: "strategy", To: strategy, Changed: changed})
}

// settingsChanges are the endpoint settings either side has: a plain endpoint's plan stays short.
func settingsChanges(cur, next endpointSettings) []Change {
	var out []Change
	for _, f := range []struct{ field, from, to string }{
		{"data_capture", captureString(cur.DataCapture), captureString(next.DataCapture)},
		{"serverless", serverlessString(cur.Serverless), serverlessString(next.Serverless)},
		{"async", asyncString(cur.Async), asyncString(next.Async)},
	} {
		if f.from != "" || f.to != "" {
			out = append(out, Change{Field: f.field, From: f.from, To: f.to, Changed: f.from != f.to})
		}
	}
	return out
}

// captureString reads "30% input+output to s3://bucket/prefix".
func captureString(c *types.DataCaptureConfig) string {
	if c == nil || !aws.ToBool(c.EnableCapture) {
		return ""
	}
	modes := make([]string, len(c.CaptureOptions))
	for i, o := range c.CaptureOptions {
		modes[i] = strings.ToLower(string(o.CaptureMode))
	}
	return fmt.Sprintf("%d%% %s to %s", aws.ToInt32(c.InitialSamplingPercentage), strings.Join(modes, "+"), aws.ToString(c.DestinationS3Uri))
}

// serverlessString reads "2048 MB, max concurrency 5, 1 provisioned".
func serverlessString(s *types.ProductionVariantServerlessConfig) string {
	if s == nil {
		return ""
	}
	out := fmt.Sprintf("%d MB, max concurrency %d", aws.ToInt32(s.MemorySizeInMB), aws.ToInt32(s.MaxConcurrency))
	if p := aws.ToInt32(s.ProvisionedConcurrency); p > 0 {
		out += fmt.Sprintf(", %d provisioned", p)
	}
	return out
}

// asyncString reads "answers to s3://…, failures to s3://…, 4 per instance".
func asyncString(a *types.AsyncInferenceConfig) string {
	if a == nil || a.OutputConfig == nil {
		return ""
	}
	out := "answers to " + aws.ToString(a.OutputConfig.S3OutputPath)
	if f := aws.ToString(a.OutputConfig.S3FailurePath); f != "" {
		out += ", failures to " + f
	}
	if a.ClientConfig != nil && aws.ToInt32(a.ClientConfig.MaxConcurrentInvocationsPerInstance) > 0 {
		out += fmt.Sprintf(", %d per instance", aws.ToInt32(a.ClientConfig.MaxConcurrentInvocationsPerInstance))
	}
	return out
}

func planAction(exists bool, changes []Change) string {
	switch {
	case !exists:
		return PlanCreate
	case changes[2].Changed: // the configuration decides whether the endpoint is updated
		return PlanUpdate
	}
	return PlanNothing
}
