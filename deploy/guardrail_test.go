package deploy_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	lcw "github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
	"github.com/sagedeploy/sagedeploy/releases"
)

// flakyImage is served by localsm/testdata/flaky_server.py, which answers 500 to every other
// invocation.
const flakyImage = "123456789012.dkr.ecr.us-east-1.amazonaws.com/flaky-model:2"

// startGuardrailLocal starts a local SageMaker that serves flakyImage and runs CloudWatch and
// bakes 100 times faster than real time.
func startGuardrailLocal(t *testing.T) *local {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is needed to run the flaky model container (localsm/testdata/flaky_server.py)")
	}
	script, err := filepath.Abs("../localsm/testdata/flaky_server.py")
	if err != nil {
		t.Fatal(err)
	}
	srv := localsmtest.Start(t, localsm.Options{ImageMap: map[string]string{flakyImage: python + " " + script},
		CloudWatch: lcw.Options{PeriodScale: 0.01}})
	return &local{t: t, srv: srv, url: srv.URL()}
}

// TestDeployRolledBackByAlarm: the deployer ships a version whose container fails half its
// requests as a 20% canary guarded by an alarm on Invocation5XXErrors; under traffic the alarm
// fires, SageMaker (local) rolls back, and the deployer fails saying which alarm, with v1 serving
// and no request answered by v1 failing; the release server records the release as rolled back
// by SageMaker, naming the alarm.
func TestDeployRolledBackByAlarm(t *testing.T) {
	l := startGuardrailLocal(t)
	ctx := context.Background()
	rs := startReleaseServer(t)
	d, _ := l.deployer(nil, withReleases(rs.client("dev")))
	v1 := register(t, d, "scorer", 1, true)
	if _, err := l.sm().CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageGroupName: aws.String("scorer"),
		ModelApprovalStatus: smtypes.ModelApprovalStatusApproved,
		InferenceSpecification: &smtypes.InferenceSpecification{
			Containers:            []smtypes.ModelPackageContainerDefinition{{Image: aws.String(flakyImage), ModelDataUrl: aws.String(v1.ArtifactURL)}},
			SupportedContentTypes: []string{"text/csv"}, SupportedResponseMIMETypes: []string{"text/csv"}}}); err != nil {
		t.Fatalf("register the flaky version 2: %v", err)
	}
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "scorer", Environment: "dev", Version: 1, Timeout: time.Minute}); err != nil {
		t.Fatalf("deploy v1: %v", err)
	}
	const endpoint, alarm = "scorer-dev", "scorer-dev-5xx"
	cw := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAASSERT", "secret", "")})
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(alarm), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocation5XXErrors"),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("EndpointName"), Value: aws.String(endpoint)}, {Name: aws.String("VariantName"), Value: aws.String(deploy.DefaultVariant)}},
		Statistic:  cwtypes.StatisticSum, Period: aws.Int32(10), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("notBreaching"),
	}); err != nil {
		t.Fatalf("put metric alarm: %v", err)
	}

	load := startLoad(l, endpoint)
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "scorer", Environment: "dev", Version: 2, Timeout: time.Minute,
		Strategy: deploy.Strategy{Type: deploy.Canary, Percent: 20, Bake: 10 * time.Minute, RollbackAlarms: []string{alarm}}})
	v1Answers, v2Failures, other := load.end()
	t.Logf("v1 answered %d, v2 failed %d, other failures %q; the deployer said: %v", v1Answers, v2Failures, other, err)

	if !errors.Is(err, deploy.ErrRolledBack) || !strings.Contains(err.Error(), alarm) {
		t.Fatalf("deploy v2 = %v, want a rollback by SageMaker naming alarm %s", err, alarm)
	}
	out, derr := l.sm().DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if derr != nil || out.EndpointStatus != smtypes.EndpointStatusInService || !strings.Contains(aws.ToString(out.EndpointConfigName), "v1") {
		t.Fatalf("after the rollback: %v, status %s, config %s; want InService on v1's configuration", derr, out.EndpointStatus, aws.ToString(out.EndpointConfigName))
	}
	if res.ReleaseID == "" {
		t.Fatalf("the failed deploy reported no release: %+v", res)
	}
	rel, rerr := rs.client("dev").Release(ctx, res.ReleaseID)
	if rerr != nil || rel.Status != releases.StatusFailed || rel.Reason != releases.ReasonRolledBack || !strings.Contains(rel.FailureReason, alarm) {
		t.Fatalf("release on the server: %v, status %s, reason %q (%s); want failed, rolled back by SageMaker, naming %s",
			rerr, rel.Status, rel.Reason, rel.FailureReason, alarm)
	}
	if v2Failures == 0 {
		t.Error("no request failed on v2; the alarm cannot have fired from its errors")
	}
	if len(other) != 0 || v1Answers == 0 {
		t.Errorf("v1 answered %d requests and %d requests failed outside v2 (%q); want v1 answering with no failure", v1Answers, len(other), other)
	}
}

// load invokes an endpoint from two clients until ended, telling v1's answers (abalone
// predictions) from v2's failures (the flaky container's 500s) and anything else.
type load struct {
	mu         sync.Mutex
	v1         int
	v2Failures int
	other      []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(l *local, endpoint string) *load {
	ld := &load{stop: make(chan struct{})}
	rt := sagemakerruntime.New(sagemakerruntime.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIALOAD", "secret", ""), RetryMaxAttempts: 1})
	for range 2 {
		ld.wg.Go(func() {
			for {
				select {
				case <-ld.stop:
					return
				default:
				}
				out, err := rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
					EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
				ld.count(out, err)
			}
		})
	}
	return ld
}

func (ld *load) count(out *sagemakerruntime.InvokeEndpointOutput, err error) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	switch {
	case err != nil && strings.Contains(err.Error(), "model failed on this input"):
		ld.v2Failures++
	case err != nil:
		ld.other = append(ld.other, err.Error())
	case string(out.Body) != "ok":
		ld.v1++
	}
}

func (ld *load) end() (v1Answers, v2Failures int, other []string) {
	close(ld.stop)
	ld.wg.Wait()
	return ld.v1, ld.v2Failures, ld.other
}
