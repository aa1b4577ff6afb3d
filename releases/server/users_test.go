package server_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// me asks the API who a dashboard session is; 401 once the session has ended.
func (b *browserless) me() int {
	b.t.Helper()
	return b.do("GET", "/api/v1/me", "", nil).StatusCode
}

// TestUserChangesThroughTheAPIEndSessionsAtOnce: a removed user's open session gets 401 on its
// next request; so does the session of a user whose password was reset or role changed. The
// audit log records each change.
func TestUserChangesThroughTheAPIEndSessionsAtOnce(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	carolPW := e.AddUser("carol", store.RoleDeployer)
	davePW := e.AddUser("dave", store.RoleViewer)

	carol := newBrowserlessSession(t, e, "carol", carolPW)
	if code := carol.me(); code != http.StatusOK {
		t.Fatalf("carol signed in: /api/v1/me = %d", code)
	}
	r := e.Do("POST", "/api/v1/users/carol/password", e.Admin(), map[string]string{})
	wantBody(t, r, http.StatusOK, `"password"`, `"sessions_ended": 1`)
	if code := carol.me(); code != http.StatusUnauthorized {
		t.Fatalf("after a password reset carol's old session answered %d, want 401", code)
	}
	var reset struct{ Password string }
	r.JSON(t, &reset)
	carol = newBrowserlessSession(t, e, "carol", reset.Password)

	wantBody(t, e.Do("POST", "/api/v1/users/carol/role", e.Admin(), map[string]string{"role": "viewer"}), http.StatusOK, `"sessions_ended": 1`)
	if code := carol.me(); code != http.StatusUnauthorized {
		t.Fatalf("after a role change carol's session answered %d, want 401", code)
	}
	carol = newBrowserlessSession(t, e, "carol", reset.Password)
	if !strings.Contains(carol.get("/api/v1/me"), `"role": "viewer"`) {
		t.Fatal("carol's new session does not have the new role")
	}

	dave := newBrowserlessSession(t, e, "dave", davePW)
	wantBody(t, e.Do("GET", "/api/v1/users", e.Admin(), nil), http.StatusOK, `"name": "dave"`, `"sessions": 1`)
	wantBody(t, e.Do("POST", "/api/v1/users/dave/signout", e.Admin(), nil), http.StatusOK, `"sessions_ended": 1`)
	if code := dave.me(); code != http.StatusUnauthorized {
		t.Fatalf("signed out by an admin, dave's session answered %d, want 401", code)
	}
	dave = newBrowserlessSession(t, e, "dave", davePW)
	wantBody(t, e.Do("DELETE", "/api/v1/users/dave", e.Admin(), nil), http.StatusOK, `"sessions_ended": 1`)
	if code := dave.me(); code != http.StatusUnauthorized {
		t.Fatalf("removed user's open session answered %d, want 401", code)
	}
	wantResp(t, e.Do("GET", "/api/v1/me", servertest.Basic("dave", davePW), nil), http.StatusUnauthorized)

	// Only admins manage users, and the last admin stays.
	wantResp(t, e.Do("DELETE", "/api/v1/users/admin", servertest.Basic("carol", reset.Password), nil), http.StatusForbidden, "admin role")
	wantResp(t, e.Do("DELETE", "/api/v1/users/admin", e.Admin(), nil), http.StatusConflict, "last admin")
	wantResp(t, e.Do("POST", "/api/v1/users/nobody/role", e.Admin(), map[string]string{"role": "viewer"}), http.StatusNotFound, "user nobody does not exist")

	audit := e.Do("GET", "/api/v1/audit", e.Admin(), nil)
	for _, action := range []string{"user.password", "user.role", "user.remove"} {
		wantBody(t, audit, http.StatusOK, `"action": "`+action+`"`)
	}
}

// TestSettingsPageManagesUsers: an admin changes a role, resets a password and removes a user
// with the settings page's forms; each ends that user's session.
func TestSettingsPageManagesUsers(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	erinPW := e.AddUser("erin", store.RoleDeployer)
	admin := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	page := admin.get("/settings")
	for _, want := range []string{`data-user="erin"`, `action="/settings/users/erin/role"`, `data-remove-user="erin"`, `id="webhooks"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("settings page lacks %s", want)
		}
	}

	erin := newBrowserlessSession(t, e, "erin", erinPW)
	admin.form("/settings/users/erin/role", url.Values{"csrf": {admin.csrf}, "role": {"admin"}}.Encode())
	if code := erin.me(); code != http.StatusUnauthorized {
		t.Fatalf("role changed in the settings page: erin's session answered %d, want 401", code)
	}
	if u, _ := e.Store.User(t.Context(), "erin"); u.Role != store.RoleAdmin {
		t.Fatalf("erin is %s, want admin", u.Role)
	}

	erin = newBrowserlessSession(t, e, "erin", erinPW)
	resp := admin.form("/settings/users/erin/password", url.Values{"csrf": {admin.csrf}}.Encode())
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "erin has a new password") || erin.me() != http.StatusUnauthorized {
		t.Fatalf("password reset from the settings page: %d, erin's session %d", resp.StatusCode, erin.me())
	}
	pw := regexpFind(t, body, `id="user-password">([^<]+)<`)

	erin = newBrowserlessSession(t, e, "erin", pw)
	admin.form("/settings/users/erin/remove", url.Values{"csrf": {admin.csrf}}.Encode())
	if code := erin.me(); code != http.StatusUnauthorized {
		t.Fatalf("removed in the settings page: erin's session answered %d, want 401", code)
	}
	if strings.Contains(admin.get("/settings"), `data-user="erin"`) {
		t.Fatal("erin is still listed after removal")
	}
}

// wantBody fails unless the answer has status and its body holds each part.
func wantBody(t *testing.T, r servertest.Response, status int, parts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("HTTP %d %s; want %d", r.Status, r.Body, status)
	}
	for _, p := range parts {
		if !strings.Contains(string(r.Body), p) {
			t.Fatalf("answer %s does not hold %s", r.Body, p)
		}
	}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func regexpFind(t *testing.T, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %s", re)
	}
	return m[1]
}
