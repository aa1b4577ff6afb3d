package deploy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go/middleware"

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
//
// The first deployer's first look at its update is held until the other update is done: without
// that, a loaded machine let the first deployer see its own configuration InService before the
// other update landed, and the test failed (the race was in the test, not in the deployer: a
// deployer that saw its configuration serve has rightly succeeded).
func TestUpdateReplacedByAnotherDeployerIsNotARollback(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	hold := newHoldAfter("UpdateEndpoint", "DescribeEndpoint")
	first, firstEvents := l.deployer(nil, withReleases(rs.client("dev")), func(o *deploy.Options) {
		o.APIOptions = append(o.APIOptions, hold.middleware)
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
		res, err := first.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2, Timeout: time.Minute})
		done <- result{res, err}
	}()
	select {
	case <-hold.reached:
	case r := <-done:
		t.Fatalf("the first deploy ended before it updated the endpoint: %v\n%s", r.err, firstEvents.text())
	}
	// The first deployer's update serves; then the other replaces it, before the first looks.
	sm := l.sm()
	waitServing(t, sm, "abalone-dev", "-v2-")
	if _, err := sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String(other.EndpointConfigName)}); err != nil {
		t.Fatal(err)
	}
	waitServing(t, sm, "abalone-dev", other.EndpointConfigName)
	close(hold.release)
	r := <-done
	if r.err != nil {
		t.Fatalf("the replaced deploy failed: %v\n%s", r.err, firstEvents.text())
	}
	if !strings.Contains(firstEvents.text(), "a later deployment has replaced it") {
		t.Errorf("the replaced deploy does not say another deployment replaced it:\n%s", firstEvents.text())
	}
	comp, err := rs.st.Component(ctx, "dev", "abalone")
	if err != nil {
		t.Fatal(err)
	}
	if comp.CurrentVersion == nil || comp.CurrentVersion.Number != 1 || comp.InstanceCount != 2 {
		t.Fatalf("release server shows %+v on %d instances; the endpoint serves version 1 on 2", comp.CurrentVersion, comp.InstanceCount)
	}
}

// waitServing waits (with the SDK's waiter) until the endpoint is InService with a configuration
// whose name contains config.
func waitServing(t *testing.T, sm *sagemaker.Client, endpoint, config string) {
	t.Helper()
	w := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 5*time.Millisecond, 50*time.Millisecond
		o.Retryable = func(ctx context.Context, in *sagemaker.DescribeEndpointInput, out *sagemaker.DescribeEndpointOutput, err error) (bool, error) {
			if err != nil {
				return false, err
			}
			if out.EndpointStatus == smtypes.EndpointStatusFailed {
				return false, fmt.Errorf("endpoint %s failed: %s", endpoint, aws.ToString(out.FailureReason))
			}
			return out.EndpointStatus != smtypes.EndpointStatusInService || !strings.Contains(aws.ToString(out.EndpointConfigName), config), nil
		}
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)}, time.Minute); err != nil {
		t.Fatalf("wait for %s to serve %s: %v", endpoint, config, err)
	}
}

// holdAfter holds a deployer's first call of one operation made after another operation
// succeeded, until release is closed; reached is closed when the call is held. It lets a test act
// between two calls of the deployer without guessing how long to wait.
type holdAfter struct {
	after, held string
	armed       atomic.Bool
	once        sync.Once
	reached     chan struct{}
	release     chan struct{}
}

func newHoldAfter(after, held string) *holdAfter {
	return &holdAfter{after: after, held: held, reached: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdAfter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("hold", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		op := awsmiddleware.GetOperationName(ctx)
		if op == h.held && h.armed.Load() {
			first := false
			h.once.Do(func() { first = true; close(h.reached) })
			if first {
				select {
				case <-h.release:
				case <-ctx.Done():
				}
			}
		}
		out, md, err := next.HandleInitialize(ctx, in)
		if op == h.after && err == nil {
			h.armed.Store(true)
		}
		return out, md, err
	}), middleware.After)
}
