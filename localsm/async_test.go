package localsm_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// waitObject polls S3 for an s3:// URL until it exists, as users of async endpoints do, and
// returns its body.
func (e *env) waitObject(url string) []byte {
	e.t.Helper()
	key, ok := strings.CutPrefix(url, "s3://"+bucket+"/")
	if !ok {
		e.t.Fatalf("%s is not in bucket %s", url, bucket)
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not appear within 30s", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
	obj, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatalf("get %s: %v", url, err)
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(obj.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// TestInvokeEndpointAsyncWritesOutputToS3: InvokeEndpointAsync answers at once with the
// InferenceId and where the result will be; the prediction then appears at
// S3OutputPath/ID.out, and a request whose input is missing writes why to the failure path.
func TestInvokeEndpointAsyncWritesOutputToS3(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	ctx := context.Background()
	e.deployable("abalone-v1", "plain", e.uploadArtifact(1), 1)
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("async"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("abalone-v1"),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}},
		AsyncInferenceConfig: &smtypes.AsyncInferenceConfig{
			ClientConfig: &smtypes.AsyncInferenceClientConfig{MaxConcurrentInvocationsPerInstance: aws.Int32(2)},
			OutputConfig: &smtypes.AsyncInferenceOutputConfig{S3OutputPath: aws.String("s3://models/async/out/"),
				S3FailurePath: aws.String("s3://models/async/failed")},
		},
	}); err != nil {
		t.Fatal(err)
	}
	for name, config := range map[string]string{"scorer": "async", "realtime": "plain"} {
		if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(config)}); err != nil {
			t.Fatal(err)
		}
	}
	if d := e.waitStatus("scorer", smtypes.EndpointStatusInService); d.AsyncInferenceConfig == nil {
		t.Error("DescribeEndpoint shows no AsyncInferenceConfig")
	}
	// A deployer copying the configuration gets every setting back.
	dc, err := e.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("async")})
	if err != nil || dc.AsyncInferenceConfig == nil || aws.ToString(dc.AsyncInferenceConfig.OutputConfig.S3FailurePath) != "s3://models/async/failed" ||
		aws.ToInt32(dc.AsyncInferenceConfig.ClientConfig.MaxConcurrentInvocationsPerInstance) != 2 {
		t.Errorf("DescribeEndpointConfig AsyncInferenceConfig = %+v (%v)", dc.AsyncInferenceConfig, err)
	}
	if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("async/in/rows.csv"),
		Body: bytes.NewReader(abalone.SampleCSV())}); err != nil {
		t.Fatal(err)
	}

	rt := sagemakerruntime.NewFromConfig(e.cfg)
	out, err := rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("scorer"),
		InputLocation: aws.String("s3://models/async/in/rows.csv"), ContentType: aws.String("text/csv")})
	if err != nil {
		t.Fatalf("InvokeEndpointAsync: %v", err)
	}
	id := aws.ToString(out.InferenceId)
	if id == "" || aws.ToString(out.OutputLocation) != "s3://models/async/out/"+id+".out" ||
		aws.ToString(out.FailureLocation) != "s3://models/async/failed/"+id+"-error.out" {
		t.Fatalf("InvokeEndpointAsync answered InferenceId %q, OutputLocation %q, FailureLocation %q",
			id, aws.ToString(out.OutputLocation), aws.ToString(out.FailureLocation))
	}
	got := parseFloats(t, e.waitObject(aws.ToString(out.OutputLocation)))
	want, err := abalone.ExpectedCSV(1)
	if err != nil {
		t.Fatal(err)
	}
	// The reference predictions are printed with fewer digits than the server sends.
	if exp := parseFloats(t, want); len(got) != len(exp) || float32(got[0]) != float32(exp[0]) {
		t.Errorf("async output %v, want %v", got, exp)
	}

	missing, err := rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("scorer"),
		InputLocation: aws.String("s3://models/async/in/nothing.csv"), InferenceId: aws.String("my-request-1")})
	if err != nil {
		t.Fatalf("InvokeEndpointAsync with a missing input: %v", err)
	}
	if aws.ToString(missing.InferenceId) != "my-request-1" {
		t.Errorf("InferenceId %q, want the one given", aws.ToString(missing.InferenceId))
	}
	if reason := string(e.waitObject(aws.ToString(missing.FailureLocation))); !strings.Contains(reason, `no object "async/in/nothing.csv"`) {
		t.Errorf("failure file says %q, want it to name the missing input", reason)
	}

	_, err = rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("realtime"),
		InputLocation: aws.String("s3://models/async/in/rows.csv")})
	apiError(t, err, "ValidationError", "not an asynchronous endpoint")
}
