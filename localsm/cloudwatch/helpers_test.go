package cloudwatch_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	localcw "github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

const xgbImage = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"

// clock is a test clock: it moves only when the test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a local SageMaker on a test clock, with SDK clients pointed at it.
type env struct {
	t       *testing.T
	srv     *localsm.Server
	clock   *clock
	dataDir string
	cfg     aws.Config
	cw      *cloudwatch.Client
}

func isolateAWSConfig(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// start starts a server whose alarms are evaluated only when the test calls Evaluate.
func start(t *testing.T, dataDir string, c *clock) *env {
	t.Helper()
	isolateAWSConfig(t)
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	srv := localsmtest.Start(t, localsm.Options{DataDir: dataDir, AutoScalingInterval: -1,
		CloudWatch: localcw.Options{Now: c.Now, EvaluationInterval: -1}})
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIALOCALTEST", "local-secret", "")),
		config.WithBaseEndpoint(srv.URL()), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, clock: c, dataDir: dataDir, cfg: cfg, cw: cloudwatch.NewFromConfig(cfg)}
}

// clients are CloudWatch clients of the AWS SDK for Go v2 speaking each protocol CloudWatch
// clients use: its default (RPC v2 CBOR), the query protocol (AWS CLI v2, boto3) and JSON 1.0.
func (e *env) clients() map[string]*cloudwatch.Client {
	return map[string]*cloudwatch.Client{
		"cbor": e.cw,
		"query": cloudwatch.NewFromConfig(e.cfg, func(o *cloudwatch.Options) {
			o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
		}),
		"json": cloudwatch.NewFromConfig(e.cfg, func(o *cloudwatch.Options) {
			o.Protocol = awsjson.New10(cwschemas.GraniteServiceVersion20100801)
		}),
	}
}

// serve deploys the abalone model on an endpoint with one variant AllTraffic.
func (e *env) serve(endpoint string, instances int32) {
	e.t.Helper()
	ctx := context.Background()
	body, err := abalone.Artifact(1)
	if err != nil {
		e.t.Fatal(err)
	}
	s3c := s3.NewFromConfig(e.cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil && !strings.Contains(err.Error(), "BucketAlready") {
		e.t.Fatalf("create bucket: %v", err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("abalone/model.tar.gz"), Body: bytes.NewReader(body)}); err != nil {
		e.t.Fatalf("upload artifact: %v", err)
	}
	sm := sagemaker.NewFromConfig(e.cfg)
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(endpoint + "-model"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/SageMaker"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(xgbImage), ModelDataUrl: aws.String("s3://models/abalone/model.tar.gz")}}); err != nil {
		e.t.Fatalf("create model: %v", err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(endpoint + "-config"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(endpoint + "-model"),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(instances)}}}); err != nil {
		e.t.Fatalf("create endpoint config: %v", err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(endpoint), EndpointConfigName: aws.String(endpoint + "-config")}); err != nil {
		e.t.Fatalf("create endpoint: %v", err)
	}
	e.waitInService(endpoint, 0)
}

// waitInService waits until the endpoint is InService (with instances instances on its first
// variant, when instances > 0).
func (e *env) waitInService(endpoint string, instances int32) *sagemaker.DescribeEndpointOutput {
	e.t.Helper()
	w := sagemaker.NewEndpointInServiceWaiter(sagemaker.NewFromConfig(e.cfg), func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	for {
		out, err := w.WaitForOutput(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)}, time.Minute)
		if err != nil {
			e.t.Fatalf("endpoint %s did not become InService: %v", endpoint, err)
		}
		if instances == 0 || aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) == instances {
			return out
		}
	}
}

// invoke sends a prediction request; bad sends a body the model cannot read.
func (e *env) invoke(endpoint string, bad bool) error {
	body := abalone.SampleCSV()
	if bad {
		body = []byte("not,a,number\n")
	}
	_, err := sagemakerruntime.NewFromConfig(e.cfg).InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: body})
	return err
}

func variantDims(endpoint string) []cwtypes.Dimension {
	return []cwtypes.Dimension{{Name: aws.String("EndpointName"), Value: aws.String(endpoint)},
		{Name: aws.String("VariantName"), Value: aws.String("AllTraffic")}}
}

// apiError asserts an API error with CloudWatch's query error code (what the AWS CLI and boto3
// show, and what the SDK reports over CBOR and JSON). Forced onto the query protocol, the Go SDK
// reports the error's shape name instead (its own mapping), so that is accepted as well.
func apiError(t *testing.T, err error, code, want string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("expected API error %s, got %v", code, err)
	}
	shapes := map[string]string{"InvalidParameterValue": "InvalidParameterValueException", "MissingParameter": "MissingRequiredParameterException"}
	if (ae.ErrorCode() != code && ae.ErrorCode() != shapes[code]) || !strings.Contains(ae.ErrorMessage(), want) {
		t.Fatalf("error = %s: %s; want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), code, want)
	}
}

func (e *env) evaluate() {
	e.t.Helper()
	if err := e.srv.CloudWatch().Evaluate(context.Background()); err != nil {
		e.t.Fatalf("evaluate alarms: %v", err)
	}
}

func (e *env) alarm(name string) cwtypes.MetricAlarm {
	e.t.Helper()
	out, err := e.cw.DescribeAlarms(context.Background(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil {
		e.t.Fatalf("describe alarm %s: %v", name, err)
	}
	if len(out.MetricAlarms) != 1 {
		e.t.Fatalf("describe alarm %s: got %d alarms", name, len(out.MetricAlarms))
	}
	return out.MetricAlarms[0]
}
