package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/releases"
)

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
	// StepTimeout, when set, is how long each blue/green stage may take (see waitSpec.step).
	StepTimeout time.Duration
	// Alarms are the rollback alarms a bake watches, named in its events.
	Alarms []string
	// SettleBehind records the history of a successful change while the caller goes on (verifies,
	// reports); the caller waits for pointResult.settled before it changes the endpoint again
	// or returns.
	SettleBehind bool
}

type pointResult struct {
	Outcome  outcome
	Created  bool
	Changed  bool
	Status   string
	Previous *configInfo // what served before, when something did
	Serving  *Version    // what serves afterwards, when known
	// Replaced is what serves instead of ours when ours does not serve in the end — replaced by
	// another deployment, or rolled back by SageMaker (InstanceCount as the endpoint runs it).
	Replaced *configInfo
	// ModifiedAt is SageMaker's LastModifiedTime of the endpoint in its settled state.
	ModifiedAt time.Time
	// settled is closed once the history is recorded (SettleBehind); nil when it was before
	// the result.
	settled <-chan struct{}
}

// pointEndpoint makes the endpoint serve p.Config and waits for the outcome. snap is the endpoint
// as the caller just read it (nil: read it first).
func (d *Deployer) pointEndpoint(ctx context.Context, p pointRequest, snap *endpointSnapshot, sink func(Event)) (pointResult, error) {
	start := d.now()
	acq, err := d.acquire(ctx, p, snap, sink)
	res := pointResult{Created: acq.created, Changed: acq.changed, Previous: acq.previous}
	if err != nil {
		return res, err
	}
	if acq.unchanged {
		res.Outcome, res.Status, res.Previous, res.Serving = outcomeServed, string(types.EndpointStatusInService), nil, &p.Config.Version
		return res, nil
	}
	final, err := d.await(ctx, p, acq, start, sink)
	if final != nil {
		res.Status = string(final.EndpointStatus)
	}
	if err != nil {
		return res, err
	}
	return d.conclude(ctx, p, acq, final, start, res, sink)
}

// acquired is the endpoint once this deployer's change is under way, or found already made.
type acquired struct {
	arn       string
	created   bool
	changed   bool
	unchanged bool        // it already served the configuration: nothing to wait for
	startSeq  int         // the newest history entry before the change
	previous  *configInfo // what served before, when something did and it could be read
}

// acquire starts the change: it creates the endpoint, or updates it, waiting first for another
// deployer's change to finish and deleting an endpoint that Failed, whichever the endpoint needs.
func (d *Deployer) acquire(ctx context.Context, p pointRequest, snap *endpointSnapshot, sink func(Event)) (acquired, error) {
	lockDeadline := d.now().Add(p.LockTimeout)
	for {
		if snap == nil {
			var err error
			if snap, err = d.readEndpoint(ctx, p.Endpoint); err != nil {
				return acquired{}, err
			}
		}
		acq, next, err := d.acquireStep(ctx, p, snap, lockDeadline, sink)
		if err != nil || next == nil && acq.arn != "" {
			return acq, err
		}
		snap = next // nil: read the endpoint again
	}
}

// acquireStep acts on one snapshot of the endpoint: it starts the change (acquired has an ARN),
// or returns the snapshot to act on next (nil when it must be read again).
func (d *Deployer) acquireStep(ctx context.Context, p pointRequest, snap *endpointSnapshot, lockDeadline time.Time, sink func(Event)) (acquired, *endpointSnapshot, error) {
	switch {
	case !snap.exists():
		acq, err := d.createEndpoint(ctx, p, sink)
		return acq, nil, err
	case snap.status() == types.EndpointStatusInService:
		return d.updateEndpoint(ctx, p, snap, lockDeadline, sink)
	case pending(snap.status()):
		next, err := d.waitForOther(ctx, p.Endpoint, snap, lockDeadline, sink)
		return acquired{}, next, err
	case snap.status() == types.EndpointStatusFailed:
		return acquired{}, nil, d.deleteFailed(ctx, p, snap, lockDeadline, sink)
	}
	return acquired{}, nil, fmt.Errorf("endpoint %s is %s (%s); sagedeploy cannot change it from there: check it in the SageMaker console", p.Endpoint, snap.status(), snap.failureReason())
}

// createEndpoint creates the endpoint with our configuration and marker. When another deployer
// created it a moment ago, acquired has no ARN: wait for it like for any other.
func (d *Deployer) createEndpoint(ctx context.Context, p pointRequest, sink func(Event)) (acquired, error) {
	d.emit(Event{Phase: releases.PhaseEndpoint, Endpoint: p.Endpoint, Message: fmt.Sprintf("creating endpoint %s with %s (%s)", p.Endpoint, p.Config.Name, p.Config.Version.String())}, sink)
	tags := maps.Clone(p.Tags)
	tags[TagDeploy] = p.Marker.tagValue()
	out, err := d.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{
		EndpointName:       aws.String(p.Endpoint),
		EndpointConfigName: aws.String(p.Config.Name),
		Tags:               sdkTags(tags),
	})
	switch {
	case isAlreadyExists(err):
		return acquired{}, nil
	case isQuotaExceeded(err):
		return acquired{}, quotaRefusal("create endpoint "+p.Endpoint, p.Config, err)
	case err != nil:
		return acquired{}, fmt.Errorf("create endpoint %s: %w", p.Endpoint, err)
	}
	return acquired{arn: aws.ToString(out.EndpointArn), created: true, changed: true}, nil
}

// isQuotaExceeded reports SageMaker refusing a fleet past the account's endpoint quota.
func isQuotaExceeded(err error) bool {
	code, msg := apiError(err)
	return code == "ResourceLimitExceeded" && strings.Contains(msg, "for endpoint usage")
}

// quotaRefusal says, in the deployer's words, that SageMaker had no room for the fleet: the
// capacity preflight counts only the endpoint's own fleet outside an approval gate, and
// SageMaker counts the account's other endpoints.
func quotaRefusal(what string, cfg configInfo, err error) error {
	_, msg := apiError(err)
	return errorf(ErrDeployFailed, "SageMaker refused to %s with %s (%d × %s): %s Nothing was changed: ask AWS for a higher \"%s for endpoint usage\" quota, scale other endpoints down, use --rolling, or another --instance-type",
		what, cfg.Name, cfg.InstanceCount, cfg.InstanceType, msg, cfg.InstanceType)
}

// updateEndpoint points an InService endpoint at our configuration, first recording in its
// history what it serves now; it changes nothing when that already is ours.
func (d *Deployer) updateEndpoint(ctx context.Context, p pointRequest, snap *endpointSnapshot, lockDeadline time.Time, sink func(Event)) (acquired, *endpointSnapshot, error) {
	acq := acquired{arn: snap.arn(), startSeq: snap.lastSeq()}
	current := snap.configName()
	observed := HistoryEntry{Time: snap.modified(), EndpointConfigName: current, Kind: "observed"}
	if prev, ok := snap.serving(); ok {
		acq.previous, observed.Version = &prev, prev.Version.Number
	}
	if err := d.appendHistory(ctx, acq.arn, observed, snap.tags); err != nil {
		return acq, nil, err
	}
	if current == p.Config.Name {
		d.alreadyServes(ctx, p, snap, sink)
		acq.unchanged = true
		return acq, nil, nil
	}
	d.emit(Event{Phase: releases.PhaseEndpoint, Endpoint: p.Endpoint, Message: fmt.Sprintf("updating endpoint %s from %s (%s) to %s (%s)", p.Endpoint, current, acq.previous.versionString(), p.Config.Name, p.Config.Version.String())}, sink)
	_, err := d.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{
		EndpointName:       aws.String(p.Endpoint),
		EndpointConfigName: aws.String(p.Config.Name),
		DeploymentConfig:   p.DeploymentConfig,
	})
	switch {
	case isInProgress(err):
		next, err := d.waitForOther(ctx, p.Endpoint, snap, lockDeadline, sink)
		return acquired{}, next, err
	case isQuotaExceeded(err):
		return acq, nil, quotaRefusal("update endpoint "+p.Endpoint, p.Config, err)
	case err != nil:
		return acq, nil, fmt.Errorf("update endpoint %s to %s: %w", p.Endpoint, p.Config.Name, err)
	}
	acq.changed = true
	tags := maps.Clone(p.Tags)
	tags[TagDeploy] = p.Marker.tagValue()
	if err := d.addTags(ctx, acq.arn, tags); err != nil {
		d.log.Warn("could not mark the deployment on the endpoint", "endpoint", p.Endpoint, "error", err)
	}
	return acq, nil, nil
}

// alreadyServes ends a deployment the endpoint already serves — done, or killed before it
// cleared its marker (the attempt this one retries).
func (d *Deployer) alreadyServes(ctx context.Context, p pointRequest, snap *endpointSnapshot, sink func(Event)) {
	if snap.tags[TagDeploy] != "" {
		if err := d.addTags(ctx, snap.arn(), map[string]string{TagDeploy: ""}); err != nil {
			d.log.Warn("could not clear a finished deployment's marker", "endpoint", p.Endpoint, "error", err)
		}
	}
	d.emit(Event{Phase: releases.PhaseEndpoint, Endpoint: p.Endpoint, EndpointStatus: string(snap.status()), Message: fmt.Sprintf("endpoint %s already serves %s (%s); nothing to change", p.Endpoint, p.Config.Name, p.Config.Version.String())}, sink)
}

// deleteFailed deletes an endpoint that Failed (it serves nothing) so that it can be created again.
func (d *Deployer) deleteFailed(ctx context.Context, p pointRequest, snap *endpointSnapshot, lockDeadline time.Time, sink func(Event)) error {
	d.emit(Event{Phase: releases.PhaseEndpoint, Endpoint: p.Endpoint, EndpointStatus: string(snap.status()), Message: fmt.Sprintf("endpoint %s is Failed (%s) and serves nothing; deleting it to create it again", p.Endpoint, cmp.Or(snap.failureReason(), "no reason given"))}, sink)
	if _, err := d.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(p.Endpoint)}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete failed endpoint %s: %w", p.Endpoint, err)
	}
	_, err := d.waitSettled(ctx, p.Endpoint, lockDeadline, releases.PhaseEndpoint, sink)
	return err
}

// waitForOther waits, up to deadline, for the change under way on the endpoint to finish, saying
// whose it is (from the marker in snap's tags), and returns the endpoint as it is then.
func (d *Deployer) waitForOther(ctx context.Context, endpoint string, snap *endpointSnapshot, deadline time.Time, sink func(Event)) (*endpointSnapshot, error) {
	who := "a change"
	if m, ok := parseMarker(snap.tags[TagDeploy]); ok {
		who = m.describe()
	}
	d.emit(Event{Phase: releases.PhaseEndpoint, Endpoint: endpoint, Message: fmt.Sprintf("endpoint %s is busy with %s; waiting for it to finish", endpoint, who)}, sink)
	began := d.now()
	desc, err := d.waitSettled(ctx, endpoint, deadline, releases.PhaseEndpoint, sink)
	if errors.Is(err, ErrTimeout) {
		st := "busy"
		if desc != nil {
			st = string(desc.EndpointStatus)
		}
		return nil, errorf(ErrBusy, "endpoint %s is still %s with %s after waiting %s; nothing was changed — retry when it is done (see `sagedeploy status`), or raise --lock-timeout", endpoint, st, who, round(d.now().Sub(began)))
	}
	if err != nil {
		return nil, err
	}
	return d.snapshotOf(ctx, desc)
}
