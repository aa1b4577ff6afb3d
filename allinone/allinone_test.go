package allinone_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
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
	active := 0
	for _, tk := range toks {
		if tk.RevokedAt == nil {
			active++
		} else if tk.Name != "sagedeploy-up-agent" {
			t.Errorf("the restart revoked token %s (%s)", tk.ID, tk.Name)
		}
	}
	if active != 3 || len(toks) != 5 {
		t.Fatalf("after two starts there are %d tokens, %d active; want 5, 3 active (this start's agent tokens of dev and prod, the deployer's of dev; the first start's agent tokens revoked)", len(toks), active)
	}
	wantNoAgentSecrets(t, s2)
	adminCookie := signInByForm(t, s2.ListenURL(), "admin", login.Password)
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
	// Whoever signed in with the old password is signed out.
	req, _ := http.NewRequest(http.MethodGet, s3.ListenURL()+"/api/v1/me", nil)
	req.AddCookie(adminCookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an admin session from before --reset-admin-password answered HTTP %d; want 401", resp.StatusCode)
	}
}

// wantNoAgentSecrets asserts that tokens.json holds no secret of an agent token: every secret
// in it must be a deployer token's.
func wantNoAgentSecrets(t *testing.T, s *allinone.Stack) {
	t.Helper()
	b, err := os.ReadFile(s.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	secrets := regexp.MustCompile(`sdt_[A-Za-z0-9_-]+`).FindAllString(string(b), -1)
	if len(secrets) == 0 {
		t.Fatalf("tokens.json holds no deployer token: %s", b)
	}
	for _, sec := range secrets {
		tk, err := s.Store().TokenByHash(bg, server.HashToken(sec))
		if err == nil && tk.Name != "sagedeploy-up-deployer" {
			t.Fatalf("tokens.json holds the secret of token %s (%s) in clear", tk.ID, tk.Name)
		}
	}
}

// signInByForm signs in through the dashboard's form and returns the session cookie.
func signInByForm(t *testing.T, base, user, password string) *http.Cookie {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF field on the sign-in page")
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "sagedeploy_session" {
			return ck
		}
	}
	t.Fatalf("signing in as %s gave no session (HTTP %d)", user, resp.StatusCode)
	return nil
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
