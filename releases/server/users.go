package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// ResetPassword sets a user's password (generated when empty, and then returned) and ends every
// session of that user.
func ResetPassword(ctx context.Context, st *store.Store, name, password string, cost int) (pw string, ended int, err error) {
	pw = password
	if pw == "" {
		pw = GeneratePassword()
	} else if len(pw) < minPasswordChars {
		return "", 0, releases.Errorf(releases.EINVALID, "the new password for %s is too short: use at least %d characters, or leave it empty to have one generated", name, minPasswordChars)
	}
	h, err := HashPassword(pw, cost)
	if err != nil {
		return "", 0, err
	}
	ended, err = st.SetUserPassword(ctx, name, h)
	if err != nil {
		return "", 0, err
	}
	return pw, ended, nil
}

// userRoutes registers user management: the JSON API and the settings page's forms (admins only).
func (s *Server) userRoutes(m *http.ServeMux) {
	a, d := jsonAPI{s}, dashboard{s}
	m.HandleFunc("POST /api/v1/users/{name}/signout", s.api(a.apiSignOutUser))
	m.HandleFunc("DELETE /api/v1/users/{name}", s.api(a.apiRemoveUser))
	m.HandleFunc("POST /api/v1/users/{name}/role", s.api(a.apiUserRole))
	m.HandleFunc("POST /api/v1/users/{name}/password", s.api(a.apiUserPassword))
	m.HandleFunc("POST /settings/users/{name}/remove", d.page(d.removeUserForm))
	m.HandleFunc("POST /settings/users/{name}/role", d.page(d.userRoleForm))
	m.HandleFunc("POST /settings/users/{name}/password", d.page(d.userPasswordForm))
}

// apiSignOutUser ends every session of a user (a lost laptop, a shared screen).
func (s jsonAPI) apiSignOutUser(w http.ResponseWriter, r *http.Request, p principal) error {
	name := r.PathValue("name")
	if err := p.needRole(store.RoleAdmin, "sign users out"); err != nil {
		return err
	}
	ended, err := s.st.EndSessions(r.Context(), name)
	s.audit(r, p.name(), "user.signout", "", "", name, outcomeOf(s.Server, r, err), "sessions ended: "+strconv.Itoa(ended))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "sessions_ended": ended})
	return nil
}

func (s jsonAPI) apiRemoveUser(w http.ResponseWriter, r *http.Request, p principal) error {
	ended, err := s.removeUser(r, p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "removed": true, "sessions_ended": ended})
	return nil
}

func (s jsonAPI) apiUserRole(w http.ResponseWriter, r *http.Request, p principal) error {
	var body struct {
		Role string `json:"role"`
	}
	if err := decodeJSON(r, &body, "the role change"); err != nil {
		return err
	}
	if err := missing("the role change", missingIf(body.Role == "", "role"), `{"role": "viewer"}`); err != nil {
		return err
	}
	ended, err := s.setRole(r, p, r.PathValue("name"), body.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "role": body.Role, "sessions_ended": ended})
	return nil
}

func (s jsonAPI) apiUserPassword(w http.ResponseWriter, r *http.Request, p principal) error {
	var body struct {
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &body, "the password reset"); err != nil {
		return err
	}
	pw, ended, err := s.resetPassword(r, p, r.PathValue("name"), body.Password)
	if err != nil {
		return err
	}
	out := map[string]any{"name": r.PathValue("name"), "sessions_ended": ended}
	if body.Password == "" {
		out["password"] = pw // generated: shown in this answer only
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func missingIf(cond bool, field string) []string {
	if cond {
		return []string{field}
	}
	return nil
}

func (s *Server) removeUser(r *http.Request, p principal, name string) (int, error) {
	if err := p.needRole(store.RoleAdmin, "remove users"); err != nil {
		return 0, err
	}
	ended, err := s.st.RemoveUser(r.Context(), name)
	s.audit(r, p.name(), "user.remove", "", "", name, outcomeOf(s, r, err), "sessions ended: "+strconv.Itoa(ended))
	return ended, err
}

func (s *Server) setRole(r *http.Request, p principal, name, role string) (int, error) {
	if err := p.needRole(store.RoleAdmin, "change roles"); err != nil {
		return 0, err
	}
	ended, err := s.st.SetUserRole(r.Context(), name, role)
	s.audit(r, p.name(), "user.role", "", "", name, outcomeOf(s, r, err), fmt.Sprintf("role=%s sessions ended: %d", role, ended))
	return ended, err
}

func (s *Server) resetPassword(r *http.Request, p principal, name, password string) (string, int, error) {
	if err := p.needRole(store.RoleAdmin, "reset passwords"); err != nil {
		return "", 0, err
	}
	pw, ended, err := ResetPassword(r.Context(), s.st, name, password, s.opts.PasswordCost)
	s.audit(r, p.name(), "user.password", "", "", name, outcomeOf(s, r, err), "sessions ended: "+strconv.Itoa(ended))
	return pw, ended, err
}

func (s dashboard) removeUserForm(w http.ResponseWriter, r *http.Request, se session) error {
	name := r.PathValue("name")
	ended, err := s.removeUser(r, se.principal(), name)
	if err != nil {
		redirectFlash(w, r, "/settings#users", s.publicMessage(r, err), true)
		return nil
	}
	target := "/settings#users"
	if name == se.user.Name {
		target = "/login" // removed themselves: their session is gone too
	}
	redirectFlash(w, r, target, fmt.Sprintf("User %s removed; %s signed out.", name, sessionsText(ended)), false)
	return nil
}

func (s dashboard) userRoleForm(w http.ResponseWriter, r *http.Request, se session) error {
	name, role := r.PathValue("name"), r.PostForm.Get("role")
	ended, err := s.setRole(r, se.principal(), name, role)
	if err != nil {
		redirectFlash(w, r, "/settings#users", s.publicMessage(r, err), true)
		return nil
	}
	redirectFlash(w, r, "/settings#users", fmt.Sprintf("User %s is now %s; %s signed out.", name, role, sessionsText(ended)), false)
	return nil
}

func (s dashboard) userPasswordForm(w http.ResponseWriter, r *http.Request, se session) error {
	name, given := r.PathValue("name"), r.PostForm.Get("password")
	pw, ended, err := s.resetPassword(r, se.principal(), name, given)
	if err != nil {
		redirectFlash(w, r, "/settings#users", s.publicMessage(r, err), true)
		return nil
	}
	if name == se.user.Name {
		redirectFlash(w, r, "/login", "Your password was changed; sign in again.", false)
		return nil
	}
	if given != "" {
		redirectFlash(w, r, "/settings#users", fmt.Sprintf("Password of %s changed; %s signed out.", name, sessionsText(ended)), false)
		return nil
	}
	d, err := s.settingsData(r, se)
	if err != nil {
		return err
	}
	d.NewUser = &newUser{Name: name, Password: pw, Reset: true}
	s.renderSettings(w, r, &se, d)
	return nil
}

func sessionsText(n int) string {
	if n == 1 {
		return "1 session"
	}
	return strconv.Itoa(n) + " sessions"
}
