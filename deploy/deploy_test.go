package deploy_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/deploy/naming"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

const pipelineA = "0b8e4e2c-5a8f-4d3e-9c1a-7f2b6d4e8a10"
const pipelineB = "9d7c6b5a-4e3f-4a2b-8c1d-0e9f8a7b6c5d"

var ctx = context.Background()

// expectVersion checks that the endpoint answers the abalone sample as version v does.
func expectVersion(t *testing.T, d *deploy.Deployer, endpoint string, v int) {
	t.Helper()
	want, err := abalone.ExpectedCSV(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.Invoke(ctx, deploy.InvokeRequest{EndpointName: endpoint, Body: abalone.SampleCSV(), ContentType: "text/csv"})
	if err != nil {
		t.Fatalf("invoke %s: %v", endpoint, err)
	}
	got, exp := predictions(t, out.Body), predictions(t, string(want))
	if len(got) != len(exp) {
		t.Fatalf("%s answered %d predictions, want %d (version %d): %q", endpoint, len(got), len(exp), v, out.Body)
	}
	for i := range exp {
		var g, e float64
		fmt.Sscan(got[i], &g)
		fmt.Sscan(exp[i], &e)
		if d := g - e; d > 1e-4 || d < -1e-4 {
			t.Fatalf("%s prediction %d = %s, version %d predicts %s: the endpoint does not serve version %d", endpoint, i, got[i], v, exp[i], v)
		}
	}
}

func tarGz(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// pickleArtifact is a model.tar.gz whose xgboost-model is a Python pickle, which the XGBoost
// serving of SageMaker 1.7 images (and the local SageMaker) cannot load.
func pickleArtifact(t *testing.T) []byte {
	return tarGz(t, "xgboost-model", []byte("\x80\x04\x958\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x07learner\x94\x8c\x14xgboost.core.Booster\x94\x8c\x05trees\x94]\x94(K\x01K\x02K\x03eu."))
}

func listNames(t *testing.T, l *local) (models, configs, endpoints []string) {
	t.Helper()
	sm := l.sm()
	m, err := sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range m.Models {
		models = append(models, aws.ToString(x.ModelName))
	}
	c, err := sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range c.EndpointConfigs {
		configs = append(configs, aws.ToString(x.EndpointConfigName))
	}
	e, err := sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range e.Endpoints {
		endpoints = append(endpoints, aws.ToString(x.EndpointName))
	}
	return
}

func describe(t *testing.T, l *local, endpoint string) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	out, err := l.sm().DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		t.Fatalf("describe %s: %v", endpoint, err)
	}
	return out
}

func tagsOf(t *testing.T, l *local, arn string) map[string]string {
	t.Helper()
	out, err := l.sm().ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn), MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range out.Tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

func TestDeployCreatesEverythingAndServesTheLatestApprovedVersion(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	register(t, d, "abalone", 2, false) // newer but not approved: must not be deployed

	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA, ProjectID: "proj-1"})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if res.Version.Number != 1 || !res.Created || !res.Changed || !res.ModelCreated || !res.ConfigCreated || res.Endpoint != "abalone-dev" || res.EndpointStatus != "InService" {
		t.Fatalf("deploy result = %+v", res)
	}
	expectVersion(t, d, "abalone-dev", 1)

	// What sagedeploy created records model, version, environment, pipeline, project and itself.
	model, err := l.sm().DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String(res.ModelName)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(model.PrimaryContainer.ModelPackageName); got != res.Version.ARN {
		t.Errorf("model container = %q, want the model package %s", got, res.Version.ARN)
	}
	cfg, err := l.sm().DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String(res.EndpointConfigName)})
	if err != nil {
		t.Fatal(err)
	}
	pv := cfg.ProductionVariants[0]
	if pv.InstanceType != "ml.t2.medium" || aws.ToInt32(pv.InitialInstanceCount) != 1 {
		t.Errorf("default instance settings = %s × %d, want ml.t2.medium × 1", pv.InstanceType, aws.ToInt32(pv.InitialInstanceCount))
	}
	for _, arn := range []string{aws.ToString(model.ModelArn), aws.ToString(cfg.EndpointConfigArn)} {
		tags := tagsOf(t, l, arn)
		for k, want := range map[string]string{deploy.TagModel: "abalone", deploy.TagVersion: "1", deploy.TagPipelineID: pipelineA, deploy.TagProjectID: "proj-1", deploy.TagModelPackageARN: res.Version.ARN} {
			if tags[k] != want {
				t.Errorf("%s: tag %s = %q, want %q", arn, k, tags[k], want)
			}
		}
		if !strings.HasPrefix(tags[deploy.TagCreatedBy], "sagedeploy ") {
			t.Errorf("%s: tag %s = %q, want sagedeploy and its version", arn, deploy.TagCreatedBy, tags[deploy.TagCreatedBy])
		}
	}
	if tags := tagsOf(t, l, aws.ToString(cfg.EndpointConfigArn)); tags[deploy.TagEnvironment] != "dev" {
		t.Errorf("config environment tag = %q", tags[deploy.TagEnvironment])
	}
}

// A retried CI step — in a new process, so a new Deployer — reuses what the first attempt made.
func TestRetriedStepsCreateNothingNew(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d0, _ := l.deployer(nil)
	register(t, d0, "abalone", 1, true)

	step := func() (deploy.CreateModelResult, deploy.CreateEndpointConfigResult, deploy.DeployResult, *calls) {
		rec := &calls{}
		d, _ := l.deployer(rec)
		m, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: "abalone", PipelineID: pipelineA})
		if err != nil {
			t.Fatalf("create-model: %v", err)
		}
		c, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA})
		if err != nil {
			t.Fatalf("create-endpoint-config: %v", err)
		}
		r, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA})
		if err != nil {
			t.Fatalf("deploy: %v", err)
		}
		return m, c, r, rec
	}
	m1, c1, r1, _ := step()
	if !m1.Created || !c1.Created || !r1.Created {
		t.Fatalf("first run should create model, config and endpoint: %v %v %v", m1.Created, c1.Created, r1.Created)
	}
	models1, configs1, endpoints1 := listNames(t, l)
	m2, c2, r2, rec := step()
	if m2.Created || c2.Created || r2.Created || r2.Changed || m2.ModelName != m1.ModelName || c2.EndpointConfigName != c1.EndpointConfigName {
		t.Fatalf("retry created or changed something: model %+v config %+v deploy %+v", m2, c2, r2)
	}
	// The configuration step creates first and reuses on "already exists" (one call on the
	// common path); SageMaker refuses that create, so nothing new is made. The rest is not asked.
	for _, op := range []string{"SageMaker/CreateModel", "SageMaker/CreateEndpointConfig", "SageMaker/CreateEndpoint", "SageMaker/UpdateEndpoint"} {
		if n := rec.acceptedCount(op); n != 0 {
			t.Errorf("the retried steps had SageMaker accept %s %d times", op, n)
		}
	}
	for _, op := range []string{"SageMaker/CreateModel", "SageMaker/CreateEndpoint", "SageMaker/UpdateEndpoint"} {
		if n := rec.count(op); n != 0 {
			t.Errorf("the retried steps called %s %d times", op, n)
		}
	}
	models2, configs2, endpoints2 := listNames(t, l)
	if fmt.Sprint(models1, configs1, endpoints1) != fmt.Sprint(models2, configs2, endpoints2) {
		t.Errorf("resources changed on retry:\n%v %v %v\n%v %v %v", models1, configs1, endpoints1, models2, configs2, endpoints2)
	}
	// A retried register does not add a duplicate version either.
	again := register(t, d0, "abalone", 1, true)
	if again.Created || again.Version.Number != 1 {
		t.Errorf("re-registering the same artifact made version %d (created %v), want version 1 reused", again.Version.Number, again.Created)
	}
}

// A pipeline sticks to the version it chose at create-model, even if a newer one is approved
// before its later steps (e.g. prod after an approval, days later); another pipeline takes the new one.
func TestPipelineKeepsTheVersionItChose(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	m, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: "abalone", PipelineID: pipelineA})
	if err != nil || m.Version.Number != 1 {
		t.Fatalf("create-model: %v %+v", err, m)
	}
	register(t, d, "abalone", 2, true)
	for _, env := range []string{"dev", "prod"} {
		c, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{Model: "abalone", Environment: env, PipelineID: pipelineA})
		if err != nil {
			t.Fatal(err)
		}
		if c.Version.Number != 1 || c.ModelName != m.ModelName || c.ModelCreated {
			t.Fatalf("%s config of pipeline A uses version %d model %s (model created %v), want version 1 model %s", env, c.Version.Number, c.ModelName, c.ModelCreated, m.ModelName)
		}
		r, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: env, PipelineID: pipelineA})
		if err != nil {
			t.Fatal(err)
		}
		if r.EndpointConfigName != c.EndpointConfigName {
			t.Fatalf("deploy of %s used %s, not the pipeline's config %s", env, r.EndpointConfigName, c.EndpointConfigName)
		}
		expectVersion(t, d, "abalone-"+env, 1)
	}
	r, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineB})
	if err != nil {
		t.Fatal(err)
	}
	if r.Version.Number != 2 || r.PreviousVersion == nil || r.PreviousVersion.Number != 1 {
		t.Fatalf("pipeline B deployed version %d (previous %v), want 2 replacing 1", r.Version.Number, r.PreviousVersion)
	}
	expectVersion(t, d, "abalone-dev", 2)
}

func TestLongModelNamesAndUUIDPipelines(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	long := "abalone-regression-with-a-very-long-name-for-the-registry-x1" // 60 characters
	if len(long) != 60 {
		t.Fatalf("test name has %d characters", len(long))
	}
	register(t, d, long, 1, true)
	seen := map[string]string{}
	for _, p := range []string{pipelineA, pipelineB} {
		for _, env := range []string{"dev", "production"} {
			r, err := d.Deploy(ctx, deploy.DeployRequest{Model: long, Environment: env, PipelineID: p})
			if err != nil {
				t.Fatalf("deploy %s pipeline %s: %v", env, p, err)
			}
			for what, n := range map[string]string{"model": r.ModelName, "config": r.EndpointConfigName, "endpoint": r.Endpoint} {
				if !naming.Valid(n) {
					t.Errorf("%s name %q is not a valid SageMaker name", what, n)
				}
				key := what + "/" + env + "/" + p
				if what == "model" {
					key = what + "/" + p // the model of a version is shared by a pipeline's environments
				}
				if what == "endpoint" {
					key = what + "/" + env
				}
				if prev, ok := seen[n]; ok && prev != key {
					t.Errorf("%s and %s share the name %q", prev, key, n)
				}
				seen[n] = key
			}
		}
	}
	expectVersion(t, d, naming.Endpoint(long, "production"), 1)
}

func TestNoApprovedVersionFailsClearlyAndCreatesNothing(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)

	_, err := d.Deploy(ctx, deploy.DeployRequest{Model: "ghost", Environment: "dev"})
	if !errors.Is(err, deploy.ErrGroupNotFound) || !strings.Contains(err.Error(), "ghost does not exist") || !strings.Contains(err.Error(), "sagedeploy register") {
		t.Fatalf("missing group: err = %v", err)
	}
	register(t, d, "abalone", 1, false)
	register(t, d, "abalone", 2, false)
	_, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA})
	if !errors.Is(err, deploy.ErrNoApprovedVersion) {
		t.Fatalf("no approved version: err = %v", err)
	}
	for _, want := range []string{"abalone has no Approved version", "2 versions: 1 PendingManualApproval, 2 PendingManualApproval", "update-model-package", "model-package/abalone/2", "--model-approval-status Approved", "sagedeploy register"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	_, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 7})
	if !errors.Is(err, deploy.ErrVersionNotFound) || !strings.Contains(err.Error(), "no version 7") {
		t.Fatalf("pinned missing version: %v", err)
	}
	_, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2})
	if !errors.Is(err, deploy.ErrNoApprovedVersion) || !strings.Contains(err.Error(), "version 2 of model abalone is PendingManualApproval") {
		t.Fatalf("pinned unapproved version: %v", err)
	}
	models, configs, endpoints := listNames(t, l)
	if len(models)+len(configs)+len(endpoints) != 0 {
		t.Fatalf("a refused deploy left models %v configs %v endpoints %v", models, configs, endpoints)
	}
}

// SageMaker rolls a failed update back silently; the deploy must fail and say which version
// still serves.
func TestFailingNewVersionLeavesTheOldOneServing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		artifact func(*testing.T, *local, *deploy.Deployer) deploy.RegisterResult
		reason   string
	}{
		{"pickle", func(t *testing.T, l *local, d *deploy.Deployer) deploy.RegisterResult {
			return registerData(t, d, "abalone", pickleArtifact(t), true)
		}, "xgboost-model"},
		{"missing artifact", func(t *testing.T, l *local, d *deploy.Deployer) deploy.RegisterResult {
			res := registerData(t, d, "abalone", tarGz(t, "xgboost-model", []byte("gone")), true)
			deleteObject(t, l, res.ArtifactURL)
			return res
		}, "model.tar.gz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLocal(t)
			d, ev := l.deployer(nil)
			register(t, d, "abalone", 1, true)
			if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"}); err != nil {
				t.Fatal(err)
			}
			bad := tc.artifact(t, l, d)
			// Preflight would refuse the missing artifact (see preflight_test.go): skip it to see
			// what SageMaker does with it.
			res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod", SkipPreflight: true})
			if !errors.Is(err, deploy.ErrRolledBack) {
				t.Fatalf("deploying the bad version %d: err = %v\n%s", bad.Version.Number, err, ev.text())
			}
			for _, want := range []string{fmt.Sprintf("version %d of abalone", bad.Version.Number), "rolled the endpoint back", "Version 1 is still serving", tc.reason} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if res.EndpointStatus != "InService" {
				t.Errorf("result endpoint status %q", res.EndpointStatus)
			}
			expectVersion(t, d, "abalone-prod", 1)
			h, err := d.History(ctx, deploy.HistoryRequest{Model: "abalone", Environment: "prod"})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(h.Entries); n != 1 || h.Entries[0].Version != 1 || !h.Entries[0].Current {
				t.Errorf("history after a rolled-back update = %+v, want only version 1, current", h.Entries)
			}
			// A first deploy of a bad version fails, serves nothing and leaves no failed endpoint behind.
			_, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: bad.Version.Number, SkipPreflight: true})
			if !errors.Is(err, deploy.ErrDeployFailed) || !strings.Contains(err.Error(), "nothing was serving") {
				t.Fatalf("first deploy of a bad version: %v", err)
			}
			if _, _, eps := listNames(t, l); len(eps) != 1 {
				t.Errorf("endpoints after the failed create: %v, want only abalone-prod", eps)
			}
			// The next good deploy to dev works.
			if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1}); err != nil {
				t.Fatalf("deploy after a failed create: %v", err)
			}
		})
	}
}

func TestPromoteDeploysExactlyWhatTheSourceServes(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	v1 := register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod", PipelineID: pipelineA}); err != nil {
		t.Fatal(err)
	}
	v2 := register(t, d, "abalone", 2, true)
	dev, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineB})
	if err != nil {
		t.Fatal(err)
	}
	register(t, d, "abalone", 1, true) // version 3, approved after dev was tested: promote must ignore it
	res, err := d.Promote(ctx, deploy.PromoteRequest{Model: "abalone", From: "dev", To: "prod", PipelineID: pipelineB, InstanceType: "ml.m5.large", InstanceCount: 2})
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	if res.Version.ARN != v2.Version.ARN || res.ModelName != dev.ModelName || res.Kind != "promote" {
		t.Fatalf("promote deployed %s (model %s, kind %s), want %s (model %s)", res.Version.ARN, res.ModelName, res.Kind, v2.Version.ARN, dev.ModelName)
	}
	if res.PreviousVersion == nil || res.PreviousVersion.ARN != v1.Version.ARN {
		t.Errorf("promote's previous version = %+v, want version 1", res.PreviousVersion)
	}
	out := describe(t, l, "abalone-prod")
	cfg, err := l.sm().DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: out.EndpointConfigName})
	if err != nil {
		t.Fatal(err)
	}
	pv := cfg.ProductionVariants[0]
	if aws.ToString(pv.ModelName) != dev.ModelName || pv.InstanceType != "ml.m5.large" || aws.ToInt32(pv.InitialInstanceCount) != 2 {
		t.Errorf("prod config: model %s, %s × %d; want dev's model %s on ml.m5.large × 2", aws.ToString(pv.ModelName), pv.InstanceType, aws.ToInt32(pv.InitialInstanceCount), dev.ModelName)
	}
	if n := aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount); n != 2 {
		t.Errorf("prod runs %d instances, want 2", n)
	}
	expectVersion(t, d, "abalone-prod", 2)

	_, err = d.Promote(ctx, deploy.PromoteRequest{Model: "abalone", From: "staging", To: "prod"})
	if !errors.Is(err, deploy.ErrEndpointNotFound) || !strings.Contains(err.Error(), "abalone-staging") {
		t.Errorf("promote from an environment without endpoint: %v", err)
	}
}

func TestRollbackToPreviousAndToAVersion(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	first, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod", InstanceCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "prod"})
	if !errors.Is(err, deploy.ErrNothingToRollBack) {
		t.Fatalf("rollback with one version served: %v", err)
	}
	register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	expectVersion(t, d, "abalone-prod", 2)

	rb, err := d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "prod"})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if rb.Version.Number != 1 || rb.EndpointConfigName != first.EndpointConfigName || rb.Kind != "rollback" {
		t.Fatalf("rollback went to version %d config %s (kind %s), want version 1 on its old config %s", rb.Version.Number, rb.EndpointConfigName, rb.Kind, first.EndpointConfigName)
	}
	expectVersion(t, d, "abalone-prod", 1)
	if n := aws.ToInt32(describe(t, l, "abalone-prod").ProductionVariants[0].CurrentInstanceCount); n != 2 {
		t.Errorf("after rollback prod runs %d instances, want the 2 version 1 ran with", n)
	}

	v3 := register(t, d, "abalone", 2, true) // same artifact as 2 but latest is 2? no: latest is 2 → reused
	if v3.Created {
		t.Fatalf("re-registering version 2's artifact created version %d", v3.Version.Number)
	}
	register(t, d, "abalone", 1, true) // version 3 (latest was 2, a different artifact)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	rb, err = d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "prod", ToVersion: 2})
	if err != nil || rb.Version.Number != 2 {
		t.Fatalf("rollback --to-version 2: %v (version %d)", err, rb.Version.Number)
	}
	expectVersion(t, d, "abalone-prod", 2)
	rb, err = d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "prod", ToVersion: 2})
	if err != nil || rb.Changed {
		t.Fatalf("rollback to the version already served: err %v, changed %v", err, rb.Changed)
	}

	h, err := d.History(ctx, deploy.HistoryRequest{Model: "abalone", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, e := range h.Entries {
		seq = append(seq, fmt.Sprintf("v%d:%s", e.Version, e.Kind))
	}
	if got, want := strings.Join(seq, " "), "v1:deploy v2:deploy v1:rollback v3:deploy v2:rollback"; got != want {
		t.Errorf("history = %s, want %s", got, want)
	}
	if !h.Entries[len(h.Entries)-1].Current {
		t.Errorf("the last history entry is not marked current: %+v", h.Entries)
	}
}

func TestScale(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	res, err := d.Scale(ctx, deploy.ScaleRequest{Model: "abalone", Environment: "prod", Instances: 3})
	if err != nil {
		t.Fatalf("scale: %v", err)
	}
	if !res.Changed || res.PreviousInstances != 1 || res.Instances != 3 || res.Variant != "AllTraffic" || res.Version == nil || res.Version.Number != 1 {
		t.Fatalf("scale result %+v", res)
	}
	if n := aws.ToInt32(describe(t, l, "abalone-prod").ProductionVariants[0].CurrentInstanceCount); n != 3 {
		t.Fatalf("endpoint runs %d instances after scaling to 3", n)
	}
	expectVersion(t, d, "abalone-prod", 1)
	again, err := d.Scale(ctx, deploy.ScaleRequest{Model: "abalone", Environment: "prod", Instances: 3})
	if err != nil || again.Changed {
		t.Fatalf("scaling to the current count: %v, changed %v", err, again.Changed)
	}
	if _, err := d.Scale(ctx, deploy.ScaleRequest{Model: "abalone", Environment: "staging", Instances: 2}); !errors.Is(err, deploy.ErrEndpointNotFound) {
		t.Fatalf("scaling a missing environment: %v", err)
	}
	if _, err := d.Scale(ctx, deploy.ScaleRequest{Model: "abalone", Environment: "prod", Instances: 0}); !errors.Is(err, deploy.ErrInvalid) {
		t.Fatalf("scaling to 0: %v", err)
	}
}

// Two deploys to one endpoint at once — on a new endpoint, and on a serving one with updates
// slow enough (a 1 s canary bake) to overlap: the second waits for the first and then deploys;
// the endpoint's history shows one after the other, never a mix.
func TestConcurrentDeploysNeverInterleave(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	register(t, d, "abalone", 2, true)
	race := func(env string, reqs [2]deploy.DeployRequest) {
		t.Helper()
		var wg sync.WaitGroup
		var results [2]deploy.DeployResult
		var errs [2]error
		var evs [2]*events
		for i := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dd, ev := l.deployer(nil) // separate processes in real life
				evs[i] = ev
				results[i], errs[i] = dd.Deploy(ctx, reqs[i])
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s: deploy %d: %v\n%s", env, i, err, evs[i].text())
			}
		}
		out := describe(t, l, "abalone-"+env)
		final := aws.ToString(out.EndpointConfigName)
		if out.EndpointStatus != smtypes.EndpointStatusInService || (final != results[0].EndpointConfigName && final != results[1].EndpointConfigName) {
			t.Fatalf("%s: endpoint ended %s with %s, which neither deploy asked for", env, out.EndpointStatus, final)
		}
		h, err := d.History(ctx, deploy.HistoryRequest{Model: "abalone", Environment: env})
		if err != nil {
			t.Fatal(err)
		}
		n := len(h.Entries)
		if n < 2 || h.Entries[n-2].EndpointConfigName == h.Entries[n-1].EndpointConfigName || h.Entries[n-1].EndpointConfigName != final {
			t.Fatalf("%s: history %+v: want both configurations, one after the other, the last being what serves (%s)", env, h.Entries, final)
		}
		for i, r := range results {
			if r.EndpointConfigName != h.Entries[n-1].EndpointConfigName && r.EndpointConfigName != h.Entries[n-2].EndpointConfigName {
				t.Errorf("%s: deploy %d (%s) succeeded but is not in the history %+v", env, i, r.EndpointConfigName, h.Entries)
			}
		}
		expectVersion(t, d, "abalone-"+env, h.Entries[n-1].Version)
		if tags := tagsOf(t, l, aws.ToString(out.EndpointArn)); tags[deploy.TagDeploy] != "" {
			t.Errorf("%s: a finished deployment left its marker: %q", env, tags[deploy.TagDeploy])
		}
		waited := strings.Contains(evs[0].text()+evs[1].text(), "is busy with")
		t.Logf("%s: one deploy waited for the other: %v", env, waited)
	}
	race("dev", [2]deploy.DeployRequest{
		{Model: "abalone", Environment: "dev", Version: 1, Timeout: time.Minute},
		{Model: "abalone", Environment: "dev", Version: 2, Timeout: time.Minute},
	})
	canary := deploy.Strategy{Type: deploy.Canary, Percent: 50, Bake: time.Second}
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod", Version: 1}); err != nil {
		t.Fatal(err)
	}
	race("prod", [2]deploy.DeployRequest{
		{Model: "abalone", Environment: "prod", Version: 2, Strategy: canary, Timeout: time.Minute},
		{Model: "abalone", Environment: "prod", Version: 1, InstanceCount: 2, Strategy: canary, Timeout: time.Minute},
	})
	if h, _ := d.History(ctx, deploy.HistoryRequest{Model: "abalone", Environment: "prod"}); len(h.Entries) != 3 {
		t.Errorf("prod history %+v: want the first version and both concurrent deploys", h.Entries)
	}
}

// A deploy that finds the endpoint busy longer than its lock timeout fails, naming the deployment
// in progress, and changes nothing; one with a longer bound waits and then deploys.
func TestBusyEndpointIsWaitedForOrRefusedClearly(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	v2 := register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1}); err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	var slowRes deploy.DeployResult
	go func() {
		var err error
		slowRes, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2, PipelineID: pipelineA,
			Strategy: deploy.Strategy{Type: deploy.Canary, Percent: 50, Bake: 2 * time.Second}})
		slow <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for describe(t, l, "abalone-dev").EndpointStatus != smtypes.EndpointStatusUpdating {
		if time.Now().After(deadline) {
			t.Fatal("the canary deployment never put the endpoint in Updating")
		}
		time.Sleep(5 * time.Millisecond)
	}
	other, _ := l.deployer(nil)
	_, err := other.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1, InstanceCount: 2, LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, deploy.ErrBusy) {
		t.Fatalf("deploy on a busy endpoint with a short lock timeout: %v", err)
	}
	for _, want := range []string{"abalone-dev", "version 2", "by " + pipelineA, "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("busy error %q does not say %q", err, want)
		}
	}
	waited, err := other.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1, InstanceCount: 2})
	if err != nil {
		t.Fatalf("deploy waiting for the busy endpoint: %v", err)
	}
	if err := <-slow; err != nil {
		t.Fatalf("the canary deployment: %v", err)
	}
	if slowRes.Version.ARN != v2.Version.ARN {
		t.Fatalf("canary deployed %s", slowRes.Version.ARN)
	}
	h, err := d.History(ctx, deploy.HistoryRequest{Model: "abalone", Environment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, e := range h.Entries {
		seq = append(seq, fmt.Sprintf("v%d", e.Version))
	}
	if got := strings.Join(seq, " "); got != "v1 v2 v1" || h.Entries[2].EndpointConfigName != waited.EndpointConfigName {
		t.Fatalf("history %s (%+v), want v1 v2 v1 ending with the waiting deploy's config", got, h.Entries)
	}
	expectVersion(t, d, "abalone-dev", 1)
}

func TestVerification(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	ok, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev",
		Verify: &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation("1..30")}})
	if err != nil || ok.Verification == nil || !ok.Verification.Passed || ok.Verification.Variant != "AllTraffic" {
		t.Fatalf("verification that should pass: %v %+v", err, ok.Verification)
	}
	register(t, d, "abalone", 2, true)
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", RollbackOnFailure: true,
		Verify: &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation("100..200")}})
	if !errors.Is(err, deploy.ErrVerification) || !res.RolledBack {
		t.Fatalf("failing verification with rollback: err %v, rolled back %v", err, res.RolledBack)
	}
	for _, want := range []string{"verification of version 2", "outside 100..200", "rolled back", "version 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	expectVersion(t, d, "abalone-dev", 1)
	// The change's history entry is recorded while the new version is verified; the rollback's
	// comes after it, and the endpoint is left without a deployment marker.
	h, err := d.History(ctx, deploy.HistoryRequest{Model: "abalone", Environment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range h.Entries {
		got = append(got, fmt.Sprintf("v%d %s", e.Version, e.Kind))
	}
	if g := strings.Join(got, ", "); g != "v1 deploy, v2 deploy, v1 restore" {
		t.Errorf("history after a failed verification rolled back = %s, want v1 deploy, v2 deploy, v1 restore", g)
	}
	if st, err := d.Status(ctx, deploy.StatusRequest{Model: "abalone", Environment: "dev"}); err != nil || len(st.Components) != 1 || st.Components[0].Deploying != "" {
		t.Errorf("status after the rollback: %+v, %v; want no deployment under way", st.Components, err)
	}
	_, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev",
		Verify: &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation(`^\d+$`)}})
	if !errors.Is(err, deploy.ErrVerification) || !strings.Contains(err.Error(), "stays deployed") {
		t.Fatalf("failing verification without rollback: %v", err)
	}
	expectVersion(t, d, "abalone-dev", 2)
}

func TestStatusListsEveryEnvironment(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	register(t, d, "churn", 1, true)
	for _, r := range []deploy.DeployRequest{
		{Model: "abalone", Environment: "prod", InstanceCount: 2},
		{Model: "abalone", Environment: "dev"},
		{Model: "churn", Environment: "dev"},
	} {
		if _, err := d.Deploy(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	st, err := d.Status(ctx, deploy.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, c := range st.Components {
		rows = append(rows, fmt.Sprintf("%s/%s v%d %s %d", c.Model, c.Environment, c.Version.Number, c.EndpointStatus, c.Instances))
	}
	if got, want := strings.Join(rows, "; "), "abalone/dev v2 InService 1; abalone/prod v1 InService 2; churn/dev v1 InService 1"; got != want {
		t.Fatalf("status = %s, want %s", got, want)
	}
	st, err = d.Status(ctx, deploy.StatusRequest{Model: "churn"})
	if err != nil || len(st.Components) != 1 || st.Components[0].Model != "churn" {
		t.Fatalf("status --model churn = %+v, %v", st.Components, err)
	}
}

func TestRegisterChecksArtifacts(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	_, err := d.Register(ctx, deploy.RegisterRequest{Model: "abalone", Artifact: "s3://models/nope/model.tar.gz"})
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "s3://models/nope/model.tar.gz does not exist") {
		t.Fatalf("register of a missing s3 artifact: %v", err)
	}
	_, err = d.Register(ctx, deploy.RegisterRequest{Model: "abalone", Artifact: "x.tar.gz", ArtifactData: []byte("x")})
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "S3_BUCKET_NAME") {
		t.Fatalf("register without bucket: %v", err)
	}
	r := register(t, d, "abalone", 1, false)
	if r.Version.ApprovalStatus != "PendingManualApproval" || !r.GroupCreated || !r.Uploaded || r.Version.Image != "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1" {
		t.Fatalf("register result %+v", r)
	}
	// Registering by URL an artifact already uploaded.
	again, err := d.Register(ctx, deploy.RegisterRequest{Model: "abalone", Artifact: r.ArtifactURL, Approve: true})
	if err != nil || again.Created || !again.Approved || again.Version.Number != 1 || again.Version.ApprovalStatus != "Approved" {
		t.Fatalf("re-register with --approve: %v %+v", err, again)
	}
}
