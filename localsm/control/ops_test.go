package control_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// tickingClock advances one second per reading, so resources get distinct creation times.
func tickingClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func TestModels(t *testing.T) {
	c := newCP(t, cpOptions{})
	ctx := context.Background()
	out, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("Abalone-XGB"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"), EnableNetworkIsolation: aws.Bool(true),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("img"), ModelDataUrl: aws.String("s3://b/k.tar.gz"),
			Environment: map[string]string{"SAGEMAKER_PROGRAM": "serve.py"}},
		Tags: []smtypes.Tag{{Key: aws.String("owner"), Value: aws.String("ml")}}})
	if err != nil {
		t.Fatal(err)
	}
	// AWS lower-cases model names in ARNs but keeps their case otherwise.
	if want := "arn:aws:sagemaker:us-west-2:000000000000:model/abalone-xgb"; aws.ToString(out.ModelArn) != want {
		t.Fatalf("ModelArn = %s, want %s", aws.ToString(out.ModelArn), want)
	}
	d, err := c.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("abalone-xgb")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.ModelName) != "Abalone-XGB" || aws.ToString(d.PrimaryContainer.Image) != "img" ||
		d.PrimaryContainer.Environment["SAGEMAKER_PROGRAM"] != "serve.py" || !aws.ToBool(d.EnableNetworkIsolation) ||
		aws.ToString(d.ExecutionRoleArn) != "arn:aws:iam::000000000000:role/sm" || d.CreationTime == nil {
		t.Fatalf("DescribeModel = %+v", d)
	}
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("ABALONE-xgb"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("img")}})
	apiError(t, err, "ValidationException", `Cannot create already existing model "arn:aws:sagemaker:us-west-2:000000000000:model/abalone-xgb".`)
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("no-container"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm")})
	apiError(t, err, "ValidationException", "needs a container")
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("bad_name"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("img")}})
	apiError(t, err, "ValidationException", "1 validation error detected: Value 'bad_name' at 'modelName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*")
	long := strings.Repeat("a", 64)
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(long), ExecutionRoleArn: aws.String("role"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("img"), ModelDataUrl: aws.String("ftp://x")}})
	apiError(t, err, "ValidationException", "4 validation errors detected: Value '"+long+"' at 'modelName' failed to satisfy constraint: Member must have length less than or equal to 63; ")
	apiError(t, err, "ValidationException", "Value 'ftp://x' at 'primaryContainer.modelDataUrl' failed to satisfy constraint")
	apiError(t, err, "ValidationException", "Value 'role' at 'executionRoleArn' failed to satisfy constraint")

	_, err = c.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("missing")})
	apiError(t, err, "ValidationException", `Could not find model "arn:aws:sagemaker:us-west-2:000000000000:model/missing".`)
	if _, err := c.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("ABALONE-XGB")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("abalone-xgb")})
	apiError(t, err, "ValidationException", "Could not find model")
}

// TestListPaginationFiltersSorting covers MaxResults/NextToken, NameContains, creation-time
// filters and SortBy/SortOrder, with each list's documented defaults.
func TestListPaginationFiltersSorting(t *testing.T) {
	clock := tickingClock()
	c := newCP(t, cpOptions{now: clock})
	ctx := context.Background()
	// Created in this order, one second apart.
	all := []string{"delta", "alpha-prod", "charlie", "bravo-prod", "echo"}
	for _, n := range all {
		c.model(n)
	}
	// Default: CreationTime, Descending.
	var got []string
	p := sagemaker.NewListModelsPaginator(c.sm, &sagemaker.ListModelsInput{MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Models) > 2 {
			t.Fatalf("page of %d models with MaxResults 2", len(page.Models))
		}
		for _, m := range page.Models {
			got = append(got, aws.ToString(m.ModelName))
		}
	}
	if strings.Join(got, ",") != "echo,bravo-prod,charlie,alpha-prod,delta" || pages != 3 {
		t.Fatalf("ListModels default order over %d pages: %v", pages, got)
	}
	out, err := c.sm.ListModels(ctx, &sagemaker.ListModelsInput{SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyAscending})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(out.Models, func(m smtypes.ModelSummary) *string { return m.ModelName }); n != "alpha-prod,bravo-prod,charlie,delta,echo" {
		t.Fatalf("by name ascending: %s", n)
	}
	out, err = c.sm.ListModels(ctx, &sagemaker.ListModelsInput{NameContains: aws.String("PROD"), SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyDescending})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(out.Models, func(m smtypes.ModelSummary) *string { return m.ModelName }); n != "bravo-prod,alpha-prod" {
		t.Fatalf("NameContains prod: %s", n)
	}
	// Creation-time window: after charlie (inclusive, as documented) and before echo.
	charlie, _ := c.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("charlie")})
	echo, _ := c.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("echo")})
	out, err = c.sm.ListModels(ctx, &sagemaker.ListModelsInput{CreationTimeAfter: charlie.CreationTime, CreationTimeBefore: echo.CreationTime, SortOrder: smtypes.OrderKeyAscending})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(out.Models, func(m smtypes.ModelSummary) *string { return m.ModelName }); n != "charlie,bravo-prod" {
		t.Fatalf("time window: %s", n)
	}
	// A token belongs to its query.
	first, err := c.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v %+v", err, first)
	}
	_, err = c.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), NextToken: first.NextToken, SortBy: smtypes.ModelSortKeyName})
	apiError(t, err, "ValidationException", "Invalid NextToken")
	_, err = c.sm.ListModels(ctx, &sagemaker.ListModelsInput{NextToken: aws.String("garbage")})
	apiError(t, err, "ValidationException", "Invalid NextToken")
	_, err = c.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(101)})
	apiError(t, err, "ValidationException", "Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100")
	// A resource created between pages does not make the next page skip or repeat others.
	page1, _ := c.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(2), SortOrder: smtypes.OrderKeyAscending})
	c.model("foxtrot")
	page2, err := c.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(10), SortOrder: smtypes.OrderKeyAscending, NextToken: page1.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(page2.Models, func(m smtypes.ModelSummary) *string { return m.ModelName }); n != "charlie,bravo-prod,echo,foxtrot" {
		t.Fatalf("second page after an insert: %s", n)
	}

	// Endpoint configurations and endpoints: default CreationTime Descending, default page 10.
	for i := 0; i < 12; i++ {
		c.config(fmt.Sprintf("cfg-%02d", i), variant("A", "delta", 1, 1))
	}
	cfgs, err := c.sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs.EndpointConfigs) != 10 || aws.ToString(cfgs.EndpointConfigs[0].EndpointConfigName) != "cfg-11" || cfgs.NextToken == nil {
		t.Fatalf("ListEndpointConfigs default page: %d items, first %s", len(cfgs.EndpointConfigs), aws.ToString(cfgs.EndpointConfigs[0].EndpointConfigName))
	}
	for _, n := range []string{"b-ep", "a-ep", "c-ep"} {
		if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(n), EndpointConfigName: aws.String("cfg-00")}); err != nil {
			t.Fatal(err)
		}
		c.waitStatus(n, smtypes.EndpointStatusInService)
	}
	b, _ := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("b-ep")})
	eps, err := c.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{SortBy: smtypes.EndpointSortKeyName, SortOrder: smtypes.OrderKeyAscending,
		LastModifiedTimeAfter: b.LastModifiedTime})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(eps.Endpoints, func(e smtypes.EndpointSummary) *string { return e.EndpointName }); n != "a-ep,c-ep" {
		t.Fatalf("endpoints modified after b-ep, by name: %s", n)
	}
	eps, err = c.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(eps.Endpoints, func(e smtypes.EndpointSummary) *string { return e.EndpointName }); n != "c-ep,a-ep,b-ep" {
		t.Fatalf("endpoints default order: %s", n)
	}
	if eps.Endpoints[0].EndpointStatus != smtypes.EndpointStatusInService || eps.Endpoints[0].LastModifiedTime == nil {
		t.Fatalf("endpoint summary: %+v", eps.Endpoints[0])
	}
}

func TestEndpointConfigs(t *testing.T) {
	c := newCP(t, cpOptions{})
	ctx := context.Background()
	c.model("m1")
	out, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("Cfg-1"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("m1"),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(2)}},
		DataCaptureConfig: &smtypes.DataCaptureConfig{InitialSamplingPercentage: aws.Int32(50), DestinationS3Uri: aws.String("s3://b/capture"),
			CaptureOptions: []smtypes.CaptureOption{{CaptureMode: smtypes.CaptureModeInput}}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:sagemaker:us-west-2:000000000000:endpoint-config/cfg-1"; aws.ToString(out.EndpointConfigArn) != want {
		t.Fatalf("EndpointConfigArn = %s", aws.ToString(out.EndpointConfigArn))
	}
	d, err := c.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("cfg-1")})
	if err != nil {
		t.Fatal(err)
	}
	v := d.ProductionVariants[0]
	// AWS reports the default weight of 1.0 it applied.
	if aws.ToString(d.EndpointConfigName) != "Cfg-1" || aws.ToFloat32(v.InitialVariantWeight) != 1 || aws.ToInt32(v.InitialInstanceCount) != 2 ||
		v.InstanceType != smtypes.ProductionVariantInstanceTypeMlM5Large || aws.ToInt32(d.DataCaptureConfig.InitialSamplingPercentage) != 50 {
		t.Fatalf("DescribeEndpointConfig = %+v, variant %+v", d, v)
	}
	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-1"),
		ProductionVariants: []smtypes.ProductionVariant{variant("A", "m1", 1, 1)}})
	apiError(t, err, "ValidationException", `Cannot create already existing endpoint configuration "arn:aws:sagemaker:us-west-2:000000000000:endpoint-config/cfg-1".`)
	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-2"),
		ProductionVariants: []smtypes.ProductionVariant{variant("A", "ghost", 1, 1)}})
	apiError(t, err, "ValidationException", `Could not find model "arn:aws:sagemaker:us-west-2:000000000000:model/ghost".`)
	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-2"),
		ProductionVariants: []smtypes.ProductionVariant{variant("A", "m1", 1, 1), variant("A", "m1", 1, 1)}})
	apiError(t, err, "ValidationException", "more than one production variant named A")
	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-2"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("A"), ModelName: aws.String("m1")}}})
	apiError(t, err, "ValidationException", "must specify InstanceType and InitialInstanceCount")
	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-2"),
		ProductionVariants: []smtypes.ProductionVariant{variant("A", "m1", 0, 1)}})
	apiError(t, err, "ValidationException", "Value '0' at 'productionVariants.1.member.initialInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1")
	_, err = c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg-9")})
	apiError(t, err, "ValidationException", `Could not find endpoint configuration "arn:aws:sagemaker:us-west-2:000000000000:endpoint-config/cfg-9".`)

	// Deleting a configuration (or its model) an endpoint uses does not disturb the endpoint.
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg-1")}); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("ep", smtypes.EndpointStatusInService)
	if _, err := c.sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("cfg-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("m1")}); err != nil {
		t.Fatal(err)
	}
	ep := c.describe("ep")
	if ep.EndpointStatus != smtypes.EndpointStatusInService || aws.ToString(ep.EndpointConfigName) != "Cfg-1" || ep.DataCaptureConfig == nil ||
		ep.DataCaptureConfig.CaptureStatus != smtypes.CaptureStatusStarted || aws.ToInt32(ep.DataCaptureConfig.CurrentSamplingPercentage) != 50 {
		t.Fatalf("endpoint after its config was deleted: %+v", ep)
	}
	_, err = c.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("cfg-1")})
	apiError(t, err, "ValidationException", "Could not find endpoint configuration")
}

func TestModelRegistry(t *testing.T) {
	c := newCP(t, cpOptions{now: tickingClock()})
	ctx := context.Background()
	g, err := c.sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("Abalone"),
		ModelPackageGroupDescription: aws.String("rings from measurements")})
	if err != nil {
		t.Fatal(err)
	}
	// Registry ARNs keep the name's case.
	if want := "arn:aws:sagemaker:us-west-2:000000000000:model-package-group/Abalone"; aws.ToString(g.ModelPackageGroupArn) != want {
		t.Fatalf("group ARN %s", aws.ToString(g.ModelPackageGroupArn))
	}
	_, err = c.sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("Abalone")})
	apiError(t, err, "ValidationException", "Model Package Group already exists: arn:aws:sagemaker:us-west-2:000000000000:model-package-group/Abalone")
	dg, err := c.sm.DescribeModelPackageGroup(ctx, &sagemaker.DescribeModelPackageGroupInput{ModelPackageGroupName: g.ModelPackageGroupArn})
	if err != nil || aws.ToString(dg.ModelPackageGroupDescription) != "rings from measurements" || dg.ModelPackageGroupStatus != smtypes.ModelPackageGroupStatusCompleted {
		t.Fatalf("DescribeModelPackageGroup by ARN: %v %+v", err, dg)
	}
	_, err = c.sm.DescribeModelPackageGroup(ctx, &sagemaker.DescribeModelPackageGroupInput{ModelPackageGroupName: aws.String("nope")})
	apiError(t, err, "ValidationException", "ModelPackageGroup arn:aws:sagemaker:us-west-2:000000000000:model-package-group/nope does not exist.")

	spec := func(url string) *smtypes.InferenceSpecification {
		return &smtypes.InferenceSpecification{Containers: []smtypes.ModelPackageContainerDefinition{{Image: aws.String("xgb"), ModelDataUrl: aws.String(url),
			Environment: map[string]string{"A": "1"}}},
			SupportedContentTypes: []string{"text/csv"}, SupportedResponseMIMETypes: []string{"text/csv"}}
	}
	var arns []string
	for i, status := range []smtypes.ModelApprovalStatus{"", smtypes.ModelApprovalStatusApproved, smtypes.ModelApprovalStatusRejected} {
		out, err := c.sm.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageGroupName: aws.String("Abalone"),
			ModelApprovalStatus: status, InferenceSpecification: spec(fmt.Sprintf("s3://b/v%d.tar.gz", i+1)),
			ModelPackageDescription: aws.String(fmt.Sprintf("version %d", i+1)), CustomerMetadataProperties: map[string]string{"rmse": "2.1"}})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, aws.ToString(out.ModelPackageArn))
	}
	if arns[2] != "arn:aws:sagemaker:us-west-2:000000000000:model-package/Abalone/3" {
		t.Fatalf("third version ARN %s", arns[2])
	}
	d, err := c.sm.DescribeModelPackage(ctx, &sagemaker.DescribeModelPackageInput{ModelPackageName: aws.String("Abalone/1")})
	if err != nil {
		t.Fatal(err)
	}
	if d.ModelApprovalStatus != smtypes.ModelApprovalStatusPendingManualApproval || aws.ToInt32(d.ModelPackageVersion) != 1 ||
		aws.ToString(d.ModelPackageGroupName) != "Abalone" || aws.ToString(d.ModelPackageName) != "Abalone" ||
		d.ModelPackageStatus != smtypes.ModelPackageStatusCompleted || d.ModelPackageStatusDetails == nil ||
		aws.ToString(d.InferenceSpecification.Containers[0].ModelDataUrl) != "s3://b/v1.tar.gz" || d.CustomerMetadataProperties["rmse"] != "2.1" {
		t.Fatalf("DescribeModelPackage = %+v", d)
	}
	list := func(in *sagemaker.ListModelPackagesInput) string {
		t.Helper()
		out, err := c.sm.ListModelPackages(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, p := range out.ModelPackageSummaryList {
			s = append(s, fmt.Sprintf("%d:%s", aws.ToInt32(p.ModelPackageVersion), p.ModelApprovalStatus))
		}
		return strings.Join(s, ",")
	}
	if got := list(&sagemaker.ListModelPackagesInput{ModelPackageGroupName: aws.String("Abalone")}); got != "1:PendingManualApproval,2:Approved,3:Rejected" {
		t.Fatalf("versions ascending: %s", got)
	}
	if got := list(&sagemaker.ListModelPackagesInput{ModelPackageGroupName: g.ModelPackageGroupArn, ModelApprovalStatus: smtypes.ModelApprovalStatusApproved,
		SortOrder: smtypes.SortOrderDescending}); got != "2:Approved" {
		t.Fatalf("approved only: %s", got)
	}
	if got := list(&sagemaker.ListModelPackagesInput{ModelPackageGroupName: aws.String("Abalone"), SortBy: smtypes.ModelPackageSortByCreationTime,
		SortOrder: smtypes.SortOrderDescending, MaxResults: aws.Int32(2)}); got != "3:Rejected,2:Approved" {
		t.Fatalf("latest two: %s", got)
	}
	// Without a group the documented default lists unversioned packages only.
	if got := list(&sagemaker.ListModelPackagesInput{}); got != "" {
		t.Fatalf("default ListModelPackages listed versioned packages: %s", got)
	}
	if got := list(&sagemaker.ListModelPackagesInput{ModelPackageType: smtypes.ModelPackageTypeVersioned}); got != "1:PendingManualApproval,2:Approved,3:Rejected" {
		t.Fatalf("Versioned: %s", got)
	}

	// Approval gates deployment: a pending version cannot become a model until approved.
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("v1"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
		PrimaryContainer: &smtypes.ContainerDefinition{ModelPackageName: aws.String(arns[0])}})
	apiError(t, err, "ValidationException", "has ModelApprovalStatus PendingManualApproval; only an Approved model package version can be deployed")
	if _, err := c.sm.UpdateModelPackage(ctx, &sagemaker.UpdateModelPackageInput{ModelPackageArn: aws.String(arns[0]),
		ModelApprovalStatus: smtypes.ModelApprovalStatusApproved, ApprovalDescription: aws.String("looks good"),
		CustomerMetadataPropertiesToRemove: []string{"rmse"}}); err != nil {
		t.Fatal(err)
	}
	d, _ = c.sm.DescribeModelPackage(ctx, &sagemaker.DescribeModelPackageInput{ModelPackageName: aws.String(arns[0])})
	if d.ModelApprovalStatus != smtypes.ModelApprovalStatusApproved || aws.ToString(d.ApprovalDescription) != "looks good" || d.LastModifiedTime == nil ||
		len(d.CustomerMetadataProperties) != 0 {
		t.Fatalf("after approval: %+v", d)
	}
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("v1"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
		PrimaryContainer: &smtypes.ContainerDefinition{ModelPackageName: aws.String(arns[0]), Environment: map[string]string{"B": "2"}}}); err != nil {
		t.Fatal(err)
	}
	c.config("v1", variant("A", "v1", 1, 1))
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("ep", smtypes.EndpointStatusInService)
	c.serving.mu.Lock()
	ct := c.serving.deploys[0].Variants[0].Containers[0]
	c.serving.mu.Unlock()
	// The package's image and artifact reach the serving layer, with both environments merged.
	if ct.Image != "xgb" || ct.ModelDataURL != "s3://b/v1.tar.gz" || ct.Environment["A"] != "1" || ct.Environment["B"] != "2" || ct.ModelPackageName != arns[0] {
		t.Fatalf("container handed to serving: %+v", ct)
	}
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("v9"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
		PrimaryContainer: &smtypes.ContainerDefinition{ModelPackageName: aws.String("Abalone/9")}})
	apiError(t, err, "ValidationException", "ModelPackage arn:aws:sagemaker:us-west-2:000000000000:model-package/Abalone/9 does not exist.")

	// Errors of CreateModelPackage.
	_, err = c.sm.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageGroupName: aws.String("ghost"), InferenceSpecification: spec("s3://b/x")})
	apiError(t, err, "ValidationException", "model-package-group/ghost does not exist")
	_, err = c.sm.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{InferenceSpecification: spec("s3://b/x")})
	apiError(t, err, "ValidationException", "Missing ARN")
	_, err = c.sm.UpdateModelPackage(ctx, &sagemaker.UpdateModelPackageInput{ModelPackageArn: aws.String("arn:aws:sagemaker:us-west-2:000000000000:model-package/Abalone/7"),
		ModelApprovalStatus: smtypes.ModelApprovalStatusApproved})
	apiError(t, err, "ValidationException", "model-package/Abalone/7 does not exist")
	_, err = c.sm.UpdateModelPackage(ctx, &sagemaker.UpdateModelPackageInput{ModelPackageArn: aws.String(arns[0]), ModelApprovalStatus: "Maybe"})
	apiError(t, err, "ValidationException", "Member must satisfy enum value set: [Approved, Rejected, PendingManualApproval]")

	// ClientToken makes a retried create idempotent.
	var tokens []string
	for i := 0; i < 2; i++ {
		out, err := c.sm.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageGroupName: aws.String("Abalone"),
			InferenceSpecification: spec("s3://b/v4"), ClientToken: aws.String("retry-1")})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, aws.ToString(out.ModelPackageArn))
	}
	if tokens[0] != tokens[1] || !strings.HasSuffix(tokens[0], "/Abalone/4") {
		t.Fatalf("ClientToken retries gave %v", tokens)
	}

	// Unversioned packages and groups list.
	if _, err := c.sm.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageName: aws.String("standalone"), InferenceSpecification: spec("s3://b/s")}); err != nil {
		t.Fatal(err)
	}
	if got := list(&sagemaker.ListModelPackagesInput{}); got != "0:" {
		t.Fatalf("unversioned list: %s", got)
	}
	if got := list(&sagemaker.ListModelPackagesInput{ModelPackageType: smtypes.ModelPackageTypeBoth, NameContains: aws.String("stand")}); got != "0:" {
		t.Fatalf("Both + NameContains: %s", got)
	}
	if _, err := c.sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("churn")}); err != nil {
		t.Fatal(err)
	}
	groups, err := c.sm.ListModelPackageGroups(ctx, &sagemaker.ListModelPackageGroupsInput{SortBy: smtypes.ModelPackageGroupSortByName})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(groups.ModelPackageGroupSummaryList, func(g smtypes.ModelPackageGroupSummary) *string { return g.ModelPackageGroupName }); n != "Abalone,churn" {
		t.Fatalf("groups by name: %s", n)
	}
	groups, _ = c.sm.ListModelPackageGroups(ctx, &sagemaker.ListModelPackageGroupsInput{NameContains: aws.String("chu")})
	if len(groups.ModelPackageGroupSummaryList) != 1 {
		t.Fatalf("groups NameContains: %+v", groups.ModelPackageGroupSummaryList)
	}
}

func TestTags(t *testing.T) {
	c := newCP(t, cpOptions{})
	ctx := context.Background()
	c.model("m1")
	arn := aws.String("arn:aws:sagemaker:us-west-2:000000000000:model/m1")
	if _, err := c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: arn, Tags: []smtypes.Tag{
		{Key: aws.String("env"), Value: aws.String("dev")}, {Key: aws.String("team"), Value: aws.String("ml")}}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: arn, Tags: []smtypes.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}})
	if err != nil || len(out.Tags) != 1 {
		t.Fatalf("AddTags answer: %v %+v", err, out)
	}
	tags, err := c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 2 || aws.ToString(tags.Tags[0].Value) != "prod" || aws.ToString(tags.Tags[1].Key) != "team" {
		t.Fatalf("tags after overwrite: %+v", tags.Tags)
	}
	if _, err := c.sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: arn, TagKeys: []string{"env", "absent"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ = c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn})
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
		t.Fatalf("tags after delete: %+v", tags.Tags)
	}
	// Tags given at creation, on every taggable kind.
	c.config("cfg", variant("A", "m1", 1, 1))
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg"),
		Tags: []smtypes.Tag{{Key: aws.String("stage"), Value: aws.String("dev")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err = c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(epARN)})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "stage" {
		t.Fatalf("endpoint tags: %v %+v", err, tags)
	}
	for _, arn := range []string{"arn:aws:sagemaker:us-west-2:000000000000:endpoint-config/cfg"} {
		if _, err := c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(arn), Tags: []smtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
			t.Fatalf("tag %s: %v", arn, err)
		}
	}
	_, err = c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String("arn:aws:sagemaker:us-west-2:000000000000:model/ghost")})
	apiError(t, err, "ValidationException", "model/ghost does not exist")
	_, err = c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: arn, Tags: []smtypes.Tag{{Key: aws.String("bad key!"), Value: aws.String("v")}}})
	apiError(t, err, "ValidationException", "at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern")
	// Paging through tags.
	var many []smtypes.Tag
	for i := 0; i < 49; i++ {
		many = append(many, smtypes.Tag{Key: aws.String(fmt.Sprintf("k%02d", i)), Value: aws.String("v")})
	}
	if _, err := c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: arn, Tags: many}); err != nil {
		t.Fatal(err)
	}
	first, err := c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn})
	if err != nil || len(first.Tags) != 50 || first.NextToken != nil {
		t.Fatalf("50 tags in one page: %v %d %v", err, len(first.Tags), first.NextToken)
	}
	_, err = c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: arn, Tags: []smtypes.Tag{{Key: aws.String("one-too-many"), Value: aws.String("v")}}})
	apiError(t, err, "ResourceLimitExceeded", "at most 50")
}
