package main

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

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
}

var creds = credentials.NewStaticCredentialsProvider("AKIABENCH", "bench", "")

// prepare registers version 1 of the abalone model as a new, approved group (untimed: the flow
// starts after training and registration) and returns its package ARN.
func prepare(ctx context.Context, s *stack, group string) (string, error) {
	data, err := abalone.Artifact(1)
	if err != nil {
		return "", err
	}
	d, err := deploy.New(ctx, deploy.Options{Region: benchRegion, EndpointURL: s.rawSMURL, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
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
	s.rel.take()
	newDeployer := func(env string, ev *events) (*deploy.Deployer, error) {
		return deploy.New(ctx, deploy.Options{Region: benchRegion, EndpointURL: s.smURL, Credentials: creds,
			Releases: releases.NewClient(s.relURL, s.tokens[env], nil), Progress: ev.add, Logger: slog.New(slog.DiscardHandler)})
	}
	start := time.Now()
	step := func(i int, env string, ev *events, fn func(d *deploy.Deployer) error) error {
		began := time.Now()
		d, err := newDeployer(env, ev)
		if err == nil {
			err = fn(d)
		}
		r.steps[i] = time.Since(began)
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
	r.sm, r.rel = s.sm.take(), s.rel.take()
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

// runBaseline runs the same SageMaker work with bare SDK calls — what a hand-written script does
// at best: the model from the package ARN it already knows, each configuration, each endpoint,
// DescribeEndpoint in a loop without pause until InService, one invocation to verify. No release
// server, no gate, no tags, no history, no idempotency lookups.
func runBaseline(ctx context.Context, s *stack, group, packageARN string) (flowResult, error) {
	r := flowResult{steps: make([]time.Duration, len(stepNames))}
	s.sm.take()
	sm := sagemaker.New(sagemaker.Options{Region: benchRegion, BaseEndpoint: aws.String(s.smURL), Credentials: creds})
	rt := sagemakerruntime.New(sagemakerruntime.Options{Region: benchRegion, BaseEndpoint: aws.String(s.smURL), Credentials: creds})
	model := group + "-base"
	start := time.Now()
	timed := func(i int, fn func() error) error {
		began := time.Now()
		err := fn()
		r.steps[i] += time.Since(began)
		if err != nil {
			return fmt.Errorf("baseline %s of %s: %w", stepNames[i], group, err)
		}
		return nil
	}
	config := func(env string, count int32) error {
		_, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(model + "-" + env),
			ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(model),
				InstanceType: smtypes.ProductionVariantInstanceTypeMlT2Medium, InitialInstanceCount: aws.Int32(count), InitialVariantWeight: aws.Float32(1)}}})
		return err
	}
	endpoint := func(env string) (time.Time, error) {
		name := model + "-" + env
		if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
			return time.Time{}, err
		}
		for {
			out, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
			if err != nil {
				return time.Time{}, err
			}
			switch out.EndpointStatus {
			case smtypes.EndpointStatusInService:
				return time.Now(), nil
			case smtypes.EndpointStatusFailed:
				return time.Time{}, fmt.Errorf("endpoint %s failed: %s", name, aws.ToString(out.FailureReason))
			}
		}
	}
	var seen [2]time.Time
	err := timed(0, func() error {
		_, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(model), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/bench"),
			PrimaryContainer: &smtypes.ContainerDefinition{ModelPackageName: aws.String(packageARN)}})
		return err
	})
	if err == nil {
		err = timed(1, func() error { return config("dev", 1) })
	}
	if err == nil {
		err = timed(2, func() error {
			var err error
			if seen[0], err = endpoint("dev"); err != nil {
				return err
			}
			out, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(model + "-dev"), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
			if err != nil {
				return err
			}
			for _, f := range strings.Fields(string(out.Body)) {
				if v, err := strconv.ParseFloat(f, 64); err != nil || v < 1 || v > 30 {
					return fmt.Errorf("verification: prediction %q is not in 1..30", f)
				}
			}
			return nil
		})
	}
	if err == nil {
		err = timed(3, func() error { return config("prod", 2) })
	}
	if err == nil {
		err = timed(4, func() error {
			var err error
			seen[1], err = endpoint("prod")
			return err
		})
	}
	r.total = time.Since(start)
	r.sm = s.sm.take()
	if err != nil {
		return r, err
	}
	for i, env := range []string{"dev", "prod"} {
		at, err := inServiceAt(ctx, s, model+"-"+env)
		if err != nil {
			return r, err
		}
		r.waits = append(r.waits, seen[i].Sub(at))
	}
	return r, nil
}

// inServiceAt is when the control plane set the endpoint InService: its LastModifiedTime, which
// the local SageMaker stamps (to the millisecond) on the transition. It asks the uncounted
// listener.
func inServiceAt(ctx context.Context, s *stack, endpoint string) (time.Time, error) {
	sm := sagemaker.New(sagemaker.Options{Region: benchRegion, BaseEndpoint: aws.String(s.rawSMURL), Credentials: creds})
	out, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		return time.Time{}, err
	}
	if out.EndpointStatus != smtypes.EndpointStatusInService {
		return time.Time{}, fmt.Errorf("endpoint %s is %s after the flow", endpoint, out.EndpointStatus)
	}
	return aws.ToTime(out.LastModifiedTime), nil
}
