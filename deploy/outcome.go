package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/releases"
)

// outcome is how a change of an endpoint's configuration ended.
type outcome int

const (
	outcomeServed     outcome = iota // the endpoint serves our configuration
	outcomeReplaced                  // ours served, and another deployment replaced it since
	outcomeRolledBack                // SageMaker rolled our update back
	outcomeFailed                    // the endpoint ended neither InService nor rolled back
)

// await waits for the change acq started to settle, up to p.Timeout after start.
func (d *Deployer) await(ctx context.Context, p pointRequest, acq acquired, start time.Time, sink func(Event)) (*sagemaker.DescribeEndpointOutput, error) {
	started := types.EndpointStatusUpdating
	if acq.created {
		started = types.EndpointStatusCreating
	}
	final, err := d.watch(ctx, waitSpec{name: p.Endpoint, deadline: start.Add(p.Timeout), phase: releases.PhaseWait,
		step: p.StepTimeout, alarms: p.Alarms, started: started}, sink)
	switch {
	case errors.Is(err, ErrTimeout):
		return final, errorf(ErrTimeout, "%v while deploying %s (%s): it may still finish — check with `sagedeploy status`; raise --timeout for slow instances", err, p.Config.Name, p.Config.Version.String())
	case err != nil:
		return final, err
	case final == nil:
		return nil, fmt.Errorf("endpoint %s was deleted while deploying %s", p.Endpoint, p.Config.Name)
	}
	return final, nil
}

// verdict is the classified end of a change, with what was read to classify it.
type verdict struct {
	outcome outcome
	now     configInfo        // what serves instead of ours (replaced, rolled back), when known
	nowOK   bool              // now could be read
	tags    map[string]string // the endpoint's tags after the change (nil when served or failed)
}

// classify tells apart the ends of a change from the endpoint's final description. InService
// with another configuration is either SageMaker rolling our update back — to the configuration we
// replaced, saying why — or another deployment replacing ours: one that recorded ours in the
// history before updating, or one that saw the same configuration serving as we did and updated
// right after us (where updates take milliseconds, both pass the "InService" check first).
func (d *Deployer) classify(ctx context.Context, p pointRequest, acq acquired, final *sagemaker.DescribeEndpointOutput) verdict {
	serving := aws.ToString(final.EndpointConfigName)
	switch {
	case final.EndpointStatus != types.EndpointStatusInService:
		return verdict{outcome: outcomeFailed}
	case serving == p.Config.Name:
		return verdict{outcome: outcomeServed}
	}
	v := verdict{outcome: outcomeRolledBack}
	if now, err := d.describeConfig(ctx, serving); err == nil {
		now.InstanceCount = currentInstances(final, now.InstanceCount)
		v.now, v.nowOK = now, true
	}
	if acq.previous != nil && serving != acq.previous.Name && aws.ToString(final.FailureReason) == "" {
		v.outcome = outcomeReplaced
	}
	if tags, err := d.listTags(ctx, acq.arn); err == nil {
		v.tags = tags
		if recordedSince(tags, acq.startSeq, p.Config.Name) {
			v.outcome = outcomeReplaced
		}
	}
	return v
}

// recordedSince reports whether the history records config after entry startSeq.
func recordedSince(tags map[string]string, startSeq int, config string) bool {
	for _, h := range parseHistory(tags) {
		if h.Seq > startSeq && h.EndpointConfigName == config {
			return true
		}
	}
	return false
}

// conclude classifies the settled endpoint and acts on the outcome: records the history, clears
// our marker, deletes a new endpoint that failed, and says what happened.
func (d *Deployer) conclude(ctx context.Context, p pointRequest, acq acquired, final *sagemaker.DescribeEndpointOutput, start time.Time, res pointResult, sink func(Event)) (pointResult, error) {
	v := d.classify(ctx, p, acq, final)
	res.Outcome, res.ModifiedAt = v.outcome, aws.ToTime(final.LastModifiedTime)
	serving := aws.ToString(final.EndpointConfigName)
	if v.nowOK {
		res.Replaced, res.Serving = &v.now, &v.now.Version
	}
	switch v.outcome {
	case outcomeServed:
		res.Serving = &p.Config.Version
		if p.DeploymentConfig != nil {
			d.emit(Event{Phase: releases.PhaseTraffic, Endpoint: p.Endpoint, EndpointStatus: res.Status, Message: fmt.Sprintf("endpoint %s serves all traffic from %s (%s)", p.Endpoint, p.Config.Name, p.Config.Version.String())}, sink)
		}
		d.emit(Event{Phase: releases.PhaseWait, Endpoint: p.Endpoint, EndpointStatus: res.Status, Message: fmt.Sprintf("endpoint %s is InService with %s (%s) after %s", p.Endpoint, p.Config.Name, p.Config.Version.String(), round(d.now().Sub(start)))}, sink)
		if p.SettleBehind {
			done := make(chan struct{})
			res.settled = done
			sctx := context.WithoutCancel(ctx) // the record outlives a deadline that ends the wait
			go func() {
				defer close(done)
				d.settle(sctx, acq, p, final)
			}()
			return res, nil
		}
		d.settle(ctx, acq, p, final)
		return res, nil
	case outcomeReplaced:
		d.clearMarker(ctx, acq.arn, p.Marker.ID, v.tags)
		d.emit(Event{Phase: releases.PhaseWait, Endpoint: p.Endpoint, EndpointStatus: res.Status, Message: fmt.Sprintf("endpoint %s served %s (%s); a later deployment has replaced it since (now %s)", p.Endpoint, p.Config.Name, p.Config.Version.String(), serving)}, sink)
		return res, nil
	case outcomeRolledBack:
		d.clearMarker(ctx, acq.arn, p.Marker.ID, v.tags)
		reason := cmp.Or(aws.ToString(final.FailureReason), "rolled back by SageMaker (no failure reason given)")
		return res, errorf(ErrRolledBack, "deploying %s of %s to %s failed and SageMaker rolled the endpoint back: %s. %s is still serving (endpoint configuration %s)",
			p.Config.Version.String(), p.Config.Version.Model, p.Endpoint, reason, capitalize(v.now.Version.String()), serving)
	}
	d.clearMarker(ctx, acq.arn, p.Marker.ID, nil)
	return res, d.failed(ctx, p, acq, final, sink)
}

// failed is the error of a change that left the endpoint neither InService nor rolled back. A
// new endpoint that Failed serves nothing and blocks the next attempt: it is deleted.
func (d *Deployer) failed(ctx context.Context, p pointRequest, acq acquired, final *sagemaker.DescribeEndpointOutput, sink func(Event)) error {
	reason := cmp.Or(aws.ToString(final.FailureReason), "no failure reason given")
	msg := fmt.Sprintf("deploying %s of %s to %s failed: endpoint is %s: %s", p.Config.Version.String(), p.Config.Version.Model, p.Endpoint, final.EndpointStatus, reason)
	switch {
	case acq.created && final.EndpointStatus == types.EndpointStatusFailed:
		if _, err := d.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(p.Endpoint)}); err == nil {
			d.emit(Event{Phase: releases.PhaseEndpoint, Endpoint: p.Endpoint, Message: fmt.Sprintf("deleting the failed endpoint %s, which serves nothing", p.Endpoint)}, sink)
			gone, werr := d.waitSettled(ctx, p.Endpoint, d.now().Add(2*time.Minute), releases.PhaseEndpoint, sink)
			if werr == nil && gone == nil {
				msg += "; nothing was serving, and the failed endpoint was deleted so that the next deploy starts clean"
			} else {
				msg += "; nothing was serving, and the failed endpoint is being deleted so that the next deploy starts clean"
			}
		}
	case acq.previous != nil:
		msg += fmt.Sprintf("; it served %s before", acq.previous.Version.String())
	}
	return errorf(ErrDeployFailed, "%s", msg)
}

// settle records a successful change: the history entry (unless a later deployment already
// recorded ours) and the end of our marker, in one AddTags — the marker is cleared by writing it
// empty, which every reader takes as no deployment under way. An endpoint this deployer created
// carries only the tags it was created with, so they are not read again; a deployer that updated
// it in the moment since would lose its marker (which only names it while it waits), never a
// history entry (it records ours before updating, under the same key and configuration).
func (d *Deployer) settle(ctx context.Context, acq acquired, p pointRequest, final *sagemaker.DescribeEndpointOutput) {
	tags := map[string]string{TagDeploy: p.Marker.tagValue()}
	if !acq.created {
		var err error
		if tags, err = d.listTags(ctx, acq.arn); err != nil {
			d.log.Warn("could not read endpoint tags to record the history", "endpoint", p.Endpoint, "error", err)
			return
		}
	}
	set, drop := map[string]string{}, []string(nil)
	if !recordedSince(tags, acq.startSeq, p.Config.Name) {
		e := HistoryEntry{Time: aws.ToTime(final.LastModifiedTime), Version: p.Config.Version.Number, EndpointConfigName: p.Config.Name, Kind: p.HistoryKind}
		set, drop = historyChange(tags, e)
	}
	if m, ok := parseMarker(tags[TagDeploy]); ok && m.ID == p.Marker.ID {
		set[TagDeploy] = ""
	}
	if err := d.addTags(ctx, acq.arn, set); err != nil {
		d.log.Warn("could not record the endpoint's history and clear the deployment marker", "endpoint", p.Endpoint, "error", err)
		return
	}
	if err := d.deleteTags(ctx, acq.arn, drop...); err != nil {
		d.log.Warn("could not drop the oldest history entries", "endpoint", p.Endpoint, "error", err)
	}
}

// clearMarker removes our deployment marker, if it is still ours; tags are the endpoint's tags
// when the caller just read them, else nil.
func (d *Deployer) clearMarker(ctx context.Context, arn, id string, tags map[string]string) {
	if tags == nil {
		var err error
		if tags, err = d.listTags(ctx, arn); err != nil {
			return
		}
	}
	if m, ok := parseMarker(tags[TagDeploy]); ok && m.ID == id {
		if err := d.addTags(ctx, arn, map[string]string{TagDeploy: ""}); err != nil {
			d.log.Warn("could not clear the deployment marker", "endpoint", arn, "error", err)
		}
	}
}
