package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// Bad endpoint settings stop the command with exit 2 and the flag or variable to fix, before any
// AWS call (the endpoint URL answers nothing: a call would fail differently, with exit 1).
func TestEndpointSettingFlagsAreRefusedBeforeAnyAWSCall(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "MODEL_NAME": "abalone"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range env {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{env, []string{"deploy", "--env", "dev", "--data-capture-s3-uri", "models/capture"}, []string{"abalone in dev", "s3://", "--data-capture-s3-uri"}},
		{env, []string{"deploy", "--env", "dev", "--data-capture-s3-uri", "s3://models/c", "--data-capture-percent", "120"}, []string{"120%", "--data-capture-percent"}},
		{env, []string{"deploy", "--env", "dev", "--data-capture-s3-uri", "s3://models/c", "--data-capture-mode", "all"}, []string{`"all"`, "input, output, both"}},
		{env, []string{"deploy", "--env", "dev", "--data-capture-percent", "50"}, []string{"need --data-capture-s3-uri"}},
		{env, []string{"deploy", "--env", "dev", "--serverless-memory", "3000", "--serverless-max-concurrency", "2"}, []string{"3000 MB", "--serverless-memory"}},
		{env, []string{"deploy", "--env", "dev", "--serverless-memory", "2048"}, []string{"max concurrency 0", "--serverless-max-concurrency"}},
		{env, []string{"deploy", "--env", "dev", "--serverless-memory", "2048", "--serverless-max-concurrency", "2", "--instance-type", "ml.m5.large"}, []string{"no instances", "--instance-type"}},
		{env, []string{"promote", "--to", "prod", "--serverless-memory", "2048", "--serverless-max-concurrency", "2", "--async-output-s3", "s3://m/o"}, []string{"abalone in prod", "async"}},
		{with("SAGEDEPLOY_ASYNC_OUTPUT_S3", "out/"), []string{"deploy", "--env", "dev"}, []string{"--async-output-s3", `"out/"`}},
		{with("SAGEDEPLOY_SERVERLESS_MEMORY", "lots"), []string{"create-endpoint-config", "--env", "dev"}, []string{"SAGEDEPLOY_SERVERLESS_MEMORY", "lots"}},
		{env, []string{"create-endpoint-config", "--env", "dev", "--async-failure-s3", "s3://m/f"}, []string{"need --async-output-s3"}},
	} {
		r := dpRun(t, tc.env, "", tc.args...)
		if r.code != 2 {
			t.Errorf("sagedeploy %s: exit %d, want 2 (%s)", strings.Join(tc.args, " "), r.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("sagedeploy %s: stderr %q does not say %q", strings.Join(tc.args, " "), r.stderr, w)
			}
		}
	}
}

// The pipeline file's data capture and tags reach the configuration a deploy creates, and the
// orb's environment variables make a serverless configuration without a file.
func TestPipelineFileAndOrbVariablesSetEndpointSettings(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	dpOK(t, l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models"), "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve")
	file := writePipeline(t, t.TempDir(), "model: abalone\nenvironments:\n  - name: dev\n    endpoint_url: "+l.url+
		"\n    data_capture: {enabled: true, sampling_percent: 30, destination: s3://models/capture}\n    tags: {team: forecasting}\n")
	res := dpJSON(t, dpOK(t, l.env(), "deploy", "--pipeline", file, "--env", "dev", "-o", "json"))
	sm := sagemaker.New(sagemaker.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.url), Credentials: credentials.NewStaticCredentialsProvider("A", "B", "")})
	cfg, err := sm.DescribeEndpointConfig(context.Background(), &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String(res["endpoint_config_name"].(string))})
	if err != nil {
		t.Fatal(err)
	}
	if dc := cfg.DataCaptureConfig; dc == nil || aws.ToInt32(dc.InitialSamplingPercentage) != 30 || aws.ToString(dc.DestinationS3Uri) != "s3://models/capture" {
		t.Errorf("the pipeline file's data_capture gave the configuration %+v; want 30%% to s3://models/capture", cfg.DataCaptureConfig)
	}
	tags, err := sm.ListTags(context.Background(), &sagemaker.ListTagsInput{ResourceArn: cfg.EndpointConfigArn})
	if err != nil {
		t.Fatal(err)
	}
	if !hasTag(tags.Tags, "team", "forecasting") {
		t.Errorf("the configuration's tags %v lack team=forecasting from the pipeline file", tags.Tags)
	}

	dpOK(t, l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "qa", "SAGEDEPLOY_SERVERLESS_MEMORY", "1024", "SAGEDEPLOY_SERVERLESS_MAX_CONCURRENCY", "3"), "deploy", "--pipeline", "none")
	if s := l.describe("abalone-qa").ProductionVariants[0].CurrentServerlessConfig; s == nil || aws.ToInt32(s.MaxConcurrency) != 3 {
		t.Errorf("SAGEDEPLOY_SERVERLESS_* gave the endpoint serverless config %+v; want 1024 MB, max concurrency 3", s)
	}
}

func hasTag(tags []types.Tag, k, v string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}
