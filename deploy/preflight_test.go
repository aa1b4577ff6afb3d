package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// writes are the SageMaker calls that change something.
func writes(c *calls) []string {
	var out []string
	for _, op := range c.names() {
		if name, ok := strings.CutPrefix(op, "SageMaker/"); ok && (strings.HasPrefix(name, "Create") || strings.HasPrefix(name, "Update") ||
			strings.HasPrefix(name, "Delete") || name == "AddTags") {
			out = append(out, op)
		}
	}
	return out
}

// A deploy that cannot succeed is refused by the check that sees why, before any SageMaker write.
func TestPreflightStopsBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		quotas map[string]float64
		setup  func(t *testing.T, l *local, d *deploy.Deployer) deploy.Strategy
		check  string
		says   []string
	}{
		{"artifact missing", nil, func(t *testing.T, l *local, d *deploy.Deployer) deploy.Strategy {
			res := register(t, d, "abalone", 2, true)
			deleteObject(t, l, res.ArtifactURL)
			return deploy.Strategy{}
		}, "artifact", []string{"preflight failed for abalone-dev", "artifact: artifact s3://", "version 2 is missing", "--bucket"}},
		{"quota too small for blue/green", map[string]float64{"ml.t2.medium": 1}, func(t *testing.T, l *local, d *deploy.Deployer) deploy.Strategy {
			register(t, d, "abalone", 2, true)
			return deploy.Strategy{}
		}, "capacity", []string{"capacity: not enough ml.t2.medium quota", "1 ml.t2.medium running + 1 new = 2, quota 1", "blue/green"}},
		{"alarm missing", nil, func(t *testing.T, l *local, d *deploy.Deployer) deploy.Strategy {
			register(t, d, "abalone", 2, true)
			return deploy.Strategy{RollbackAlarms: []string{"abalone-dev-5xx"}}
		}, "alarms", []string{"alarms: CloudWatch alarm abalone-dev-5xx does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := localsmtest.Start(t, localsm.Options{EndpointQuotas: tc.quotas})
			l := &local{t: t, srv: srv, url: srv.URL()}
			d, _ := l.deployer(nil)
			register(t, d, "abalone", 1, true)
			if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
				t.Fatal(err)
			}
			strategy := tc.setup(t, l, d)
			rec := &calls{}
			d2, ev := l.deployer(rec)
			res, err := d2.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Strategy: strategy})
			if !errors.Is(err, deploy.ErrPreflight) {
				t.Fatalf("deploy = %v; want a preflight failure\n%s", err, ev.text())
			}
			for _, want := range tc.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if w := writes(rec); len(w) > 0 {
				t.Errorf("a refused deploy wrote to SageMaker: %v", w)
			}
			failed := 0
			for _, c := range res.Preflight {
				if c.Status == deploy.CheckFailed {
					failed++
					if c.Name != tc.check {
						t.Errorf("check %s failed too: %s", c.Name, c.Detail)
					}
				}
			}
			if failed != 1 || !strings.Contains(ev.text(), "[preflight] preflight "+tc.check+": failed") {
				t.Errorf("the output does not name the failed check %s:\n%s", tc.check, ev.text())
			}
			expectVersion(t, d, "abalone-dev", 1)
		})
	}
}

// Where blue/green has no room for a second fleet, a rolling update, one batch at a time, does.
func TestRollingUpdateFitsWhereBlueGreenDoesNot(t *testing.T) {
	t.Parallel()
	srv := localsmtest.Start(t, localsm.Options{EndpointQuotas: map[string]float64{"ml.t2.medium": 3}})
	l := &local{t: t, srv: srv, url: srv.URL()}
	d, ev := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", InstanceCount: 2}); err != nil {
		t.Fatal(err)
	}
	register(t, d, "abalone", 2, true)
	_, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"})
	if !errors.Is(err, deploy.ErrPreflight) || !strings.Contains(err.Error(), "2 ml.t2.medium running + 2 new = 4, quota 3") {
		t.Fatalf("blue/green past the quota: %v", err)
	}
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Strategy: deploy.Strategy{Type: deploy.Rolling, Percent: 50, Bake: time.Second}}); err != nil {
		t.Fatalf("rolling within the quota: %v\n%s", err, ev.text())
	}
	expectVersion(t, d, "abalone-dev", 2)
}

// gated is a pipeline file's environments: prod behind an approval gate (no release server: the
// deploys go on unreported).
var gated = &deploy.Environments{Source: "the pipeline file", AllowUnreported: true,
	Known: []deploy.KnownEnvironment{{Name: "dev"}, {Name: "prod", Gated: true}}}

// gatedAccount is a local SageMaker whose ml.t2.medium quota is quota, with abalone and churn
// registered and churn already running 2 instances in dev.
func gatedAccount(t *testing.T, quota float64) (*local, deploy.DeployResult) {
	t.Helper()
	srv := localsmtest.Start(t, localsm.Options{EndpointQuotas: map[string]float64{"ml.t2.medium": quota}})
	l := &local{t: t, srv: srv, url: srv.URL()}
	d, _ := l.deployer(nil, withEnvironments(gated))
	register(t, d, "abalone", 1, true)
	register(t, d, "churn", 1, true)
	other, err := d.Deploy(ctx, deploy.DeployRequest{Model: "churn", Environment: "dev", InstanceCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	return l, other
}

// Before an approval gate the capacity check counts the account's other endpoints too, so that
// nobody is asked to approve a fleet that cannot fit; an ungated deploy counts only the endpoint's
// own fleet and reads no other endpoint: SageMaker counts the rest when it creates the fleet.
func TestCapacityBeforeAGateCountsTheOtherEndpoints(t *testing.T) {
	t.Parallel()
	l, _ := gatedAccount(t, 2)

	rec := &calls{}
	d2, ev := l.deployer(rec, withEnvironments(gated))
	_, err := d2.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"})
	if !errors.Is(err, deploy.ErrPreflight) || !strings.Contains(err.Error(), "2 ml.t2.medium running + 1 new = 3, quota 2") {
		t.Fatalf("gated deploy past the quota: %v\n%s", err, ev.text())
	}
	if w := writes(rec); len(w) > 0 {
		t.Errorf("a refused deploy wrote to SageMaker: %v", w)
	}

	// Ungated, the check reads no other endpoint and passes on the endpoint's own fleet; SageMaker
	// then counts the others itself and refuses the fleet, changing nothing.
	rec = &calls{}
	d3, ev := l.deployer(rec, withEnvironments(gated))
	res, err := d3.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"})
	if !errors.Is(err, deploy.ErrDeployFailed) || !strings.Contains(err.Error(), "SageMaker refused to create endpoint abalone-dev") ||
		!strings.Contains(err.Error(), "current utilization of 2 Instances") || !strings.Contains(err.Error(), "Nothing was changed") {
		t.Fatalf("ungated deploy past the quota: %v\n%s", err, ev.text())
	}
	if n := rec.count("SageMaker/ListEndpoints"); n != 0 {
		t.Errorf("the ungated deploy listed the account's endpoints %d times", n)
	}
	for _, c := range res.Preflight {
		if c.Name == "capacity" && (c.Status != deploy.CheckPassed || !strings.Contains(c.Detail, "0 ml.t2.medium running + 1 new = 1, quota 2")) {
			t.Errorf("ungated capacity check: %s — %s", c.Status, c.Detail)
		}
	}
	if _, err := l.sm().DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("abalone-dev")}); err == nil {
		t.Error("the refused deploy left endpoint abalone-dev behind")
	}
}

// With room to spare, the check before a gate reads no other endpoint's configuration: every
// instance the others run, whatever its type, already fits beside the new fleet.
func TestCapacityBeforeAGateReadsConfigurationsOnlyWhenTight(t *testing.T) {
	t.Parallel()
	l, other := gatedAccount(t, 10)
	rec := &calls{}
	d2, ev := l.deployer(rec, withEnvironments(gated))
	res, err := d2.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"})
	if err != nil {
		t.Fatalf("gated deploy with room: %v\n%s", err, ev.text())
	}
	if n := rec.before("SageMaker/CreateEndpoint")["SageMaker/DescribeEndpointConfig "+other.EndpointConfigName]; n != 0 {
		t.Errorf("the capacity check read the other endpoint's configuration %d times although it fits whatever its type", n)
	}
	for _, c := range res.Preflight {
		if c.Name == "capacity" && (c.Status != deploy.CheckPassed || !strings.Contains(c.Detail, "2 ml.t2.medium running + 1 new = 3, quota 10") || !strings.Contains(c.Detail, "whatever its type")) {
			t.Errorf("capacity check: %s — %s", c.Status, c.Detail)
		}
	}
	// The other endpoints are read ahead only when preflight is sure to run: a re-run of the same
	// deploy, which changes nothing, reads none of them (one call each on AWS).
	rec = &calls{}
	d3, _ := l.deployer(rec, withEnvironments(gated))
	again, err := d3.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"})
	if err != nil || again.Changed {
		t.Fatalf("re-run of the gated deploy: changed %v, %v", again.Changed, err)
	}
	if n := rec.count("SageMaker/ListEndpoints"); n != 0 {
		t.Errorf("a re-run that changes nothing listed the account's endpoints %d times", n)
	}
}
