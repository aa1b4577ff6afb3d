package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func change(t *testing.T, p deploy.PlanResult, field string) deploy.Change {
	t.Helper()
	for _, c := range p.Changes {
		if c.Field == field {
			return c
		}
	}
	t.Fatalf("plan has no %s: %+v", field, p.Changes)
	return deploy.Change{}
}

// Plan shows what a deploy would change and changes nothing: only reads reach SageMaker.
func TestPlanShowsTheDiffAndChangesNothing(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	register(t, d, "abalone", 2, true)
	rec := &calls{}
	p, _ := l.deployer(rec)

	first, err := p.Plan(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
	if err != nil || first.Action != deploy.PlanCreate || !first.ConfigCreated || !first.ModelCreated {
		t.Fatalf("plan of a new endpoint = %+v, %v; want create with model and configuration", first, err)
	}
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1}); err != nil {
		t.Fatal(err)
	}
	same, err := p.Plan(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
	if err != nil || same.Action != deploy.PlanNothing {
		t.Fatalf("plan of what already serves = %+v, %v; want nothing", same, err)
	}
	st, _ := deploy.ParseStrategy(deploy.Strategy{Type: deploy.Canary, Percent: 10, Bake: 5 * time.Second})
	next, err := p.Plan(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2, InstanceCount: 2, Strategy: st})
	if err != nil || next.Action != deploy.PlanUpdate {
		t.Fatalf("plan of version 2 = %+v, %v; want update", next, err)
	}
	if c := change(t, next, "version"); c.From != "version 1" || c.To != "version 2" || !c.Changed {
		t.Errorf("version change = %+v", c)
	}
	if c := change(t, next, "instance_count"); c.From != "1" || c.To != "2" {
		t.Errorf("instance_count change = %+v", c)
	}
	if c := change(t, next, "strategy"); !strings.Contains(c.To, "canary 10%") {
		t.Errorf("strategy = %+v", c)
	}
	for _, op := range rec.names() {
		if !strings.Contains(op, "/Describe") && !strings.Contains(op, "/List") && !strings.HasPrefix(op, "STS/") {
			t.Errorf("Plan called %s: a plan must only read", op)
		}
	}
	if got := describeEndpointConfig(t, l, "abalone-dev"); !strings.Contains(got, "-v1-") {
		t.Errorf("after the plans the endpoint serves %s, want version 1's configuration still", got)
	}
}

// describeEndpointConfig is the configuration an endpoint serves, as SageMaker says.
func describeEndpointConfig(t *testing.T, l *local, endpoint string) string {
	t.Helper()
	out, err := l.sm().DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		t.Fatalf("describe endpoint %s: %v", endpoint, err)
	}
	return aws.ToString(out.EndpointConfigName)
}
