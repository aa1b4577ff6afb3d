package deploy

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/google/uuid"

	"github.com/sagedeploy/sagedeploy/deploy/naming"
	"github.com/sagedeploy/sagedeploy/releases"
)

// InvokeRequest is one call of an environment's endpoint.
type InvokeRequest struct {
	Model        string
	Environment  string
	EndpointName string // overrides "{model}-{environment}"
	Body         []byte
	ContentType  string // e.g. text/csv
	Accept       string
	// TargetVariant sends the request to one production variant.
	TargetVariant string
}

// InvokeResult is the endpoint's answer.
type InvokeResult struct {
	Endpoint    string `json:"endpoint"`
	Variant     string `json:"variant"`
	ContentType string `json:"content_type,omitempty"`
	Body        string `json:"body"`
}

// Invoke calls the endpoint (SageMaker runtime InvokeEndpoint) and returns the answer and the
// variant that gave it.
func (d *Deployer) Invoke(ctx context.Context, req InvokeRequest) (InvokeResult, error) {
	name := req.EndpointName
	if name == "" {
		if err := checkTarget(req.Model, req.Environment); err != nil {
			return InvokeResult{}, err
		}
		name = naming.Endpoint(req.Model, req.Environment)
	}
	if req.ContentType == "" {
		return InvokeResult{}, errorf(ErrInvalid, "invoking %s needs a content type (--content-type, e.g. text/csv)", name)
	}
	in := &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(name),
		Body:         req.Body,
		ContentType:  aws.String(req.ContentType),
	}
	if req.Accept != "" {
		in.Accept = aws.String(req.Accept)
	}
	if req.TargetVariant != "" {
		in.TargetVariant = aws.String(req.TargetVariant)
	}
	out, err := d.rt.InvokeEndpoint(ctx, in)
	if err != nil {
		return InvokeResult{Endpoint: name}, fmt.Errorf("invoke endpoint %s: %w", name, err)
	}
	return InvokeResult{
		Endpoint:    name,
		Variant:     aws.ToString(out.InvokedProductionVariant),
		ContentType: aws.ToString(out.ContentType),
		Body:        string(out.Body),
	}, nil
}

// verify invokes the endpoint with the verification request and checks the answer.
func (d *Deployer) verify(ctx context.Context, endpoint string, v Verification, sink func(Event)) (VerifyResult, error) {
	expect := v.Expect
	d.emit(Event{Phase: releases.PhaseVerify, Endpoint: endpoint, Message: fmt.Sprintf("verifying endpoint %s with a %s request of %d bytes", endpoint, v.ContentType, len(v.Body))}, sink)
	out, err := d.Invoke(ctx, InvokeRequest{EndpointName: endpoint, Body: v.Body, ContentType: v.ContentType, Accept: v.Accept})
	res := VerifyResult{Variant: out.Variant, Response: clip(out.Body, 4096)}
	if err != nil {
		res.Problem = err.Error()
		d.emit(Event{Phase: releases.PhaseVerify, Endpoint: endpoint, Message: "verification failed: " + res.Problem}, sink)
		return res, err
	}
	if err := expect.Check([]byte(out.Body)); err != nil {
		res.Problem = err.Error()
		d.emit(Event{Phase: releases.PhaseVerify, Endpoint: endpoint, Message: "verification failed: " + res.Problem}, sink)
		return res, err
	}
	res.Passed = true
	msg := "verification passed"
	if expect.String() != "" {
		msg += fmt.Sprintf(": the answer matches %s", expect.String())
	}
	d.emit(Event{Phase: releases.PhaseVerify, Endpoint: endpoint, Message: msg}, sink)
	return res, nil
}

// failedVerification restores the previous configuration when asked and possible, and returns the
// deployment's error.
func (d *Deployer) failedVerification(ctx context.Context, req DeployRequest, res *DeployResult, p pointRequest, verr error, sink func(Event)) error {
	what := fmt.Sprintf("verification of %s of %s on endpoint %s failed: %v", res.Version.String(), req.Model, res.Endpoint, verr)
	switch {
	case !req.RollbackOnFailure:
		return errorf(ErrVerification, "%s; %s stays deployed (pass --rollback-on-failure to restore the previous version automatically, or run `sagedeploy rollback --env %s`)", what, res.Version.String(), req.Environment)
	case !res.Changed:
		return errorf(ErrVerification, "%s; the endpoint already served this configuration before this deploy, so there is nothing to roll back to", what)
	case res.PreviousConfigName == "" || res.PreviousVersion == nil:
		return errorf(ErrVerification, "%s; nothing to roll back to: the endpoint served nothing before", what)
	}
	d.emit(Event{Phase: releases.PhaseRollback, Endpoint: res.Endpoint, Message: fmt.Sprintf("rolling endpoint %s back to %s (%s)", res.Endpoint, res.PreviousConfigName, res.PreviousVersion.String())}, sink)
	prev, err := d.describeConfig(ctx, res.PreviousConfigName)
	if err != nil {
		return errorf(ErrVerification, "%s; rolling back failed too: %v", what, err)
	}
	p.Config = prev
	p.DeploymentConfig = nil
	p.HistoryKind = "restore"
	p.SettleBehind = false // the restore is recorded before the deploy answers
	p.Marker.ID = uuid.NewString()[:8]
	p.Marker.Version, p.Marker.Config = prev.Version.Number, prev.Name
	p.Marker.Started = d.now()
	out, err := d.pointScaled(ctx, p, nil, sink)
	res.EndpointStatus = out.Status
	if err != nil {
		return errorf(ErrVerification, "%s; rolling back to %s failed too: %v", what, prev.Version.String(), err)
	}
	res.RolledBack = true
	return errorf(ErrVerification, "%s; rolled back: %s (endpoint configuration %s) is serving again", what, prev.Version.String(), prev.Name)
}
