package runtime

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// TestSigningRegion: the region comes from a SigV4 credential scope; anything else has none.
func TestSigningRegion(t *testing.T) {
	for auth, want := range map[string]string{
		"AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/sagemaker/aws4_request, SignedHeaders=host, Signature=abc": "eu-west-1",
		"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-gov-west-1/sagemaker/aws4_request":                                "us-gov-west-1",
		"AWS4-HMAC-SHA256 Credential=AKID/20260101":                                                                     "",
		"Bearer token": "",
		"":             "",
	} {
		req := &http.Request{Header: http.Header{"Authorization": {auth}}}
		if got := signingRegion(req); got != want {
			t.Errorf("signingRegion(%q) = %q, want %q", auth, got, want)
		}
	}
}

// TestSameNameInTwoRegions: deployments of one endpoint name in two regions serve side by side;
// a client reaches the one of the region it signs for, and the default region's when unsigned
// requests come in.
func TestSameNameInTwoRegions(t *testing.T) {
	e := newEnv(t, nil)
	eu := xgbDeployment("abalone", 1, 1)
	eu.Region = "eu-west-1"
	e.deploy(t, eu)
	e.deploy(t, xgbDeployment("abalone", 2, 1)) // the default region, us-east-1

	client := func(region string) *sagemakerruntime.Client {
		return sagemakerruntime.New(sagemakerruntime.Options{Region: region, BaseEndpoint: aws.String(e.url),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""), Retryer: aws.NopRetryer{}})
	}
	want1, want2 := expected(t, 1), expected(t, 2)
	for region, want := range map[string]int{"eu-west-1": 1, "us-east-1": 2} {
		out, err := client(region).InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String("abalone"), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
		if err != nil {
			t.Fatalf("invoke abalone in %s: %v", region, err)
		}
		if got := version(t, out.Body, want1, want2); got != want {
			t.Errorf("abalone in %s answered as version %d, want %d", region, got, want)
		}
	}
	_, err := client("ap-south-1").InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("abalone"), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
	if err == nil {
		t.Error("a region with no endpoint abalone answered")
	}

	if err := e.rt.Remove(context.Background(), spec.EndpointID{Region: "eu-west-1", Name: "abalone"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.rt.Variants(spec.EndpointID{Region: "us-east-1", Name: "abalone"}); !ok {
		t.Error("removing abalone in eu-west-1 removed it in us-east-1 too")
	}
}

// BenchmarkSigningRegion is what finding the region costs each signed invocation.
//
//	go test -run '^$' -bench SigningRegion ./localsm/runtime
func BenchmarkSigningRegion(b *testing.B) {
	req := &http.Request{Header: http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/eu-west-1/sagemaker/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"}}}
	b.ReportAllocs()
	for b.Loop() {
		if signingRegion(req) != "eu-west-1" {
			b.Fatal("wrong region")
		}
	}
}
