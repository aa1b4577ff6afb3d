package localsm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/localsm"
)

// TestRestartKeepsEverything closes the server and starts another on the same data directory:
// every resource, version, tag and S3 object is still there, and InService endpoints serve the
// same version again.
func TestRestartKeepsEverything(t *testing.T) {
	isolateAWSConfig(t)
	dir := t.TempDir()
	ctx := context.Background()

	first := startEnv(t, dir)
	if _, err := first.sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("abalone"),
		Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("ml")}}}); err != nil {
		t.Fatal(err)
	}
	first.registerVersion("abalone", first.uploadArtifact(1))
	first.registerVersion("abalone", first.uploadArtifact(2))
	first.deployable("m1", "cfg1", "s3://models/abalone/v1/model.tar.gz", 1)
	first.deployable("m2", "cfg2", "s3://models/abalone/v2/model.tar.gz", 2)
	for _, ep := range []struct{ name, cfg string }{{"ep-a", "cfg1"}, {"ep-b", "cfg2"}} {
		if _, err := first.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(ep.name), EndpointConfigName: aws.String(ep.cfg)}); err != nil {
			t.Fatal(err)
		}
		first.waitStatus(ep.name, smtypes.EndpointStatusInService)
	}
	// ep-b is updated to v1, so a restart must bring back its latest configuration.
	if _, err := first.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep-b"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	first.waitStatus("ep-b", smtypes.EndpointStatusInService)
	beforeA, err := first.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ep-a")})
	if err != nil {
		t.Fatal(err)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := first.srv.Close(closeCtx); err != nil {
		t.Fatal(err)
	}

	second := startEnv(t, dir)
	afterA := second.waitStatus("ep-a", smtypes.EndpointStatusInService)
	if !afterA.CreationTime.Equal(*beforeA.CreationTime) || aws.ToString(afterA.EndpointArn) != aws.ToString(beforeA.EndpointArn) {
		t.Fatalf("ep-a changed identity across a restart: %v %s vs %v %s", afterA.CreationTime, aws.ToString(afterA.EndpointArn),
			beforeA.CreationTime, aws.ToString(beforeA.EndpointArn))
	}
	second.predict("ep-a", 1)
	b := second.waitStatus("ep-b", smtypes.EndpointStatusInService)
	if aws.ToString(b.EndpointConfigName) != "cfg1" {
		t.Fatalf("ep-b came back on %s, want its latest config cfg1", aws.ToString(b.EndpointConfigName))
	}
	second.predict("ep-b", 1)

	pkgs, err := second.sm.ListModelPackages(ctx, &sagemaker.ListModelPackagesInput{ModelPackageGroupName: aws.String("abalone")})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs.ModelPackageSummaryList) != 2 || aws.ToInt32(pkgs.ModelPackageSummaryList[1].ModelPackageVersion) != 2 {
		t.Fatalf("versions after restart: %+v", pkgs.ModelPackageSummaryList)
	}
	// Version numbers continue where they stopped.
	if arn := second.registerVersion("abalone", "s3://models/abalone/v2/model.tar.gz"); arn != "arn:aws:sagemaker:eu-west-1:000000000000:model-package/abalone/3" {
		t.Fatalf("next version after restart = %s", arn)
	}
	for _, name := range []string{"m1", "m2"} {
		if _, err := second.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String(name)}); err != nil {
			t.Fatalf("model %s after restart: %v", name, err)
		}
	}
	for _, name := range []string{"cfg1", "cfg2"} {
		if _, err := second.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String(name)}); err != nil {
			t.Fatalf("config %s after restart: %v", name, err)
		}
	}
	group, err := second.sm.DescribeModelPackageGroup(ctx, &sagemaker.DescribeModelPackageGroupInput{ModelPackageGroupName: aws.String("abalone")})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := second.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: group.ModelPackageGroupArn})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
		t.Fatalf("tags after restart: %+v", tags.Tags)
	}
}

// TestRestartWithMissingArtifact: an endpoint whose artifact vanished while the server was down
// cannot serve again; it reports OutOfService with the reason rather than pretending, and an
// update brings it back.
func TestRestartWithMissingArtifact(t *testing.T) {
	isolateAWSConfig(t)
	dir := t.TempDir()
	ctx := context.Background()
	first := startEnv(t, dir)
	first.deployable("m1", "cfg1", first.uploadArtifact(1), 1)
	first.deployable("m2", "cfg2", first.uploadArtifact(2), 1)
	if _, err := first.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg1")}); err != nil {
		t.Fatal(err)
	}
	first.waitStatus("ep", smtypes.EndpointStatusInService)
	if err := first.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "s3", "buckets", bucket, "abalone%2F", "v1%2F", "model.tar.gz")); err != nil { // keys are escaped on disk
		t.Fatal(err)
	}
	second := startEnv(t, dir)
	out := second.waitStatus("ep", smtypes.EndpointStatusOutOfService)
	if out.FailureReason == nil {
		t.Fatal("OutOfService without a FailureReason")
	}
	if _, err := second.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg2")}); err != nil {
		t.Fatal(err)
	}
	second.waitStatus("ep", smtypes.EndpointStatusInService)
	second.predict("ep", 2)
}

// TestStartErrors: a busy address and an unusable data directory are reported clearly.
func TestStartErrors(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	addr := e.srv.URL()[len("http://"):]
	_, err := localsm.Start(context.Background(), localsm.Options{Addr: addr, DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("a second server on a busy address started")
	}
	if want := "listen on " + addr; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	// One server per data directory.
	_, err = localsm.Start(context.Background(), localsm.Options{Addr: "127.0.0.1:0", DataDir: e.dataDir})
	if err == nil || !strings.Contains(err.Error(), "is in use by another sagedeploy local (pid ") {
		t.Fatalf("a second server on the same data directory: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localsm.Start(context.Background(), localsm.Options{Addr: "127.0.0.1:0", DataDir: filepath.Join(file, "sub")}); err == nil ||
		!strings.Contains(err.Error(), "data directory") {
		t.Fatalf("start on a data dir under a file: %v", err)
	}
}
