package server_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// browserless is a cookie-keeping HTTP client signed in to the dashboard through its forms.
type browserless struct {
	t    *testing.T
	e    *servertest.Env
	c    *http.Client
	csrf string
}

func newBrowserlessSession(t *testing.T, e *servertest.Env, user, password string) *browserless {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browserless{t: t, e: e, c: &http.Client{Jar: jar}}
	page := b.get("/login")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field on the sign-in page:\n%s", page)
	}
	resp, err := b.c.PostForm(e.URL+"/login", url.Values{"csrf": {m[1]}, "username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="whoami">`+user) {
		t.Fatalf("sign in as %s: %d\n%s", user, resp.StatusCode, body)
	}
	m = csrfRE.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatal("no CSRF token on the first page after signing in")
	}
	b.csrf = m[1]
	return b
}

func (b *browserless) get(path string) string {
	b.t.Helper()
	resp, err := b.c.Get(b.e.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func (b *browserless) do(method, path, body string, headers map[string]string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.e.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (b *browserless) form(path, body string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.e.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestSignInIsAuditedAndSessionCookieIsLocked(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	// Wrong password: 401 page, audited.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, _ := c.Get(e.URL + "/login")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindStringSubmatch(string(page))
	resp, _ = c.PostForm(e.URL+"/login", url.Values{"csrf": {m[1]}, "username": {"admin"}, "password": {"guess"}})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), "Wrong user name or password") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	// Sign-in without the form's CSRF token is refused even with the right password.
	resp, _ = http.PostForm(e.URL+"/login", url.Values{"username": {"admin"}, "password": {e.AdminPassword}})
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("sign-in without CSRF: %d", resp.StatusCode)
	}

	// Right password: a locked-down session cookie.
	resp, _ = c.Get(e.URL + "/login")
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	m = csrfRE.FindStringSubmatch(string(page))
	noRedirect := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ = noRedirect.PostForm(e.URL+"/login", url.Values{"csrf": {m[1]}, "username": {"admin"}, "password": {e.AdminPassword}, "next": {"/settings"}})
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/settings" {
		t.Fatalf("sign in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "sagedeploy_session" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || len(cookie.Value) < 40 {
		t.Fatalf("session cookie = %+v; want HttpOnly, SameSite=Lax, long random value", cookie)
	}
	// next cannot send the browser to another site.
	jar2, _ := cookiejar.New(nil)
	c2 := &http.Client{Jar: jar2, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ = c2.Get(e.URL + "/login")
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	m = csrfRE.FindStringSubmatch(string(page))
	resp, _ = c2.PostForm(e.URL+"/login", url.Values{"csrf": {m[1]}, "username": {"admin"}, "password": {e.AdminPassword}, "next": {"//evil.example/"}})
	resp.Body.Close()
	if resp.Header.Get("Location") != "/" {
		t.Fatalf("next=//evil.example/ redirected to %q", resp.Header.Get("Location"))
	}

	entries, err := e.Store.Audit(bg, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	var failed, ok bool
	for _, a := range entries {
		if a.Action == "sign-in" && a.Actor == "admin" && strings.HasPrefix(a.Outcome, "failed") {
			failed = true
		}
		if a.Action == "sign-in" && a.Actor == "admin" && a.Outcome == "ok" {
			ok = true
		}
	}
	if !failed || !ok {
		t.Fatalf("audit lacks the failed (%v) or successful (%v) sign-in: %+v", failed, ok, entries)
	}
}

func TestDashboardPagesRenderForRoles(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("dev", "abalone", 2, 3)
	vpw := e.AddUser("vera", store.RoleViewer)
	v := newBrowserlessSession(t, e, "vera", vpw)
	a := newBrowserlessSession(t, e, "admin", e.AdminPassword)

	comp := v.get("/components/dev/abalone")
	if !strings.Contains(comp, `id="current-version">v2`) || strings.Contains(comp, `id="scale-form"`) || strings.Contains(comp, "data-restore") {
		t.Fatalf("viewer's component page should show v2 without command controls:\n%s", comp)
	}
	comp = a.get("/components/dev/abalone")
	for _, want := range []string{`id="scale-form"`, `data-restore="1"`, `Roll back to v1`, `Promote v2 to prod`, `id="instance-count">3<`} {
		if !strings.Contains(comp, want) {
			t.Fatalf("admin's component page lacks %s", want)
		}
	}
	if s := v.get("/settings"); strings.Contains(s, `id="token-form"`) || !strings.Contains(s, `data-env="prod"`) {
		t.Fatal("viewer sees token management, or no environments, on the settings page")
	}
	if s := a.get("/settings"); !strings.Contains(s, `id="token-form"`) {
		t.Fatal("admin sees no token form")
	}
	// Forms are role-checked on the server too.
	r := v.form("/components/dev/abalone/scale", "csrf="+v.csrf+"&instances=4")
	body, _ := io.ReadAll(r.Body)
	if !strings.Contains(string(body), "viewer") || strings.Contains(string(body), "queued") {
		t.Fatalf("viewer scaling through the form: %d\n%s", r.StatusCode, body)
	}
	if p := a.get("/releases?environment=dev&model=abalone"); strings.Count(p, `data-release="`) != 2 {
		t.Fatal("timeline filter shows the wrong number of releases")
	}
	if p := a.get("/no/such/page"); !strings.Contains(p, "Not found") {
		t.Fatal("unknown page is not a not-found page")
	}
	if p := a.get("/releases/nope"); !strings.Contains(p, "release nope does not exist") {
		t.Fatal("unknown release page lacks the reason")
	}
	// Signed-out visitors are sent to the sign-in page with a way back.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ := noRedirect.Get(e.URL + "/components/dev/abalone")
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login?next=%2Fcomponents%2Fdev%2Fabalone" {
		t.Fatalf("signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

var secretRE = regexp.MustCompile(`id="token-secret">(sdt_[A-Za-z0-9_-]+)<`)

func TestSettingsFormsManageEnvironmentsTokensUsers(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	a := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	read := func(r *http.Response) string {
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}

	// Environment form.
	page := read(a.form("/settings/environments", "csrf="+a.csrf+"&name=staging&kind=sagemaker&region=us-east-2&position=1&requires_approval=1"))
	if !strings.Contains(page, "Environment staging saved") || !strings.Contains(page, `data-env="staging"`) {
		t.Fatalf("environment form:\n%s", page)
	}
	env, err := e.Store.Environment(bg, "staging")
	if err != nil || !env.RequiresApproval || env.Region != "us-east-2" {
		t.Fatalf("saved environment: %+v %v", env, err)
	}
	if page := read(a.form("/settings/environments", "csrf="+a.csrf+"&name=bad name&kind=local")); !strings.Contains(page, "not valid") {
		t.Fatal("an invalid environment name was not explained")
	}

	// Token form: the secret is on this answer only, and it works.
	page = read(a.form("/settings/tokens", "csrf="+a.csrf+"&environment=staging&name=circleci"))
	m := secretRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token shown after creating one:\n%s", page)
	}
	c := releases.NewClient(e.URL, m[1], nil)
	if _, err := c.StartRelease(bg, releases.ReleaseStart{Environment: "staging", Model: "abalone", Kind: releases.KindScale}); err != nil {
		t.Fatalf("the new token does not work: %v", err)
	}
	if later := a.get("/settings"); strings.Contains(later, m[1]) {
		t.Fatal("the settings page shows the token secret again")
	}
	toks, _ := e.Store.Tokens(bg)
	page = read(a.form("/settings/tokens/"+toks[0].ID+"/revoke", "csrf="+a.csrf))
	if !strings.Contains(page, "Token circleci of staging revoked") {
		t.Fatalf("revoke form:\n%s", page)
	}
	if _, err := c.StartRelease(bg, releases.ReleaseStart{Environment: "staging", Model: "abalone", Kind: releases.KindScale}); err == nil {
		t.Fatal("a revoked token still works")
	}

	// User form with a generated password, which then signs in.
	page = read(a.form("/settings/users", "csrf="+a.csrf+"&name=carol&role=deployer"))
	pm := regexp.MustCompile(`id="user-password">([^<]+)<`).FindStringSubmatch(page)
	if pm == nil {
		t.Fatalf("no generated password shown:\n%s", page)
	}
	newBrowserlessSession(t, e, "carol", pm[1])

	// Only admins reach these forms.
	cpw := e.AddUser("dan", store.RoleDeployer)
	d := newBrowserlessSession(t, e, "dan", cpw)
	if r := d.form("/settings/tokens", "csrf="+d.csrf+"&environment=dev"); r.StatusCode != 403 {
		t.Fatalf("deployer creating a token: %d", r.StatusCode)
	}
}
