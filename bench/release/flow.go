package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/releases"
)

// The steps of the seed's flow, as the orb's jobs and the abalone example's workflow run them.
var stepNames = []string{
	"create-model",
	"dev: create-endpoint-config",
	"dev: deploy to InService + verify",
	"prod: create-endpoint-config",
	"prod: deploy (approval gate)",
}

// flowResult is one timed run of a flow.
type flowResult struct {
	total time.Duration
	steps []time.Duration // by stepNames
	// waits: for dev and prod, the time from the moment the control plane set the endpoint
	// InService to the moment the waiting side knew it.
	waits []time.Duration
	// approval: from the approval (the API call answered) to the deployer going on.
	approval time.Duration
	sm, rel  map[string]int
	stepSM   []map[string]int // SageMaker calls of each step, by operation
	// stepTrace: with -trace, each step's calls in order, with the deployer function that made each.
	stepTrace [][]traced
	stepStart []time.Time
}

var creds = credentials.NewStaticCredentialsProvider("AKIABENCH", "bench", "")

// prepare registers version 1 of the abalone model as a new, approved group (untimed: the flow
// starts after training and registration) and returns its package ARN.
func prepare(ctx context.Context, s *stack, group string) (string, error) {
	data, err := abalone.Artifact(1)
	if err != nil {
		return "", err
	}
	d, err := deploy.New(ctx, deploy.Options{Region: benchRegion, EndpointURL: s.smURL, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "", err
	}
	res, err := d.Register(ctx, deploy.RegisterRequest{Model: group, Artifact: "model.tar.gz", ArtifactData: data, Bucket: "models", Approve: true})
	if err != nil {
		return "", fmt.Errorf("register %s: %w", group, err)
	}
	return res.Version.ARN, nil
}

// events records a step's progress events.
type events struct {
	mu  sync.Mutex
	all []deploy.Event
	on  func(deploy.Event)
}

func (e *events) add(ev deploy.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	if e.on != nil {
		e.on(ev)
	}
}

func (e *events) find(phase, contains string) (deploy.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if string(ev.Phase) == phase && strings.Contains(ev.Message, contains) {
			return ev, true
		}
	}
	return deploy.Event{}, false
}

var waitingRelease = regexp.MustCompile(`release (\S+) of .* waits for an approval`)

// runDeployer runs the flow with sagedeploy's deployer, one deployer per step as the CI jobs
// (separate processes) do, reporting to the release server with each environment's token. The
// prod deploy waits at prod's gate; the approver approves the moment the release waits, from
// another goroutine, as a user watching the dashboard would.
func runDeployer(ctx context.Context, s *stack, group, pipeline string) (flowResult, error) {
	r := flowResult{steps: make([]time.Duration, len(stepNames))}
	s.sm.take()
	s.sm.tl.take()
	s.rel.take()
	newDeployer := func(env string, ev *events) (*deploy.Deployer, error) {
		return deploy.New(ctx, deploy.Options{Region: benchRegion, EndpointURL: s.smURL, Credentials: creds,
			Releases: releases.NewClient(s.relURL, s.tokens[env], nil), Progress: ev.add, Logger: slog.New(slog.DiscardHandler),
			APIOptions: []func(*middleware.Stack) error{s.sm.apiOption}})
	}
	start := time.Now()
	var sm map[string]int
	step := func(i int, env string, ev *events, fn func(d *deploy.Deployer) error) error {
		began := time.Now()
		d, err := newDeployer(env, ev)
		if err == nil {
			err = fn(d)
		}
		r.steps[i] = time.Since(began)
		calls := s.sm.take()
		r.stepSM = append(r.stepSM, calls)
		r.stepTrace, r.stepStart = append(r.stepTrace, s.sm.tl.take()), append(r.stepStart, began)
		sm = addCounts(sm, calls)
		if err != nil {
			return fmt.Errorf("%s of %s: %w", stepNames[i], group, err)
		}
		return nil
	}

	if err := step(0, "dev", &events{}, func(d *deploy.Deployer) error {
		_, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: group, PipelineID: pipeline})
		return err
	}); err != nil {
		return r, err
	}
	if err := step(1, "dev", &events{}, func(d *deploy.Deployer) error {
		_, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{Model: group, Environment: "dev", PipelineID: pipeline})
		return err
	}); err != nil {
		return r, err
	}
	devEvents := &events{}
	if err := step(2, "dev", devEvents, func(d *deploy.Deployer) error {
		_, err := d.Deploy(ctx, deploy.DeployRequest{Model: group, Environment: "dev", PipelineID: pipeline,
			Verify: &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation("1..30")}})
		return err
	}); err != nil {
		return r, err
	}
	if err := step(3, "prod", &events{}, func(d *deploy.Deployer) error {
		_, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{Model: group, Environment: "prod", PipelineID: pipeline, InstanceCount: 2})
		return err
	}); err != nil {
		return r, err
	}
	var (
		amu        sync.Mutex
		approvedAt time.Time
		approveErr error
		approver   sync.WaitGroup
	)
	prodEvents := &events{on: func(ev deploy.Event) {
		m := waitingRelease.FindStringSubmatch(ev.Message)
		if ev.Phase != "approval" || m == nil {
			return
		}
		approver.Add(1)
		go func() {
			defer approver.Done()
			err := s.approve(ctx, m[1])
			amu.Lock()
			approvedAt, approveErr = time.Now(), err
			amu.Unlock()
		}()
	}}
	if err := step(4, "prod", prodEvents, func(d *deploy.Deployer) error {
		_, err := d.Deploy(ctx, deploy.DeployRequest{Model: group, Environment: "prod", PipelineID: pipeline, InstanceCount: 2})
		return err
	}); err != nil {
		return r, err
	}
	r.total = time.Since(start)
	r.sm, r.rel = addCounts(sm, s.sm.take()), s.rel.take()
	approver.Wait()
	if approveErr != nil {
		return r, approveErr
	}
	resumed, ok := prodEvents.find("approval", "approved")
	if !ok || approvedAt.IsZero() {
		return r, fmt.Errorf("prod deploy of %s never waited at the approval gate", group)
	}
	r.approval = resumed.Time.Sub(approvedAt)

	for _, w := range []struct {
		env string
		ev  *events
	}{{"dev", devEvents}, {"prod", prodEvents}} {
		returned, ok := w.ev.find("wait", " is InService with ")
		if !ok {
			return r, fmt.Errorf("%s deploy of %s reported no end of its wait", w.env, group)
		}
		inService, err := inServiceAt(ctx, s, group+"-"+w.env)
		if err != nil {
			return r, err
		}
		r.waits = append(r.waits, returned.Time.Sub(inService))
	}
	return r, nil
}

// inServiceAt is when the control plane set the endpoint InService: its LastModifiedTime, which
// the local SageMaker stamps (to the millisecond) on the transition. Its client is not counted.
func inServiceAt(ctx context.Context, s *stack, endpoint string) (time.Time, error) {
	sm := sagemaker.New(sagemaker.Options{Region: benchRegion, BaseEndpoint: aws.String(s.smURL), Credentials: creds})
	out, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		return time.Time{}, err
	}
	if out.EndpointStatus != smtypes.EndpointStatusInService {
		return time.Time{}, fmt.Errorf("endpoint %s is %s after the flow", endpoint, out.EndpointStatus)
	}
	return aws.ToTime(out.LastModifiedTime), nil
}

// addCounts adds b's counts to a.
func addCounts(a, b map[string]int) map[string]int {
	if a == nil {
		a = map[string]int{}
	}
	for k, v := range b {
		a[k] += v
	}
	return a
}

// cleanUp deletes a run's endpoints (untimed, uncounted) and waits until they are gone, so that
// the runs after it find the instance quota free, as a fresh account would.
func cleanUp(ctx context.Context, s *stack, endpoints ...string) error {
	sm := sagemaker.New(sagemaker.Options{Region: benchRegion, BaseEndpoint: aws.String(s.smURL), Credentials: creds})
	for _, name := range endpoints {
		if _, err := sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(name)}); err != nil {
			return fmt.Errorf("clean up endpoint %s: %w", name, err)
		}
		for {
			_, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
			var nf interface{ ErrorCode() string }
			if errors.As(err, &nf) && strings.Contains(nf.ErrorCode(), "Validation") || err != nil && strings.Contains(err.Error(), "Could not find") {
				break
			}
			if err != nil {
				return fmt.Errorf("clean up endpoint %s: %w", name, err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}
