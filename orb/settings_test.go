package orb

import (
	"context"
	"os/exec"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// The Action's data capture and serverless inputs (the orb's parameters of the same names) reach
// the configuration and the endpoint; left at their defaults they change nothing (the other
// action tests deploy plain endpoints with every input exported).
func TestActionSetsDataCaptureAndServerless(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("the action's step runs in bash, which is not installed here")
	}
	sm := localsmtest.Start(t, localsm.Options{})
	awsEnv := map[string]string{"AWS_ENDPOINT_URL": sm.URL(), "AWS_ACCESS_KEY_ID": "AKIAORBTEST", "AWS_SECRET_ACCESS_KEY": "secret"}
	registerAbalone(t, awsEnv)
	g := &githubRunner{t: t, a: loadAction(t), bin: sagedeployOnPath(t), jobEnv: awsEnv,
		ctx: map[string]string{"github.run_id": "77", "github.run_attempt": "1", "github.repository": "acme/models", "runner.temp": t.TempDir()}}
	sdk := sagemakerClient(sm.URL())
	model := map[string]string{"model-name": "abalone", "bucket": "models", "environment": "dev"}

	g.run(withVars(model, "command", "deploy", "data-capture-s3-uri", "s3://models/capture", "data-capture-percent", "40", "data-capture-mode", "input"))
	dev := describeEndpoint(t, sdk, "abalone-dev")
	cfg, err := sdk.DescribeEndpointConfig(context.Background(), &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: dev.EndpointConfigName})
	if err != nil {
		t.Fatal(err)
	}
	if dc := cfg.DataCaptureConfig; dc == nil || aws.ToInt32(dc.InitialSamplingPercentage) != 40 || len(dc.CaptureOptions) != 1 || aws.ToString(dc.DestinationS3Uri) != "s3://models/capture" {
		t.Errorf("the action's data capture inputs gave %+v; want 40%% of the input to s3://models/capture", cfg.DataCaptureConfig)
	}

	g.run(withVars(model, "command", "deploy", "endpoint-name", "abalone-sls", "serverless-memory", "2048", "serverless-max-concurrency", "4"))
	if s := describeEndpoint(t, sdk, "abalone-sls").ProductionVariants[0].CurrentServerlessConfig; s == nil || aws.ToInt32(s.MemorySizeInMB) != 2048 || aws.ToInt32(s.MaxConcurrency) != 4 {
		t.Errorf("the action's serverless inputs gave the endpoint %+v; want 2048 MB, max concurrency 4", s)
	}
}
