// Package servertest starts a real release server (SQLite in a temp dir, HTTP on 127.0.0.1) for
// tests, with environments, users and tokens made on demand. It is test support, not a fake: the
// server, store and HTTP stack are the production ones.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Options adjust the server a test starts.
type Options struct {
	// Environments to create; nil means dev (local, no gate) and prod (sagemaker eu-west-1,
	// approval required).
	Environments []releases.Environment
	// Server options; Store and Logger are filled in.
	Server server.Options
	// Now is the store's clock (nil: time.Now).
	Now func() time.Time
	// DataDir holds the SQLite file (default: a temp dir).
	DataDir string
}

// Env is a running release server.
type Env struct {
	T             testing.TB
	URL           string
	Server        *server.Server
	Store         *store.Store
	AdminPassword string // of the user "admin", created at start
	HTTP          *httptest.Server

	mu     sync.Mutex
	tokens map[string]string
}

// DefaultEnvironments are dev (local) then prod (SageMaker, gated).
func DefaultEnvironments() []releases.Environment {
	return []releases.Environment{
		{Name: "dev", Kind: "local", EndpointURL: "http://127.0.0.1:4566", Position: 0},
		{Name: "prod", Kind: "sagemaker", Region: "eu-west-1", Account: "123456789012", Position: 1, RequiresApproval: true},
	}
}

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	dir := o.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := store.Open(context.Background(), store.Config{DataDir: dir, Now: o.Now, Logger: TestLogger(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	envs := o.Environments
	if envs == nil {
		envs = DefaultEnvironments()
	}
	for _, e := range envs {
		if err := server.EnsureEnvironment(context.Background(), st, e); err != nil {
			t.Fatalf("create environment %s: %v", e.Name, err)
		}
	}
	so := o.Server
	so.Store = st
	if so.Logger == nil {
		so.Logger = TestLogger(t)
	}
	if so.PasswordCost == 0 {
		so.PasswordCost = bcrypt.MinCost
	}
	srv, err := server.New(so)
	if err != nil {
		t.Fatalf("start release server: %v", err)
	}
	pw, created, err := server.EnsureFirstAdmin(context.Background(), st, so.PasswordCost)
	if err != nil || !created {
		t.Fatalf("create first admin: created=%v err=%v", created, err)
	}
	hs := httptest.NewServer(srv.Handler())
	e := &Env{T: t, URL: hs.URL, Server: srv, Store: st, AdminPassword: pw, HTTP: hs, tokens: map[string]string{}}
	t.Cleanup(func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
		st.Close()
	})
	return e
}

// TestLogger logs through t.Log at debug level when SAGEDEPLOY_TEST_LOG=1, else only warnings.
func TestLogger(t testing.TB) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("SAGEDEPLOY_TEST_LOG") == "1" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: lvl}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Token returns an integration token of env (made once per env and test).
func (e *Env) Token(env string) string {
	e.T.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if tok, ok := e.tokens[env]; ok {
		return tok
	}
	tok, _, err := server.CreateToken(context.Background(), e.Store, env, env+"-test", "servertest")
	if err != nil {
		e.T.Fatalf("create token for %s: %v", env, err)
	}
	e.tokens[env] = tok
	return tok
}

// Client is a releases.Client with a token of env.
func (e *Env) Client(env string) *releases.Client {
	return releases.NewClient(e.URL, e.Token(env), nil)
}

// AddUser creates a user and returns the password.
func (e *Env) AddUser(name, role string) string {
	e.T.Helper()
	pw, err := server.AddUser(context.Background(), e.Store, name, role, "", bcrypt.MinCost)
	if err != nil {
		e.T.Fatalf("add user %s: %v", name, err)
	}
	return pw
}

// Response is a decoded API answer.
type Response struct {
	Status int
	Body   []byte
}

// JSON decodes the body into v.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Error is the body's "error" message.
func (r Response) Error() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error
}

// Auth says how a request authenticates.
type Auth func(*http.Request)

// Basic authenticates as a user.
func Basic(user, password string) Auth {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

// Bearer authenticates with an integration token.
func Bearer(token string) Auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// Admin authenticates as the first admin.
func (e *Env) Admin() Auth { return Basic("admin", e.AdminPassword) }

// Do sends an API request. body may be nil, a string (sent as is) or a value (sent as JSON).
func (e *Env) Do(method, path string, auth Auth, body any) Response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: data}
}

// Deploy reports a whole successful deploy of version n of model into env through the real
// client, as the deployer does, and returns the finished release.
func (e *Env) Deploy(env, model string, n, instances int) releases.Release {
	e.T.Helper()
	ctx := context.Background()
	c := e.Client(env)
	v := releases.Version{Number: n, ModelPackageARN: "arn:aws:sagemaker:eu-west-1:123456789012:model-package/" + model + "/" + itoa(n), Description: "version " + itoa(n)}
	r, err := c.StartRelease(ctx, releases.ReleaseStart{Environment: env, Model: model, Kind: releases.KindDeploy, Version: v,
		EndpointName: model + "-" + env, InstanceType: "ml.m5.large", InstanceCount: instances, Trigger: releases.Trigger{Type: "pipeline", PipelineID: "pipe-" + itoa(n)}})
	if err != nil {
		e.T.Fatalf("start deploy: %v", err)
	}
	if r.Status == releases.StatusPending {
		if _, err := e.Store.Approve(ctx, r.ID, "servertest"); err != nil {
			e.T.Fatalf("approve deploy into %s: %v", env, err)
		}
	}
	if _, err := c.AddEvent(ctx, r.ID, releases.Event{Phase: "endpoint", Message: "endpoint " + model + "-" + env + " is InService", EndpointStatus: "InService"}); err != nil {
		e.T.Fatalf("report event: %v", err)
	}
	out, err := c.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &v, EndpointStatus: "InService", InstanceType: "ml.m5.large", InstanceCount: instances})
	if err != nil {
		e.T.Fatalf("finish deploy: %v", err)
	}
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
