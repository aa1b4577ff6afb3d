package runtime

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

func serverlessDeployment(endpoint string, provisioned int) spec.Deployment {
	dep := xgbDeployment(endpoint, 1, 1)
	dep.Variants[0].InstanceType, dep.Variants[0].InstanceCount = "", 0
	dep.Variants[0].Serverless = &spec.Serverless{MemorySizeInMB: 2048, MaxConcurrency: 4, ProvisionedConcurrency: provisioned}
	return dep
}

// TestServerlessColdStart: an idle on-demand serverless variant stops its instance; the next
// invocation starts one, succeeds, and reports the setup time as a cold start. A variant with
// ProvisionedConcurrency stays warm.
func TestServerlessColdStart(t *testing.T) {
	starts := make(chan ColdStart, 10)
	e := newEnv(t, func(o *Options) {
		o.ServerlessIdle = -1 // the test reaps by hand, so that nothing depends on timing
		o.ColdStarts = func(c ColdStart) { starts <- c }
	})
	e.deploy(t, serverlessDeployment("on-demand", 0))
	e.deploy(t, serverlessDeployment("provisioned", 1))
	invoke := func(name string) {
		t.Helper()
		out, err := e.client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String(name), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
		if err != nil {
			t.Fatalf("invoke %s: %v", name, err)
		}
		if got := version(t, out.Body, expected(t, 1), nil); got != 1 {
			t.Fatalf("%s answered %q", name, out.Body)
		}
	}
	invoke("on-demand")
	if len(starts) != 0 {
		t.Fatalf("a freshly deployed variant cold-started: %+v", <-starts)
	}
	for _, name := range []string{"on-demand", "provisioned"} {
		e.rt.reap(e.rt.lookup(e.rt.key(id(name))), 0)
	}
	count := func(name string) int {
		states, ok := e.rt.Variants(id(name))
		if !ok || len(states) != 1 {
			t.Fatalf("Variants(%s) = %+v, %v", name, states, ok)
		}
		return states[0].CurrentInstanceCount
	}
	if n := count("on-demand"); n != 0 {
		t.Errorf("idle on-demand variant kept %d instance(s)", n)
	}
	if n := count("provisioned"); n != 1 {
		t.Errorf("provisioned variant has %d instance(s) after idling, want 1", n)
	}

	invoke("on-demand")
	select {
	case c := <-starts:
		if c.Endpoint.Name != "on-demand" || c.Variant != "AllTraffic" || c.Setup <= 0 {
			t.Errorf("cold start %+v", c)
		}
	default:
		t.Fatal("the invocation after idling reported no cold start")
	}
	if n := count("on-demand"); n != 1 {
		t.Errorf("after the cold start the variant has %d instance(s), want 1", n)
	}
	invoke("provisioned")
	if len(starts) != 0 {
		t.Errorf("a provisioned variant cold-started: %+v", <-starts)
	}
}
