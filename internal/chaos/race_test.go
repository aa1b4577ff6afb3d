//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

// racer is one of two deploys started together on the same endpoint.
type racer struct {
	version   int
	instances int
	extra     []string
	// startAfter delays the start until the other racer printed a line containing it.
	startAfter string
}

// TestRacingDeploys: two `sagedeploy deploy` processes of different CI pipelines deploy different
// versions to the same endpoint at the same moment — while it does not exist yet, while it serves
// (blue/green updates that bake), and with a lock timeout too short to wait for the other. One
// wins; the other waits and then deploys, or fails with a clear error saying the endpoint is busy
// and nothing was changed. Never an interleaved state: the endpoint ends InService with the
// configuration of a deploy that succeeded, answers with that configuration's version, carries no
// marker of a deployment in progress, its history ends with that configuration, its
// configuration's tags name that version, and the release server shows both releases ended and
// the component serving that version on that many instances.
func TestRacingDeploys(t *testing.T) {
	rng := seededRand(t)
	l := startLocal(t, t.TempDir())
	srvDir := t.TempDir()
	token := initServer(t, srvDir)
	srv := startServer(t, srvDir)

	canary := []string{"--canary", "50", "--bake", "1s"}
	cases := []struct {
		name    string
		initial int // version the endpoint serves before the race; 0: no endpoint
		racers  [2]racer
		// busy: the second racer must fail, busy.
		busy bool
	}{
		{name: "create", racers: [2]racer{{version: 1, instances: 1}, {version: 2, instances: 2}}},
		{name: "create while creating", racers: [2]racer{{version: 2, instances: 1}, {version: 1, instances: 1, startAfter: "[endpoint] creating endpoint"}}},
		{name: "update", initial: 1, racers: [2]racer{{version: 2, instances: 1}, {version: 1, instances: 2}}},
		{name: "blue-green update", initial: 1, racers: [2]racer{{version: 2, instances: 1, extra: canary}, {version: 1, instances: 2, extra: canary}}},
		{name: "blue-green update again", initial: 2, racers: [2]racer{{version: 1, instances: 2, extra: canary}, {version: 2, instances: 1, extra: canary}}},
		// The first deployer polls slowly: the second, waiting for it, updates the endpoint before the
		// first sees its own update finish, and the first reports last.
		{name: "slow poller reports last", initial: 1, racers: [2]racer{
			{version: 2, instances: 1, extra: []string{"--canary", "50", "--bake", "1s", "--poll-initial", "900ms", "--poll-max", "900ms"}},
			{version: 1, instances: 2, startAfter: "[endpoint] updating endpoint"},
		}},
		{name: "lock timeout", initial: 1, busy: true, racers: [2]racer{
			{version: 2, instances: 1, extra: []string{"--canary", "50", "--bake", "4s"}},
			{version: 1, instances: 2, extra: []string{"--lock-timeout", "300ms"}, startAfter: "[endpoint] updating endpoint"},
		}},
	}
	for i, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			group := fmt.Sprintf("race%d", i+1)
			l.register(t, group, 1, 2)
			env := l.env(t, "SAGEDEPLOY_RELEASES_URL="+srv.url, "SAGEDEPLOY_RELEASES_TOKEN="+token)
			if c.initial > 0 {
				mustRun(t, env, "deploy", "--model", group, "--env", "dev", "--version", strconv.Itoa(c.initial), "--pipeline-id", group+"-initial")
			}
			race(t, rng, l, srv, token, env, group, c.racers, c.busy)
		})
	}
	if !l.running() || !srv.running() {
		t.Fatalf("a server died: local running=%v, release server running=%v", l.running(), srv.running())
	}
}

func race(t *testing.T, rng *rand.Rand, l *localSM, srv *releaseServer, token string, env []string, group string, racers [2]racer, busy bool) {
	endpoint := group + "-dev"
	var ps [2]*proc
	started := make(chan struct{})
	var once bool
	for i, r := range racers {
		if r.startAfter != "" {
			select {
			case <-started:
			case <-ps[0].done:
				t.Fatalf("the first deploy ended before %q:\n%s", r.startAfter, ps[0].output())
			case <-time.After(2 * time.Minute):
				t.Fatalf("the first deploy never printed %q", r.startAfter)
			}
		} else if i > 0 {
			time.Sleep(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
		}
		args := append([]string{"deploy", "--model", group, "--env", "dev", "--version", strconv.Itoa(r.version),
			"--instance-count", strconv.Itoa(r.instances), "--pipeline-id", fmt.Sprintf("%s-racer-%d", group, i), "--output", "json"}, r.extra...)
		var onLine func(string, string)
		if i == 0 && racers[1].startAfter != "" {
			after := racers[1].startAfter
			onLine = func(_, line string) {
				if !once && strings.Contains(line, after) {
					once = true
					close(started)
				}
			}
		}
		ps[i] = launch(t, fmt.Sprintf("sagedeploy deploy (racer %d)", i), env, onLine, args...)
	}
	var results [2]*deploy.DeployResult
	for i, p := range ps {
		code := p.wait(3 * time.Minute)
		out := p.output()
		t.Logf("racer %d (version %d): exit %d, waited for the other: %v", i, racers[i].version, code, strings.Contains(out, "is busy with"))
		if code == 0 {
			r := decodeDeploy(t, p.stdoutText())
			results[i] = &r
			continue
		}
		if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") || !strings.Contains(out, "error:") || !strings.Contains(out, endpoint) {
			t.Errorf("racer %d failed without a clear error naming %s (exit %d):\n%s", i, endpoint, code, tail(out, 15))
		}
		if !busy {
			t.Errorf("racer %d failed (exit %d) although its lock timeout lets it wait for the other:\n%s", i, code, tail(out, 15))
		} else if !strings.Contains(out, "busy") || !strings.Contains(out, "nothing was changed") {
			t.Errorf("racer %d failed without saying the endpoint is busy and nothing was changed:\n%s", i, tail(out, 15))
		}
	}
	if busy && (results[0] == nil || results[1] != nil) {
		t.Fatalf("with a lock timeout shorter than the other's deployment, the first deploy must succeed and the second fail busy; got results %v, %v", results[0] != nil, results[1] != nil)
	}
	if results[0] == nil && results[1] == nil {
		t.Fatalf("neither racing deploy succeeded")
	}

	ctx := context.Background()
	desc, err := l.sm().DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		t.Fatal(err)
	}
	final := aws.ToString(desc.EndpointConfigName)
	var winner *deploy.DeployResult
	for _, r := range results {
		if r != nil && r.EndpointConfigName == final {
			winner = r
		}
	}
	if desc.EndpointStatus != smtypes.EndpointStatusInService || winner == nil {
		t.Fatalf("endpoint %s ended %s with %s, which no successful deploy asked for (results: %+v, %+v)", endpoint, desc.EndpointStatus, final, results[0], results[1])
	}
	version, instances := winner.Version.Number, winner.InstanceCount
	if n := int(aws.ToInt32(desc.ProductionVariants[0].CurrentInstanceCount)); n != instances {
		t.Errorf("endpoint %s runs %d instances; its configuration %s has %d", endpoint, n, final, instances)
	}
	if got, err := l.served(ctx, endpoint); err != nil || got != version {
		t.Errorf("endpoint %s answers with version %d (%v); its configuration %s serves version %d", endpoint, got, err, final, version)
	}
	tags := endpointTags(t, l, aws.ToString(desc.EndpointArn))
	if tags[deploy.TagDeploy] != "" {
		t.Errorf("endpoint %s still carries a deployment marker after both deploys ended: %q", endpoint, tags[deploy.TagDeploy])
	}
	if tags[deploy.TagModel] != group || tags[deploy.TagEnvironment] != "dev" {
		t.Errorf("endpoint %s is tagged model %q, environment %q; want %s, dev", endpoint, tags[deploy.TagModel], tags[deploy.TagEnvironment], group)
	}
	cfg, err := l.sm().DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String(final)})
	if err != nil {
		t.Fatal(err)
	}
	if ct := endpointTags(t, l, aws.ToString(cfg.EndpointConfigArn)); ct[deploy.TagVersion] != strconv.Itoa(version) {
		t.Errorf("configuration %s is tagged version %q but serves version %d", final, ct[deploy.TagVersion], version)
	}
	h, err := l.deployer(t).History(ctx, deploy.HistoryRequest{Model: group, Environment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.Entries); n == 0 || h.Entries[n-1].EndpointConfigName != final || h.Entries[n-1].Version != version {
		t.Errorf("history of %s does not end with what serves (%s, version %d): %+v", endpoint, final, version, h.Entries)
	}

	rels := srv.releasesOf(t, token, group)
	for _, r := range rels {
		if !r.Status.Final() {
			t.Errorf("release %s (version %d) is still %s after both deploys ended", r.ID, r.Version.Number, r.Status)
		}
		if r.ID == winner.ReleaseID && r.Status != releases.StatusSucceeded {
			t.Errorf("the winner's release %s is %s (%s)", r.ID, r.Status, r.FailureReason)
		}
	}
	comp := srv.component(t, token, "dev", group)
	if comp.CurrentVersion == nil || comp.CurrentVersion.Number != version || comp.InstanceCount != instances || comp.EndpointStatus != "InService" {
		cur := 0
		if comp.CurrentVersion != nil {
			cur = comp.CurrentVersion.Number
		}
		t.Errorf("the release server shows %s/dev serving version %d on %d instances (%s); the endpoint serves version %d on %d", group, cur, comp.InstanceCount, comp.EndpointStatus, version, instances)
	}
}
