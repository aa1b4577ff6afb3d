//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

// seededRand is the suite's randomness; CHAOS_SEED replays a run (the seed is logged).
func seededRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q is not a number", s)
		}
		seed = n
	}
	t.Logf("random seed %d (CHAOS_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// killPoint says when to kill a deploy: after a progress line containing after (or at once when
// empty), plus a random delay up to jitter.
type killPoint struct {
	name   string
	after  string
	jitter time.Duration
	// update: the endpoint already serves version 1 and the killed deploy updates it to version 2
	// with a blue/green canary (so the wait lasts the bake time).
	update bool
}

// TestKillDeployThenRerun: `sagedeploy deploy`, reporting to a `sagedeploy server` with a token,
// is killed with SIGKILL at random points — before anything is made, during create-model and
// create-endpoint-config, while creating the endpoint, during the wait, and during a blue/green
// update — and then run again with the same arguments, as a CI retry does. The re-run must
// complete, and afterwards:
//   - ListModels shows exactly the models the successful runs name (one per version deployed),
//     ListEndpointConfigs exactly their configurations, ListEndpoints exactly the one endpoint;
//     nothing is duplicated or orphaned;
//   - the endpoint is InService, serves the version asked for (its predictions), carries no marker
//     of a deployment in progress, and its history ends with the configuration it serves;
//   - on the release server every release of the model is in a final state: the re-run's
//     succeeded, and the killed run's release (if it got as far as reporting one) was closed as
//     failed, superseded by the re-run; the component shows the version that serves.
func TestKillDeployThenRerun(t *testing.T) {
	rng := seededRand(t)
	l := startLocal(t, t.TempDir())
	srvDir := t.TempDir()
	token := initServer(t, srvDir)
	srv := startServer(t, srvDir)

	points := []killPoint{
		{name: "at a random moment", jitter: 150 * time.Millisecond},
		{name: "while resolving the version", after: "[resolve]", jitter: 2 * time.Millisecond},
		{name: "after create-model", after: "[model] created model", jitter: 2 * time.Millisecond},
		{name: "after create-endpoint-config", after: "[endpoint-config] created", jitter: 2 * time.Millisecond},
		{name: "while creating the endpoint", after: "[endpoint] creating endpoint", jitter: 2 * time.Millisecond},
		{name: "during the wait", after: "[wait]", jitter: 5 * time.Millisecond},
		{name: "at another random moment", jitter: 150 * time.Millisecond},
		{name: "during the wait of a blue/green update", after: "[endpoint] updating endpoint", jitter: 1200 * time.Millisecond, update: true},
		{name: "at the start of a blue/green update", after: "[resolve]", jitter: 100 * time.Millisecond, update: true},
	}
	for i, kp := range points {
		t.Run(fmt.Sprintf("%d-%s", i+1, strings.ReplaceAll(kp.name, " ", "-")), func(t *testing.T) {
			killDeployThenRerun(t, rng, l, srv, token, i+1, kp)
		})
	}
	if !l.running() || !srv.running() {
		t.Fatalf("a server died: local running=%v, release server running=%v", l.running(), srv.running())
	}
}

func killDeployThenRerun(t *testing.T, rng *rand.Rand, l *localSM, srv *releaseServer, token string, n int, kp killPoint) {
	group := fmt.Sprintf("kill%d", n)
	pipeline := fmt.Sprintf("pipeline-%d-%d", n, rng.IntN(1_000_000))
	endpoint := group + "-dev"
	l.register(t, group, 1, 2)
	env := l.env(t, "SAGEDEPLOY_RELEASES_URL="+srv.url, "SAGEDEPLOY_RELEASES_TOKEN="+token)

	var successes []deploy.DeployResult
	version := 1
	args := []string{"deploy", "--model", group, "--env", "dev", "--pipeline-id", pipeline, "--output", "json"}
	if kp.update {
		r := mustRun(t, env, append(args, "--version", "1")...)
		successes = append(successes, decodeDeploy(t, r.stdout))
		version = 2
		args = append(args, "--canary", "50", "--bake", "1s")
	}
	args = append(args, "--version", strconv.Itoa(version))

	// The killed run.
	delay := time.Duration(rng.Int64N(int64(kp.jitter) + 1))
	trigger := make(chan struct{})
	var once sync.Once
	if kp.after == "" {
		once.Do(func() { close(trigger) })
	}
	p := launch(t, "sagedeploy deploy (killed)", env, func(_, line string) {
		if strings.Contains(line, kp.after) {
			once.Do(func() { close(trigger) })
		}
	}, args...)
	select {
	case <-trigger:
		time.Sleep(delay)
		p.kill9()
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the deploy never reached %q:\n%s", kp.after, p.output())
	}
	killed := p.cmd.ProcessState.ExitCode() == -1
	t.Logf("%s: killed=%v %s after %q; it had said:\n%s", kp.name, killed, delay, kp.after, tail(p.output(), 12))

	// The re-run, as a CI retry runs it.
	r := run(t, env, args...)
	if r.code != 0 {
		t.Fatalf("the re-run after kill -9 exited %d:\n%s", r.code, tail(r.output, 30))
	}
	res := decodeDeploy(t, r.stdout)
	successes = append(successes, res)
	if res.Version.Number != version || res.EndpointStatus != "InService" || res.Endpoint != endpoint {
		t.Fatalf("the re-run reports %s serving version %d (%s); want %s serving version %d, InService", res.Endpoint, res.Version.Number, res.EndpointStatus, endpoint, version)
	}

	// Exactly what the successful runs made, nothing more.
	var wantModels, wantConfigs []string
	for _, s := range successes {
		wantModels = append(wantModels, s.ModelName)
		wantConfigs = append(wantConfigs, s.EndpointConfigName)
	}
	ctx := context.Background()
	sm := l.sm()
	models, err := sm.ListModels(ctx, &sagemaker.ListModelsInput{NameContains: aws.String(group), MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	var gotModels []string
	for _, m := range models.Models {
		gotModels = append(gotModels, aws.ToString(m.ModelName))
	}
	assertSameSet(t, "models (ListModels)", gotModels, wantModels)
	configs, err := sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{NameContains: aws.String(group), MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	var gotConfigs []string
	for _, c := range configs.EndpointConfigs {
		gotConfigs = append(gotConfigs, aws.ToString(c.EndpointConfigName))
	}
	assertSameSet(t, "endpoint configurations (ListEndpointConfigs)", gotConfigs, wantConfigs)
	eps, err := sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{NameContains: aws.String(group), MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	var gotEndpoints []string
	for _, e := range eps.Endpoints {
		gotEndpoints = append(gotEndpoints, aws.ToString(e.EndpointName))
	}
	assertSameSet(t, "endpoints (ListEndpoints)", gotEndpoints, []string{endpoint})

	desc, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		t.Fatal(err)
	}
	if desc.EndpointStatus != smtypes.EndpointStatusInService || aws.ToString(desc.EndpointConfigName) != res.EndpointConfigName {
		t.Errorf("endpoint %s is %s with %s; want InService with %s", endpoint, desc.EndpointStatus, aws.ToString(desc.EndpointConfigName), res.EndpointConfigName)
	}
	if got, err := l.served(ctx, endpoint); err != nil || got != version {
		t.Errorf("endpoint %s answers with version %d (%v); want version %d", endpoint, got, err, version)
	}
	if tags := endpointTags(t, l, aws.ToString(desc.EndpointArn)); tags[deploy.TagDeploy] != "" {
		t.Errorf("endpoint %s still carries the marker of a deployment in progress (%s=%q) although none is", endpoint, deploy.TagDeploy, tags[deploy.TagDeploy])
	}
	d := l.deployer(t)
	st, err := d.Status(ctx, deploy.StatusRequest{Model: group})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Components) != 1 || st.Components[0].Deploying != "" {
		t.Errorf("status after the re-run: %+v; want one component with no deployment in progress", st.Components)
	}
	h, err := d.History(ctx, deploy.HistoryRequest{Model: group, Environment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.Entries); n == 0 || h.Entries[n-1].EndpointConfigName != res.EndpointConfigName || !h.Entries[n-1].Current {
		t.Errorf("history of %s does not end with the configuration it serves (%s): %+v", endpoint, res.EndpointConfigName, h.Entries)
	}

	// Every release ends in a final state; the re-run's succeeded.
	rels := srv.releasesOf(t, token, group)
	if len(rels) == 0 {
		t.Fatalf("the release server has no release of %s", group)
	}
	for _, rel := range rels {
		if !rel.Status.Final() {
			t.Errorf("release %s (%s, version %d, started %s) is still %s after the re-run finished", rel.ID, rel.Kind, rel.Version.Number, rel.CreatedAt.Format(time.StampMilli), rel.Status)
		}
	}
	if rels[0].ID != res.ReleaseID || rels[0].Status != releases.StatusSucceeded || rels[0].Version.Number != version {
		t.Errorf("the newest release is %s (%s, version %d); want the re-run's %s, succeeded with version %d", rels[0].ID, rels[0].Status, rels[0].Version.Number, res.ReleaseID, version)
	}
	for _, rel := range rels[1:] {
		if rel.Status == releases.StatusFailed && rel.Version.Number == version && !strings.Contains(rel.FailureReason, res.ReleaseID) {
			t.Errorf("the killed run's release %s failed with %q; want the reason to name the re-run's release %s", rel.ID, rel.FailureReason, res.ReleaseID)
		}
	}
	c := srv.component(t, token, "dev", group)
	if c.CurrentVersion == nil || c.CurrentVersion.Number != version || c.EndpointStatus != "InService" {
		t.Errorf("the release server shows %s/dev serving %+v (%s); want version %d, InService", group, c.CurrentVersion, c.EndpointStatus, version)
	}
}

func decodeDeploy(t *testing.T, stdout string) deploy.DeployResult {
	t.Helper()
	var r deploy.DeployResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("deploy --output json printed %q: %v", stdout, err)
	}
	return r
}

func assertSameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g := append([]string(nil), got...)
	w := append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	w = compact(w)
	if strings.Join(g, " ") != strings.Join(w, " ") {
		t.Errorf("%s: %v; want exactly %v", what, g, w)
	}
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
