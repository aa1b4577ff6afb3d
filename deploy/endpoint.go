package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sagedeploy/sagedeploy/deploy/naming"
	"github.com/sagedeploy/sagedeploy/releases"
)

// DefaultTimeout bounds the wait for an endpoint to be InService, as the orb's deploy step.
const DefaultTimeout = 30 * time.Minute

// DeployRequest asks to make an environment's endpoint serve a version.
type DeployRequest struct {
	Model       string
	Environment string
	// EndpointName overrides "{model}-{environment}" (the orb's ENDPOINT_NAME).
	EndpointName string
	// EndpointConfigName deploys an existing configuration as is (the orb's ENDPOINT_CONFIGURATION_NAME).
	EndpointConfigName string
	// Version pins a version; 0 deploys the configuration this pipeline made for the environment,
	// else the latest Approved version.
	Version int
	// ModelName deploys an existing SageMaker model (Promote uses it).
	ModelName string
	// InstanceType and InstanceCount: empty / 0 take the pipeline's configuration's, else
	// ml.t2.medium × 1.
	InstanceType  string
	InstanceCount int
	// Settings asked for (data capture, serverless, async, tags); the rest is kept from the endpoint.
	Settings   EndpointSettings
	PipelineID string
	ProjectID  string
	// Description is shown on the release (the orb's MODEL_DESC).
	Description string
	// Strategy is how traffic moves to the new version; ParseStrategy checks it once and attaches
	// its SageMaker DeploymentConfig (an unchecked Strategy is checked by Deploy).
	Strategy Strategy
	// Verify, when set, invokes the endpoint once it serves the new version.
	// Its expectation is parsed already (ParseExpectation).
	Verify *Verification
	// RollbackOnFailure restores the previous configuration when verification fails.
	RollbackOnFailure bool
	// Timeout bounds the wait for InService (DefaultTimeout when 0), on top of the strategy's bake time.
	Timeout time.Duration
	// LockTimeout bounds the wait for another deployment of the same endpoint to finish first;
	// Timeout when 0.
	LockTimeout time.Duration
	// RestoreEnabled and ScaleEnabled go to the release server (the orb's RESTORE_VERSION_ENABLED
	// and SCALE_COMPONENT_ENABLED).
	RestoreEnabled *bool
	ScaleEnabled   *bool
	// ReleaseID reports into a release the server already created (agent commands).
	ReleaseID string
	// Trigger overrides who started the release (default: the pipeline, else the CLI).
	Trigger *releases.Trigger
	// SkipPreflight deploys without the preflight checks (an emergency, or a check that cannot
	// see what it needs); the checks run by default.
	SkipPreflight bool

	kind        releases.Kind // deploy unless Promote or Rollback set it
	historyKind string
	// settings are carried over from what the endpoint runs (see keepInstances).
	settings *endpointSettings
	// snapshot is the endpoint as the caller just read it, and config the configuration named by
	// EndpointConfigName as it described it: Deploy does not read them again.
	snapshot *endpointSnapshot
	config   *configInfo
}

// DeployResult reports a deployment.
type DeployResult struct {
	Model              string        `json:"model"`
	Environment        string        `json:"environment"`
	Endpoint           string        `json:"endpoint"`
	EndpointConfigName string        `json:"endpoint_config_name"`
	ModelName          string        `json:"model_name"`
	Version            Version       `json:"version"`
	InstanceType       string        `json:"instance_type"`
	InstanceCount      int           `json:"instance_count"`
	EndpointStatus     string        `json:"endpoint_status"`
	PreviousVersion    *Version      `json:"previous_version,omitempty"`
	PreviousConfigName string        `json:"previous_endpoint_config_name,omitempty"`
	Kind               releases.Kind `json:"kind"`
	// Created: the endpoint was created; Changed: the endpoint now serves something else than
	// before (false when it already served this configuration — a retried step).
	Created bool `json:"created"`
	Changed bool `json:"changed"`
	// ModelCreated and ConfigCreated say whether this call had to create them.
	ModelCreated  bool   `json:"model_created"`
	ConfigCreated bool   `json:"endpoint_config_created"`
	Strategy      string `json:"strategy"`
	// Steps are the blue/green traffic shifts and bakes, as the release's events show them.
	Steps []Event `json:"steps,omitempty"`
	// Preflight is what each preflight check found (empty when they did not run).
	Preflight    []Check       `json:"preflight,omitempty"`
	Verification *VerifyResult `json:"verification,omitempty"`
	// RolledBack: verification failed and the previous configuration was restored.
	RolledBack bool `json:"rolled_back,omitempty"`
	// Reason classifies a failure (empty on success): rolled back by SageMaker, verification
	// failed, timed out, endpoint failed, or errored in sagedeploy.
	Reason    releases.Reason `json:"reason,omitempty"`
	ReleaseID string          `json:"release_id,omitempty"`
	// ReleaseURL is the release's page on the release server.
	ReleaseURL string `json:"release_url,omitempty"`
	// ReportsDropped counts the release reports the release server never took (they are sent
	// off the deploy's path, retried, and flushed at its end).
	ReportsDropped int           `json:"reports_dropped,omitempty"`
	Duration       time.Duration `json:"duration_ns"`
}

// Deploy makes the environment's endpoint serve a version: it finds or creates the model and the
// endpoint configuration (see CreateModel, CreateEndpointConfig), creates or updates the endpoint,
// and waits until it is InService — then checks that the endpoint serves the requested
// configuration, because SageMaker rolls a failed update back to the previous one silently.
// Another deployment of the same endpoint in progress is waited for (up to LockTimeout); the two
// never interleave. With Verify, the new version must answer as expected.
func (d *Deployer) Deploy(ctx context.Context, req DeployRequest) (DeployResult, error) {
	run := &deployRun{start: d.now(), tr: d.newTracker()}
	err := d.deploy(ctx, run, req)
	// The one exit: every outcome gets its duration, its reason and its report.
	run.res.Duration = d.now().Sub(run.start)
	run.res.Reason = FailureReason(err)
	run.res.Steps = run.tr.trafficSteps()
	run.finish(err)
	run.waitSettled() // recorded beside the verification and the outcome's report, not after them
	run.res.ReportsDropped = run.tr.reportsDropped()
	return run.res, err
}

// deployRun is one Deploy under way: its result so far and what its release reports at the end.
type deployRun struct {
	start time.Time
	tr    *tracker
	res   DeployResult
	// endpointStatus and serving are what the release reports serving afterwards; replaced,
	// when set, serves instead of ours (replaced by another deployment, rolled back): the
	// release reports the endpoint as it is.
	endpointStatus string
	serving        *Version
	// modifiedAt is SageMaker's LastModifiedTime of the endpoint as this deploy last saw it
	// settled; zero when unknown.
	modifiedAt time.Time
	replaced   *configInfo
	// settled is closed once the endpoint's history records the change (nil: nothing pending).
	settled <-chan struct{}
}

// waitSettled waits until the endpoint's history records the change, if it is being recorded.
func (r *deployRun) waitSettled() {
	if r.settled != nil {
		<-r.settled
	}
}

// finish reports the release's outcome (nothing when it was never started).
func (r *deployRun) finish(err error) {
	f := releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: r.endpointStatus,
		InstanceType: r.res.InstanceType, InstanceCount: r.res.InstanceCount, ServingVersion: r.serving.release()}
	if r.replaced != nil {
		f.InstanceType, f.InstanceCount, f.ServingVersion = r.replaced.InstanceType, r.replaced.InstanceCount, r.replaced.Version.release()
	}
	if err != nil {
		f.Status, f.Reason, f.FailureReason = releases.StatusFailed, FailureReason(err), err.Error()
	}
	if !r.modifiedAt.IsZero() {
		f.EndpointModifiedAt = &r.modifiedAt
	}
	r.tr.finish(f)
}

// deploy runs the steps of Deploy: check, prepare, report the release, point the endpoint, verify.
func (d *Deployer) deploy(ctx context.Context, run *deployRun, req DeployRequest) error {
	// Reads started ahead and left unused when the deploy ends early stop with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := d.checkDeploy(req, &run.res)
	if err != nil {
		return err
	}
	if ctx, err = d.checkEnvironment(ctx, req.Model, req.Environment); err != nil {
		return err
	}
	res := &run.res
	// The capacity check's reads do not depend on the reads below: started now, they overlap
	// them. The quotas (Service Quotas, not SageMaker) whenever preflight may run; the other
	// endpoints (one SageMaker call each) only once preflight is sure to run — a new endpoint.
	var caps capacityReads
	if !req.SkipPreflight {
		caps.quotas = d.readQuotas(ctx)
	}
	var found *readAhead[pipelineConfig]
	if usesPipelineConfig(req) {
		found = d.findPipelineConfigAhead(ctx, req)
	}
	snap := req.snapshot
	if snap == nil {
		if snap, err = d.readEndpoint(ctx, res.Endpoint); err != nil {
			return err
		}
	}
	if !req.SkipPreflight && !snap.exists() && gatedHere(ctx, req.Environment) {
		caps.others = d.readOthers(ctx, res.Endpoint)
	}
	cfg, apply, err := d.prepare(ctx, req, snap, found, run.tr.sink)
	if err != nil {
		return err
	}
	caps.quotas.expect(cfg.InstanceType)
	res.EndpointConfigName, res.ModelName, res.Version = cfg.Name, cfg.ModelName, cfg.Version
	res.InstanceType, res.InstanceCount = cfg.InstanceType, cfg.InstanceCount
	if prev, ok := snap.serving(); ok && prev.Name != cfg.Name {
		res.PreviousVersion, res.PreviousConfigName = &prev.Version, prev.Name
	}
	run.serving = res.PreviousVersion
	if err := d.preflightDeploy(ctx, run, req, &cfg, snap, caps); err != nil {
		return err
	}
	gated, err := d.startRelease(ctx, run, req, cfg)
	if err != nil {
		return err
	}
	if apply != nil {
		if err := apply(res); err != nil {
			return err
		}
	}
	if snap.exists() && (gated || res.ModelCreated || res.ConfigCreated) {
		// Time passed (an approval, creating the model on AWS): another deployer may have changed
		// the endpoint since, and the history must record what it served just before ours. (An
		// endpoint that did not exist needs no second look: CreateEndpoint refuses if another
		// deployer created it meanwhile, and acquire then reads it.)
		if snap, err = d.refresh(ctx, res.Endpoint, snap); err != nil {
			return err
		}
	}
	pr := d.pointRequestFor(req, cfg, res)
	if err := d.point(ctx, run, pr, snap); err != nil {
		return err
	}
	if req.Verify != nil {
		return d.verifyDeploy(ctx, run, req, pr)
	}
	return nil
}

// keepInstances fills the instance settings a request leaves open with what the endpoint runs
// now, so that an update never undoes a scaling (SageMaker's defaults apply to new endpoints
// only), and carries the running configuration's other settings over (data capture, async,
// serverless, variant name, KMS key).
func keepInstances(req DeployRequest, snap *endpointSnapshot) DeployRequest {
	cur, ok := snap.serving()
	if !ok {
		return req
	}
	kept := cur.Settings
	if kept.serverlessUnlessAsked(req.InstanceType, req.InstanceCount) {
		req.settings = &kept
		return req
	}
	req.InstanceType = cmp.Or(req.InstanceType, cur.InstanceType)
	if req.InstanceCount == 0 {
		req.InstanceCount = snap.instances()
	}
	req.settings = &kept
	return req
}

// preflightDeploy runs the preflight checks unless the request skips them or the endpoint already
// serves cfg (nothing will change). The checks need the version's details (approval, image,
// artifact), read here once when cfg's version does not have them yet; the release gets them too.
func (d *Deployer) preflightDeploy(ctx context.Context, run *deployRun, req DeployRequest, cfg *configInfo, snap *endpointSnapshot, caps capacityReads) error {
	if cur, ok := snap.serving(); req.SkipPreflight || ok && cur.Name == cfg.Name {
		return nil
	}
	// A package deleted since its model was made has no details left; the checks that need them
	// then say so, as for a model not made from the registry.
	if v, err := d.withDetails(ctx, cfg.Version, cfg.ModelName); err == nil {
		cfg.Version, run.res.Version = v, v
	} else if errors.Is(err, ErrInvalid) {
		return err // a model that only looks like the pipeline's says so in its own words
	} else if !isNotFound(err) {
		return fmt.Errorf("read %s of %s for the preflight checks: %w", cfg.Version.String(), cfg.Version.Model, err)
	}
	checks, err := d.preflight(ctx, preflightInput{cfg: *cfg, snap: snap, strategy: req.Strategy, endpoint: run.res.Endpoint,
		gated: gatedHere(ctx, req.Environment), capacity: caps}, run.tr.sink)
	run.res.Preflight = checks
	return err
}

// checkDeploy validates the request and fills its defaults.
func (d *Deployer) checkDeploy(req DeployRequest, res *DeployResult) (DeployRequest, error) {
	req.kind = cmp.Or(req.kind, releases.KindDeploy)
	req.historyKind = cmp.Or(req.historyKind, string(req.kind))
	*res = DeployResult{Model: req.Model, Environment: req.Environment, Kind: req.kind, Strategy: req.Strategy.String()}
	if err := checkTarget(req.Model, req.Environment); err != nil {
		return req, err
	}
	res.Endpoint = cmp.Or(req.EndpointName, naming.Endpoint(req.Model, req.Environment))
	if !naming.Valid(res.Endpoint) {
		return req, errorf(ErrInvalid, "endpoint name %q is not a valid SageMaker name (letters, digits and dashes, at most 63)", res.Endpoint)
	}
	st, err := ParseStrategy(req.Strategy)
	if err != nil {
		return req, err
	}
	req.Strategy = st
	if err := req.Settings.Check(req.Model, req.Environment, req.InstanceType != "" || req.InstanceCount != 0); err != nil {
		return req, err
	}
	if req.Verify != nil && len(req.Verify.Body) == 0 {
		return req, errorf(ErrInvalid, "verification needs a request body (--verify-body FILE)")
	}
	req.Timeout = cmp.Or(max(req.Timeout, 0), DefaultTimeout)
	req.LockTimeout = cmp.Or(max(req.LockTimeout, 0), req.Timeout)
	return req, nil
}

// startRelease reports the release (and waits at its gate); gated says it waited for an approval.
func (d *Deployer) startRelease(ctx context.Context, run *deployRun, req DeployRequest, cfg configInfo) (gated bool, err error) {
	res := &run.res
	rs := releases.ReleaseStart{
		ID: req.ReleaseID, Environment: req.Environment, Model: req.Model, Kind: req.kind,
		Version: releaseVersion(&res.Version), EndpointName: res.Endpoint, EndpointConfigName: cfg.Name,
		InstanceType: cfg.InstanceType, InstanceCount: cfg.InstanceCount,
		Trigger:        d.trigger(req.Trigger, req.PipelineID, req.ProjectID),
		RestoreEnabled: req.RestoreEnabled, ScaleEnabled: req.ScaleEnabled,
	}
	rs.Version.Description = cmp.Or(req.Description, rs.Version.Description)
	rs.Version.PipelineID, rs.Version.ProjectID = req.PipelineID, req.ProjectID
	if res.PreviousVersion != nil {
		rs.PreviousVersion = res.PreviousVersion.release()
	}
	res.ReleaseID, gated, err = run.tr.start(ctx, rs, run.tr.sink)
	res.ReleaseURL = d.releaseURL(res.ReleaseID)
	return gated, err
}

// pointRequestFor is the change Deploy makes to the endpoint.
func (d *Deployer) pointRequestFor(req DeployRequest, cfg configInfo, res *DeployResult) pointRequest {
	return pointRequest{
		Endpoint: res.Endpoint, Config: cfg,
		DeploymentConfig: req.Strategy.config,
		Tags:             d.baseTags(req.Model, req.Environment, req.PipelineID, req.ProjectID),
		Marker:           deployMarker{ID: uuid.NewString()[:8], Version: cfg.Version.Number, Config: cfg.Name, Release: res.ReleaseID, Started: d.now(), By: req.PipelineID},
		HistoryKind:      req.historyKind,
		Timeout:          req.Timeout + req.Strategy.totalBake(),
		LockTimeout:      req.LockTimeout,
		StepTimeout:      req.Timeout + req.Strategy.Bake,
		Alarms:           req.Strategy.RollbackAlarms,
		SettleBehind:     true, // Deploy waits for it before it rolls back or returns
	}
}

// point makes the endpoint serve the new configuration and records what serves afterwards.
func (d *Deployer) point(ctx context.Context, run *deployRun, pr pointRequest, snap *endpointSnapshot) error {
	res := &run.res
	out, err := d.pointScaled(ctx, pr, snap, run.tr.sink)
	res.Created, res.Changed, res.EndpointStatus = out.Created, out.Changed, out.Status
	run.endpointStatus, run.replaced, run.modifiedAt = out.Status, out.Replaced, out.ModifiedAt
	run.settled = out.settled
	if out.Previous != nil {
		res.PreviousVersion, res.PreviousConfigName = &out.Previous.Version, out.Previous.Name
	}
	run.serving = out.Serving
	if err == nil {
		run.serving = &res.Version
	}
	return err
}

// pointScaled is pointEndpoint with the variant's autoscaling deregistered around the update and
// registered again after it, on the variant that serves then. snap nil: read the endpoint first.
func (d *Deployer) pointScaled(ctx context.Context, pr pointRequest, snap *endpointSnapshot, sink func(Event)) (pointResult, error) {
	if snap == nil {
		var err error
		if snap, err = d.readEndpoint(ctx, pr.Endpoint); err != nil {
			return pointResult{}, err
		}
	}
	var scaling *savedScaling
	if cur, ok := snap.serving(); ok && cur.Name != pr.Config.Name {
		var err error
		if scaling, err = d.suspendScaling(ctx, snap, sink); err != nil {
			return pointResult{}, err
		}
	}
	out, err := d.pointEndpoint(ctx, pr, snap, sink)
	if scaling != nil {
		variant := pr.Config.Variant
		if out.Replaced != nil {
			variant = out.Replaced.Variant
		}
		// Its own context: a deploy that timed out must still give the endpoint its scaling back.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		err = errors.Join(err, d.resumeScaling(rctx, scaling, cmp.Or(variant, DefaultVariant), sink))
		cancel()
	}
	return out, err
}

// verifyDeploy checks the new version's answer; on failure it rolls back when asked.
func (d *Deployer) verifyDeploy(ctx context.Context, run *deployRun, req DeployRequest, pr pointRequest) error {
	res := &run.res
	vr, verr := d.verify(ctx, res.Endpoint, *req.Verify, run.tr.sink)
	res.Verification = &vr
	if verr == nil {
		return nil
	}
	// Rolling back changes the endpoint's tags too: the history of the change comes first.
	run.waitSettled()
	err := d.failedVerification(ctx, req, res, pr, verr, run.tr.sink)
	run.endpointStatus = res.EndpointStatus
	if res.RolledBack {
		// The rollback changed the endpoint again, after what modifiedAt saw.
		run.serving, run.modifiedAt = res.PreviousVersion, time.Time{}
	}
	return err
}

// prepare finds the endpoint configuration to deploy, or plans one (apply, when not nil, creates
// the model and configuration: Deploy calls it only after the release passed its gate).
func (d *Deployer) prepare(ctx context.Context, req DeployRequest, snap *endpointSnapshot, found *readAhead[pipelineConfig], sink func(Event)) (ci configInfo, apply func(*DeployResult) error, err error) {
	if req.EndpointConfigName != "" {
		ci, err := d.givenConfig(ctx, req)
		if err != nil {
			return ci, nil, err
		}
		d.emit(Event{Phase: releases.PhaseEndpointConfig, Message: fmt.Sprintf("deploying the given endpoint configuration %s (%s)", ci.Name, ci.Version.String())}, sink)
		return ci, nil, nil
	}
	if usesPipelineConfig(req) {
		if found == nil {
			found = d.findPipelineConfigAhead(ctx, req)
		}
		pc, err := found.wait(ctx)
		ci, ok := pc.config, pc.found
		if err != nil {
			return ci, nil, err
		}
		if ok {
			d.emit(Event{Phase: releases.PhaseEndpointConfig, Message: fmt.Sprintf("using endpoint configuration %s made earlier in pipeline %s (%s, %s × %d)", ci.Name, req.PipelineID, ci.Version.String(), ci.InstanceType, ci.InstanceCount)}, sink)
			return ci, nil, nil
		}
	}
	req = keepInstances(req, snap)
	plan, err := d.planConfig(ctx, CreateEndpointConfigRequest{
		Model: req.Model, Environment: req.Environment, Version: req.Version, ModelName: req.ModelName,
		InstanceType: req.InstanceType, InstanceCount: req.InstanceCount, PipelineID: req.PipelineID, ProjectID: req.ProjectID,
		Settings: req.Settings, settings: req.settings,
	}, sink)
	if err != nil {
		return configInfo{}, nil, err
	}
	return plan.info(), func(res *DeployResult) error {
		c, err := d.applyConfig(ctx, plan, sink)
		if err != nil {
			return err
		}
		res.ModelCreated, res.ConfigCreated = c.ModelCreated, c.Created
		return nil
	}, nil
}

// usesPipelineConfig: the deploy serves the configuration its pipeline made, when there is one.
func usesPipelineConfig(req DeployRequest) bool {
	return req.EndpointConfigName == "" && req.ModelName == "" && req.PipelineID != "" && !req.Settings.shapesConfig()
}

// pipelineConfig is what findPipelineConfig found.
type pipelineConfig struct {
	config configInfo
	found  bool
}

// findPipelineConfigAhead starts looking for the pipeline's configuration. The search depends
// only on the request (not on the endpoint's state), so Deploy starts it beside its read of the
// endpoint.
func (d *Deployer) findPipelineConfigAhead(ctx context.Context, req DeployRequest) *readAhead[pipelineConfig] {
	return ahead(func() (pipelineConfig, error) {
		ci, ok, err := d.findPipelineConfig(ctx, req.Model, req.Environment, req.PipelineID, req.Version, req.InstanceType, req.InstanceCount)
		return pipelineConfig{ci, ok}, err
	})
}

// givenConfig is the configuration the request names, as the caller described it or read now.
func (d *Deployer) givenConfig(ctx context.Context, req DeployRequest) (configInfo, error) {
	if req.config != nil && req.config.Name == req.EndpointConfigName {
		return *req.config, nil
	}
	ci, err := d.describeConfig(ctx, req.EndpointConfigName)
	if isNotFound(err) {
		return ci, errorf(ErrInvalid, "endpoint configuration %s does not exist (ENDPOINT_CONFIGURATION_NAME / --endpoint-config-name): create it with `sagedeploy create-endpoint-config` or leave it empty", req.EndpointConfigName)
	}
	return ci, err
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (c *configInfo) versionString() string {
	if c == nil {
		return "unknown version"
	}
	return c.Version.String()
}
