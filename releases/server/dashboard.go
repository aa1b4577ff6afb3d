package server

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
	"github.com/sagedeploy/sagedeploy/releases/web"
)

// pageData is what every dashboard page gets; Data is the page's own.
type pageData struct {
	LiveState  string
	Title      string
	Nav        string
	User       *store.User
	Initial    string // of the user's name, in the avatar
	CSRF       string
	Flash      string
	FlashError string
	Pending    int
	CanDeploy  bool
	IsAdmin    bool
	Version    string
	Data       any
	// pendingRead says Pending is already counted, by a page that read the approvals anyway.
	pendingRead bool
}

type dashHandler func(w http.ResponseWriter, r *http.Request, sess session) error

// session is a signed-in dashboard user.
type session struct {
	user store.User
	s    store.Session
	// liveState is the live stream's fingerprint taken before the page read its data: the page's
	// stream starts from it, so that it speaks only of changes the page has not shown.
	liveState string
}

func (se session) principal() principal { return principal{user: &se.user, session: &se.s} }

// dashboard serves the server-rendered pages and their forms. It shares the server's store,
// templates, audit and notifications; the JSON API and the event streams are beside it.
type dashboard struct{ *Server }

// routes registers the pages and forms.
func (s dashboard) routes(m *http.ServeMux) {
	m.Handle("GET /static/", http.StripPrefix("/static/", staticHandler()))
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.page(s.logout))
	m.HandleFunc("GET /{$}", s.page(s.overviewPage))
	m.HandleFunc("GET /releases", s.page(s.releasesPage))
	m.HandleFunc("GET /releases/{id}", s.page(s.releasePage))
	m.HandleFunc("GET /releases/{id}/stream", s.dashStream)
	m.HandleFunc("GET /live", s.dashLive)
	m.HandleFunc("POST /releases/{id}/{decision}", s.page(s.releaseAction))
	m.HandleFunc("GET /components/{env}/{model}", s.page(s.componentPage))
	m.HandleFunc("POST /components/{env}/{model}/{command}", s.page(s.componentCommand))
	m.HandleFunc("GET /approvals", s.page(s.approvalsPage))
	m.HandleFunc("GET /settings", s.page(s.settingsPage))
	m.HandleFunc("POST /settings/environments", s.page(s.saveEnvironment))
	m.HandleFunc("POST /settings/tokens", s.page(s.newToken))
	m.HandleFunc("POST /settings/tokens/{id}/revoke", s.page(s.revokeTokenForm))
	m.HandleFunc("POST /settings/users", s.page(s.newUser))
	m.HandleFunc("GET /audit", s.page(s.auditPage))
	m.HandleFunc("/", s.page(func(w http.ResponseWriter, r *http.Request, se session) error {
		return releases.Errorf(releases.ENOTFOUND, "there is no page at %s", r.URL.Path)
	}))
}

func staticHandler() http.Handler {
	fs := http.FileServerFS(web.Static())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		fs.ServeHTTP(w, r)
	})
}

// page requires a signed-in user (else redirects to the sign-in page), checks the CSRF token of
// every state-changing form, and renders errors as a page.
func (s dashboard) page(h dashHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se, u, err := s.sessionOf(r)
		if err != nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.renderError(w, r, nil, releases.Errorf(releases.EUNAUTHORIZED, "your session has ended; sign in again"))
			return
		}
		sess := session{user: u, s: se}
		if r.Method == http.MethodGet {
			// Errors leave it empty: the stream then sends its first state and the page refreshes.
			sess.liveState, _ = s.fingerprint(r.Context())
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				s.renderError(w, r, &sess, releases.Errorf(releases.EINVALID, "the form could not be read: %v", err))
				return
			}
			if !sameSecret(r.PostForm.Get(csrfField), se.CSRF) {
				s.audit(r, u.Name, "csrf.rejected", "", "", r.URL.Path, "denied", "form without a valid CSRF token")
				s.renderError(w, r, &sess, releases.Errorf(releases.EFORBIDDEN, "This form was not sent by a page of this dashboard: its security (CSRF) token is missing or stale, so nothing was changed. Reload the page and try again."))
				return
			}
		}
		if err := h(w, r, sess); err != nil {
			s.renderError(w, r, &sess, err)
		}
	}
}

func (s dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, sess *session, d pageData) {
	t, ok := s.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	d.Version = cmp.Or(s.opts.Version, "(unknown version)")
	if sess != nil {
		d.LiveState = sess.liveState
		d.User = &sess.user
		d.Initial = "?"
		if sess.user.Name != "" {
			d.Initial = sess.user.Name[:1]
		}
		d.CSRF = sess.s.CSRF
		d.CanDeploy = roleRank(sess.user.Role) >= roleRank(store.RoleDeployer)
		d.IsAdmin = sess.user.Role == store.RoleAdmin
		if !d.pendingRead {
			if pend, err := s.st.PendingApprovals(r.Context()); err == nil {
				d.Pending = len(pend)
			}
		}
		// A live refresh (the page fetching itself on a change) must not take the one-time
		// message: an approval's own change can reach the old page while the browser follows
		// the approval's redirect, and the message would be gone from the page that shows it.
		if c, err := r.Cookie(flashCookie); err == nil && r.Header.Get("X-Live") == "" {
			if v, err := url.QueryUnescape(c.Value); err == nil {
				kind, msg, _ := strings.Cut(v, "|")
				if kind == "err" {
					d.FlashError = msg
				} else {
					d.Flash = msg
				}
			}
			http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s dashboard) renderError(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	status := statusOf(err)
	heading := cmp.Or(map[int]string{
		http.StatusBadRequest: "That did not work", http.StatusUnauthorized: "Sign in required", http.StatusForbidden: "Not allowed",
		http.StatusNotFound: "Not found", http.StatusConflict: "That cannot be done right now",
	}[status], "Something went wrong")
	back, label := "/", "Back to the overview"
	if sess == nil {
		back, label = "/login", "Sign in"
	}
	s.render(w, r, status, "error", sess, pageData{Title: heading, Data: map[string]string{"Heading": heading, "Message": s.publicMessage(r, err), "Back": back, "BackLabel": label}})
}

// redirectFlash sends the browser to target with a one-time message.
func redirectFlash(w http.ResponseWriter, r *http.Request, target, msg string, isErr bool) {
	kind := "ok"
	if isErr {
		kind = "err"
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(kind + "|" + msg), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 60})
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// tone is the colour family of a release or endpoint status.
func tone(status string) string {
	switch status {
	case "succeeded", "InService", "current":
		return "ok"
	case "failed", "Failed", "RollingBack":
		return "bad"
	case "running", "Creating", "Updating", "SystemUpdating", "Deleting":
		return "busy"
	case "pending":
		return "wait"
	}
	return "off"
}

func statusLabel(status string) string {
	switch status {
	case "InService":
		return "In service"
	case "OutOfService":
		return "Out of service"
	case "RollingBack":
		return "Rolling back"
	case "SystemUpdating":
		return "System updating"
	case "":
		return "Unknown"
	}
	return strings.ToUpper(status[:1]) + status[1:]
}

// componentStatus is what a component's badge says: the status of the endpoint, which is what
// it serves. A release in progress or a failed one is shown beside it, never in its place: after a
// failed deploy rolled back, the endpoint still serves the old version in service. Only a
// component whose endpoint status was never reported falls back to its last release's status.
func componentStatus(c store.ComponentView) string {
	return cmp.Or(c.EndpointStatus, string(c.LastReleaseStatus))
}

func triggerLabel(t releases.Trigger) string {
	switch {
	case t.User != "":
		return t.User
	case t.Type == "pipeline" && t.PipelineID != "":
		return "pipeline " + t.PipelineID
	case t.Type != "":
		return string(t.Type)
	}
	return "—"
}

func ago(now time.Time, v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return "—"
		}
		t = *x
	default:
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	case d < 30*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
	return t.UTC().Format("2 Jan 2006")
}

// safeNext keeps post-sign-in redirects on this site: next must be a path of this site, else "/".
// Browsers drop tabs and newlines from a Location and read a backslash as a slash, so any of them
// could turn "/" plus a host into another site: they are refused, as are "//" and schemes.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return "/"
	}
	for _, c := range next {
		if unicode.IsControl(c) || unicode.IsSpace(c) {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

func (s dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.sessionOf(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, "", "")
}

// renderLogin shows the sign-in form. Before a session exists, CSRF is a double-submit token: the
// same random value in a cookie and in the form.
func (s dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, username, msg string) {
	tok := randomString(24)
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: tok, Path: "/login", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(r), MaxAge: 3600})
	next := safeNext(r.FormValue("next"))
	s.render(w, r, status, "login", nil, pageData{Title: "Sign in", CSRF: tok, Data: map[string]string{"Next": next, "Username": username, "Error": msg}})
}

func (s dashboard) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, r, http.StatusBadRequest, "", "The form could not be read; try again.")
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || !sameSecret(c.Value, r.PostForm.Get(csrfField)) {
		s.audit(r, s.actorOf(r.Context(), name), "sign-in", "", "", "", "denied: missing or stale CSRF token", "")
		s.renderLogin(w, r, http.StatusForbidden, name, "The sign-in form was stale or not sent by this site. Try again.")
		return
	}
	u, err := s.signIn(r, name, r.PostForm.Get("password"), "sign-in")
	if err != nil {
		setRetryAfter(w, err)
		msg := "Wrong user name or password."
		if st := statusOf(err); st != http.StatusUnauthorized {
			msg = s.publicMessage(r, err)
		}
		s.renderLogin(w, r, statusOf(err), name, msg)
		return
	}
	if err := s.startSession(w, r, u); err != nil {
		s.renderLogin(w, r, http.StatusInternalServerError, name, s.publicMessage(r, err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: "", Path: "/login", MaxAge: -1})
	s.audit(r, u.Name, "sign-in", "", "", "", "ok", "role="+u.Role)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (s dashboard) logout(w http.ResponseWriter, r *http.Request, se session) error {
	if err := s.st.DeleteSession(r.Context(), se.s.IDHash); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	s.audit(r, se.user.Name, "sign-out", "", "", "", "ok", "")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// releasesData is the timeline page: a page of releases, its filters and its pager links.
type releasesData struct {
	Rows         []releaseRow
	Envs, Models []option
	Statuses     []option
	Filtered     bool
	Link         string // the filter's address, to which the pager adds a cursor
	Newer, Older string // the pager's cursors, "" at either end
}

// option is one choice of a filter's select.
type option struct {
	Value, Label string
	Selected     bool
}

func (s dashboard) releasesPage(w http.ResponseWriter, r *http.Request, se session) error {
	ctx := r.Context()
	q := r.URL.Query()
	f := store.ReleaseFilter{Environment: q.Get("environment"), Model: q.Get("model"), Status: releases.Status(q.Get("status")),
		Before: q.Get("before"), After: q.Get("after"), Limit: 50}
	page, err := s.st.ListReleases(ctx, f)
	if err != nil {
		return err
	}
	envs, err := s.st.Environments(ctx)
	if err != nil {
		return err
	}
	models, err := s.st.Models(ctx)
	if err != nil {
		return err
	}
	d := releasesData{Rows: releaseRows(s.st.Now(), page.Releases), Filtered: f.Environment != "" || f.Model != "" || f.Status != ""}
	for _, e := range envs {
		d.Envs = append(d.Envs, option{Value: e.Name, Label: e.Name, Selected: e.Name == f.Environment})
	}
	for _, m := range models {
		d.Models = append(d.Models, option{Value: m, Label: m, Selected: m == f.Model})
	}
	for _, st := range []string{"pending", "running", "succeeded", "failed", "canceled"} {
		d.Statuses = append(d.Statuses, option{Value: st, Label: statusLabel(st), Selected: st == string(f.Status)})
	}
	link := url.Values{}
	for k, v := range map[string]string{"environment": f.Environment, "model": f.Model, "status": string(f.Status)} {
		if v != "" {
			link.Set(k, v)
		}
	}
	d.Link, d.Newer, d.Older = "/releases?"+link.Encode(), page.Newer, page.Older
	s.render(w, r, http.StatusOK, "releases", &se, pageData{Title: "Releases", Nav: "releases", Data: d})
	return nil
}

func (s dashboard) releasePage(w http.ResponseWriter, r *http.Request, se session) error {
	ctx := r.Context()
	rec, err := s.st.Release(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.releaseView(ctx, rec, true)
	if err != nil {
		return err
	}
	var seen *time.Time
	if t, ok := s.agents.last(rec.Environment); ok {
		seen = &t
	}
	var approval *approvalView
	if rec.AwaitingApproval() {
		a, err := s.Server.approvalView(ctx, rec)
		if err != nil {
			return err
		}
		approval = &a
	}
	data := releasePageOf(s.st.Now(), v, trafficSplitOf(rec, v.Events), seen, approval)
	s.render(w, r, http.StatusOK, "release", &se, pageData{Title: fmt.Sprintf("%s %s in %s", rec.Kind, rec.Model, rec.Environment), Nav: "releases", Data: data})
	return nil
}

func (s dashboard) dashStream(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.sessionOf(r); err != nil {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	rec, err := s.st.Release(r.Context(), r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	streams{s.Server}.streamRelease(w, r, rec)
}

func (s dashboard) releaseAction(w http.ResponseWriter, r *http.Request, se session) error {
	id := r.PathValue("id")
	back := "/releases/" + id
	if ref := r.Referer(); strings.Contains(ref, "/approvals") {
		back = "/approvals"
	}
	var err error
	var msg string
	switch r.PathValue("decision") {
	case "approve":
		var rec store.ReleaseRecord
		rec, err = s.decideRelease(r, se.principal(), id, true, "")
		msg = fmt.Sprintf("Approved: %s of %s v%d into %s.", rec.Kind, rec.Model, rec.Version.Number, rec.Environment)
		if rec.CommandID != "" {
			msg += " An agent of " + rec.Environment + " will run it."
		}
	case "reject":
		var rec store.ReleaseRecord
		rec, err = s.decideRelease(r, se.principal(), id, false, strings.TrimSpace(r.PostForm.Get("reason")))
		msg = fmt.Sprintf("Rejected: %s of %s v%d into %s.", rec.Kind, rec.Model, rec.Version.Number, rec.Environment)
	case "cancel":
		_, err = s.cancelRelease(r, se.principal(), id)
		msg = "Canceled."
	default:
		return releases.Errorf(releases.ENOTFOUND, "there is no action %q on releases", r.PathValue("decision"))
	}
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError || statusOf(err) == http.StatusNotFound {
			return err
		}
		redirectFlash(w, r, back, s.publicMessage(r, err), true)
		return nil
	}
	redirectFlash(w, r, back, msg, false)
	return nil
}

func (s dashboard) componentPage(w http.ResponseWriter, r *http.Request, se session) error {
	d, err := s.componentDetail(r.Context(), r.PathValue("env"), r.PathValue("model"))
	if err != nil {
		return err
	}
	v := s.componentPageView(r.Context(), d, roleRank(se.user.Role) >= roleRank(store.RoleDeployer), se.s.CSRF)
	s.render(w, r, http.StatusOK, "component", &se, pageData{Title: d.Component.Model + " in " + d.Component.Environment, Nav: "overview", Data: v})
	return nil
}

func (s dashboard) componentCommand(w http.ResponseWriter, r *http.Request, se session) error {
	env, model := r.PathValue("env"), r.PathValue("model")
	back := "/components/" + url.PathEscape(env) + "/" + url.PathEscape(model)
	req := releases.CommandRequest{Kind: releases.CommandKind(r.PathValue("command")), Environment: env, Model: model, To: r.PostForm.Get("to")}
	var convErr error
	if v := r.PostForm.Get("version"); v != "" {
		req.Version, convErr = strconv.Atoi(v)
	}
	if v := r.PostForm.Get("instances"); v != "" && convErr == nil {
		req.Instances, convErr = strconv.Atoi(v)
	}
	if convErr != nil {
		redirectFlash(w, r, back, "Enter a whole number.", true)
		return nil
	}
	c, rel, err := s.issueCommand(r, se.principal(), req)
	if err != nil {
		if st := statusOf(err); st == http.StatusInternalServerError || (st == http.StatusNotFound && errors.Is(err, store.ErrNotFound) && strings.Contains(err.Error(), "no component")) {
			return err
		}
		redirectFlash(w, r, back, s.publicMessage(r, err), true)
		return nil
	}
	msg := fmt.Sprintf("%s queued: waiting for an agent of %s.", commandTitle(c.Command), c.Environment)
	if rel.AwaitingApproval() {
		msg = fmt.Sprintf("%s requested: %s requires an approval before an agent runs it.", commandTitle(c.Command), c.Environment)
	}
	redirectFlash(w, r, "/releases/"+rel.ID, msg, false)
	return nil
}

func commandTitle(c releases.Command) string {
	switch c.Kind {
	case releases.CommandRestore:
		return fmt.Sprintf("Restore of v%d", c.Version)
	case releases.CommandRollback:
		return fmt.Sprintf("Rollback to v%d", c.Version)
	case releases.CommandScale:
		return fmt.Sprintf("Scaling to %d instance(s)", c.Instances)
	case releases.CommandPromote:
		return fmt.Sprintf("Promotion of v%d to %s", c.Version, c.Environment)
	}
	return string(c.Kind)
}

type settingsData struct {
	Envs     []EnvironmentView
	Tokens   []store.Token
	Users    []store.User
	NewToken *NewToken
	NewUser  *newUser
	// Members (users with their sessions) and Notify are filled for admins (users.go, webhooks.go).
	Members []store.UserSummary
	Notify  webhookSettings
}

func (s dashboard) settingsData(r *http.Request, se session) (settingsData, error) {
	var d settingsData
	var err error
	if d.Envs, err = s.environmentViews(r.Context(), se.principal()); err != nil {
		return d, err
	}
	if se.user.Role == store.RoleAdmin {
		if d.Tokens, err = s.st.Tokens(r.Context()); err != nil {
			return d, err
		}
		if d.Users, err = s.st.Users(r.Context()); err != nil {
			return d, err
		}
		if d.Members, err = s.st.UserList(r.Context()); err != nil {
			return d, err
		}
		if d.Notify, err = s.webhookSettings(r.Context()); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (s dashboard) settingsPage(w http.ResponseWriter, r *http.Request, se session) error {
	d, err := s.settingsData(r, se)
	if err != nil {
		return err
	}
	s.renderSettings(w, r, &se, d)
	return nil
}

func (s dashboard) saveEnvironment(w http.ResponseWriter, r *http.Request, se session) error {
	p := se.principal()
	if err := p.needRole(store.RoleAdmin, "manage environments"); err != nil {
		return err
	}
	f := r.PostForm
	pos, _ := strconv.Atoi(f.Get("position"))
	e := releases.Environment{Name: strings.TrimSpace(f.Get("name")), Kind: releases.EnvironmentKind(f.Get("kind")), Region: strings.TrimSpace(f.Get("region")),
		Account: strings.TrimSpace(f.Get("account")), EndpointURL: strings.TrimSpace(f.Get("endpoint_url")), RequiresApproval: f.Get("requires_approval") != "",
		AllowSelfApproval: f.Get("allow_self_approval") != "", Position: pos}
	err := s.st.PutEnvironment(r.Context(), e)
	s.audit(r, p.name(), "environment.save", e.Name, "", e.Name, outcomeOf(s.Server, r, err), fmt.Sprintf("kind=%s region=%s approval=%t self_approval=%t position=%d", e.Kind, e.Region, e.RequiresApproval, e.AllowSelfApproval, e.Position))
	if err != nil {
		redirectFlash(w, r, "/settings", s.publicMessage(r, err), true)
		return nil
	}
	redirectFlash(w, r, "/settings", "Environment "+e.Name+" saved.", false)
	return nil
}

func (s dashboard) newToken(w http.ResponseWriter, r *http.Request, se session) error {
	p := se.principal()
	if err := p.needRole(store.RoleAdmin, "manage tokens"); err != nil {
		return err
	}
	nt, err := s.createToken(r, p, r.PostForm.Get("environment"), strings.TrimSpace(r.PostForm.Get("name")))
	if err != nil {
		redirectFlash(w, r, "/settings", s.publicMessage(r, err), true)
		return nil
	}
	// The secret is shown in this answer only; it is never stored in clear.
	d, err := s.settingsData(r, se)
	if err != nil {
		return err
	}
	d.NewToken = &nt
	s.renderSettings(w, r, &se, d)
	return nil
}

func (s dashboard) revokeTokenForm(w http.ResponseWriter, r *http.Request, se session) error {
	p := se.principal()
	if err := p.needRole(store.RoleAdmin, "manage tokens"); err != nil {
		return err
	}
	t, err := s.revokeToken(r, p, r.PathValue("id"))
	if err != nil {
		redirectFlash(w, r, "/settings", s.publicMessage(r, err), true)
		return nil
	}
	redirectFlash(w, r, "/settings", fmt.Sprintf("Token %s of %s revoked.", t.Name, t.Environment), false)
	return nil
}

func (s dashboard) newUser(w http.ResponseWriter, r *http.Request, se session) error {
	p := se.principal()
	if err := p.needRole(store.RoleAdmin, "manage users"); err != nil {
		return err
	}
	name, role, given := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("role"), r.PostForm.Get("password")
	pw, err := s.addUser(r, p, name, role, given)
	if err != nil {
		redirectFlash(w, r, "/settings", s.publicMessage(r, err), true)
		return nil
	}
	if given != "" {
		redirectFlash(w, r, "/settings", fmt.Sprintf("User %s added as %s.", name, role), false)
		return nil
	}
	d, err := s.settingsData(r, se)
	if err != nil {
		return err
	}
	d.NewUser = &newUser{Name: name, Password: pw}
	s.renderSettings(w, r, &se, d)
	return nil
}

// auditData is the audit log page: a page of entries and, when there are more, the id to read
// older ones before.
type auditData struct {
	Entries []auditRow
	Before  bool
	Older   int64
}

func (s dashboard) auditPage(w http.ResponseWriter, r *http.Request, se session) error {
	var before int64
	if b := r.URL.Query().Get("before"); b != "" {
		before, _ = strconv.ParseInt(b, 10, 64)
	}
	const pageSize = 100
	list, err := s.st.Audit(r.Context(), pageSize, before)
	if err != nil {
		return err
	}
	var older int64
	if len(list) == pageSize {
		older = list[len(list)-1].ID
	}
	data := auditData{Before: before > 0, Older: older}
	for _, e := range list {
		data.Entries = append(data.Entries, auditRowOf(s.st.Now(), e))
	}
	s.render(w, r, http.StatusOK, "audit", &se, pageData{Title: "Audit log", Nav: "audit", Data: data})
	return nil
}

// reasonText is a failure reason as the dashboard says it; nothing for a release without one.
func reasonText(r releases.Reason) string {
	if r == "" {
		return ""
	}
	return r.Text()
}
