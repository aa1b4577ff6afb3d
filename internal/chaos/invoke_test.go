//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// TestInvocationsDuringOperations: four clients invoke an endpoint continuously through the
// SageMaker runtime API while `sagedeploy deploy`, `rollback` and `scale` run 20 operations on it
// that alternate versions 1 and 2 and instance counts. Not one request may fail (the clients do
// not retry), every answer must be exactly one version's predictions, every operation must
// succeed, and right after each one the endpoint must serve the version and instance count it
// asked for.
func TestInvocationsDuringOperations(t *testing.T) {
	l := startLocal(t, t.TempDir())
	const group = "abalone"
	endpoint := group + "-dev"
	l.register(t, group, 1, 2)
	env := l.env(t)
	mustRun(t, env, "deploy", "--model", group, "--env", "dev", "--version", "1", "--instance-count", "1")
	l.waitServing(t, endpoint, 1, time.Minute)

	type invocation struct {
		start, end time.Time
		version    int
		err        error
	}
	var (
		mu          sync.Mutex
		invocations []invocation
		wg          sync.WaitGroup
	)
	stop := make(chan struct{})
	rt := l.runtime()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				inv := invocation{start: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				out, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
					EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
				cancel()
				if err == nil {
					inv.version, err = versionOf(out.Body)
				}
				inv.err, inv.end = err, time.Now()
				mu.Lock()
				invocations = append(invocations, inv)
				mu.Unlock()
			}
		}()
	}
	stopped := false
	stopInvoking := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopInvoking()

	type state struct{ version, instances int }
	type interval struct{ start, end time.Time }
	other := func(v int) int { return 3 - v }
	cur := state{1, 1}
	served := []state{cur} // the configurations the endpoint served, in order (a config is a version and instance count)
	var spans []interval
	for i := range 20 {
		var args []string
		want := cur
		switch i % 5 {
		case 0, 4:
			want = state{other(cur.version), 1 + (i/5)%2}
			args = []string{"deploy", "--version", strconv.Itoa(want.version), "--instance-count", strconv.Itoa(want.instances)}
		case 1:
			want.instances = cur.instances + 1
			args = []string{"scale", "--instances", strconv.Itoa(want.instances)}
		case 2:
			// Rollback serves the newest configuration of another version again, keeping the
			// instance count that runs now (a scale-up survives a rollback).
			for j := len(served) - 1; j >= 0; j-- {
				if served[j].version != cur.version {
					want = state{served[j].version, cur.instances}
					break
				}
			}
			args = []string{"rollback"}
		case 3:
			want.instances = 3
			args = []string{"scale", "--instances", "3"}
		}
		args = append(args, "--model", group, "--env", "dev")
		began := time.Now()
		r := run(t, env, args...)
		spans = append(spans, interval{began, time.Now()})
		if r.code != 0 {
			t.Fatalf("operation %d (sagedeploy %s) exited %d:\n%s", i+1, strings.Join(args, " "), r.code, tail(r.output, 30))
		}
		if args[0] != "scale" {
			served = append(served, want)
		}
		cur = want
		assertEndpoint(t, l, endpoint, cur.version, cur.instances, fmt.Sprintf("after operation %d (sagedeploy %s)", i+1, strings.Join(args, " ")))
	}
	stopInvoking()

	var failed []string
	for _, inv := range invocations {
		if inv.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", inv.start.Format("15:04:05.000"), inv.err))
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d invocations failed during the operations; first ones:\n%s", len(failed), len(invocations), strings.Join(failed[:min(len(failed), 10)], "\n"))
	}
	// Every operation ran while invocations were in flight — otherwise the test proved nothing.
	for i, s := range spans {
		overlapped := 0
		for _, inv := range invocations {
			if inv.start.Before(s.end) && inv.end.After(s.start) {
				overlapped++
			}
		}
		if overlapped == 0 {
			t.Errorf("operation %d ran while no invocation was in flight", i+1)
		}
	}
	t.Logf("%d invocations during 20 operations, %d failed", len(invocations), len(failed))
	if !l.running() {
		t.Fatalf("sagedeploy local died")
	}
}

// assertEndpoint checks that the endpoint is InService with the given instances and answers with
// version's predictions.
func assertEndpoint(t *testing.T, l *localSM, endpoint string, version, instances int, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := l.sm().DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		t.Fatalf("%s: describe endpoint %s: %v", when, endpoint, err)
	}
	if out.EndpointStatus != smtypes.EndpointStatusInService {
		t.Fatalf("%s: endpoint %s is %s, want InService", when, endpoint, out.EndpointStatus)
	}
	if len(out.ProductionVariants) != 1 {
		t.Fatalf("%s: endpoint %s has %d variants, want 1", when, endpoint, len(out.ProductionVariants))
	}
	if n := int(aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount)); n != instances {
		t.Fatalf("%s: endpoint %s runs %d instances, want %d", when, endpoint, n, instances)
	}
	got, err := l.served(ctx, endpoint)
	if err != nil || got != version {
		t.Fatalf("%s: endpoint %s answers with version %d (%v), want version %d", when, endpoint, got, err, version)
	}
}
