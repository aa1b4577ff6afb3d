package localsm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// TestEveryOperation calls each control-plane operation through the SDK against a server from
// localsm.Start, with the errors a user meets most. (package control's tests go deeper into each
// family with a controllable clock and serving layer.)
func TestEveryOperation(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	ctx := context.Background()
	sm := e.sm
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	url := e.uploadArtifact(1)

	// Registry.
	must(sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("abalone"),
		ModelPackageGroupDescription: aws.String("abalone rings")}))
	must(sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("churn")}))
	g, err := sm.DescribeModelPackageGroup(ctx, &sagemaker.DescribeModelPackageGroupInput{ModelPackageGroupName: aws.String("abalone")})
	if err != nil || aws.ToString(g.ModelPackageGroupDescription) != "abalone rings" {
		t.Fatalf("DescribeModelPackageGroup: %v %+v", err, g)
	}
	groups, err := sm.ListModelPackageGroups(ctx, &sagemaker.ListModelPackageGroupsInput{MaxResults: aws.Int32(1)})
	if err != nil || len(groups.ModelPackageGroupSummaryList) != 1 || groups.NextToken == nil ||
		aws.ToString(groups.ModelPackageGroupSummaryList[0].ModelPackageGroupName) != "abalone" {
		t.Fatalf("ListModelPackageGroups page 1: %v %+v", err, groups)
	}
	groups, err = sm.ListModelPackageGroups(ctx, &sagemaker.ListModelPackageGroupsInput{MaxResults: aws.Int32(1), NextToken: groups.NextToken})
	if err != nil || len(groups.ModelPackageGroupSummaryList) != 1 || groups.NextToken != nil ||
		aws.ToString(groups.ModelPackageGroupSummaryList[0].ModelPackageGroupName) != "churn" {
		t.Fatalf("ListModelPackageGroups page 2: %v %+v", err, groups)
	}
	pending, err := sm.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageGroupName: aws.String("abalone"),
		InferenceSpecification: &smtypes.InferenceSpecification{
			Containers:            []smtypes.ModelPackageContainerDefinition{{Image: aws.String(xgbImage), ModelDataUrl: aws.String(url)}},
			SupportedContentTypes: []string{"text/csv"}, SupportedResponseMIMETypes: []string{"text/csv"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("from-pending"), ExecutionRoleArn: aws.String(roleArn),
		PrimaryContainer: &smtypes.ContainerDefinition{ModelPackageName: pending.ModelPackageArn}})
	apiError(t, err, "ValidationException", "only an Approved model package version can be deployed")
	must(sm.UpdateModelPackage(ctx, &sagemaker.UpdateModelPackageInput{ModelPackageArn: pending.ModelPackageArn,
		ModelApprovalStatus: smtypes.ModelApprovalStatusApproved, ApprovalDescription: aws.String("metrics ok")}))
	pkg, err := sm.DescribeModelPackage(ctx, &sagemaker.DescribeModelPackageInput{ModelPackageName: pending.ModelPackageArn})
	if err != nil || pkg.ModelApprovalStatus != smtypes.ModelApprovalStatusApproved || aws.ToInt32(pkg.ModelPackageVersion) != 1 ||
		aws.ToString(pkg.ApprovalDescription) != "metrics ok" {
		t.Fatalf("DescribeModelPackage after approval: %v %+v", err, pkg)
	}
	pkgs, err := sm.ListModelPackages(ctx, &sagemaker.ListModelPackagesInput{ModelPackageGroupName: aws.String("abalone"),
		ModelApprovalStatus: smtypes.ModelApprovalStatusApproved})
	if err != nil || len(pkgs.ModelPackageSummaryList) != 1 {
		t.Fatalf("ListModelPackages approved: %v %+v", err, pkgs)
	}

	// Models and configurations.
	must(sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("from-package"), ExecutionRoleArn: aws.String(roleArn),
		PrimaryContainer: &smtypes.ContainerDefinition{ModelPackageName: pending.ModelPackageArn}}))
	for i := 0; i < 3; i++ {
		e.deployable(fmt.Sprintf("m%d", i), fmt.Sprintf("cfg%d", i), url, 1)
	}
	m, err := sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("m1")})
	if err != nil || aws.ToString(m.PrimaryContainer.ModelDataUrl) != url || aws.ToString(m.ModelArn) != "arn:aws:sagemaker:eu-west-1:000000000000:model/m1" {
		t.Fatalf("DescribeModel: %v %+v", err, m)
	}
	models, err := sm.ListModels(ctx, &sagemaker.ListModelsInput{NameContains: aws.String("m"), SortBy: smtypes.ModelSortKeyName,
		SortOrder: smtypes.OrderKeyAscending, MaxResults: aws.Int32(2)})
	if err != nil || len(models.Models) != 2 || aws.ToString(models.Models[0].ModelName) != "from-package" || models.NextToken == nil {
		t.Fatalf("ListModels: %v %+v", err, models)
	}
	must(sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("m2")}))
	_, err = sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("m2")})
	apiError(t, err, "ValidationException", `Could not find model "arn:aws:sagemaker:eu-west-1:000000000000:model/m2".`)
	cfg, err := sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("cfg1")})
	if err != nil || aws.ToString(cfg.ProductionVariants[0].ModelName) != "m1" {
		t.Fatalf("DescribeEndpointConfig: %v %+v", err, cfg)
	}
	cfgs, err := sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{NameContains: aws.String("cfg")})
	if err != nil || len(cfgs.EndpointConfigs) != 3 || aws.ToString(cfgs.EndpointConfigs[0].EndpointConfigName) != "cfg2" {
		t.Fatalf("ListEndpointConfigs (newest first): %v %+v", err, cfgs)
	}
	must(sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("cfg2")}))
	_, err = sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("cfg2")})
	apiError(t, err, "ValidationException", `Could not find endpoint configuration "arn:aws:sagemaker:eu-west-1:000000000000:endpoint-config/cfg2".`)

	// Endpoints.
	must(sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String("cfg0")}))
	_, err = sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String("cfg0")})
	apiError(t, err, "ValidationException", `Cannot create already existing endpoint "arn:aws:sagemaker:eu-west-1:000000000000:endpoint/abalone-dev".`)
	e.waitStatus("abalone-dev", smtypes.EndpointStatusInService)
	eps, err := sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{StatusEquals: smtypes.EndpointStatusInService, NameContains: aws.String("dev")})
	if err != nil || len(eps.Endpoints) != 1 {
		t.Fatalf("ListEndpoints: %v %+v", err, eps)
	}
	must(sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String("cfg1")}))
	e.waitStatus("abalone-dev", smtypes.EndpointStatusInService)
	must(sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("abalone-dev"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(2)}}}))
	out := e.waitStatus("abalone-dev", smtypes.EndpointStatusInService)
	if aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) != 2 {
		t.Fatalf("after scaling: %+v", out.ProductionVariants[0])
	}

	// Tags on an endpoint, a model and a version.
	for _, arn := range []string{aws.ToString(out.EndpointArn), aws.ToString(m.ModelArn), aws.ToString(pending.ModelPackageArn)} {
		must(sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(arn), Tags: []smtypes.Tag{
			{Key: aws.String("env"), Value: aws.String("dev")}, {Key: aws.String("owner"), Value: aws.String("ml")}}}))
		must(sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: aws.String(arn), TagKeys: []string{"owner"}}))
		tags, err := sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn)})
		if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "dev" {
			t.Fatalf("tags of %s: %v %+v", arn, err, tags)
		}
	}

	must(sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("abalone-dev")}))
	_, err = sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("nope")})
	apiError(t, err, "ValidationException", `Could not find endpoint "arn:aws:sagemaker:eu-west-1:000000000000:endpoint/nope".`)
}
