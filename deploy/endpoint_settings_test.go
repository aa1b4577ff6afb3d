package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

func (l *local) s3() *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAASSERT", "secret", "")})
}

// waitKeys polls the local S3 until prefix holds at least one object; data capture and async
// answers are written after the call that causes them returns.
func waitKeys(t *testing.T, l *local, bucket, prefix string) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := l.s3().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
		}
		if len(out.Contents) > 0 {
			keys := make([]string, len(out.Contents))
			for i, o := range out.Contents {
				keys[i] = aws.ToString(o.Key)
			}
			return keys
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing appeared under s3://%s/%s within 30s", bucket, prefix)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeployWithDataCaptureCapturesInvocations(t *testing.T) {
	t.Parallel()
	srv := localsmtest.Start(t, localsm.Options{CaptureFlushInterval: 20 * time.Millisecond})
	l := &local{t: t, srv: srv, url: srv.URL()}
	d, ev := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	capture := &deploy.DataCapture{DestinationS3URI: "s3://models/capture", SamplingPercent: 100, Mode: "both"}
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Settings: deploy.EndpointSettings{DataCapture: capture}})
	if err != nil {
		t.Fatalf("deploy with data capture: %v\n%s", err, ev.text())
	}
	cfg, err := l.sm().DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String(res.EndpointConfigName)})
	if err != nil {
		t.Fatal(err)
	}
	if dc := cfg.DataCaptureConfig; dc == nil || !aws.ToBool(dc.EnableCapture) || aws.ToString(dc.DestinationS3Uri) != "s3://models/capture" ||
		aws.ToInt32(dc.InitialSamplingPercentage) != 100 || len(dc.CaptureOptions) != 2 {
		t.Fatalf("configuration %s has data capture %+v; want input and output, 100%%, to s3://models/capture", res.EndpointConfigName, cfg.DataCaptureConfig)
	}
	for range 3 {
		if _, err := d.Invoke(ctx, deploy.InvokeRequest{EndpointName: "abalone-dev", Body: abalone.SampleCSV(), ContentType: "text/csv"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range waitKeys(t, l, "models", "capture/abalone-dev/AllTraffic/") {
		if !strings.HasSuffix(k, ".jsonl") {
			t.Errorf("capture file %s is not JSON Lines", k)
		}
	}
}

func TestServerlessDeployServesFromAServerlessVariant(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, ev := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	// An endpoint on instances moves to serverless capacity: the instances it ran are not carried over.
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", InstanceCount: 2}); err != nil {
		t.Fatal(err)
	}
	sls := &deploy.Serverless{MemoryMB: 2048, MaxConcurrency: 5}
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Settings: deploy.EndpointSettings{Serverless: sls}})
	if err != nil {
		t.Fatalf("serverless deploy: %v\n%s", err, ev.text())
	}
	pv := describe(t, l, "abalone-dev").ProductionVariants[0]
	if s := pv.CurrentServerlessConfig; s == nil || aws.ToInt32(s.MemorySizeInMB) != 2048 || aws.ToInt32(s.MaxConcurrency) != 5 {
		t.Errorf("DescribeEndpoint shows serverless config %+v; want 2048 MB, max concurrency 5", pv.CurrentServerlessConfig)
	}
	if res.InstanceType != "" || res.InstanceCount != 0 {
		t.Errorf("a serverless deploy reports %s × %d; want no instances", res.InstanceType, res.InstanceCount)
	}
	out, err := d.Invoke(ctx, deploy.InvokeRequest{EndpointName: "abalone-dev", Body: abalone.SampleCSV(), ContentType: "text/csv"})
	if err != nil || len(predictions(t, string(out.Body))) == 0 {
		t.Fatalf("the serverless endpoint answered %q, %v", out.Body, err)
	}
}

func TestAsyncDeployWritesAnswersToS3(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, ev := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	async := &deploy.AsyncInference{OutputS3URI: "s3://models/async/out", FailureS3URI: "s3://models/async/failed", MaxConcurrentInvocations: 2}
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Settings: deploy.EndpointSettings{Async: async}}); err != nil {
		t.Fatalf("async deploy: %v\n%s", err, ev.text())
	}
	if _, err := l.s3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("async/in/rows.csv"), Body: bytes.NewReader(abalone.SampleCSV())}); err != nil {
		t.Fatal(err)
	}
	rt := sagemakerruntime.New(sagemakerruntime.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAASSERT", "secret", "")})
	out, err := rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("abalone-dev"),
		InputLocation: aws.String("s3://models/async/in/rows.csv"), ContentType: aws.String("text/csv")})
	if err != nil {
		t.Fatalf("InvokeEndpointAsync: %v", err)
	}
	key := strings.TrimPrefix(aws.ToString(out.OutputLocation), "s3://models/")
	if !strings.HasPrefix(key, "async/out/") {
		t.Fatalf("the answer goes to %s; want under s3://models/async/out", aws.ToString(out.OutputLocation))
	}
	waitKeys(t, l, "models", key)
	obj, err := l.s3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("models"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	body, err := io.ReadAll(obj.Body)
	if err != nil || len(predictions(t, string(body))) == 0 {
		t.Errorf("async answer %q (%v); want predictions", body, err)
	}
}

// Bad settings are the user's mistake: they are refused, naming the flag, before any AWS call.
func TestBadEndpointSettingsAreRefusedBeforeAnyCall(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rec := &calls{}
	d, _ := l.deployer(rec)
	for name, tc := range map[string]struct {
		req  deploy.DeployRequest
		want string
	}{
		"capture without s3": {deploy.DeployRequest{Settings: deploy.EndpointSettings{DataCapture: &deploy.DataCapture{DestinationS3URI: "bucket/x", SamplingPercent: 100}}}, "--data-capture-s3-uri"},
		"capture over 100%":  {deploy.DeployRequest{Settings: deploy.EndpointSettings{DataCapture: &deploy.DataCapture{DestinationS3URI: "s3://b/x", SamplingPercent: 101}}}, "--data-capture-percent"},
		"capture mode":       {deploy.DeployRequest{Settings: deploy.EndpointSettings{DataCapture: &deploy.DataCapture{DestinationS3URI: "s3://b/x", Mode: "requests"}}}, "--data-capture-mode"},
		"serverless memory":  {deploy.DeployRequest{Settings: deploy.EndpointSettings{Serverless: &deploy.Serverless{MemoryMB: 1500, MaxConcurrency: 1}}}, "--serverless-memory"},
		"provisioned > max":  {deploy.DeployRequest{Settings: deploy.EndpointSettings{Serverless: &deploy.Serverless{MemoryMB: 1024, MaxConcurrency: 2, ProvisionedConcurrency: 3}}}, "--serverless-provisioned"},
		"serverless + type":  {deploy.DeployRequest{InstanceType: "ml.m5.large", Settings: deploy.EndpointSettings{Serverless: &deploy.Serverless{MemoryMB: 1024, MaxConcurrency: 2}}}, "--instance-type"},
		"serverless + async": {deploy.DeployRequest{Settings: deploy.EndpointSettings{Serverless: &deploy.Serverless{MemoryMB: 1024, MaxConcurrency: 2}, Async: &deploy.AsyncInference{OutputS3URI: "s3://b/o"}}}, "async"},
		"async without s3":   {deploy.DeployRequest{Settings: deploy.EndpointSettings{Async: &deploy.AsyncInference{OutputS3URI: "out"}}}, "--async-output-s3"},
	} {
		tc.req.Model, tc.req.Environment = "abalone", "dev"
		_, err := d.Deploy(ctx, tc.req)
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "abalone in dev") {
			t.Errorf("%s: error %v; want an invalid-request error for abalone in dev naming %s", name, err, tc.want)
		}
	}
	if n := rec.names(); len(n) > 0 {
		t.Errorf("refused deploys made AWS calls: %v", n)
	}
}

// The plan shows the settings a deploy would add: the capture asked for and, on an endpoint
// that has none, nothing before.
func TestPlanShowsEndpointSettings(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	p, err := d.Plan(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Settings: deploy.EndpointSettings{
		DataCapture: &deploy.DataCapture{DestinationS3URI: "s3://models/capture", SamplingPercent: 25, Mode: "input"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c := change(t, p, "data_capture"); c.From != "" || c.To != "25% input to s3://models/capture" || !c.Changed || p.Action != deploy.PlanUpdate {
		t.Errorf("plan of adding data capture: %+v, action %s; want none → 25%% input to s3://models/capture, an update", c, p.Action)
	}
	for _, c := range p.Changes {
		if c.Field == "serverless" || c.Field == "async" {
			t.Errorf("plan lists %s, which neither side has: %+v", c.Field, c)
		}
	}
}
