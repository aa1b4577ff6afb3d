package deploy_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// Two deploys of one endpoint: the first polls slowly, so the second — waiting for it — replaces
// its update before the first sees it finish, and the first reports last. The release server must
// still show what serves: the second deploy's version on its instances, not the first's.
func TestReleaseServerShowsWhatServesWhenAnEarlierDeployReportsLast(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	slow, _ := l.deployer(nil, withReleases(rs.client("dev")), func(o *deploy.Options) {
		o.Poll = deploy.PollSchedule{Initial: 900 * time.Millisecond, Max: 900 * time.Millisecond, Factor: 1}
	})
	fast, fastEvents := l.deployer(nil, withReleases(rs.client("dev")))
	register(t, fast, "abalone", 1, true)
	register(t, fast, "abalone", 2, true)
	if _, err := fast.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1}); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var slowErr error
	slowDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(slowDone)
		_, slowErr = slow.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2, Timeout: time.Minute,
			Strategy: deploy.Strategy{Type: deploy.Canary, Percent: 50, Bake: time.Second}})
	}()
	sm := l.sm()
	for {
		out, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("abalone-dev")})
		if err != nil {
			t.Fatal(err)
		}
		if out.EndpointStatus == smtypes.EndpointStatusUpdating {
			break
		}
		select {
		case <-slowDone:
			t.Fatalf("the first deploy ended before its update could be replaced: %v", slowErr)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, err := fast.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1, InstanceCount: 2, Timeout: time.Minute}); err != nil {
		t.Fatalf("%v\n%s", err, fastEvents.text())
	}
	wg.Wait()
	if slowErr != nil {
		t.Fatalf("the replaced deploy failed: %v", slowErr)
	}
	comp, err := rs.st.Component(ctx, "dev", "abalone")
	if err != nil {
		t.Fatal(err)
	}
	if comp.CurrentVersion == nil || comp.CurrentVersion.Number != 1 || comp.InstanceCount != 2 {
		t.Fatalf("release server shows %+v on %d instances; the endpoint serves version 1 on 2", comp.CurrentVersion, comp.InstanceCount)
	}
	expectVersion(t, fast, "abalone-dev", 1)
}

// Where updates take milliseconds (the local SageMaker), two deployers can both see the endpoint
// InService with the same configuration and both update it, one right after the other: the first
// one's configuration served, then the second replaced it without recording it in the history.
// The first must not claim that SageMaker rolled it back (the endpoint serves neither its
// configuration nor the one it replaced, and says no failure), and its release must show what
// serves: the other configuration's version on its instances.
func TestUpdateReplacedByAnotherDeployerIsNotARollback(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	slow, slowEvents := l.deployer(nil, withReleases(rs.client("dev")), func(o *deploy.Options) {
		o.Poll = deploy.PollSchedule{Initial: 900 * time.Millisecond, Max: 900 * time.Millisecond, Factor: 1}
	})
	fast, _ := l.deployer(nil)
	register(t, fast, "abalone", 1, true)
	register(t, fast, "abalone", 2, true)
	if _, err := fast.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1}); err != nil {
		t.Fatal(err)
	}
	// The configuration the other deployer puts in place: version 1 on 2 instances.
	other, err := fast.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{Model: "abalone", Environment: "dev", Version: 1, InstanceCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		res deploy.DeployResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := slow.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2, Timeout: time.Minute})
		done <- result{res, err}
	}()
	// As soon as the slow deployer's update is InService, the other updates the endpoint again.
	sm := l.sm()
	for {
		out, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("abalone-dev")})
		if err != nil {
			t.Fatal(err)
		}
		if out.EndpointStatus == smtypes.EndpointStatusInService && strings.Contains(aws.ToString(out.EndpointConfigName), "-v2-") {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String(other.EndpointConfigName)}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("the replaced deploy failed: %v\n%s", r.err, slowEvents.text())
	}
	if !strings.Contains(slowEvents.text(), "a later deployment has replaced it") {
		t.Errorf("the replaced deploy does not say another deployment replaced it:\n%s", slowEvents.text())
	}
	comp, err := rs.st.Component(ctx, "dev", "abalone")
	if err != nil {
		t.Fatal(err)
	}
	if comp.CurrentVersion == nil || comp.CurrentVersion.Number != 1 || comp.InstanceCount != 2 {
		t.Fatalf("release server shows %+v on %d instances; the endpoint serves version 1 on 2", comp.CurrentVersion, comp.InstanceCount)
	}
}
