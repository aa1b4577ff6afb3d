package localsm_test

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// predict invokes endpoint with the abalone sample rows and checks the answers are model
// version's reference predictions.
func (e *env) predict(endpoint string, version int) {
	e.t.Helper()
	rt := sagemakerruntime.NewFromConfig(e.cfg)
	var out *sagemakerruntime.InvokeEndpointOutput
	var err error
	// Right after a restart the endpoint may still be coming back; the caller waited for
	// InService, so one answer is enough.
	out, err = rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
	if err != nil {
		e.t.Fatalf("invoke %s: %v", endpoint, err)
	}
	want, err := abalone.ExpectedCSV(version)
	if err != nil {
		e.t.Fatal(err)
	}
	got := parseFloats(e.t, out.Body)
	exp := parseFloats(e.t, want)
	if len(got) != len(exp) {
		e.t.Fatalf("endpoint %s answered %d predictions, want %d (model v%d): %s", endpoint, len(got), len(exp), version, out.Body)
	}
	for i := range got {
		if math.Abs(got[i]-exp[i]) > 1e-4*math.Max(1, math.Abs(exp[i])) {
			e.t.Fatalf("endpoint %s prediction %d = %v, want %v (model v%d)", endpoint, i, got[i], exp[i], version)
		}
	}
}

func parseFloats(t *testing.T, b []byte) []float64 {
	t.Helper()
	var out []float64
	for _, f := range strings.FieldsFunc(string(bytes.TrimSpace(b)), func(r rune) bool { return r == ',' || r == '\n' }) {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			t.Fatalf("prediction %q is not a number (body %q)", f, b)
		}
		out = append(out, v)
	}
	return out
}

// TestRegistryToEndpoint drives the deployer's path: register versions, approve one, create a
// model from the package, a configuration, an endpoint that really predicts, then update it to
// the second version.
func TestRegistryToEndpoint(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	ctx := context.Background()
	if _, err := e.sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("abalone")}); err != nil {
		t.Fatal(err)
	}
	v1 := e.registerVersion("abalone", e.uploadArtifact(1))
	v2 := e.registerVersion("abalone", e.uploadArtifact(2))
	if want := "arn:aws:sagemaker:eu-west-1:000000000000:model-package/abalone/2"; v2 != want {
		t.Fatalf("second version ARN = %s, want %s", v2, want)
	}
	for i, arn := range []string{v1, v2} {
		name := []string{"abalone-v1", "abalone-v2"}[i]
		if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(name), ExecutionRoleArn: aws.String(roleArn),
			PrimaryContainer: &smtypes.ContainerDefinition{ModelPackageName: aws.String(arn)}}); err != nil {
			t.Fatal(err)
		}
		e.config(name+"-cfg", name, 1)
	}
	before := time.Now().Add(-time.Second)
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String("abalone-v1-cfg")}); err != nil {
		t.Fatal(err)
	}
	out := e.waitStatus("abalone-dev", smtypes.EndpointStatusInService)
	if aws.ToString(out.EndpointConfigName) != "abalone-v1-cfg" {
		t.Fatalf("config = %s", aws.ToString(out.EndpointConfigName))
	}
	if out.CreationTime.Before(before) || out.CreationTime.After(time.Now()) {
		t.Fatalf("creation time %v is not now", out.CreationTime)
	}
	if out.PendingDeploymentSummary != nil {
		t.Fatalf("an InService endpoint reports a pending deployment: %+v", out.PendingDeploymentSummary)
	}
	if len(out.ProductionVariants) != 1 {
		t.Fatalf("variants = %+v", out.ProductionVariants)
	}
	pv := out.ProductionVariants[0]
	if aws.ToString(pv.VariantName) != "AllTraffic" || aws.ToInt32(pv.CurrentInstanceCount) != 1 || aws.ToInt32(pv.DesiredInstanceCount) != 1 ||
		aws.ToFloat32(pv.CurrentWeight) != 1 || aws.ToFloat32(pv.DesiredWeight) != 1 {
		t.Fatalf("variant = %s current %d/%v desired %d/%v", aws.ToString(pv.VariantName), aws.ToInt32(pv.CurrentInstanceCount),
			aws.ToFloat32(pv.CurrentWeight), aws.ToInt32(pv.DesiredInstanceCount), aws.ToFloat32(pv.DesiredWeight))
	}
	if len(pv.DeployedImages) != 1 || aws.ToString(pv.DeployedImages[0].SpecifiedImage) != xgbImage {
		t.Fatalf("deployed images = %+v", pv.DeployedImages)
	}
	e.predict("abalone-dev", 1)

	if _, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String("abalone-v2-cfg")}); err != nil {
		t.Fatal(err)
	}
	out = e.waitStatus("abalone-dev", smtypes.EndpointStatusInService)
	if aws.ToString(out.EndpointConfigName) != "abalone-v2-cfg" {
		t.Fatalf("config after update = %s", aws.ToString(out.EndpointConfigName))
	}
	if !out.LastModifiedTime.After(*out.CreationTime) {
		t.Fatalf("LastModifiedTime %v should be after CreationTime %v after an update", out.LastModifiedTime, out.CreationTime)
	}
	e.predict("abalone-dev", 2)
}

// TestFailedCreateAndRolledBackUpdate uses a missing artifact: a create fails with a reason that
// names the missing object; an update to it rolls back and keeps serving the old version.
func TestFailedCreateAndRolledBackUpdate(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	ctx := context.Background()
	e.deployable("good", "good-cfg", e.uploadArtifact(1), 1)
	e.deployable("missing", "missing-cfg", "s3://models/abalone/nope/model.tar.gz", 1)

	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("broken"), EndpointConfigName: aws.String("missing-cfg")}); err != nil {
		t.Fatal(err)
	}
	out := e.waitStatus("broken", smtypes.EndpointStatusFailed)
	if r := aws.ToString(out.FailureReason); !strings.Contains(r, "abalone/nope/model.tar.gz") {
		t.Fatalf("FailureReason %q does not name the missing object", r)
	}
	_, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("broken"), EndpointConfigName: aws.String("good-cfg")})
	apiError(t, err, "ValidationException", "Cannot update failed endpoint")

	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("svc"), EndpointConfigName: aws.String("good-cfg")}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("svc", smtypes.EndpointStatusInService)
	if _, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("svc"), EndpointConfigName: aws.String("missing-cfg")}); err != nil {
		t.Fatal(err)
	}
	// SageMaker goes from Updating straight back to InService on the previous configuration,
	// with the failure's reason (RollingBack belongs to failed weight and capacity changes).
	out = e.waitLeaves("svc", smtypes.EndpointStatusUpdating)
	if out.EndpointStatus != smtypes.EndpointStatusInService {
		t.Fatalf("a failed update went from Updating to %s, want InService", out.EndpointStatus)
	}
	if aws.ToString(out.EndpointConfigName) != "good-cfg" {
		t.Fatalf("after a failed update the endpoint reports config %s, want the previous good-cfg", aws.ToString(out.EndpointConfigName))
	}
	if r := aws.ToString(out.FailureReason); !strings.Contains(r, "abalone/nope/model.tar.gz") {
		t.Fatalf("FailureReason after a failed update = %q", r)
	}
	e.predict("svc", 1)

	// The next successful update clears the reason.
	e.deployable("good2", "good2-cfg", e.uploadArtifact(2), 1)
	if _, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("svc"), EndpointConfigName: aws.String("good2-cfg")}); err != nil {
		t.Fatal(err)
	}
	out = e.waitStatus("svc", smtypes.EndpointStatusInService)
	if out.FailureReason != nil || aws.ToString(out.EndpointConfigName) != "good2-cfg" {
		t.Fatalf("after a good update: config %s, FailureReason %q", aws.ToString(out.EndpointConfigName), aws.ToString(out.FailureReason))
	}
	e.predict("svc", 2)

	// Deleting: Deleting, then gone.
	if _, err := e.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("svc")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("svc")})
		if err != nil {
			apiError(t, err, "ValidationException", `Could not find endpoint "arn:aws:sagemaker:eu-west-1:000000000000:endpoint/svc".`)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("endpoint still there 30s after DeleteEndpoint")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = sagemakerruntime.NewFromConfig(e.cfg).InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("svc"), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
	if err == nil {
		t.Fatal("a deleted endpoint still answers invocations")
	}
}

// TestWeightsAndCapacities scales a serving endpoint: Updating → InService, with the desired and
// current counts reported from the serving layer.
func TestWeightsAndCapacities(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	ctx := context.Background()
	e.deployable("m", "cfg", e.uploadArtifact(1), 1)
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg")}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("ep", smtypes.EndpointStatusInService)
	_, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("ep"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("Nope"), DesiredInstanceCount: aws.Int32(2)}},
	})
	apiError(t, err, "ValidationException", "Nope")
	if _, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("ep"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(3)}},
	}); err != nil {
		t.Fatal(err)
	}
	out := e.waitStatus("ep", smtypes.EndpointStatusInService)
	pv := out.ProductionVariants[0]
	if aws.ToInt32(pv.DesiredInstanceCount) != 3 || aws.ToInt32(pv.CurrentInstanceCount) != 3 {
		t.Fatalf("after scaling to 3: desired %d current %d", aws.ToInt32(pv.DesiredInstanceCount), aws.ToInt32(pv.CurrentInstanceCount))
	}
	e.predict("ep", 1)
}
