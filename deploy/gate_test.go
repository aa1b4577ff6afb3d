package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func withEnvironments(e *deploy.Environments) deployerOpt {
	return func(o *deploy.Options) { o.Environments = e }
}

var pipelineEnvs = &deploy.Environments{Source: "the pipeline file sagedeploy.yaml", Known: []deploy.KnownEnvironment{{Name: "dev"}, {Name: "prod", Gated: true}}}

// every operation that changes an environment, aimed at env.
func changes(d *deploy.Deployer, env string) map[string]func() error {
	return map[string]func() error{
		"deploy": func() error {
			_, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: env, Version: 1})
			return err
		},
		"scale": func() error {
			_, err := d.Scale(ctx, deploy.ScaleRequest{Model: "abalone", Environment: env, Instances: 2})
			return err
		},
		"rollback": func() error {
			_, err := d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: env})
			return err
		},
		"promote": func() error {
			_, err := d.Promote(ctx, deploy.PromoteRequest{Model: "abalone", From: "dev", To: env})
			return err
		},
		"create-model": func() error {
			_, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: "abalone", Environment: env, Version: 1})
			return err
		},
		"create-endpoint-config": func() error {
			_, err := d.CreateEndpointConfig(ctx, deploy.CreateEndpointConfigRequest{Model: "abalone", Environment: env, Version: 1})
			return err
		},
	}
}

// A mistyped environment is an error listing the pipeline's environments, before any AWS call.
func TestEnvironmentNotInPipelineFileIsRefusedBeforeAnyAWSCall(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rec := &calls{}
	d, _ := l.deployer(rec, withEnvironments(pipelineEnvs))
	for op, run := range changes(d, "dvo") {
		err := run()
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), `"dvo"`) || !strings.Contains(err.Error(), "dev, prod") {
			t.Errorf("%s --env dvo = %v, want an invalid-request error naming dvo and listing dev, prod", op, err)
		}
	}
	_, err := d.Promote(ctx, deploy.PromoteRequest{Model: "abalone", From: "dve", To: "prod"})
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), `"dve"`) || !strings.Contains(err.Error(), "--from") {
		t.Errorf("promote --from dve = %v, want an error naming dve and --from", err)
	}
	if n := rec.names(); len(n) > 0 {
		t.Fatalf("AWS was called for an unknown environment: %v", n)
	}
}

// Refusals of the release server stop every change before SageMaker is touched: the dev token
// changing prod, a token the server does not know (revoked), an environment it does not know.
func TestReleaseServerRefusalsStopBeforeSageMaker(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	setup, _ := l.deployer(nil)
	register(t, setup, "abalone", 1, true)
	cases := []struct {
		name   string
		client *releases.Client
		env    string
		want   []string
	}{
		{"dev token to prod", rs.client("dev"), "prod", []string{"token", "is for environment dev, not prod"}},
		{"revoked token", releases.NewClient(rs.url, "revoked-or-unknown", nil), "dev", []string{"refused", "HTTP 401", "revoked"}},
		{"typo with the dev token", rs.client("dev"), "dvo", []string{"is for environment dev, not dvo"}},
	}
	for _, tc := range cases {
		rec := &calls{}
		d, _ := l.deployer(rec, withReleases(tc.client))
		for op, run := range changes(d, tc.env) {
			err := run()
			if !errors.Is(err, deploy.ErrRefused) {
				t.Errorf("%s: %s = %v, want ErrRefused", tc.name, op, err)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %s error %q does not say %q", tc.name, op, err, w)
				}
			}
		}
		if n := rec.names(); len(n) > 0 {
			t.Errorf("%s: SageMaker was called after the release server refused: %v", tc.name, n)
		}
	}
}

// A user's credentials see every environment: one the server does not know is refused, listing
// the ones it knows.
func TestEnvironmentUnknownToTheReleaseServer(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	admin := rs.adminClient(t)
	rec := &calls{}
	d, _ := l.deployer(rec, withReleases(admin))
	_, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dvo"})
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "not known to the release server") || !strings.Contains(err.Error(), "dev, prod") {
		t.Fatalf("deploy to dvo = %v, want an error listing dev, prod", err)
	}
	if n := rec.names(); len(n) > 0 {
		t.Fatalf("AWS was called: %v", n)
	}
}

// An unreachable release server is a warning, except in front of a gated environment, which
// fails closed unless AllowUnreported.
func TestUnreachableReleaseServerFailsClosedForGatedEnvironments(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	down := httptest.NewServer(nil)
	down.Close()
	c := releases.NewClient(down.URL, "x", nil)
	rec := &calls{}
	d, _ := l.deployer(rec, withReleases(c), withEnvironments(pipelineEnvs))
	register(t, d, "abalone", 1, true)
	before := len(rec.names())
	_, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"})
	if !errors.Is(err, deploy.ErrRefused) || !strings.Contains(err.Error(), "--allow-unreported") {
		t.Fatalf("deploy to gated prod with the server down = %v, want a refusal naming --allow-unreported", err)
	}
	if n := rec.names(); len(n) != before {
		t.Fatalf("AWS was called for a refused release: %v", n)
	}
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"})
	if err != nil || res.EndpointStatus != "InService" {
		t.Fatalf("deploy to ungated dev with the server down = %v, want it to go on unreported", err)
	}
	allow := *pipelineEnvs
	allow.AllowUnreported = true
	d2, _ := l.deployer(nil, withReleases(c), withEnvironments(&allow))
	if res, err := d2.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod"}); err != nil || res.EndpointStatus != "InService" {
		t.Fatalf("deploy to prod with --allow-unreported = %v", err)
	}
}

// basicAuth signs a user's requests with their password, as scripts do.
type basicAuth struct{ user, password string }

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return http.DefaultTransport.RoundTrip(r)
}

// adminClient is a client with a user's credentials (not an environment's token).
func (rs *releaseServer) adminClient(t *testing.T) *releases.Client {
	t.Helper()
	pw, err := server.AddUser(ctx, rs.st, "alice", store.RoleAdmin, "", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return releases.NewClient(rs.url, "", &http.Client{Transport: basicAuth{"alice", pw}})
}

// The environment check before the first AWS call is one request to the release server: whom it
// takes the token for, with the environments that token sees. A server that does not list them
// there is asked for its environments, and still refuses an unknown environment.
func TestEnvironmentCheckIsOneRequest(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	target, err := url.Parse(rs.url)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	older := false
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		mu.Lock()
		defer mu.Unlock()
		seen[resp.Request.Method+" "+resp.Request.URL.Path]++
		if !older || resp.Request.URL.Path != "/api/v1/me" {
			return nil
		}
		var me map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
			return err
		}
		delete(me, "environments") // as a server from before it listed them
		data, err := json.Marshal(me)
		if err != nil {
			return err
		}
		resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
		resp.Header.Del("Content-Length")
		return nil
	}
	hs := httptest.NewServer(proxy)
	t.Cleanup(hs.Close)
	count := func(req string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[req]
	}

	d, _ := l.deployer(nil, withReleases(releases.NewClient(hs.URL, rs.tokens["dev"], nil)))
	register(t, d, "abalone", 1, true)
	if _, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	if me, envs := count("GET /api/v1/me"), count("GET /api/v1/environments"); me != 1 || envs != 0 {
		t.Errorf("the environment check asked /me %d times and /environments %d times, want 1 and 0", me, envs)
	}

	mu.Lock()
	older = true
	mu.Unlock()
	pw, err := server.AddUser(ctx, rs.st, "bob", store.RoleAdmin, "", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := l.deployer(nil, withReleases(releases.NewClient(hs.URL, "", &http.Client{Transport: basicAuth{"bob", pw}})))
	_, err = admin.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dvo"})
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "dev, prod") {
		t.Fatalf("deploy to dvo through an older server = %v, want an error listing dev, prod", err)
	}
	if n := count("GET /api/v1/environments"); n != 1 {
		t.Errorf("an older server was asked for its environments %d times, want 1", n)
	}
}
