//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// TestKillLocalKeepsEndpoints: `sagedeploy local` is killed with SIGKILL while three endpoints are
// InService (different versions, one scaled live, one rolled back) and a fourth is in the middle
// of a blue/green update. Restarted on the same data directory, every endpoint serves again — the
// same version (predictions equal that version's reference), the same instance count — and the
// interrupted update completes. The second kill comes right after the restart, while endpoints
// are still being restored; after it too, everything serves as before. A deployer that was
// waiting when the backend died exits with an error, and running it again succeeds.
func TestKillLocalKeepsEndpoints(t *testing.T) {
	dir := t.TempDir()
	l := startLocal(t, dir)
	const group = "abalone"
	l.register(t, group, 1, 2)
	env := l.env(t)
	mustRun(t, env, "deploy", "--model", group, "--env", "dev", "--version", "1")
	mustRun(t, env, "scale", "--model", group, "--env", "dev", "--instances", "2")
	mustRun(t, env, "deploy", "--model", group, "--env", "prod", "--version", "2", "--instance-count", "2")
	mustRun(t, env, "deploy", "--model", group, "--env", "staging", "--version", "1")
	mustRun(t, env, "deploy", "--model", group, "--env", "staging", "--version", "2")
	mustRun(t, env, "rollback", "--model", group, "--env", "staging")
	mustRun(t, env, "deploy", "--model", group, "--env", "qa", "--version", "1")
	want := map[string]struct{ version, instances int }{
		"abalone-dev":     {1, 2},
		"abalone-prod":    {2, 2},
		"abalone-staging": {1, 1},
	}
	for ep, w := range want {
		assertEndpoint(t, l, ep, w.version, w.instances, "before the kill")
	}

	// A blue/green update of qa that bakes long enough to be caught by the kill.
	updating := make(chan struct{})
	var once bool
	bg := launch(t, "sagedeploy deploy (qa, killed backend)", env, func(_, line string) {
		if !once && strings.Contains(line, "Updating") {
			once = true
			close(updating)
		}
	}, "deploy", "--model", group, "--env", "qa", "--version", "2", "--canary", "50", "--bake", "2s")
	select {
	case <-updating:
	case <-bg.done:
		t.Fatalf("the qa deploy ended before its endpoint was Updating:\n%s", bg.output())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the qa endpoint never showed Updating:\n%s", bg.output())
	}

	for round := 1; round <= 2; round++ {
		l.kill9()
		if round == 1 {
			if code := bg.wait(3 * time.Minute); code == 0 {
				t.Fatalf("the qa deploy succeeded although the local SageMaker died under it:\n%s", bg.output())
			}
			if out := bg.output(); !strings.Contains(out, "error:") || !strings.Contains(out, "abalone-qa") {
				t.Errorf("the qa deploy's error does not say what failed (want an error naming the endpoint):\n%s", tail(out, 10))
			}
		}
		l = startLocal(t, dir)
		if round == 1 {
			// Kill again at once, while the endpoints are still being restored.
			continue
		}
		for ep, w := range want {
			waitInService(t, l, ep, 2*time.Minute)
			assertEndpoint(t, l, ep, w.version, w.instances, fmt.Sprintf("after kill -9 and restart (round %d)", round))
		}
	}

	// The interrupted update of qa completes by itself after the restart, and the deployer's
	// re-run then finds nothing left to do.
	waitInService(t, l, "abalone-qa", 2*time.Minute)
	l.waitServing(t, "abalone-qa", 2, time.Minute)
	env = l.env(t)
	r := mustRun(t, env, "deploy", "--model", group, "--env", "qa", "--version", "2", "--canary", "50", "--bake", "2s")
	assertEndpoint(t, l, "abalone-qa", 2, 1, "after re-running the interrupted deploy")
	if !strings.Contains(r.stdout, "abalone-qa") {
		t.Errorf("the re-run's output does not name the endpoint:\n%s", r.output)
	}

	// What the deployer reads back agrees with what serves, and nothing is half-deployed.
	st, err := l.deployer(t).Status(context.Background(), deploy.StatusRequest{Model: group})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range st.Components {
		names = append(names, c.Endpoint)
		if c.Deploying != "" {
			t.Errorf("%s still shows a deployment in progress after the restart: %s", c.Endpoint, c.Deploying)
		}
		if w, ok := want[c.Endpoint]; ok && (c.Version == nil || c.Version.Number != w.version || c.Instances != w.instances) {
			t.Errorf("status of %s: %+v, want version %d on %d instances", c.Endpoint, c, w.version, w.instances)
		}
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "abalone-dev abalone-prod abalone-qa abalone-staging" {
		t.Errorf("endpoints after the restarts: %v, want dev, prod, qa and staging", names)
	}
}

// waitInService polls DescribeEndpoint until the endpoint is InService; after a restart it shows
// SystemUpdating until it serves again.
func waitInService(t *testing.T, l *localSM, endpoint string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := l.sm().DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
		cancel()
		if err == nil && out.EndpointStatus == smtypes.EndpointStatusInService {
			return
		}
		if err == nil && (out.EndpointStatus == smtypes.EndpointStatusFailed || out.EndpointStatus == smtypes.EndpointStatusOutOfService) {
			t.Fatalf("endpoint %s is %s after the restart: %s", endpoint, out.EndpointStatus, aws.ToString(out.FailureReason))
		}
		if time.Now().After(deadline) {
			st := "unknown"
			if out != nil {
				st = string(out.EndpointStatus)
			}
			t.Fatalf("endpoint %s is not InService %s after the restart (status %s, %v)", endpoint, within, st, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
