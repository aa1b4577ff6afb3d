package server_test

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func body(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// A signed-in user sent to /login?next=... must land on this site: browsers drop tabs and read a
// backslash as a slash, so "/<TAB>/host" and "/\host" are other sites to them.
func TestSignInRedirectStaysOnThisSite(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	a := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	base, _ := url.Parse(e.URL)
	for _, tc := range []struct{ rawNext, want string }{
		{"/%09/127.0.0.1:9/x", "/"},
		{"/%09%5Cevil", "/"},
		{"%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%0D%0ALocation:%20http://evil", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"/%2F/evil.example", "/"},
		{"/settings", "/settings"},
		{"/releases%3Fenv%3Dprod%26model%3Dabalone", "/releases?env=prod&model=abalone"},
	} {
		// The transport, not a client: a client refuses to parse a Location with a control character.
		req, _ := http.NewRequest("GET", e.URL+"/login?next="+tc.rawNext, nil)
		for _, c := range a.c.Jar.Cookies(base) {
			req.AddCookie(c)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != tc.want {
			t.Errorf("/login?next=%s: %d to %q; want 303 to %q", tc.rawNext, resp.StatusCode, got, tc.want)
		}
	}
}

// The four-eyes rule holds on the dashboard too: the requester's approval is refused with the
// rule's name, another deployer's goes through, and an admin can turn the rule off per gate.
func TestDashboardApprovalNeedsFourEyes(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	dan := newBrowserlessSession(t, e, "dan", e.AddUser("dan", store.RoleDeployer))
	erin := newBrowserlessSession(t, e, "erin", e.AddUser("erin", store.RoleDeployer))

	body(dan.form("/components/dev/abalone/promote", "csrf="+dan.csrf))
	pend, err := e.Store.PendingApprovals(bg)
	if err != nil || len(pend) != 1 {
		t.Fatalf("pending approvals after the promotion: %v %v", pend, err)
	}
	id := pend[0].ID
	if !strings.Contains(dan.get("/approvals"), "data-own-request") || strings.Contains(erin.get("/approvals"), "data-own-request") {
		t.Fatal("the approvals page does not tell the requester, and only the requester, that someone else approves")
	}
	page := body(dan.form("/releases/"+id+"/approve", "csrf="+dan.csrf))
	if !strings.Contains(page, "four-eyes rule of environment prod") || !strings.Contains(page, "someone else must approve") {
		t.Fatalf("the requester's own approval was not refused with the rule:\n%s", page)
	}
	if r, _ := e.Store.Release(bg, id); r.ApprovedBy != "" {
		t.Fatalf("refused approval recorded: approved by %q", r.ApprovedBy)
	}
	body(erin.form("/releases/"+id+"/approve", "csrf="+erin.csrf))
	if r, _ := e.Store.Release(bg, id); r.ApprovedBy != "erin" || r.Requester() != "dan" {
		t.Fatalf("after erin's approval: approved by %q, requested by %q", r.ApprovedBy, r.Requester())
	}
	wantAudit(t, e, "release.approve", "dan", "four-eyes rule")
	wantAudit(t, e, "release.approve", "erin", "ok", "requested by dan")

	admin := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	page = body(admin.form("/settings/environments", "csrf="+admin.csrf+"&name=prod&kind=sagemaker&region=eu-west-1&position=1&requires_approval=1&allow_self_approval=1"))
	if env, err := e.Store.Environment(bg, "prod"); err != nil || !env.AllowSelfApproval || !env.RequiresApproval {
		t.Fatalf("allow self-approval from the settings form: %+v %v\n%s", env, err, page)
	}
	if !strings.Contains(admin.get("/settings"), "self-approval allowed") {
		t.Fatal("the settings page does not say that prod allows self-approval")
	}
}

// /healthz tells an anonymous probe only ok or unavailable; which database, and why it fails, is
// for signed-in users and tokens.
func TestHealthzShowsDetailsOnlyToSignedInCallers(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	anon := e.Do("GET", "/healthz", nil, nil)
	if anon.Status != 200 || !onlyStatus(t, anon, "ok") {
		t.Fatalf("anonymous healthz: %d %s; want 200 {\"status\":\"ok\"} only", anon.Status, anon.Body)
	}
	if admin := e.Do("GET", "/healthz", e.Admin(), nil); admin.Status != 200 || !strings.Contains(string(admin.Body), `"database": "sqlite"`) {
		t.Fatalf("signed-in healthz: %d %s; want the database named", admin.Status, admin.Body)
	}
	e.Store.Close() // the database goes away
	anon = e.Do("GET", "/healthz", nil, nil)
	if anon.Status != 503 || !onlyStatus(t, anon, "unavailable") {
		t.Fatalf("anonymous healthz with the database down: %d %s; want 503 without details", anon.Status, anon.Body)
	}
}

// onlyStatus reports whether a health answer holds its status and nothing else.
func onlyStatus(t *testing.T, r servertest.Response, want string) bool {
	var m map[string]string
	r.JSON(t, &m)
	return len(m) == 1 && m["status"] == want
}

// signInFrom signs in with basic credentials from a loopback address of its own, so one test can
// be several clients; it returns the status and the Retry-After header.
func signInFrom(t *testing.T, e *servertest.Env, ip, user, password string) (int, int) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("GET", e.URL+"/api/v1/me", nil)
	req.SetBasicAuth(user, password)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("sign in from %s: %v", ip, err)
	}
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, ra
}

// A stranger guessing the admin's password from one address gets ever longer waits (429 with
// Retry-After, the password is not even checked), while the real admin from another address is
// delayed by at most the per-user bound and then signs in.
func TestSignInThrottleGrowsAndBoundsTheRealUsersWait(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	e := servertest.Start(t, servertest.Options{Now: clk.Now})
	var waits []int
	for failures := 0; failures < 12; {
		status, retry := signInFrom(t, e, "127.0.0.2", "admin", "guess-"+strconv.Itoa(failures))
		switch status {
		case http.StatusUnauthorized:
			failures++
		case http.StatusTooManyRequests:
			if retry <= 0 {
				t.Fatalf("429 without a Retry-After")
			}
			waits = append(waits, retry)
			clk.Advance(time.Duration(retry) * time.Second)
		default:
			t.Fatalf("wrong password answered %d", status)
		}
	}
	t.Logf("Retry-After between 12 wrong guesses from one address: %v s", waits)
	if len(waits) < 8 || !slices.IsSorted(waits) || waits[len(waits)-1] <= 60 {
		t.Fatalf("waits between guesses = %v; want a growing delay well past a minute for the guessing address", waits)
	}
	// The stranger's address is still held back, even with the right password.
	if status, _ := signInFrom(t, e, "127.0.0.2", "admin", e.AdminPassword); status != http.StatusTooManyRequests {
		t.Fatalf("the guessing address got %d with the right password; want 429 until its wait ends", status)
	}
	// The real admin, from elsewhere, waits no more than the per-user bound.
	status, retry := signInFrom(t, e, "127.0.0.3", "admin", e.AdminPassword)
	if status == http.StatusTooManyRequests {
		if retry > 30 {
			t.Fatalf("a stranger locked the real admin out for %d s; want at most 30 s", retry)
		}
		clk.Advance(time.Duration(retry) * time.Second)
		status, _ = signInFrom(t, e, "127.0.0.3", "admin", e.AdminPassword)
	}
	if status != http.StatusOK {
		t.Fatalf("the real admin could not sign in after the bounded wait: %d", status)
	}
}

// The sign-in form is throttled like basic credentials, and a failed sign-in for a name no user
// has is audited as "unknown user": what was typed may be a password.
func TestSignInFormThrottledAndUnknownNamesNotEchoed(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	var last *http.Response
	for i := range 6 {
		page := body(mustGet(t, c, e.URL+"/login"))
		m := csrfRE.FindStringSubmatch(page)
		last, _ = c.PostForm(e.URL+"/login", url.Values{"csrf": {m[1]}, "username": {"Sup3r-Secret-pw"}, "password": {"x" + strconv.Itoa(i)}})
		last.Body.Close()
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth wrong sign-in by form: %d, Retry-After %q; want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
	entries, err := e.Store.Audit(bg, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, a := range entries {
		if strings.Contains(a.Actor+a.Detail+a.Target+a.Outcome, "Sup3r-Secret-pw") {
			t.Fatalf("the audit log shows the typed user name: %+v", a)
		}
		if a.Action == "sign-in" && a.Actor == "unknown user" && strings.HasPrefix(a.Outcome, "failed") {
			failed++
		}
	}
	if failed == 0 {
		t.Fatalf("no failed sign-in by an unknown user in the audit log: %+v", entries)
	}
	// Basic credentials with an unknown name are audited the same way.
	signInFrom(t, e, "127.0.0.4", "hunter2-typed-here", "x")
	entries, _ = e.Store.Audit(bg, 5, 0)
	if entries[0].Action != "api.sign-in" || entries[0].Actor != "unknown user" {
		t.Fatalf("basic sign-in with an unknown name audited as %+v", entries[0])
	}
}

func mustGet(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tokenID finds the id of the token servertest made for env.
func tokenID(t *testing.T, e *servertest.Env, env string) string {
	t.Helper()
	toks, err := e.Store.Tokens(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.Environment == env && tk.RevokedAt == nil {
			return tk.ID
		}
	}
	t.Fatalf("no token of %s", env)
	return ""
}

// An agent's long poll that began before its token was revoked ends at once, and does not take
// the command issued after the revocation: a current agent gets it.
func TestRevokedTokensWaitingPollEndsWithoutACommand(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("dev", "abalone", 2, 1)
	old := e.Client("dev")
	oldID := tokenID(t, e, "dev")
	type polled struct {
		cmd *releases.Command
		err error
	}
	done := make(chan polled, 1)
	go func() {
		cmd, err := old.NextCommand(bg, 60*time.Second)
		done <- polled{cmd, err}
	}()
	waitFor(t, "the agent's poll", func() bool {
		var envs struct {
			Environments []server.EnvironmentView `json:"environments"`
		}
		e.Do("GET", "/api/v1/environments", e.Admin(), nil).JSON(t, &envs)
		return slices.ContainsFunc(envs.Environments, func(v server.EnvironmentView) bool { return v.Name == "dev" && v.AgentLastSeen != nil })
	})
	wantResp(t, e.Do("POST", "/api/v1/tokens/"+oldID+"/revoke", e.Admin(), nil), 200)
	var cr commandResp
	e.Do("POST", "/api/v1/components/dev/abalone/rollback", e.Admin(), nil).JSON(t, &cr)
	select {
	case got := <-done:
		if got.cmd != nil {
			t.Fatalf("the revoked token's poll received command %s", got.cmd.ID)
		}
		if got.err == nil || !strings.Contains(got.err.Error(), "revoked") {
			t.Fatalf("the revoked token's poll ended with %v; want an error saying the token was revoked", got.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the revoked token's poll still waits: it should end at the revocation")
	}
	c, _ := e.Store.Command(bg, cr.Command.ID)
	if c.State != store.CommandQueued {
		t.Fatalf("command after the revoked poll: %s; want queued", c.State)
	}
	fresh, _, err := server.CreateToken(bg, e.Store, "dev", "dev-new", "test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := releases.NewClient(e.URL, fresh, nil).NextCommand(bg, 5*time.Second)
	if err != nil || got == nil || got.ID != cr.Command.ID {
		t.Fatalf("a current agent's poll: %+v %v; want command %s", got, err, cr.Command.ID)
	}
}

// A command handed to an agent whose token is revoked before it starts the release goes back to
// the queue, and the next agent of the environment gets it.
func TestCommandOfARevokedTokenReturnsToTheQueue(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("dev", "abalone", 2, 1)
	var cr commandResp
	e.Do("POST", "/api/v1/components/dev/abalone/rollback", e.Admin(), nil).JSON(t, &cr)
	taken, err := e.Client("dev").NextCommand(bg, time.Second)
	if err != nil || taken == nil || taken.ID != cr.Command.ID {
		t.Fatalf("first agent: %+v %v", taken, err)
	}
	wantResp(t, e.Do("POST", "/api/v1/tokens/"+tokenID(t, e, "dev")+"/revoke", e.Admin(), nil), 200)
	c, _ := e.Store.Command(bg, cr.Command.ID)
	if c.State != store.CommandQueued {
		t.Fatalf("command of the revoked token: %s; want queued again", c.State)
	}
	fresh, _, err := server.CreateToken(bg, e.Store, "dev", "dev-new", "test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := releases.NewClient(e.URL, fresh, nil).NextCommand(bg, 5*time.Second)
	if err != nil || got == nil || got.ID != cr.Command.ID {
		t.Fatalf("the next agent: %+v %v; want command %s", got, err, cr.Command.ID)
	}
	events, _ := e.Store.Events(bg, cr.Release.ID, 0)
	if !slices.ContainsFunc(events, func(ev releases.Event) bool { return strings.Contains(ev.Message, "back in the queue") }) {
		t.Fatalf("the release does not say its command went back to the queue: %+v", events)
	}
}

// Model and environment names are checked against SageMaker's rule where they enter the server:
// release reports, the environment API and the settings form.
func TestServerRefusesNamesSageMakerWouldRefuse(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client("dev")
	for _, model := range []string{"a/b", "<b>x</b>", "a_b"} {
		_, err := c.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: model, Kind: releases.KindDeploy, Version: releases.Version{Number: 1}})
		if err == nil || !strings.Contains(err.Error(), "model name") || !strings.Contains(err.Error(), "letters, digits and hyphens") {
			t.Errorf("release of model %q: %v; want a refusal naming SageMaker's rule", model, err)
		}
	}
	wantResp(t, e.Do("POST", "/api/v1/environments", e.Admin(), map[string]any{"name": "pre_prod", "kind": "local"}), 400, `environment name "pre_prod" is not valid`)
	a := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	if page := body(a.form("/settings/environments", "csrf="+a.csrf+"&name=qa%2Fx&kind=local")); !strings.Contains(page, "letters, digits and hyphens") {
		t.Fatalf("the settings form took environment qa/x:\n%s", page)
	}
	if envs, _ := e.Store.Environments(bg); len(envs) != 2 {
		t.Fatalf("environments after refused names: %+v", envs)
	}
}
