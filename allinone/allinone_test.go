package allinone_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
)

var bg = context.Background()

// TestRestartKeepsEverything starts a stack, deploys through it, and starts it again on the same
// directory: environments, the deployer token, the admin's password and the endpoint are all
// still there; only a reset changes the password.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := allinonetest.Start(t, allinone.Options{DataDir: dir})
	login := s.AdminLogin()
	if login.User != "admin" || len(login.Password) < 10 {
		t.Fatalf("first start gave login %+v", login)
	}
	envs, err := s.Store().Environments(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 2 || envs[0].Name != "dev" || envs[0].RequiresApproval || envs[1].Name != "prod" || !envs[1].RequiresApproval ||
		envs[0].Kind != "local" || envs[0].EndpointURL != s.LocalURL() || envs[1].EndpointURL != s.LocalURL() {
		t.Fatalf("environments: %+v", envs)
	}
	tok, err := s.Token(bg, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tokens.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file: %v %v", fi, err)
	}
	// The token reports to dev, not to prod.
	c := releases.NewClient(s.ListenURL(), tok, nil)
	if _, err := c.StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 1}}); err == nil {
		t.Fatal("the dev token reported a release of prod")
	}
	d, err := s.Deployer(bg, "dev", deploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := abalone.Artifact(1)
	if _, err := d.Register(bg, deploy.RegisterRequest{Model: "abalone", Artifact: "model.tar.gz", ArtifactData: data, Bucket: "models", Approve: true}); err != nil {
		t.Fatal(err)
	}
	res, err := d.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.ReleaseID == "" {
		t.Fatal("the deploy reported no release")
	}
	if err := s.Close(bg); err != nil {
		t.Fatal(err)
	}

	// Again, with other ports.
	s2 := allinonetest.Start(t, allinone.Options{DataDir: dir})
	if p := s2.AdminLogin().Password; p != "" {
		t.Fatal("the second start printed a password again")
	}
	if tok2, err := s2.Token(bg, "dev"); err != nil || tok2 != tok {
		t.Fatalf("the dev token changed across a restart: %v", err)
	}
	if e, _ := s2.Store().Environment(bg, "dev"); e.EndpointURL != s2.LocalURL() {
		t.Fatalf("dev points at %s, the local SageMaker is at %s now", e.EndpointURL, s2.LocalURL())
	}
	if code := allinonetest.API(t, s2, "admin", login.Password, http.MethodGet, "/api/v1/me", nil, nil); code != http.StatusOK {
		t.Fatalf("the first password no longer signs in: HTTP %d", code)
	}
	// The endpoint serves again after the restart (the local SageMaker restores it).
	allinonetest.WaitFor(t, 30*time.Second, "abalone-dev to serve again", func() bool {
		return allinonetest.Describe(t, s2, "abalone-dev").Status == "InService"
	})
	allinonetest.ExpectServes(t, s2, "abalone-dev", 1)
	var got server.ReleaseView
	if code := allinonetest.API(t, s2, "admin", login.Password, http.MethodGet, "/api/v1/releases/"+res.ReleaseID, nil, &got); code != http.StatusOK || got.Status != releases.StatusSucceeded {
		t.Fatalf("the release after the restart: HTTP %d, %s", code, got.Status)
	}

	// A revoked token is replaced, not handed out.
	toks, err := s2.Store().Tokens(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 3 {
		t.Fatalf("after two starts there are %d tokens, want 3 (an agent token of dev and of prod, the deployer's of dev)", len(toks))
	}
	for _, tk := range toks {
		if tk.Name == "sagedeploy-up-deployer" && tk.Environment == "dev" {
			if _, err := s2.Store().RevokeToken(bg, tk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if tok3, err := s2.Token(bg, "dev"); err != nil || tok3 == tok {
		t.Fatalf("a revoked token was handed out again (err %v)", err)
	}
	if err := s2.Close(bg); err != nil {
		t.Fatal(err)
	}

	s3 := allinonetest.Start(t, allinone.Options{DataDir: dir, ResetAdminPassword: true})
	pw := s3.AdminLogin().Password
	if pw == "" || pw == login.Password {
		t.Fatalf("--reset-admin-password gave %q", pw)
	}
	if code := allinonetest.API(t, s3, "admin", pw, http.MethodGet, "/api/v1/me", nil, nil); code != http.StatusOK {
		t.Fatalf("the new password does not sign in: HTTP %d", code)
	}
	if code := allinonetest.API(t, s3, "admin", login.Password, http.MethodGet, "/api/v1/me", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("the old password still signs in: HTTP %d", code)
	}
}

// TestOneStackPerDataDir refuses a second stack on a directory in use, saying so, and leaves the
// first one working.
func TestOneStackPerDataDir(t *testing.T) {
	dir := t.TempDir()
	s := allinonetest.Start(t, allinone.Options{DataDir: dir})
	_, err := allinone.Start(bg, allinone.Options{DataDir: dir, LocalAddr: "127.0.0.1:0", ServerAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("a second stack on %s: %v", dir, err)
	}
	resp, err := http.Get(s.ListenURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the first stack after the refusal: HTTP %d", resp.StatusCode)
	}
}

// TestBusyPortSaysWhich fails clearly when the dashboard's port is taken, and releases the data
// directory again.
func TestBusyPortSaysWhich(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{})
	addr := strings.TrimPrefix(s.ListenURL(), "http://")
	dir := t.TempDir()
	_, err := allinone.Start(bg, allinone.Options{DataDir: dir, LocalAddr: "127.0.0.1:0", ServerAddr: addr})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("a stack on a busy port: %v", err)
	}
	// Nothing stayed locked: a stack on the same directory starts.
	allinonetest.Start(t, allinone.Options{DataDir: dir})
}
