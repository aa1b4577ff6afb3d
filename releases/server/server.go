// Package server is the release server: the JSON API the deployer reports releases to and agents
// take commands from, the dashboard (sign-in, overview, timeline, components, live releases,
// approvals, settings, audit log), and the signed webhooks that tell people what happened. It
// keeps no cloud credentials: commands are executed by agents.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
	"github.com/sagedeploy/sagedeploy/releases/web"
)

// Options configure a server. Only Store is required.
type Options struct {
	Store  *store.Store
	Logger *slog.Logger
	// BaseURL is the address users reach the server at (e.g. https://deploy.example.com), used
	// in hints and links; empty means the address of each request.
	BaseURL string
	// CommandTimeout is how long a command may wait for an agent before it gets a note saying
	// no agent took it (it stays queued). Default 5m.
	CommandTimeout time.Duration
	// RunningTimeout is how long a running release may go without any report before it is
	// marked failed (its deployer or agent died). Default 30m.
	RunningTimeout time.Duration
	// SweepInterval is how often those timeouts are checked. Default 30s.
	SweepInterval time.Duration
	// SessionTTL is how long a dashboard sign-in lasts. Default 12h.
	SessionTTL time.Duration
	// PasswordCost is the bcrypt cost for passwords set through the dashboard (0: bcrypt's default).
	PasswordCost int
	// MaxPollWait caps an agent's long poll. Default 60s.
	MaxPollWait time.Duration
	// StreamPoll is how often event streams and long polls re-read the store besides being woken
	// (which covers several servers sharing one Postgres). Default 2s.
	StreamPoll time.Duration
	// OnDrift, when set, is called once per drift when an agent first sees a component's endpoint
	// changed outside sagedeploy (notification kind NotificationDriftDetected).
	OnDrift func(context.Context, releases.Drift)
	// Version is the sagedeploy version the dashboard shows in its footer; the binary sets it
	// from its build stamp, so this package needs no knowledge of how it was built.
	Version string
	// Webhooks configure notifications (webhooks_send.go).
	Webhooks WebhookOptions
}

// Server is an embeddable release server.
type Server struct {
	opts      Options
	st        *store.Store
	log       *slog.Logger
	mux       *http.ServeMux
	handler   http.Handler
	metrics   *metrics
	notify    *notifier
	throttle  *throttle
	agents    *presence
	insights  insightCache // drift and freshness for the dashboard's cells
	live      liveCache    // the dashboard's live fingerprint, shared by its pages and streams
	cells     cellCache    // the overview's cells as HTML, by their view
	pages     map[string]*template.Template
	dummyHash []byte
	sender    *sender // of webhook deliveries

	ctx    context.Context // ends at Close: stops the sweeper and open streams
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a server and starts its sweeper; call Close to stop it.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("release server: no store")
	}
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	// A negative duration means the default, like zero.
	opts.CommandTimeout = cmp.Or(max(opts.CommandTimeout, 0), 5*time.Minute)
	opts.RunningTimeout = cmp.Or(max(opts.RunningTimeout, 0), 30*time.Minute)
	opts.SweepInterval = cmp.Or(max(opts.SweepInterval, 0), 30*time.Second)
	opts.SessionTTL = cmp.Or(max(opts.SessionTTL, 0), 12*time.Hour)
	opts.MaxPollWait = cmp.Or(max(opts.MaxPollWait, 0), 60*time.Second)
	opts.StreamPoll = cmp.Or(max(opts.StreamPoll, 0), 2*time.Second)

	s := &Server{opts: opts, st: opts.Store, log: opts.Logger, notify: newNotifier(), throttle: newThrottle(defaultThrottleLimits()), agents: newPresence(), metrics: newMetrics(opts.Store)}
	var err error
	if s.pages, err = web.Pages(nil); err != nil {
		return nil, fmt.Errorf("release server: %w", err)
	}
	s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte(randomString(12)), max(opts.PasswordCost, bcrypt.MinCost))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routes()
	s.handler = s.observe(s.mux)
	s.wg.Add(1)
	go s.sweepLoop()
	s.sender = newSender(s.st, opts.Webhooks, cmp.Or(opts.BaseURL, opts.Webhooks.LinkBase), opts.Version)
	if len(opts.Webhooks.Key) > 0 {
		s.wg.Add(1)
		go s.deliverLoop(s.sender)
	}
	return s, nil
}

// Handler serves the API, the dashboard, /healthz and /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the sweeper and ends open event streams and long polls.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Store is the server's store.
func (s *Server) Store() *store.Store { return s.st }

func (s *Server) routes() {
	m := http.NewServeMux()
	s.mux = m
	a := jsonAPI{s}
	// Deployer and agent (integration tokens); reads also for users.
	m.HandleFunc("POST /api/v1/releases", s.api(a.apiStartRelease))
	m.HandleFunc("GET /api/v1/releases", s.api(a.apiListReleases))
	m.HandleFunc("GET /api/v1/releases/{id}", s.api(a.apiGetRelease))
	m.HandleFunc("POST /api/v1/releases/{id}/events", s.api(a.apiAddEvent))
	m.HandleFunc("POST /api/v1/releases/{id}/finish", s.api(a.apiFinishRelease))
	m.HandleFunc("POST /api/v1/releases/{id}/heartbeat", s.api(a.apiHeartbeat))
	m.HandleFunc("GET /api/v1/releases/{id}/stream", streams{s}.apiStream)
	m.HandleFunc("POST /api/v1/releases/{id}/approve", s.api(a.apiApprove))
	m.HandleFunc("POST /api/v1/releases/{id}/reject", s.api(a.apiReject))
	m.HandleFunc("POST /api/v1/releases/{id}/cancel", s.api(a.apiCancel))
	m.HandleFunc("GET /api/v1/agent/commands/next", s.api(a.apiNextCommand))
	m.HandleFunc("POST /api/v1/agent/commands/{id}/result", s.api(a.apiCommandResult))
	m.HandleFunc("GET /api/v1/commands", s.api(a.apiListCommands))
	m.HandleFunc("GET /api/v1/commands/{id}", s.api(a.apiGetCommand))
	m.HandleFunc("GET /api/v1/environments", s.api(a.apiEnvironments))
	m.HandleFunc("POST /api/v1/environments", s.api(a.apiPutEnvironment))
	m.HandleFunc("GET /api/v1/components", s.api(a.apiComponents))
	m.HandleFunc("GET /api/v1/components/{env}/{model}", s.api(a.apiComponent))
	m.HandleFunc("POST /api/v1/components/{env}/{model}/{command}", s.api(a.apiCommand))
	m.HandleFunc("GET /api/v1/approvals", s.api(a.apiApprovals))
	m.HandleFunc("GET /api/v1/tokens", s.api(a.apiTokens))
	m.HandleFunc("POST /api/v1/tokens", s.api(a.apiCreateToken))
	m.HandleFunc("POST /api/v1/tokens/{id}/revoke", s.api(a.apiRevokeToken))
	m.HandleFunc("GET /api/v1/users", s.api(a.apiUsers))
	m.HandleFunc("POST /api/v1/users", s.api(a.apiAddUser))
	m.HandleFunc("GET /api/v1/audit", s.api(a.apiAudit))
	m.HandleFunc("GET /api/v1/me", s.api(a.apiMe))
	m.HandleFunc("/api/", a.apiNotFound)

	m.HandleFunc("GET /healthz", s.healthz)
	m.Handle("GET /metrics", s.metrics.handler())

	s.observeRoutes(m)
	dashboard{s}.routes(m)
	s.userRoutes(m)
	s.webhookRoutes(m)
}

// statusWriter remembers the status code for logs and metrics, and passes flushes through for
// event streams.
type statusWriter struct {
	http.ResponseWriter
	code     int
	streamed bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	w.streamed = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe logs each request, counts it in the metrics and turns panics into 500s.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if sw.code == 0 {
					http.Error(sw, "internal error", http.StatusInternalServerError)
				}
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			longPoll := strings.HasSuffix(route, "/commands/next")
			s.metrics.observeHTTP(route, r.Method, code, d, sw.streamed || longPoll)
			lvl := slog.LevelInfo
			if route == "GET /healthz" || route == "GET /metrics" || strings.HasPrefix(route, "GET /static/") || (longPoll && code == http.StatusNoContent) {
				lvl = slog.LevelDebug
			}
			s.log.Log(r.Context(), lvl, "http request", "method", r.Method, "path", r.URL.Path, "route", route, "status", code,
				"duration_ms", float64(d.Microseconds())/1000, "remote", remoteAddr(r))
		}()
		next.ServeHTTP(sw, r)
	})
}

// healthz answers ok or unavailable to anyone (load balancers probe it without credentials), and
// says which database and why only to a signed-in user or a token: the error of a database that
// does not answer names its host, user and database.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	perr := s.st.Ping(ctx)
	if !s.mayReadHealth(r) {
		if perr != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	if perr != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": s.st.Backend(), "error": "the database does not answer: " + perr.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": s.st.Backend()})
}

// mayReadHealth reports whether the request carries credentials that may see health details.
// Only credentials count that were sent: a bare probe is never audited or throttled.
func (s *Server) mayReadHealth(r *http.Request) bool {
	if r.Header.Get("Authorization") == "" {
		if c, err := r.Cookie(sessionCookie); err != nil || c.Value == "" {
			return false
		}
	}
	_, err := s.authenticate(r)
	return err == nil
}

// baseURL is the address to show users for this server.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sweepLoop applies the command and release timeouts until Close.
func (s *Server) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.Sweep(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Error("sweep timeouts", "err", err)
			}
		}
	}
}

// Sweep notes commands no agent took within CommandTimeout (they stay queued) and fails releases
// that made no progress within RunningTimeout. It runs every SweepInterval; tests call it directly.
func (s *Server) Sweep(ctx context.Context) error {
	now := s.st.Now()
	note := fmt.Sprintf("No agent took this command within %s. It stays queued: start an agent for its environment (sagedeploy agent --server %s --token <token of the environment>), or cancel it.",
		s.opts.CommandTimeout, s.baseForNotes())
	if _, err := s.st.NoteUnclaimedCommands(ctx, now.Add(-s.opts.CommandTimeout), note); err != nil {
		return err
	}
	reason := fmt.Sprintf("No progress was reported for %s: the deployer or agent running this release stopped. Check the endpoint in the console before trying again.", s.opts.RunningTimeout)
	failed, err := s.st.FailStaleReleases(ctx, now.Add(-s.opts.RunningTimeout), reason)
	for _, r := range failed {
		s.log.Warn("release timed out", "release", r.ID, "model", r.Model, "environment", r.Environment)
		s.metrics.observeRelease(r)
		s.notify.signal(releaseKey(r.ID))
	}
	if err != nil {
		return err
	}
	s.throttle.prune(now)
	_, err = s.st.DeleteExpiredSessions(ctx)
	return err
}

func (s *Server) baseForNotes() string { return cmp.Or(s.opts.BaseURL, "<server URL>") }
