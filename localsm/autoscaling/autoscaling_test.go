package autoscaling_test

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
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

type env struct {
	t     *testing.T
	srv   *localsm.Server
	clock *clock
	cfg   aws.Config
	aas   *aas.Client
	sm    *sagemaker.Client
}

func start(t *testing.T, dir string, c *clock) *env {
	t.Helper()
	home := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := localsmtest.Start(t, localsm.Options{DataDir: dir, AutoScalingInterval: -1,
		CloudWatch: cloudwatch.Options{Now: c.Now, EvaluationInterval: -1}})
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIALOCALTEST", "local-secret", "")),
		config.WithBaseEndpoint(srv.URL()), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, clock: c, cfg: cfg, aas: aas.NewFromConfig(cfg), sm: sagemaker.NewFromConfig(cfg)}
}

// serve deploys the abalone model on an endpoint with one variant AllTraffic and one instance.
func (e *env) serve(endpoint string) {
	e.t.Helper()
	ctx := context.Background()
	body, err := abalone.Artifact(1)
	if err != nil {
		e.t.Fatal(err)
	}
	s3c := s3.NewFromConfig(e.cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		e.t.Fatalf("create bucket: %v", err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("m.tar.gz"), Body: bytes.NewReader(body)}); err != nil {
		e.t.Fatalf("upload artifact: %v", err)
	}
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("m"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/SageMaker"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"), ModelDataUrl: aws.String("s3://models/m.tar.gz")}}); err != nil {
		e.t.Fatalf("create model: %v", err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("c"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("m"),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		e.t.Fatalf("create endpoint config: %v", err)
	}
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(endpoint), EndpointConfigName: aws.String("c")}); err != nil {
		e.t.Fatalf("create endpoint: %v", err)
	}
	e.waitInstances(endpoint, 1)
}

// waitInstances waits until the endpoint is InService with n instances on AllTraffic.
func (e *env) waitInstances(endpoint string, n int32) *sagemaker.DescribeEndpointOutput {
	e.t.Helper()
	w := sagemaker.NewEndpointInServiceWaiter(e.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	for {
		out, err := w.WaitForOutput(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)}, time.Minute)
		if err != nil {
			e.t.Fatalf("endpoint %s did not become InService: %v", endpoint, err)
		}
		if aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) == n {
			return out
		}
	}
}

func apiError(t *testing.T, err error, code, want string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), want) {
		t.Fatalf("error = %v; want %s containing %q", err, code, want)
	}
}

const resource = "endpoint/scaled/variant/AllTraffic"

func (e *env) register(minCap, maxCap int32) {
	e.t.Helper()
	if _, err := e.aas.RegisterScalableTarget(context.Background(), &aas.RegisterScalableTargetInput{
		ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceId: aws.String(resource),
		ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount,
		MinCapacity:       aws.Int32(minCap), MaxCapacity: aws.Int32(maxCap)}); err != nil {
		e.t.Fatalf("RegisterScalableTarget: %v", err)
	}
}

func (e *env) putPolicy(target float64) {
	e.t.Helper()
	if _, err := e.aas.PutScalingPolicy(context.Background(), &aas.PutScalingPolicyInput{
		PolicyName: aws.String("invocations"), ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceId: aws.String(resource),
		ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount, PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue:                   aws.Float64(target),
			PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeSageMakerVariantInvocationsPerInstance},
			ScaleInCooldown:               aws.Int32(600), ScaleOutCooldown: aws.Int32(60)}}); err != nil {
		e.t.Fatalf("PutScalingPolicy: %v", err)
	}
}

// Targets and policies round-trip through the SDK, survive a restart, and are refused with
// Application Auto Scaling's errors when they name what does not exist.
func TestTargetsAndPoliciesRoundTrip(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	e := start(t, dir, c)
	ctx := context.Background()
	_, err := e.aas.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
		ResourceId: aws.String(resource), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount,
		MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(3)})
	apiError(t, err, "ValidationException", "endpoint scaled has no variant AllTraffic")
	e.serve("scaled")
	e.register(1, 3)
	_, err = e.aas.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{PolicyName: aws.String("x"), ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
		ResourceId: aws.String("endpoint/other/variant/AllTraffic"), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount,
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(1), PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeSageMakerVariantInvocationsPerInstance}}})
	apiError(t, err, "ObjectNotFoundException", "No scalable target registered")
	e.putPolicy(70)

	if err := e.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e = start(t, dir, c)
	targets, err := e.aas.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker})
	if err != nil || len(targets.ScalableTargets) != 1 {
		t.Fatalf("DescribeScalableTargets after a restart = %+v, %v; want the registered variant", targets, err)
	}
	if tg := targets.ScalableTargets[0]; aws.ToString(tg.ResourceId) != resource || aws.ToInt32(tg.MinCapacity) != 1 || aws.ToInt32(tg.MaxCapacity) != 3 || aws.ToTime(tg.CreationTime).IsZero() {
		t.Fatalf("scalable target = %+v, want %s with capacity 1..3", tg, resource)
	}
	policies, err := e.aas.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceId: aws.String(resource)})
	if err != nil || len(policies.ScalingPolicies) != 1 {
		t.Fatalf("DescribeScalingPolicies = %+v, %v; want the policy", policies, err)
	}
	p := policies.ScalingPolicies[0]
	if aws.ToString(p.PolicyName) != "invocations" || p.PolicyType != aastypes.PolicyTypeTargetTrackingScaling ||
		aws.ToFloat64(p.TargetTrackingScalingPolicyConfiguration.TargetValue) != 70 || !strings.Contains(aws.ToString(p.PolicyARN), "policyName/invocations") {
		t.Fatalf("policy = %+v, want target tracking at 70 invocations per instance", p)
	}
	if _, err := e.aas.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{PolicyName: aws.String("invocations"), ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
		ResourceId: aws.String(resource), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount}); err != nil {
		t.Fatalf("DeleteScalingPolicy: %v", err)
	}
	if _, err := e.aas.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
		ResourceId: aws.String(resource), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount}); err != nil {
		t.Fatalf("DeregisterScalableTarget: %v", err)
	}
	_, err = e.aas.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{ServiceNamespace: aastypes.ServiceNamespaceSagemaker,
		ResourceId: aws.String(resource), ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount})
	apiError(t, err, "ObjectNotFoundException", "No scalable target registered for service namespace: sagemaker, resource ID: "+resource)
}

// Under load above the target, the variant scales out through the control plane, visible in
// DescribeEndpoint, and serves with the new instances.
func TestScalesOutUnderLoad(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	e := start(t, t.TempDir(), c)
	ctx := context.Background()
	e.serve("scaled")
	e.register(1, 3)
	e.putPolicy(4)
	rt := sagemakerruntime.NewFromConfig(e.cfg)
	for range 10 {
		if _, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("scaled"),
			ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()}); err != nil {
			t.Fatalf("invoke: %v", err)
		}
	}
	c.advance(time.Minute)
	if err := e.srv.AutoScaling().Evaluate(ctx); err != nil {
		t.Fatalf("evaluate scaling policies: %v", err)
	}
	// 10 invocations a minute on one instance, 4 per instance wanted: ceil(10/4) = 3.
	out := e.waitInstances("scaled", 3)
	if v := out.ProductionVariants[0]; aws.ToInt32(v.DesiredInstanceCount) != 3 {
		t.Fatalf("DescribeEndpoint desired instances = %d, want 3", aws.ToInt32(v.DesiredInstanceCount))
	}
	// The next minute has no traffic: no data, no scale-in (as AWS target tracking).
	c.advance(time.Minute)
	if err := e.srv.AutoScaling().Evaluate(ctx); err != nil {
		t.Fatalf("evaluate scaling policies: %v", err)
	}
	if out := e.waitInstances("scaled", 3); aws.ToInt32(out.ProductionVariants[0].DesiredInstanceCount) != 3 {
		t.Fatalf("with no traffic the variant went to %d instances, want it to stay at 3", aws.ToInt32(out.ProductionVariants[0].DesiredInstanceCount))
	}
}
