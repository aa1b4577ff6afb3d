package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// deployAbalone serves abalone v1 as endpoint name on a fresh local SageMaker of account and
// returns a runtime client for it.
func deployAbalone(t *testing.T, account, name string) *sagemakerruntime.Client {
	t.Helper()
	srv := localsmtest.Start(t, localsm.Options{Account: account})
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("AKID", "secret", "")
	s3c := awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true, Credentials: creds})
	sm := sagemaker.New(sagemaker.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), Credentials: creds})
	art, err := abalone.Artifact(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("abalone/v1/model.tar.gz"), Body: bytes.NewReader(art)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(name), ExecutionRoleArn: aws.String("arn:aws:iam::" + account + ":role/sm"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"),
			ModelDataUrl: aws.String("s3://models/abalone/v1/model.tar.gz")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(name),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	waiter := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	})
	if err := waiter.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, 2*time.Minute); err != nil {
		t.Fatalf("endpoint %s: %v", name, err)
	}
	return sagemakerruntime.New(sagemakerruntime.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), Credentials: creds})
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// TestBodyLimitIsSixMiB: SageMaker's service model allows 6 MiB (6291456 bytes): a body of
// exactly that size is predicted, one byte more is refused as SageMaker refuses it, and a
// missing endpoint is named with its account.
func TestBodyLimitIsSixMiB(t *testing.T) {
	rt := deployAbalone(t, "123456789012", "abalone")
	ctx := context.Background()
	invoke := func(endpoint string, body []byte) (*sagemakerruntime.InvokeEndpointOutput, error) {
		return rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: body})
	}

	const limit = 6291456
	row := strings.SplitN(string(abalone.SampleCSV()), "\n", 2)[0] + "\n"
	rows := limit / len(row)
	body := bytes.Repeat([]byte(row), rows)
	// Pad the last row's first number with leading zeros to land on the limit exactly.
	body = append(body[:len(body)-len(row)], append(bytes.Repeat([]byte("0"), limit-len(body)), row...)...)
	if len(body) != limit {
		t.Fatalf("built a body of %d bytes", len(body))
	}
	out, err := invoke("abalone", body)
	if err != nil {
		t.Fatalf("a body of exactly 6291456 bytes was refused: %v", err)
	}
	if n := bytes.Count(out.Body, []byte("\n")); n != rows {
		t.Errorf("%d predictions for %d rows", n, rows)
	}

	_, err = invoke("abalone", append(body, '\n'))
	var ve *types.ValidationError
	if !errors.As(err, &ve) || httpStatus(err) != 413 || !strings.HasPrefix(ve.ErrorMessage(), "HTTP content length exceeded 6291456 bytes.") {
		t.Errorf("a body of 6291457 bytes: %v (status %d); want 413 \"HTTP content length exceeded 6291456 bytes.\"", err, httpStatus(err))
	}

	_, err = invoke("nope", abalone.SampleCSV())
	if !errors.As(err, &ve) || ve.ErrorMessage() != "Endpoint nope of account 123456789012 not found." {
		t.Errorf("missing endpoint: %v; want SageMaker's \"Endpoint nope of account 123456789012 not found.\"", err)
	}
}
