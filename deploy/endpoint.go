package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
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
	PipelineID    string
	ProjectID     string
	// Description is shown on the release (the orb's MODEL_DESC).
	Description string
	Strategy    Strategy
	// Verify, when set, invokes the endpoint once it serves the new version.
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

	kind        releases.Kind // deploy unless Promote or Rollback set it
	historyKind string
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
	ModelCreated  bool          `json:"model_created"`
	ConfigCreated bool          `json:"endpoint_config_created"`
	Strategy      string        `json:"strategy"`
	Verification  *VerifyResult `json:"verification,omitempty"`
	// RolledBack: verification failed and the previous configuration was restored.
	RolledBack bool          `json:"rolled_back,omitempty"`
	ReleaseID  string        `json:"release_id,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// Deploy makes the environment's endpoint serve a version: it finds or creates the model and the
// endpoint configuration (see CreateModel, CreateEndpointConfig), creates or updates the endpoint,
// and waits until it is InService — then checks that the endpoint serves the requested
// configuration, because SageMaker rolls a failed update back to the previous one silently.
// Another deployment of the same endpoint in progress is waited for (up to LockTimeout); the two
// never interleave. With Verify, the new version must answer as expected.
func (d *Deployer) Deploy(ctx context.Context, req DeployRequest) (DeployResult, error) {
	start := d.now()
	if req.kind == "" {
		req.kind = releases.KindDeploy
	}
	if req.historyKind == "" {
		req.historyKind = string(req.kind)
	}
	res := DeployResult{Model: req.Model, Environment: req.Environment, Kind: req.kind, Strategy: req.Strategy.String()}
	if err := checkTarget(req.Model, req.Environment); err != nil {
		return res, err
	}
	res.Endpoint = req.EndpointName
	if res.Endpoint == "" {
		res.Endpoint = naming.Endpoint(req.Model, req.Environment)
	} else if !naming.Valid(res.Endpoint) {
		return res, errorf(ErrInvalid, "endpoint name %q is not a valid SageMaker name (letters, digits and dashes, at most 63)", res.Endpoint)
	}
	dc, err := req.Strategy.DeploymentConfig()
	if err != nil {
		return res, err
	}
	var expect Expectation
	if req.Verify != nil {
		if expect, err = ParseExpectation(req.Verify.Expect); err != nil {
			return res, err
		}
		if len(req.Verify.Body) == 0 {
			return res, errorf(ErrInvalid, "verification needs a request body (--verify-body FILE)")
		}
	}
	if req.Timeout <= 0 {
		req.Timeout = DefaultTimeout
	}
	if req.LockTimeout <= 0 {
		req.LockTimeout = req.Timeout
	}
	tr := d.newTracker()
	sink := tr.sink

	cfg, apply, err := d.prepare(ctx, req, sink)
	if err != nil {
		return res, err
	}
	res.EndpointConfigName, res.ModelName, res.Version = cfg.Name, cfg.ModelName, cfg.Version
	res.InstanceType, res.InstanceCount = cfg.InstanceType, cfg.InstanceCount

	// What serves now, for the release's "previous version".
	var current configInfo
	if cur, err := d.describeEndpoint(ctx, res.Endpoint); err != nil {
		return res, err
	} else if cur != nil && cur.EndpointStatus == types.EndpointStatusInService && aws.ToString(cur.EndpointConfigName) != cfg.Name {
		if prev, err := d.describeConfig(ctx, aws.ToString(cur.EndpointConfigName)); err == nil {
			res.PreviousVersion, res.PreviousConfigName = &prev.Version, prev.Name
			current = prev
		}
	}
	desc := req.Description
	rs := releases.ReleaseStart{
		ID: req.ReleaseID, Environment: req.Environment, Model: req.Model, Kind: req.kind,
		Version: releaseVersion(&res.Version), EndpointName: res.Endpoint, EndpointConfigName: cfg.Name,
		InstanceType: cfg.InstanceType, InstanceCount: cfg.InstanceCount,
		Trigger:        trigger(req.Trigger, req.PipelineID, req.ProjectID),
		RestoreEnabled: req.RestoreEnabled, ScaleEnabled: req.ScaleEnabled,
	}
	if desc != "" {
		rs.Version.Description = desc
	}
	rs.Version.PipelineID, rs.Version.ProjectID = req.PipelineID, req.ProjectID
	if res.PreviousVersion != nil {
		rs.PreviousVersion = res.PreviousVersion.release()
	}
	id, err := tr.start(ctx, rs, sink)
	res.ReleaseID = id
	if err != nil {
		return res, err
	}
	// replaced is what serves instead of ours when ours does not in the end (replaced by another
	// deployment, rolled back): the release reports the endpoint as it is afterwards.
	var replaced *configInfo
	finish := func(err error, endpointStatus string, serving *Version) {
		f := releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: endpointStatus,
			InstanceType: res.InstanceType, InstanceCount: res.InstanceCount, ServingVersion: serving.release()}
		if replaced != nil {
			f.InstanceType, f.InstanceCount, f.ServingVersion = replaced.InstanceType, replaced.InstanceCount, replaced.Version.release()
		}
		if err != nil {
			f.Status, f.FailureReason = releases.StatusFailed, err.Error()
		}
		tr.finish(f)
	}

	if apply != nil {
		if err := apply(&res); err != nil {
			finish(err, "", res.PreviousVersion)
			res.Duration = d.now().Sub(start)
			return res, err
		}
	}

	pr := pointRequest{
		Endpoint: res.Endpoint, Config: cfg, DeploymentConfig: dc,
		Tags:        baseTags(req.Model, req.Environment, req.PipelineID, req.ProjectID),
		Marker:      deployMarker{ID: uuid.NewString()[:8], Version: cfg.Version.Number, Config: cfg.Name, Release: id, Started: d.now(), By: req.PipelineID},
		HistoryKind: req.historyKind,
		Timeout:     req.Timeout + req.Strategy.totalBake(),
		LockTimeout: req.LockTimeout,
		Current:     current,
	}
	out, err := d.pointEndpoint(ctx, pr, sink)
	res.Created, res.Changed = out.Created, out.Changed
	replaced = out.Replaced
	if out.Previous != nil {
		res.PreviousVersion, res.PreviousConfigName = &out.Previous.Version, out.Previous.Name
	}
	if err != nil {
		res.EndpointStatus = out.Status
		finish(err, out.Status, out.Serving)
		res.Duration = d.now().Sub(start)
		return res, err
	}
	res.EndpointStatus = out.Status

	if req.Verify != nil {
		vr, verr := d.verify(ctx, res.Endpoint, *req.Verify, expect, sink)
		res.Verification = &vr
		if verr != nil {
			err := d.failedVerification(ctx, req, &res, pr, verr, sink)
			serving := &res.Version
			if res.RolledBack {
				serving = res.PreviousVersion
			}
			finish(err, res.EndpointStatus, serving)
			res.Duration = d.now().Sub(start)
			return res, err
		}
	}
	finish(nil, res.EndpointStatus, &res.Version)
	res.Duration = d.now().Sub(start)
	return res, nil
}

// prepare finds the endpoint configuration to deploy, or plans one (apply, when not nil, creates
// the model and configuration: Deploy calls it only after the release passed its gate).
func (d *Deployer) prepare(ctx context.Context, req DeployRequest, sink func(Event)) (ci configInfo, apply func(*DeployResult) error, err error) {
	if req.EndpointConfigName != "" {
		ci, err := d.describeConfig(ctx, req.EndpointConfigName)
		if err != nil {
			if isNotFound(err) {
				return ci, nil, errorf(ErrInvalid, "endpoint configuration %s does not exist (ENDPOINT_CONFIGURATION_NAME / --endpoint-config-name): create it with `sagedeploy create-endpoint-config` or leave it empty", req.EndpointConfigName)
			}
			return ci, nil, err
		}
		d.emit(Event{Phase: "endpoint-config", Message: fmt.Sprintf("deploying the given endpoint configuration %s (%s)", ci.Name, ci.Version.String())}, sink)
		return ci, nil, nil
	}
	if req.ModelName == "" && req.PipelineID != "" {
		ci, ok, err := d.findPipelineConfig(ctx, req.Model, req.Environment, req.PipelineID, req.Version, req.InstanceType, req.InstanceCount)
		if err != nil {
			return ci, nil, err
		}
		if ok {
			d.emit(Event{Phase: "endpoint-config", Message: fmt.Sprintf("using endpoint configuration %s made earlier in pipeline %s (%s, %s × %d)", ci.Name, req.PipelineID, ci.Version.String(), ci.InstanceType, ci.InstanceCount)}, sink)
			return ci, nil, nil
		}
	}
	plan, err := d.planConfig(ctx, CreateEndpointConfigRequest{
		Model: req.Model, Environment: req.Environment, Version: req.Version, ModelName: req.ModelName,
		InstanceType: req.InstanceType, InstanceCount: req.InstanceCount, PipelineID: req.PipelineID, ProjectID: req.ProjectID,
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

// pointRequest is one change of the configuration an endpoint serves.
type pointRequest struct {
	Endpoint         string
	Config           configInfo
	DeploymentConfig *types.DeploymentConfig
	Tags             map[string]string // set on the endpoint (created or updated)
	Marker           deployMarker
	HistoryKind      string
	Timeout          time.Duration
	LockTimeout      time.Duration
	// Current is what the caller saw serving, to save reading it again (zero when unknown).
	Current configInfo
}

type pointResult struct {
	Created  bool
	Changed  bool
	Status   string
	Previous *configInfo // what served before, when something did
	Serving  *Version    // what serves afterwards, when known
	// Replaced is what serves instead of ours when ours does not serve in the end — replaced by
	// another deployment, or rolled back by SageMaker (InstanceCount as the endpoint runs it).
	Replaced *configInfo
}

// pointEndpoint makes the endpoint serve p.Config and waits for the outcome.
func (d *Deployer) pointEndpoint(ctx context.Context, p pointRequest, sink func(Event)) (pointResult, error) {
	var res pointResult
	start := d.now()
	lockDeadline := start.Add(p.LockTimeout)
	var arn string
	startSeq := 0
	for {
		desc, err := d.describeEndpoint(ctx, p.Endpoint)
		if err != nil {
			return res, err
		}
		if desc == nil {
			d.emit(Event{Phase: "endpoint", Endpoint: p.Endpoint, Message: fmt.Sprintf("creating endpoint %s with %s (%s)", p.Endpoint, p.Config.Name, p.Config.Version.String())}, sink)
			tags := copyTags(p.Tags)
			tags[TagDeploy] = p.Marker.tagValue()
			out, err := d.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{
				EndpointName:       aws.String(p.Endpoint),
				EndpointConfigName: aws.String(p.Config.Name),
				Tags:               sdkTags(tags),
			})
			if err != nil {
				if isAlreadyExists(err) {
					continue // another deployer created it a moment ago: wait for it like for any other
				}
				return res, fmt.Errorf("create endpoint %s: %w", p.Endpoint, err)
			}
			arn = aws.ToString(out.EndpointArn)
			res.Created, res.Changed = true, true
			break
		}
		arn = aws.ToString(desc.EndpointArn)
		st := desc.EndpointStatus
		switch {
		case st == types.EndpointStatusInService:
			current := aws.ToString(desc.EndpointConfigName)
			tags, err := d.listTags(ctx, arn)
			if err != nil {
				return res, err
			}
			hist := parseHistory(tags)
			if n := len(hist); n > 0 {
				startSeq = hist[n-1].Seq
			}
			prev, perr := p.Current, error(nil)
			if prev.Name != current {
				prev, perr = d.describeConfig(ctx, current)
			}
			if perr == nil {
				res.Previous = &prev
			}
			observed := HistoryEntry{Time: aws.ToTime(desc.LastModifiedTime), EndpointConfigName: current, Kind: "observed"}
			if perr == nil {
				observed.Version = prev.Version.Number
			}
			if err := d.appendHistory(ctx, arn, observed, tags); err != nil {
				return res, err
			}
			if current == p.Config.Name {
				res.Status, res.Previous = string(st), nil
				res.Serving = &p.Config.Version
				if tags[TagDeploy] != "" {
					// InService with this configuration: the deployment marked here is over — done, or
					// killed before it cleared its marker (the attempt this one retries).
					if err := d.deleteTags(ctx, arn, TagDeploy); err != nil {
						d.log.Warn("could not clear a finished deployment's marker", "endpoint", p.Endpoint, "error", err)
					}
				}
				d.emit(Event{Phase: "endpoint", Endpoint: p.Endpoint, EndpointStatus: string(st), Message: fmt.Sprintf("endpoint %s already serves %s (%s); nothing to change", p.Endpoint, current, p.Config.Version.String())}, sink)
				return res, nil
			}
			d.emit(Event{Phase: "endpoint", Endpoint: p.Endpoint, Message: fmt.Sprintf("updating endpoint %s from %s (%s) to %s (%s)", p.Endpoint, current, res.Previous.versionString(), p.Config.Name, p.Config.Version.String())}, sink)
			_, err = d.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{
				EndpointName:       aws.String(p.Endpoint),
				EndpointConfigName: aws.String(p.Config.Name),
				DeploymentConfig:   p.DeploymentConfig,
			})
			if err != nil {
				if isInProgress(err) {
					if err := d.waitForOther(ctx, p.Endpoint, arn, lockDeadline, sink); err != nil {
						return res, err
					}
					continue
				}
				return res, fmt.Errorf("update endpoint %s to %s: %w", p.Endpoint, p.Config.Name, err)
			}
			res.Changed = true
			tags = copyTags(p.Tags)
			tags[TagDeploy] = p.Marker.tagValue()
			if err := d.addTags(ctx, arn, tags); err != nil {
				d.log.Warn("could not mark the deployment on the endpoint", "endpoint", p.Endpoint, "error", err)
			}
		case pending(st):
			if err := d.waitForOther(ctx, p.Endpoint, arn, lockDeadline, sink); err != nil {
				return res, err
			}
			continue
		case st == types.EndpointStatusFailed:
			d.emit(Event{Phase: "endpoint", Endpoint: p.Endpoint, EndpointStatus: string(st), Message: fmt.Sprintf("endpoint %s is Failed (%s) and serves nothing; deleting it to create it again", p.Endpoint, orDefault(aws.ToString(desc.FailureReason), "no reason given"))}, sink)
			if _, err := d.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(p.Endpoint)}); err != nil && !isNotFound(err) {
				return res, fmt.Errorf("delete failed endpoint %s: %w", p.Endpoint, err)
			}
			if _, err := d.waitSettled(ctx, p.Endpoint, lockDeadline, "endpoint", sink); err != nil {
				return res, err
			}
			continue
		default:
			return res, fmt.Errorf("endpoint %s is %s (%s); sagedeploy cannot change it from there: check it in the SageMaker console", p.Endpoint, st, aws.ToString(desc.FailureReason))
		}
		break
	}

	final, err := d.waitSettled(ctx, p.Endpoint, start.Add(p.Timeout), "wait", sink)
	if err != nil {
		if final != nil {
			res.Status = string(final.EndpointStatus)
		}
		if errors.Is(err, ErrTimeout) {
			return res, errorf(ErrTimeout, "%v while deploying %s (%s): it may still finish — check with `sagedeploy status`; raise --timeout for slow instances", err, p.Config.Name, p.Config.Version.String())
		}
		return res, err
	}
	if final == nil {
		return res, fmt.Errorf("endpoint %s was deleted while deploying %s", p.Endpoint, p.Config.Name)
	}
	res.Status = string(final.EndpointStatus)
	serving := aws.ToString(final.EndpointConfigName)
	switch {
	case final.EndpointStatus == types.EndpointStatusInService && serving == p.Config.Name:
		res.Serving = &p.Config.Version
		d.emit(Event{Phase: "wait", Endpoint: p.Endpoint, EndpointStatus: res.Status, Message: fmt.Sprintf("endpoint %s is InService with %s (%s) after %s", p.Endpoint, p.Config.Name, p.Config.Version.String(), round(d.now().Sub(start)))}, sink)
		d.settle(ctx, arn, p, startSeq, final)
		return res, nil
	case final.EndpointStatus == types.EndpointStatusInService:
		// Either SageMaker rolled our update back — to the configuration we replaced, saying why —
		// or another deployment replaced ours: one that recorded ours in the history before
		// updating, or one that saw the same configuration serving as we did and updated right
		// after us (where updates take milliseconds, both pass the "InService" check first).
		// Either way the release reports what serves instead, on its instances.
		now, nerr := d.describeConfig(ctx, serving)
		if nerr == nil {
			now.InstanceCount = currentInstances(final, now.InstanceCount)
			res.Replaced, res.Serving = &now, &now.Version
		}
		replaced := res.Previous != nil && serving != res.Previous.Name && aws.ToString(final.FailureReason) == ""
		if tags, terr := d.listTags(ctx, arn); terr == nil {
			for _, h := range parseHistory(tags) {
				if h.Seq > startSeq && h.EndpointConfigName == p.Config.Name {
					replaced = true
				}
			}
		}
		if replaced {
			d.clearMarker(ctx, arn, p.Marker.ID)
			d.emit(Event{Phase: "wait", Endpoint: p.Endpoint, EndpointStatus: res.Status, Message: fmt.Sprintf("endpoint %s served %s (%s); a later deployment has replaced it since (now %s)", p.Endpoint, p.Config.Name, p.Config.Version.String(), serving)}, sink)
			return res, nil
		}
		d.clearMarker(ctx, arn, p.Marker.ID)
		reason := aws.ToString(final.FailureReason)
		if reason == "" {
			reason = "rolled back by SageMaker (no failure reason given)"
		}
		return res, errorf(ErrRolledBack, "deploying %s of %s to %s failed and SageMaker rolled the endpoint back: %s. %s is still serving (endpoint configuration %s)",
			p.Config.Version.String(), p.Config.Version.Model, p.Endpoint, reason, capitalize(now.Version.String()), serving)
	default:
		d.clearMarker(ctx, arn, p.Marker.ID)
		reason := orDefault(aws.ToString(final.FailureReason), "no failure reason given")
		msg := fmt.Sprintf("deploying %s of %s to %s failed: endpoint is %s: %s", p.Config.Version.String(), p.Config.Version.Model, p.Endpoint, final.EndpointStatus, reason)
		if res.Created && final.EndpointStatus == types.EndpointStatusFailed {
			// A failed new endpoint serves nothing and blocks the next attempt; remove it.
			if _, err := d.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(p.Endpoint)}); err == nil {
				d.emit(Event{Phase: "endpoint", Endpoint: p.Endpoint, Message: fmt.Sprintf("deleting the failed endpoint %s, which serves nothing", p.Endpoint)}, sink)
				gone, werr := d.waitSettled(ctx, p.Endpoint, d.now().Add(2*time.Minute), "endpoint", sink)
				if werr == nil && gone == nil {
					msg += "; nothing was serving, and the failed endpoint was deleted so that the next deploy starts clean"
				} else {
					msg += "; nothing was serving, and the failed endpoint is being deleted so that the next deploy starts clean"
				}
			}
		} else if res.Previous != nil {
			msg += fmt.Sprintf("; it served %s before", res.Previous.Version.String())
		}
		return res, errorf(ErrDeployFailed, "%s", msg)
	}
}

// settle records a successful change: history entry (unless a later deployment already recorded
// ours) and removal of our marker.
func (d *Deployer) settle(ctx context.Context, arn string, p pointRequest, startSeq int, final *sagemaker.DescribeEndpointOutput) {
	tags, err := d.listTags(ctx, arn)
	if err != nil {
		d.log.Warn("could not read endpoint tags to record the history", "endpoint", p.Endpoint, "error", err)
		return
	}
	recorded := false
	for _, h := range parseHistory(tags) {
		if h.Seq > startSeq && h.EndpointConfigName == p.Config.Name {
			recorded = true
		}
	}
	if !recorded {
		e := HistoryEntry{Time: aws.ToTime(final.LastModifiedTime), Version: p.Config.Version.Number, EndpointConfigName: p.Config.Name, Kind: p.HistoryKind}
		if err := d.appendHistory(ctx, arn, e, tags); err != nil {
			d.log.Warn("could not record the endpoint's history", "endpoint", p.Endpoint, "error", err)
		}
	}
	if m, ok := parseMarker(tags[TagDeploy]); ok && m.ID == p.Marker.ID {
		if err := d.deleteTags(ctx, arn, TagDeploy); err != nil {
			d.log.Warn("could not clear the deployment marker", "endpoint", p.Endpoint, "error", err)
		}
	}
}

// clearMarker removes our deployment marker, if it is still ours.
func (d *Deployer) clearMarker(ctx context.Context, arn, id string) {
	tags, err := d.listTags(ctx, arn)
	if err != nil {
		return
	}
	if m, ok := parseMarker(tags[TagDeploy]); ok && m.ID == id {
		_ = d.deleteTags(ctx, arn, TagDeploy)
	}
}

// waitForOther waits, up to deadline, for the change under way on the endpoint to finish,
// saying whose it is.
func (d *Deployer) waitForOther(ctx context.Context, endpoint, arn string, deadline time.Time, sink func(Event)) error {
	who := "a change"
	if tags, err := d.listTags(ctx, arn); err == nil {
		if m, ok := parseMarker(tags[TagDeploy]); ok {
			who = m.describe()
		}
	}
	d.emit(Event{Phase: "endpoint", Endpoint: endpoint, Message: fmt.Sprintf("endpoint %s is busy with %s; waiting for it to finish", endpoint, who)}, sink)
	began := d.now()
	desc, err := d.waitSettled(ctx, endpoint, deadline, "endpoint", sink)
	if errors.Is(err, ErrTimeout) {
		st := "busy"
		if desc != nil {
			st = string(desc.EndpointStatus)
		}
		return errorf(ErrBusy, "endpoint %s is still %s with %s after waiting %s; nothing was changed — retry when it is done (see `sagedeploy status`), or raise --lock-timeout", endpoint, st, who, round(d.now().Sub(began)))
	}
	return err
}

func copyTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
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
