package deploy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/deploy/naming"
)

// A rollback reads the endpoint once — one DescribeEndpoint, one ListTags, each endpoint
// configuration described once — before it updates the endpoint: waiting on AWS's API (and its
// throttling) is what a user feels, and a second read could see a different endpoint than the
// first.
func TestRollbackReadsTheEndpointOnceBeforeItActs(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	setup, _ := l.deployer(nil)
	register(t, setup, "abalone", 1, true)
	register(t, setup, "abalone", 2, true)
	v1, err := setup.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := setup.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2})
	if err != nil {
		t.Fatal(err)
	}

	rec := &calls{}
	d, events := l.deployer(rec)
	res, err := d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "dev"})
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, events.text())
	}
	if res.Version.Number != 1 || res.EndpointConfigName != v1.EndpointConfigName {
		t.Fatalf("rolled back to %s (%s), want version 1 (%s)", res.Version.String(), res.EndpointConfigName, v1.EndpointConfigName)
	}
	expectVersion(t, d, "abalone-dev", 1)

	before := rec.before("SageMaker/UpdateEndpoint")
	if n := before["SageMaker/DescribeEndpoint"]; n != 1 {
		t.Errorf("the rollback described the endpoint %d times before updating it, want 1", n)
	}
	if n := before["SageMaker/ListTags"]; n != 1 {
		t.Errorf("the rollback listed the endpoint's tags %d times before updating it, want 1", n)
	}
	for _, cfg := range []string{v1.EndpointConfigName, v2.EndpointConfigName} {
		if n := before["SageMaker/DescribeEndpointConfig "+cfg]; n != 1 {
			t.Errorf("the rollback described endpoint configuration %s %d times before updating the endpoint, want 1", cfg, n)
		}
	}
	if t.Failed() {
		t.Logf("calls before UpdateEndpoint: %v", before)
	}
}

// The seed's steps, each a new process as in CI, read each resource at most once (the wait for
// InService aside), and find what
// the pipeline's earlier steps made by its name, without reading tags: SageMaker's API limits are
// per account, and every extra read counts against them.
func TestPipelineStepsReadEachResourceOnce(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	setup, _ := l.deployer(nil)
	register(t, setup, "abalone", 1, true)

	steps := []struct {
		name string
		run  func(d *deploy.Deployer) error
		// calls is the most SageMaker calls the step may make, the polls of its wait aside.
		calls int
	}{
		{"create-model", func(d *deploy.Deployer) error {
			_, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: "abalone", PipelineID: pipelineA})
			return err
		}, 3},
		{"create-endpoint-config", func(d *deploy.Deployer) error {
			_, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA})
			return err
		}, 2}, // the pipeline's model found by name (no DescribeModel), and the configuration created
		{"deploy", func(d *deploy.Deployer) error {
			_, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA})
			return err
		}, 9},
	}
	for _, st := range steps {
		rec := &calls{}
		d, events := l.deployer(rec)
		if err := st.run(d); err != nil {
			t.Fatalf("%s: %v\n%s", st.name, err, events.text())
		}
		if twice := rec.readsTwice("SageMaker/CreateEndpoint"); len(twice) > 0 {
			t.Errorf("%s read a resource more than once before creating the endpoint: %v", st.name, twice)
		}
		if n := rec.count("SageMaker/ListTags"); n != 0 {
			t.Errorf("%s listed tags %d times; names alone identify the pipeline's resources", st.name, n)
		}
		if n := rec.withoutPolls(); n > st.calls {
			t.Errorf("%s made %d SageMaker calls (polls aside), want at most %d: %v", st.name, n, st.calls, rec.names())
		}
	}
}

// The configuration step trusts the name of the pipeline's model and reads nothing more; a model
// that only looks like the pipeline's (its name says version 1, it serves version 2) is caught
// where it matters, before the endpoint is touched: by the deploy that uses the configuration,
// by a deploy that makes its own, and by create-model, whose answer names the version's ARN.
func TestLookalikePipelineModelIsRefusedBeforeTheEndpointChanges(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	v2 := register(t, d, "abalone", 2, true)
	name := naming.Model("abalone", 1, pipelineA)
	if _, err := l.sm().CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(name), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/by-hand"),
		PrimaryContainer: &types.ContainerDefinition{ModelPackageName: aws.String(v2.Version.ARN)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA}); err != nil {
		t.Fatalf("create-endpoint-config: %v", err)
	}
	for _, env := range []string{"dev", "prod"} { // dev uses the configuration made above; prod makes its own
		_, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: env, PipelineID: pipelineA})
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "not made by") || !strings.Contains(err.Error(), "serves version 2 of abalone") {
			t.Errorf("deploy to %s with a lookalike model: err = %v, want it refused as not made by the pipeline, naming version 2", env, err)
		}
		if _, err := l.sm().DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("abalone-" + env)}); err == nil {
			t.Errorf("endpoint abalone-%s exists after the refused deploy", env)
		}
	}
	if _, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: "abalone", PipelineID: pipelineA}); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), name) {
		t.Errorf("create-model with a lookalike model: err = %v, want it refused, naming %s", err, name)
	}
	configs, err := l.sm().ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{NameContains: aws.String("prod")})
	if err != nil || len(configs.EndpointConfigs) != 0 {
		t.Errorf("the refused prod deploy left configurations behind: %v (%v)", configs.EndpointConfigs, err)
	}
}
