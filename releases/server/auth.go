package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Integration tokens are "sdt_" + 32 random bytes (base64url): guessing one is hopeless, so a
// plain SHA-256 of it is a safe thing to store and look up; the secret itself is shown once.
const tokenPrefix = "sdt_"

// Cookie names.
const (
	sessionCookie    = "sagedeploy_session"
	loginCSRFCookie  = "sagedeploy_login"
	flashCookie      = "sagedeploy_flash"
	csrfHeader       = "X-CSRF-Token"
	csrfField        = "csrf"
	minPasswordChars = 10
)

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS source never fails on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is the stored form of an integration token or session id.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken makes an integration token for one environment and returns its secret, which is
// stored only hashed: show it to the user now, it cannot be read back.
func CreateToken(ctx context.Context, st *store.Store, env, name, createdBy string) (string, store.Token, error) {
	secret := tokenPrefix + randomString(32)
	t, err := st.CreateToken(ctx, store.Token{Environment: env, Name: name, Hash: HashToken(secret), Hint: secret[:len(tokenPrefix)+6], CreatedBy: createdBy})
	if err != nil {
		return "", t, err
	}
	return secret, t, nil
}

// HashPassword hashes a password with bcrypt at cost (0 means bcrypt's default).
func HashPassword(password string, cost int) (string, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// GeneratePassword returns a random password that is easy to copy.
func GeneratePassword() string { return randomString(15) }

// AddUser creates a dashboard user. An empty password is generated and returned.
func AddUser(ctx context.Context, st *store.Store, name, role, password string, cost int) (string, error) {
	if password == "" {
		password = GeneratePassword()
	} else if len(password) < minPasswordChars {
		return "", releases.Errorf(releases.EINVALID, "the password for %s is too short: use at least %d characters, or leave it empty to have one generated", name, minPasswordChars)
	}
	h, err := HashPassword(password, cost)
	if err != nil {
		return "", err
	}
	if err := st.CreateUser(ctx, store.User{Name: name, PasswordHash: h, Role: role}); err != nil {
		return "", err
	}
	return password, nil
}

// EnsureFirstAdmin creates the user admin with a random password when the server has no user at
// all, and returns that password (to print once). created is false when users already exist.
func EnsureFirstAdmin(ctx context.Context, st *store.Store, cost int) (password string, created bool, err error) {
	n, err := st.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", false, err
	}
	pw, err := AddUser(ctx, st, "admin", store.RoleAdmin, "", cost)
	if errors.Is(err, store.ErrExists) {
		return "", false, nil // another server created it at the same moment
	}
	if err != nil {
		return "", false, err
	}
	return pw, true, nil
}

// EnsureEnvironment creates or updates an environment.
func EnsureEnvironment(ctx context.Context, st *store.Store, env releases.Environment) error {
	return st.PutEnvironment(ctx, env)
}

// principal is who makes a request: a signed-in user, or an integration token of one environment.
type principal struct {
	user  *store.User
	token *store.Token
	// session is set when the user came with a session cookie (and so must prove CSRF).
	session *store.Session
}

func (p principal) name() string {
	switch {
	case p.user != nil:
		return p.user.Name
	case p.token != nil:
		return "token:" + p.token.Name + "@" + p.token.Environment
	}
	return "anonymous"
}

func roleRank(r string) int {
	switch r {
	case store.RoleViewer:
		return 1
	case store.RoleDeployer:
		return 2
	case store.RoleAdmin:
		return 3
	}
	return 0
}

// atLeast reports whether a user principal has role r or more.
func (p principal) atLeast(r string) bool {
	return p.user != nil && roleRank(p.user.Role) >= roleRank(r)
}

// needRole answers 403 unless the principal is a user with role r or more.
func (p principal) needRole(r, doing string) error {
	if p.atLeast(r) {
		return nil
	}
	if p.token != nil {
		return releases.Errorf(releases.EFORBIDDEN, "an integration token cannot %s: sign in as a user with the %s role", doing, r)
	}
	return releases.Errorf(releases.EFORBIDDEN, "user %s has the %s role; to %s you need the %s role: ask an admin", p.user.Name, p.user.Role, doing, r)
}

// canCommand answers 403 unless the principal may issue commands into env: a deployer or admin,
// or a token of that very environment.
func (p principal) canCommand(env, doing string) error {
	if p.token != nil {
		if p.token.Environment != env {
			return releases.Errorf(releases.EFORBIDDEN, "this integration token belongs to environment %s; it cannot %s in environment %s (use a token of %s)", p.token.Environment, doing, env, env)
		}
		return nil
	}
	return p.needRole(store.RoleDeployer, doing)
}

// canSee answers 403 when a token asks about another environment than its own.
func (p principal) canSee(env string) error {
	if p.token != nil && p.token.Environment != env {
		return releases.Errorf(releases.EFORBIDDEN, "this integration token belongs to environment %s and cannot read environment %s", p.token.Environment, env)
	}
	return nil
}

// authenticate finds the principal of an API request: a bearer token, HTTP basic credentials of
// a user, or a dashboard session cookie (then state changes need the CSRF header).
func (s *Server) authenticate(r *http.Request) (principal, error) {
	authz := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(authz, "Bearer "):
		secret := strings.TrimSpace(strings.TrimPrefix(authz, "Bearer "))
		t, err := s.st.TokenByHash(r.Context(), HashToken(secret))
		if errors.Is(err, store.ErrNotFound) {
			return principal{}, releases.Errorf(releases.EUNAUTHORIZED, "the integration token is unknown or was revoked: create one in Settings or with `sagedeploy server token create --env ENV`")
		}
		if err != nil {
			return principal{}, err
		}
		s.touchToken(r.Context(), t)
		return principal{token: &t}, nil
	case strings.HasPrefix(authz, "Basic "):
		name, pw, ok := r.BasicAuth()
		if !ok {
			return principal{}, releases.Errorf(releases.EUNAUTHORIZED, "malformed basic credentials")
		}
		u, err := s.signIn(r, name, pw, "api.sign-in")
		if err != nil {
			return principal{}, err
		}
		return principal{user: &u}, nil
	case authz != "":
		return principal{}, releases.Errorf(releases.EUNAUTHORIZED, "unsupported Authorization scheme: use \"Bearer <integration token>\" or basic credentials of a user")
	}
	se, u, err := s.sessionOf(r)
	if err != nil {
		return principal{}, releases.Errorf(releases.EUNAUTHORIZED, "authentication required: pass an integration token (Authorization: Bearer <token>) or sign in to the dashboard")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sameSecret(r.Header.Get(csrfHeader), se.CSRF) {
			return principal{}, releases.Errorf(releases.EFORBIDDEN, "missing or wrong %s header: requests made with a dashboard session must carry the page's CSRF token", csrfHeader)
		}
	}
	return principal{user: &u, session: &se}, nil
}

// touchToken records token use at most once a minute, to keep writes off the hot path.
func (s *Server) touchToken(ctx context.Context, t store.Token) {
	now := s.st.Now()
	if t.LastUsedAt != nil && now.Sub(*t.LastUsedAt) < time.Minute {
		return
	}
	if err := s.st.TouchToken(ctx, t.ID, now); err != nil {
		s.log.Warn("record token use", "token", t.ID, "err", err)
	}
}

// unknownUser is the audit log's actor for a sign-in with a name no user has: what was typed
// may be a password typed into the wrong field, and viewers read the audit log.
const unknownUser = "unknown user"

// signIn checks a user's password, after the throttle lets the attempt through. A failure counts
// toward the throttle and is audited under the user's name only when that user exists.
func (s *Server) signIn(r *http.Request, name, password, action string) (store.User, error) {
	addr := remoteAddr(r)
	if d := s.throttle.wait(name, addr, s.st.Now()); d > 0 {
		s.log.Warn("sign-in throttled", "action", action, "remote", addr, "retry_after", d.String())
		return store.User{}, tooManySignIns(d)
	}
	u, known, err := s.checkPassword(r.Context(), name, password)
	if err == nil {
		s.throttle.succeeded(name, addr)
		return u, nil
	}
	if releases.ErrorCode(err) != releases.EUNAUTHORIZED {
		return u, err
	}
	wait := s.throttle.failed(name, addr, s.st.Now())
	actor := unknownUser
	if known {
		actor = name
	}
	s.audit(r, actor, action, "", "", "", "failed: wrong user name or password", "")
	s.log.Warn("failed sign-in", "action", action, "user", actor, "remote", addr, "next_wait", wait.String())
	return u, err
}

// checkPassword compares a password with the user's hash, or with a dummy hash when no such user
// exists so that both take as long. known says whether the user exists.
func (s *Server) checkPassword(ctx context.Context, name, password string) (u store.User, known bool, err error) {
	u, err = s.st.User(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, false, err
	}
	known = err == nil
	hash := []byte(u.PasswordHash)
	if !known {
		hash = s.dummyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !known {
		return store.User{}, known, releases.Errorf(releases.EUNAUTHORIZED, "wrong user name or password")
	}
	return u, true, nil
}

// actorOf is name when such a user exists, else unknownUser: for audit entries about a name
// someone typed.
func (s *Server) actorOf(ctx context.Context, name string) string {
	if _, err := s.st.User(ctx, name); err == nil {
		return name
	}
	return unknownUser
}

func sameSecret(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sessionOf reads the session of a dashboard request.
func (s *Server) sessionOf(r *http.Request) (store.Session, store.User, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return store.Session{}, store.User{}, store.ErrNotFound
	}
	return s.st.Session(r.Context(), HashToken(c.Value))
}

// startSession signs a user in: a random id in an HttpOnly, SameSite=Lax cookie, its hash and a
// fresh CSRF token in the store.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User) error {
	id := randomString(32)
	now := s.st.Now()
	se := store.Session{IDHash: HashToken(id), Username: u.Name, CSRF: randomString(24), CreatedAt: now, ExpiresAt: now.Add(s.opts.SessionTTL)}
	if err := s.st.CreateSession(r.Context(), se); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: s.secureCookies(r), Expires: se.ExpiresAt, MaxAge: int(s.opts.SessionTTL.Seconds())})
	return nil
}

func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(s.opts.BaseURL, "https://")
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audit appends to the audit log; a failure to write it is logged, never hidden.
func (s *Server) audit(r *http.Request, actor, action, env, model, target, outcome, detail string) {
	if outcome == "" {
		outcome = "ok"
	}
	err := s.st.AddAudit(context.WithoutCancel(r.Context()), store.AuditEntry{Actor: actor, Action: action, Environment: env, Model: model,
		Target: target, Outcome: outcome, Detail: detail, RemoteAddr: remoteAddr(r)})
	if err != nil {
		s.log.Error("write audit log", "action", action, "actor", actor, "err", err)
	}
}
