package control_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/localsm/control"
)

// regionClient is a SageMaker client of c's server that signs its requests for region.
func (c *cp) regionClient(region string) *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{
		Region:           region,
		BaseEndpoint:     aws.String(c.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

// TestRegionsAreSeparateNamespaces: as in AWS, a model created through eu-west-1 neither blocks
// the same name in us-east-1 nor is listed there, and each carries its region in its ARN.
func TestRegionsAreSeparateNamespaces(t *testing.T) {
	c := newCP(t, cpOptions{})
	ctx := context.Background()
	eu, us := c.regionClient("eu-west-1"), c.regionClient("us-east-1")
	create := func(sm *sagemaker.Client, image string) string {
		t.Helper()
		out, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("abalone"),
			ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
			PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(image)}})
		if err != nil {
			t.Fatalf("create model abalone: %v", err)
		}
		return aws.ToString(out.ModelArn)
	}
	euARN := create(eu, "img:eu")
	if want := "arn:aws:sagemaker:eu-west-1:000000000000:model/abalone"; euARN != want {
		t.Errorf("eu-west-1 model ARN %s, want %s", euARN, want)
	}
	listed, err := us.ListModels(ctx, &sagemaker.ListModelsInput{})
	if err != nil || len(listed.Models) != 0 {
		t.Fatalf("us-east-1 lists %+v (%v), want no models", listed, err)
	}
	_, err = us.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("abalone")})
	apiError(t, err, "ValidationException", "arn:aws:sagemaker:us-east-1:000000000000:model/abalone")

	usARN := create(us, "img:us")
	if !strings.Contains(usARN, ":us-east-1:") {
		t.Errorf("us-east-1 model ARN %s", usARN)
	}
	for sm, image := range map[*sagemaker.Client]string{eu: "img:eu", us: "img:us"} {
		d, err := sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("abalone")})
		if err != nil || aws.ToString(d.PrimaryContainer.Image) != image {
			t.Errorf("region %s describes image %v (%v), want %s", sm.Options().Region, d, err, image)
		}
	}

	// Tags and deletes reach the region's own model only.
	if _, err := us.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(euARN),
		Tags: []smtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err == nil {
		t.Error("us-east-1 tagged the eu-west-1 model")
	}
	if _, err := eu.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("abalone")}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("abalone")}); err != nil {
		t.Errorf("deleting the eu-west-1 model removed the us-east-1 one: %v", err)
	}
}

// TestRegistryAndEndpointsPerRegion: model package groups, configurations and endpoints are per
// region too, and one endpoint name can live in two regions at once.
func TestRegistryAndEndpointsPerRegion(t *testing.T) {
	c := newCP(t, cpOptions{})
	ctx := context.Background()
	eu, us := c.regionClient("eu-west-1"), c.regionClient("us-east-1")
	for _, sm := range []*sagemaker.Client{eu, us} {
		if _, err := sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("abalone")}); err != nil {
			t.Fatalf("%s: create group: %v", sm.Options().Region, err)
		}
	}
	if _, err := eu.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageGroupName: aws.String("abalone"),
		InferenceSpecification: &smtypes.InferenceSpecification{Containers: []smtypes.ModelPackageContainerDefinition{{Image: aws.String("img")}},
			SupportedContentTypes: []string{"text/csv"}, SupportedResponseMIMETypes: []string{"text/csv"}}}); err != nil {
		t.Fatal(err)
	}
	usVersions, err := us.ListModelPackages(ctx, &sagemaker.ListModelPackagesInput{ModelPackageGroupName: aws.String("abalone")})
	if err != nil || len(usVersions.ModelPackageSummaryList) != 0 {
		t.Fatalf("us-east-1 lists versions %+v (%v), want none", usVersions, err)
	}

	for _, sm := range []*sagemaker.Client{eu, us} {
		if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("m"),
			ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
			PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("img")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg"),
			ProductionVariants: []smtypes.ProductionVariant{variant("AllTraffic", "m", 1, 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eu.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg")}); err != nil {
		t.Fatal(err)
	}
	listed, err := us.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{})
	if err != nil || len(listed.Endpoints) != 0 {
		t.Fatalf("us-east-1 lists endpoints %+v (%v), want none", listed, err)
	}
	// The runtime finds endpoints by the region an invocation is signed for, so the same name
	// serves in both regions.
	out, err := us.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg")})
	if err != nil {
		t.Fatalf("create endpoint ep in us-east-1 while eu-west-1 has one: %v", err)
	}
	if want := "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep"; aws.ToString(out.EndpointArn) != want {
		t.Errorf("us-east-1 endpoint ARN %s, want %s", aws.ToString(out.EndpointArn), want)
	}
}

// TestStoredResourcesWithoutRegionMoveIntoTheirARNsRegion: state written before regions were
// namespaces is read into the region its ARN names, and rewritten so.
func TestStoredResourcesWithoutRegionMoveIntoTheirARNsRegion(t *testing.T) {
	dir := t.TempDir()
	store, err := control.OpenSQLite(context.Background(), dir+"/state.db")
	if err != nil {
		t.Fatal(err)
	}
	old := []control.Document{
		{Kind: "model", Key: "abalone", Body: []byte(`{"name":"abalone","arn":"arn:aws:sagemaker:eu-west-1:000000000000:model/abalone",` +
			`"created":"2026-01-01T00:00:00Z","seq":1,"input":{"PrimaryContainer":{"Image":"img"}},"containers":[{"Image":"img"}]}`)},
		{Kind: "model-package-group", Key: "grp", Body: []byte(`{"name":"grp","arn":"","created":"2026-01-01T00:00:00Z","seq":2}`)},
	}
	if err := store.Write(context.Background(), old, nil); err != nil {
		t.Fatal(err)
	}
	store.Close()

	c := newCP(t, cpOptions{dir: dir})
	eu, us := c.regionClient("eu-west-1"), c.regionClient("us-east-1")
	if _, err := eu.DescribeModel(context.Background(), &sagemaker.DescribeModelInput{ModelName: aws.String("abalone")}); err != nil {
		t.Errorf("the model created through eu-west-1 before regions were namespaces is not in eu-west-1: %v", err)
	}
	if _, err := us.DescribeModelPackageGroup(context.Background(), &sagemaker.DescribeModelPackageGroupInput{ModelPackageGroupName: aws.String("grp")}); err != nil {
		t.Errorf("a resource without a region in its ARN is not in the default region: %v", err)
	}
	docs, err := c.store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, d := range docs {
		keys = append(keys, d.Kind+" "+d.Key)
	}
	if got := strings.Join(keys, ", "); got != "model eu-west-1:abalone, model-package-group us-east-1:grp" {
		t.Errorf("stored after migration: %s", got)
	}
}
