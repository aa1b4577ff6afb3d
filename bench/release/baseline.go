package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go/middleware"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/releases"
)

// baseline is the floor of the flow: what a hand-written script does at best — the model from
// the package ARN it already knows, each configuration, each endpoint, DescribeEndpoint in a loop
// without pause until InService, one invocation to verify — plus the release reports a reporting
// script cannot do without, each sent synchronously: start (waiting at prod's gate for the same
// approver through the event stream), an event when the endpoint is created, when it is
// InService and when it is verified, and the finish. No tags, no history, no idempotency
// lookups, no environment checks.
type baseline struct {
	s     *stack
	model string
	sm    *sagemaker.Client
	rt    *sagemakerruntime.Client
	r     flowResult
	seen  [2]time.Time // when each wait saw InService
}

// runBaseline runs the baseline flow for group, whose version 1 is packageARN.
func runBaseline(ctx context.Context, s *stack, group, packageARN string) (flowResult, error) {
	b := &baseline{s: s, model: group + "-base", r: flowResult{steps: make([]time.Duration, len(stepNames))}}
	s.sm.take()
	s.rel.take()
	start := time.Now()
	err := b.steps(ctx, packageARN)
	b.r.total = time.Since(start)
	b.r.sm, b.r.rel = s.sm.take(), s.rel.take()
	if err != nil {
		return b.r, fmt.Errorf("baseline of %s: %w", group, err)
	}
	for i, env := range []string{"dev", "prod"} {
		at, err := inServiceAt(ctx, s, b.model+"-"+env)
		if err != nil {
			return b.r, err
		}
		b.r.waits = append(b.r.waits, b.seen[i].Sub(at))
	}
	return b.r, nil
}

func (b *baseline) steps(ctx context.Context, packageARN string) error {
	for i, step := range []func(context.Context) error{
		func(ctx context.Context) error {
			_, err := b.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(b.model), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/bench"),
				PrimaryContainer: &smtypes.ContainerDefinition{ModelPackageName: aws.String(packageARN)}})
			return err
		},
		func(ctx context.Context) error { return b.config(ctx, "dev", 1) },
		func(ctx context.Context) error { return b.deploy(ctx, "dev", 0, true) },
		func(ctx context.Context) error { return b.config(ctx, "prod", 2) },
		func(ctx context.Context) error { return b.deploy(ctx, "prod", 1, false) },
	} {
		began := time.Now()
		err := b.clients(ctx)
		if err == nil {
			err = step(ctx)
		}
		b.r.steps[i] = time.Since(began)
		if err != nil {
			return fmt.Errorf("%s: %w", stepNames[i], err)
		}
	}
	return nil
}

// clients loads the AWS configuration and makes the step's clients, as each step of a pipeline —
// a process of its own — does, and as the deployer does for each of its steps.
func (b *baseline) clients(ctx context.Context) error {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(benchRegion), config.WithCredentialsProvider(creds),
		config.WithAPIOptions([]func(*middleware.Stack) error{b.s.sm.apiOption}))
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	b.sm = sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(b.s.smURL) })
	b.rt = sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(b.s.smURL) })
	return nil
}

func (b *baseline) config(ctx context.Context, env string, count int32) error {
	_, err := b.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(b.model + "-" + env),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(b.model),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlT2Medium, InitialInstanceCount: aws.Int32(count), InitialVariantWeight: aws.Float32(1)}}})
	return err
}

// deploy reports a release into env and makes its endpoint; i indexes b.seen.
func (b *baseline) deploy(ctx context.Context, env string, i int, verify bool) error {
	c := releases.NewClient(b.s.relURL, b.s.tokens[env], nil)
	name := b.model + "-" + env
	rel, err := b.startRelease(ctx, c, env)
	if err != nil {
		return err
	}
	report := func(msg, status string) error {
		_, err := c.AddEvent(ctx, rel.ID, releases.Event{Time: time.Now(), Phase: releases.PhaseEndpoint, Message: msg, EndpointStatus: status})
		return err
	}
	if _, err := b.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
		return err
	}
	if err := report("creating endpoint "+name, "Creating"); err != nil {
		return err
	}
	if b.seen[i], err = b.waitInService(ctx, name); err != nil {
		return err
	}
	if err := report("endpoint "+name+" is InService", "InService"); err != nil {
		return err
	}
	if verify {
		if err := b.verify(ctx, name); err != nil {
			return err
		}
		if err := report("verified: predictions in 1..30", "InService"); err != nil {
			return err
		}
	}
	_, err = c.FinishRelease(ctx, rel.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: "InService"})
	return err
}

// startRelease starts the release; at a gate, the approver approves it the moment it is pending
// (as the deployer's flow does) while the script waits through the event stream.
func (b *baseline) startRelease(ctx context.Context, c *releases.Client, env string) (releases.Release, error) {
	rel, err := c.StartRelease(ctx, releases.ReleaseStart{Environment: env, Model: b.model, Kind: releases.KindDeploy,
		Version: releases.Version{Number: 1}, EndpointName: b.model + "-" + env, Trigger: releases.Trigger{Type: releases.TriggerCLI}})
	if err != nil || rel.Status != releases.StatusPending {
		return rel, err
	}
	approved := make(chan error, 1)
	go func() { approved <- b.s.approve(ctx, rel.ID) }()
	if _, err := c.WaitApproval(ctx, rel.ID, 0); err != nil {
		return rel, err
	}
	return rel, <-approved
}

func (b *baseline) waitInService(ctx context.Context, name string) (time.Time, error) {
	for {
		out, err := b.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
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

func (b *baseline) verify(ctx context.Context, name string) error {
	out, err := b.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(name), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(string(out.Body)) {
		if v, err := strconv.ParseFloat(f, 64); err != nil || v < 1 || v > 30 {
			return fmt.Errorf("verification: prediction %q is not in 1..30", f)
		}
	}
	return nil
}
