package localsm_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sagedeploy/sagedeploy/localsm"
)

func serverlessVariant(model string, memory, maxConcurrency int32) smtypes.ProductionVariant {
	return smtypes.ProductionVariant{VariantName: aws.String("AllTraffic"), ModelName: aws.String(model),
		ServerlessConfig: &smtypes.ProductionVariantServerlessConfig{MemorySizeInMB: aws.Int32(memory), MaxConcurrency: aws.Int32(maxConcurrency)}}
}

// TestServerlessThrottlesPastMaxConcurrency: a serverless endpoint with MaxConcurrency 1 answers
// a second request made while the first is in flight with SageMaker's 429 ThrottlingException,
// and serves again once the first is done.
func TestServerlessThrottlesPastMaxConcurrency(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnvWith(t, localsm.Options{ImageMap: map[string]string{byoImage: buildModelServer(t)}, Logger: testLogger(t)})
	ctx := context.Background()
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("scorer"), ExecutionRoleArn: aws.String(roleArn),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(byoImage), ModelDataUrl: aws.String(e.uploadArtifact(1))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("scorer-serverless"),
		ProductionVariants: []smtypes.ProductionVariant{serverlessVariant("scorer", 2048, 1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("scorer"), EndpointConfigName: aws.String("scorer-serverless")}); err != nil {
		t.Fatal(err)
	}
	d := e.waitStatus("scorer", smtypes.EndpointStatusInService)
	if s := d.ProductionVariants[0].CurrentServerlessConfig; s == nil || aws.ToInt32(s.MaxConcurrency) != 1 || aws.ToInt32(s.MemorySizeInMB) != 2048 {
		t.Errorf("DescribeEndpoint CurrentServerlessConfig = %+v, want 2048 MB and MaxConcurrency 1", s)
	}
	_, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("scorer"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(2)}}})
	apiError(t, err, "ValidationException", "is serverless")

	hold := filepath.Join(t.TempDir(), "hold")
	if err := syscall.Mkfifo(hold, 0o600); err != nil {
		t.Skipf("named pipes are needed to hold a request open: %v", err)
	}
	rt := sagemakerruntime.NewFromConfig(e.cfg)
	invoke := func(body string) error {
		_, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("scorer"),
			ContentType: aws.String("text/plain"), Body: []byte(body)})
		return err
	}
	first := make(chan error, 1)
	go func() { first <- invoke("fifo:" + hold) }()
	// Opening the pipe for writing returns once the model server has opened it: the first
	// request is then in flight.
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(hold, os.O_WRONLY, 0)
		if err == nil {
			opened <- f
		}
	}()
	var w *os.File
	select {
	case w = <-opened:
	case err := <-first:
		t.Fatalf("the first invocation ended before the model server held it: %v", err)
	}

	err = invoke("second")
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusTooManyRequests {
		t.Fatalf("second concurrent invocation: %v, want HTTP 429", err)
	}
	apiError(t, err, "ThrottlingException", "MaxConcurrency of 1")

	w.Close()
	if err := <-first; err != nil {
		t.Fatalf("the held invocation failed: %v", err)
	}
	if err := invoke("third"); err != nil {
		t.Errorf("an invocation after the first finished: %v", err)
	}
}

// TestServerlessConfigValidation: ServerlessConfig is checked as SageMaker checks it.
func TestServerlessConfigValidation(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	e.deployable("abalone-v1", "plain", e.uploadArtifact(1), 1)
	ctx := context.Background()
	create := func(v ...smtypes.ProductionVariant) error {
		_, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("sls"), ProductionVariants: v})
		return err
	}
	apiError(t, create(serverlessVariant("abalone-v1", 1500, 5)), "ValidationException", "must be one of 1024, 2048")
	apiError(t, create(serverlessVariant("abalone-v1", 1024, 500)), "ValidationException", "serverlessConfig.maxConcurrency")

	withInstances := serverlessVariant("abalone-v1", 1024, 5)
	withInstances.InstanceType, withInstances.InitialInstanceCount = smtypes.ProductionVariantInstanceTypeMlM5Large, aws.Int32(1)
	apiError(t, create(withInstances), "ValidationException", "both ServerlessConfig and InstanceType")

	provisioned := serverlessVariant("abalone-v1", 1024, 5)
	provisioned.ServerlessConfig.ProvisionedConcurrency = aws.Int32(6)
	apiError(t, create(provisioned), "ValidationException", "ProvisionedConcurrency 6")
	provisioned.ServerlessConfig.ProvisionedConcurrency = aws.Int32(500)
	apiError(t, create(provisioned), "ValidationException", "serverlessConfig.provisionedConcurrency")
	provisioned.ServerlessConfig.ProvisionedConcurrency = aws.Int32(2)

	mixed := smtypes.ProductionVariant{VariantName: aws.String("Instances"), ModelName: aws.String("abalone-v1"),
		InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}
	apiError(t, create(serverlessVariant("abalone-v1", 1024, 5), mixed), "ValidationException", "mixes serverless and instance-based")

	if err := create(provisioned); err != nil {
		t.Fatal(err)
	}
	dc, err := e.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("sls")})
	if err != nil || aws.ToInt32(dc.ProductionVariants[0].ServerlessConfig.ProvisionedConcurrency) != 2 {
		t.Errorf("DescribeEndpointConfig does not give ProvisionedConcurrency back: %+v (%v)", dc, err)
	}
}
