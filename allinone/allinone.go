// Package allinone runs sagedeploy's whole stack in one process over one data directory: the local
// SageMaker, the release server (dashboard and API) and an agent that executes dashboard commands
// against that local SageMaker with the deployer. It is what `sagedeploy up` and `sagedeploy
// quickstart` run, and what end-to-end tests, fault tests and benchmarks start.
//
// The data directory holds:
//
//	DATA_DIR/sagedeploy.db   the release server's SQLite store (`sagedeploy server ... --data-dir DATA_DIR` reads it)
//	DATA_DIR/local/          the local SageMaker's state, S3 objects and model files
//	DATA_DIR/tokens.json     the deployer tokens the stack made (mode 0600); agent tokens live in memory only
//
// A stack restarted on the same directory finds its environments, users, tokens, releases,
// models and endpoints again.
package allinone

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sagedeploy/sagedeploy/agent"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Defaults of a stack.
const (
	DefaultLocalAddr  = localsm.DefaultAddr // "127.0.0.1:4570", as `sagedeploy local`
	DefaultServerAddr = "127.0.0.1:4571"    // as `sagedeploy server`
	DefaultRegion     = "us-east-1"
	DefaultAccount    = "000000000000"
	// AdminUser is the dashboard user the stack creates on its first start.
	AdminUser = "admin"
	// AccessKeyID and SecretAccessKey are the placeholder credentials to sign requests to the
	// local SageMaker with: it accepts any signature.
	AccessKeyID     = "local"
	SecretAccessKey = "local"
)

// Options configure a stack. Only DataDir is required.
type Options struct {
	// DataDir holds everything the stack keeps (see the package documentation); created when
	// missing. One stack at a time may use it.
	DataDir string
	// LocalAddr and ServerAddr are where the local SageMaker and the release server listen;
	// "127.0.0.1:0" picks a free port. Defaults DefaultLocalAddr and DefaultServerAddr.
	LocalAddr  string
	ServerAddr string
	// BaseURL is the address users reach the dashboard at, for links; the server's URL when empty.
	BaseURL string
	// Region and Account name the local SageMaker's ARNs and the deployers' region.
	// Defaults DefaultRegion and DefaultAccount.
	Region  string
	Account string
	// ImageMap serves container images with local commands (see localsm.Options).
	ImageMap map[string]string
	// Logger receives every part's structured logs; nothing is logged when nil.
	Logger *slog.Logger
	// ResetAdminPassword gives the user admin a new password (creating the user if it was
	// deleted), returned by AdminLogin.
	ResetAdminPassword bool
	// PasswordCost is the bcrypt cost of the passwords the stack sets (0: bcrypt's default; tests
	// use bcrypt.MinCost).
	PasswordCost int
	// Server tunes the release server (StreamPoll, timeouts, ...); Store, Logger, BaseURL and
	// PasswordCost are filled in.
	Server server.Options
	// NoAgent leaves dashboard commands queued instead of executing them (tests of agents run
	// their own).
	NoAgent bool
	// AgentPollWait is how long one long poll of the agent waits; 30s when zero.
	AgentPollWait time.Duration
	// ObserveInterval is how often the agent looks at every endpoint (drift, metrics); 60s when zero.
	ObserveInterval time.Duration
	// Poll is how often the agent's deployer checks endpoints; deploy.LocalPoll when zero.
	Poll deploy.PollSchedule
	// Version is the sagedeploy version the stack's deployers record on what they create and its
	// dashboard shows. The command line sets it from the build stamp: libraries never read the
	// stamp themselves.
	Version string
}

// Login is how to sign in to the dashboard.
type Login struct {
	User string `json:"user"`
	// Password is set only when this start created the user or reset its password: it is not
	// stored anywhere readable, so it is shown once.
	Password string `json:"password,omitempty"`
}

// Stack is a running all-in-one sagedeploy. Close it when done.
type Stack struct {
	opts    Options
	log     *slog.Logger
	local   *localsm.Server
	store   *store.Store
	server  *server.Running
	baseURL string
	login   Login
	envs    []string // the environments the agent serves

	tokMu     sync.Mutex
	tokens    tokenFile
	newTokens map[string]bool // environments whose deployer token this start created

	agentCancel context.CancelFunc
	agentDone   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// DefaultDataDir is the data directory of `sagedeploy up` under the user's state directory:
// $SAGEDEPLOY_UP_DATA_DIR, else $XDG_STATE_HOME/sagedeploy/up, else ~/.local/state/sagedeploy/up.
// It reads the variables through getenv (os.Getenv for this process's own), so that a caller with
// an environment of its own, such as the command line under test, is obeyed.
func DefaultDataDir(getenv func(string) string) (string, error) {
	if d := getenv("SAGEDEPLOY_UP_DATA_DIR"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sagedeploy", "up"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find a data directory: %w (pass one with --data-dir)", err)
	}
	return filepath.Join(home, ".local", "state", "sagedeploy", "up"), nil
}

// DefaultEnvironments are the environments a stack creates when missing: dev, then prod behind an
// approval gate, both served by the local SageMaker at localURL.
func DefaultEnvironments(localURL string) []releases.Environment {
	return []releases.Environment{
		{Name: "dev", Kind: releases.EnvironmentLocal, EndpointURL: localURL, Position: 0},
		{Name: "prod", Kind: releases.EnvironmentLocal, EndpointURL: localURL, Position: 1, RequiresApproval: true},
	}
}

// Start starts the local SageMaker, opens the release store, creates the default environments
// when missing, starts the release server and the agent, and returns once all serve. On error,
// whatever had started is stopped again.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.DataDir == "" {
		return nil, errors.New("all-in-one sagedeploy: no data directory given")
	}
	o = o.withDefaults()
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", o.DataDir, err)
	}
	s := &Stack{opts: o, log: o.Logger, newTokens: map[string]bool{}}
	if err := s.start(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.Close(cctx)
		return nil, err
	}
	return s, nil
}

// withDefaults fills in what o leaves empty (see Options).
func (o Options) withDefaults() Options {
	o.LocalAddr = cmp.Or(o.LocalAddr, DefaultLocalAddr)
	o.ServerAddr = cmp.Or(o.ServerAddr, DefaultServerAddr)
	o.Region = cmp.Or(o.Region, DefaultRegion)
	o.Account = cmp.Or(o.Account, DefaultAccount)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Poll.Initial <= 0 {
		o.Poll = deploy.LocalPoll
	}
	return o
}

// start brings the parts up in order; Start stops what had started when it fails.
func (s *Stack) start(ctx context.Context) error {
	o := s.opts
	var err error
	// The local SageMaker first: its lock on the data directory keeps a second stack out before
	// it touches anything else.
	s.local, err = localsm.Start(ctx, localsm.Options{Addr: o.LocalAddr, DataDir: filepath.Join(o.DataDir, "local"),
		Account: o.Account, DefaultRegion: o.Region, ImageMap: o.ImageMap, Logger: o.Logger.With("part", "local")})
	if err != nil {
		return fmt.Errorf("start the local SageMaker: %w", err)
	}
	if s.store, err = store.Open(ctx, store.Config{DataDir: o.DataDir, Logger: o.Logger.With("part", "store")}); err != nil {
		return err
	}
	if err := s.ensureEnvironments(ctx); err != nil {
		return err
	}
	if err := s.startServer(ctx); err != nil {
		return err
	}
	if s.tokens, err = readTokens(s.tokenPath()); err != nil {
		return err
	}
	if o.NoAgent {
		return nil
	}
	return s.startAgent(ctx)
}

// startServer starts the release server on the stack's store and finds how to sign in to it.
func (s *Stack) startServer(ctx context.Context) error {
	o := s.opts
	so := o.Server
	so.Version = cmp.Or(so.Version, o.Version)
	so.Store, so.Logger, so.BaseURL, so.PasswordCost = s.store, o.Logger.With("part", "server"), o.BaseURL, o.PasswordCost
	var err error
	if len(so.Webhooks.Key) == 0 { // webhooks need their secrets key, kept in the data dir
		if so.Webhooks.Key, err = server.LoadWebhookKey(o.DataDir); err != nil {
			return err
		}
	}
	s.server, err = server.Listen(ctx, o.ServerAddr, so)
	if err != nil {
		return fmt.Errorf("start the release server: %w", err)
	}
	s.baseURL = cmp.Or(o.BaseURL, s.server.URL)
	s.login = Login{User: AdminUser, Password: s.server.FirstAdminPassword}
	if o.ResetAdminPassword && s.login.Password == "" {
		if s.login.Password, err = resetPassword(ctx, s.store, AdminUser, o.PasswordCost); err != nil {
			return err
		}
	}
	return nil
}

// ensureEnvironments creates dev and prod when missing, and points environments of kind local that
// name no other local SageMaker at this one (its address may change between starts). The agent
// serves every environment of kind local.
func (s *Stack) ensureEnvironments(ctx context.Context) error {
	have, err := s.store.Environments(ctx)
	if err != nil {
		return err
	}
	byName := map[string]releases.Environment{}
	for _, e := range have {
		byName[e.Name] = e
	}
	url := s.local.URL()
	for _, e := range DefaultEnvironments(url) {
		if _, ok := byName[e.Name]; !ok {
			if err := server.EnsureEnvironment(ctx, s.store, e); err != nil {
				return fmt.Errorf("create environment %s: %w", e.Name, err)
			}
			byName[e.Name] = e
			have = append(have, e)
		}
	}
	s.envs = nil
	for _, e := range have {
		e = byName[e.Name]
		if e.Kind != releases.EnvironmentLocal {
			continue
		}
		if e.EndpointURL != url && (e.EndpointURL == "" || isLoopbackURL(e.EndpointURL)) {
			e.EndpointURL = url
			if err := server.EnsureEnvironment(ctx, s.store, e); err != nil {
				return fmt.Errorf("update environment %s: %w", e.Name, err)
			}
		}
		s.envs = append(s.envs, e.Name)
	}
	return nil
}

// startAgent runs an agent serving every local environment, with one deployer against the local
// SageMaker, until Close.
func (s *Stack) startAgent(ctx context.Context) error {
	var clients []*releases.Client
	for _, env := range s.envs {
		tok, err := s.agentToken(ctx, env)
		if err != nil {
			return err
		}
		clients = append(clients, releases.NewClient(s.server.URL, tok, nil))
	}
	d, err := s.Deployer(ctx, "", deploy.Options{Poll: s.opts.Poll, Logger: s.log.With("part", "agent")})
	if err != nil {
		return err
	}
	var ex agent.Executor = d
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.agentCancel, s.agentDone = cancel, make(chan struct{})
	go func() {
		defer close(s.agentDone)
		observed := make(chan struct{})
		go func() {
			defer close(observed)
			_ = agent.Observe(actx, agent.ObserveOptions{Clients: clients, Endpoints: d, Metrics: agent.CloudWatchMetrics{CW: d.CloudWatch()},
				Interval: s.opts.ObserveInterval, Logger: s.log.With("part", "observe")})
		}()
		defer func() { <-observed }()
		err := agent.Run(actx, agent.Options{Clients: clients, Executor: ex, Logger: s.log.With("part", "agent"), PollWait: s.opts.AgentPollWait})
		if err != nil && actx.Err() == nil {
			s.log.Error("the agent stopped: dashboard commands stay queued until sagedeploy up restarts (it then makes new agent tokens)", "error", err)
		}
	}()
	return nil
}

// LocalURL is the local SageMaker's URL: AWS_ENDPOINT_URL for SDKs, CLIs and the deployer.
func (s *Stack) LocalURL() string { return s.local.URL() }

// ServerURL is the dashboard's URL (Options.BaseURL when set, else where the server listens).
func (s *Stack) ServerURL() string { return s.baseURL }

// ListenURL is where the release server listens (ServerURL without the BaseURL override).
func (s *Stack) ListenURL() string { return s.server.URL }

// DataDir is the stack's data directory.
func (s *Stack) DataDir() string { return s.opts.DataDir }

// Region is the AWS region the stack's deployers use.
func (s *Stack) Region() string { return s.opts.Region }

// Store is the release server's store.
func (s *Stack) Store() *store.Store { return s.store }

// Local is the local SageMaker.
func (s *Stack) Local() *localsm.Server { return s.local }

// Server is the release server.
func (s *Stack) Server() *server.Server { return s.server.Server }

// Environments are the environments the agent serves (every environment of kind local at start),
// in pipeline order.
func (s *Stack) Environments() []string { return append([]string(nil), s.envs...) }

// AdminLogin is how to sign in to the dashboard; its Password is empty unless this start created
// the user or reset the password.
func (s *Stack) AdminLogin() Login { return s.login }

// Token returns an integration token of env for deployers (SAGEDEPLOY_RELEASES_TOKEN): made on
// first use and kept in the data directory, so it stays the same across restarts unless revoked.
func (s *Stack) Token(ctx context.Context, env string) (string, error) {
	tok, _, err := s.deployerToken(ctx, env)
	return tok, err
}

// TokenCreated reports whether this start made the deployer token of env, so that its secret
// has not been shown before: callers print a token only then.
func (s *Stack) TokenCreated(env string) bool {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	return s.newTokens[env]
}

// TokenFile is where the stack keeps its deployer tokens (mode 0600).
func (s *Stack) TokenFile() string { return s.tokenPath() }

// Client is a release server client reporting to env with Token(env).
func (s *Stack) Client(ctx context.Context, env string) (*releases.Client, error) {
	tok, err := s.Token(ctx, env)
	if err != nil {
		return nil, err
	}
	return releases.NewClient(s.server.URL, tok, nil), nil
}

// Deployer builds a deployer against the local SageMaker that reports releases to env (to no
// release server when env is ""). o's EndpointURL, Region, Credentials and Releases are set by
// the stack; its other fields (Progress, Poll, ApprovalPoll, Logger, ...) are kept.
func (s *Stack) Deployer(ctx context.Context, env string, o deploy.Options) (*deploy.Deployer, error) {
	o.EndpointURL = s.local.URL()
	o.Region = s.opts.Region
	o.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""))
	o.Releases = nil
	o.WebIdentity = nil
	o.Version = cmp.Or(o.Version, s.opts.Version)
	if o.Logger == nil {
		o.Logger = s.log.With("part", "deployer")
	}
	if env != "" {
		c, err := s.Client(ctx, env)
		if err != nil {
			return nil, err
		}
		o.Releases = c
	}
	return deploy.New(ctx, o)
}

// AWSEnv is what to export for AWS SDKs, CLIs and `sagedeploy deploy` to use the local SageMaker,
// in a stable order.
func (s *Stack) AWSEnv() [][2]string {
	return [][2]string{
		{"AWS_ENDPOINT_URL", s.local.URL()},
		{"AWS_ACCESS_KEY_ID", AccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", SecretAccessKey},
		{"AWS_REGION", s.opts.Region},
	}
}

// ReleasesEnv is what to export for `sagedeploy deploy` to report releases of env to the stack.
func (s *Stack) ReleasesEnv(ctx context.Context, env string) ([][2]string, error) {
	tok, err := s.Token(ctx, env)
	if err != nil {
		return nil, err
	}
	return [][2]string{{"SAGEDEPLOY_RELEASES_URL", s.server.URL}, {"SAGEDEPLOY_RELEASES_TOKEN", tok}}, nil
}

// Approve approves a release waiting at its environment's gate, as a dashboard user would, in
// the audit log under by.
func (s *Stack) Approve(ctx context.Context, releaseID, by string) error {
	rec, err := s.store.Approve(ctx, releaseID, by)
	outcome := "ok"
	if err != nil {
		outcome = err.Error()
	}
	_ = s.store.AddAudit(ctx, store.AuditEntry{Actor: by, Action: "release.approve", Environment: rec.Environment, Model: rec.Model, Target: releaseID, Outcome: outcome})
	if err != nil {
		return fmt.Errorf("approve release %s: %w", releaseID, err)
	}
	return nil
}

// Done is closed when the release server stopped serving on its own (see Err); a stack that is
// merely running never closes it before Close.
func (s *Stack) Done() <-chan struct{} { return s.server.Done() }

// Err is why the release server stopped serving, once Done is closed.
func (s *Stack) Err() error { return s.server.Err() }

// Close stops the agent (letting a command in flight report), the release server, the store and
// the local SageMaker, waiting for each until ctx ends. Calling it again returns the first result.
func (s *Stack) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.agentCancel != nil {
			s.agentCancel()
			select {
			case <-s.agentDone:
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("stop the agent: %w", ctx.Err()))
			}
		}
		if s.server != nil {
			if err := s.server.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop the release server: %w", err))
			}
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close the release store: %w", err))
			}
		}
		if s.local != nil {
			if err := s.local.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop the local SageMaker: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// resetPassword gives user a new generated password, creating it as an admin when missing.
func resetPassword(ctx context.Context, st *store.Store, user string, cost int) (string, error) {
	pw := server.GeneratePassword()
	u, err := st.User(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		if _, err := server.AddUser(ctx, st, user, store.RoleAdmin, pw, cost); err != nil {
			return "", fmt.Errorf("create user %s: %w", user, err)
		}
		return pw, nil
	}
	if err != nil {
		return "", err
	}
	h, err := server.HashPassword(pw, cost)
	if err != nil {
		return "", err
	}
	u.PasswordHash = h
	if err := st.UpdateUser(ctx, u); err != nil {
		return "", fmt.Errorf("reset the password of %s: %w", user, err)
	}
	_ = st.AddAudit(ctx, store.AuditEntry{Actor: "sagedeploy up", Action: "user.password-reset", Target: user, Outcome: "ok"})
	return pw, nil
}
