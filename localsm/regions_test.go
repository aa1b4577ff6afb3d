package localsm_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// TestSameEndpointNameServesInTwoRegions: endpoint "abalone" in eu-west-1 serves version 1 and
// "abalone" in us-east-1 serves version 2; each region's runtime client reaches its own, and
// deleting one leaves the other serving.
func TestSameEndpointNameServesInTwoRegions(t *testing.T) {
	isolateAWSConfig(t)
	eu := startEnv(t, "")
	us := (env{t: t, srv: eu.srv, dataDir: eu.dataDir, cfg: clientConfig(t, eu.srv, "us-east-1")}).withClients()
	ctx := context.Background()
	for v, e := range map[int]*env{1: eu, 2: us} {
		e.deployable("abalone", "abalone-cfg", e.uploadArtifact(v), 1)
		if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("abalone"), EndpointConfigName: aws.String("abalone-cfg")}); err != nil {
			t.Fatalf("create endpoint abalone through %s: %v", e.cfg.Region, err)
		}
	}
	eu.waitStatus("abalone", smtypes.EndpointStatusInService)
	us.waitStatus("abalone", smtypes.EndpointStatusInService)
	eu.predict("abalone", 1)
	us.predict("abalone", 2)

	if _, err := us.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("abalone")}); err != nil {
		t.Fatal(err)
	}
	us.waitGone("abalone")
	eu.predict("abalone", 1)
}

// waitGone polls DescribeEndpoint until the endpoint no longer exists.
func (e *env) waitGone(name string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, err := e.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if err != nil {
			apiError(e.t, err, "ValidationException", "Could not find endpoint")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("endpoint %s still exists after 60s", name)
}
