package localsm_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

const (
	testRegion = "eu-west-1"
	xgbImage   = "683313688378.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
	roleArn    = "arn:aws:iam::000000000000:role/SageMakerExecution"
	bucket     = "models"
)

// env is a local SageMaker started for one test, and SDK clients pointed at it.
type env struct {
	t       *testing.T
	srv     *localsm.Server
	dataDir string
	cfg     aws.Config
	sm      *sagemaker.Client
	s3      *s3.Client
	sts     *sts.Client
}

// isolateAWSConfig keeps the developer's ~/.aws and AWS_* variables out of the tests.
func isolateAWSConfig(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// startEnv starts a local SageMaker on a free port over dataDir (a new temporary one when
// empty) and stops it when the test ends.
func startEnv(t *testing.T, dataDir string) *env {
	t.Helper()
	return startEnvLogging(t, dataDir, testLogger(t))
}

// startEnvLogging is startEnv with the server's logs going to log.
func startEnvLogging(t *testing.T, dataDir string, log *slog.Logger) *env {
	t.Helper()
	return startEnvWith(t, localsm.Options{DataDir: dataDir, Logger: log})
}

// startEnvWith is startEnv with options of its own; DataDir defaults to a new temporary one.
func startEnvWith(t *testing.T, opts localsm.Options) *env {
	t.Helper()
	opts.DataDir = cmp.Or(opts.DataDir, t.TempDir())
	srv := localsmtest.Start(t, opts)
	return env{t: t, srv: srv, dataDir: opts.DataDir, cfg: clientConfig(t, srv, testRegion)}.withClients()
}

// clientConfig is an SDK configuration for srv, signing for region with test credentials.
func clientConfig(t *testing.T, srv *localsm.Server, region string) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIALOCALTEST", "local-secret", "")),
		config.WithBaseEndpoint(srv.URL()),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// withClients makes e's SDK clients from e.cfg.
func (e env) withClients() *env {
	e.sm = sagemaker.NewFromConfig(e.cfg)
	e.s3 = s3.NewFromConfig(e.cfg, func(o *s3.Options) { o.UsePathStyle = true })
	e.sts = sts.NewFromConfig(e.cfg)
	return &e
}

// uploadArtifact puts abalone model version v into the test bucket and returns its s3:// URL.
func (e *env) uploadArtifact(v int) string {
	e.t.Helper()
	ctx := context.Background()
	body, err := abalone.Artifact(v)
	if err != nil {
		e.t.Fatalf("abalone artifact v%d: %v", v, err)
	}
	_, err = e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned interface{ ErrorCode() string }
	if err != nil && !(errors.As(err, &owned) && strings.HasPrefix(owned.ErrorCode(), "BucketAlready")) {
		e.t.Fatalf("create bucket: %v", err)
	}
	key := fmt.Sprintf("abalone/v%d/model.tar.gz", v)
	if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		e.t.Fatalf("upload artifact: %v", err)
	}
	return fmt.Sprintf("s3://%s/%s", bucket, key)
}

// registerVersion registers an approved model package version in group and returns its ARN.
func (e *env) registerVersion(group, modelDataURL string) string {
	e.t.Helper()
	out, err := e.sm.CreateModelPackage(context.Background(), &sagemaker.CreateModelPackageInput{
		ModelPackageGroupName: aws.String(group),
		ModelApprovalStatus:   smtypes.ModelApprovalStatusApproved,
		InferenceSpecification: &smtypes.InferenceSpecification{
			Containers:                 []smtypes.ModelPackageContainerDefinition{{Image: aws.String(xgbImage), ModelDataUrl: aws.String(modelDataURL)}},
			SupportedContentTypes:      []string{"text/csv"},
			SupportedResponseMIMETypes: []string{"text/csv"},
		},
	})
	if err != nil {
		e.t.Fatalf("create model package in %s: %v", group, err)
	}
	return aws.ToString(out.ModelPackageArn)
}

// deployable creates a model from modelDataURL and an endpoint configuration with one variant.
func (e *env) deployable(model, configName, modelDataURL string, instances int32) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String(model),
		ExecutionRoleArn: aws.String(roleArn),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(xgbImage), ModelDataUrl: aws.String(modelDataURL)},
	}); err != nil {
		e.t.Fatalf("create model %s: %v", model, err)
	}
	e.config(configName, model, instances)
}

func (e *env) config(configName, model string, instances int32) {
	e.t.Helper()
	if _, err := e.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(configName),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName: aws.String("AllTraffic"), ModelName: aws.String(model),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(instances),
		}},
	}); err != nil {
		e.t.Fatalf("create endpoint config %s: %v", configName, err)
	}
}

// waitStatus polls DescribeEndpoint until the endpoint reaches want, failing on a terminal status
// other than want or after a generous deadline.
func (e *env) waitStatus(name string, want smtypes.EndpointStatus) *sagemaker.DescribeEndpointOutput {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last *sagemaker.DescribeEndpointOutput
	for time.Now().Before(deadline) {
		out, err := e.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if err != nil {
			e.t.Fatalf("describe endpoint %s: %v", name, err)
		}
		last = out
		if out.EndpointStatus == want {
			return out
		}
		if want != smtypes.EndpointStatusFailed && out.EndpointStatus == smtypes.EndpointStatusFailed {
			e.t.Fatalf("endpoint %s failed while waiting for %s: %s", name, want, aws.ToString(out.FailureReason))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("endpoint %s did not reach %s within 60s; last status %s (%s)", name, want, last.EndpointStatus, aws.ToString(last.FailureReason))
	return nil
}

// waitLeaves polls DescribeEndpoint until the endpoint is no longer from and returns what it
// became, so a test can assert the transition itself.
func (e *env) waitLeaves(name string, from smtypes.EndpointStatus) *sagemaker.DescribeEndpointOutput {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err := e.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if err != nil {
			e.t.Fatalf("describe endpoint %s: %v", name, err)
		}
		if out.EndpointStatus != from {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("endpoint %s is still %s after 60s", name, from)
	return nil
}

// apiError asserts that err is an API error with code and a message containing want.
func apiError(t *testing.T, err error, code, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %s error (%q), got success", code, want)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("expected an API error %s, got %T: %v", code, err, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code = %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if !strings.Contains(ae.ErrorMessage(), want) {
		t.Fatalf("error message = %q, want it to contain %q", ae.ErrorMessage(), want)
	}
}
