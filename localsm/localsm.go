// Package localsm is the local SageMaker: one listener that routes by protocol, like a cloud edge,
// to the control plane (AWS JSON 1.1), the runtime (invocations), STS (query protocol) and S3.
//
// The data directory holds everything that survives a restart:
//
//	DATA_DIR/lock       held while a server uses the directory
//	DATA_DIR/state.db   resources (SQLite, WAL, synchronous=FULL)
//	DATA_DIR/s3/        S3 buckets and objects (keys escaped, see localsm/s3)
//	DATA_DIR/runtime/   extracted artifacts and per-endpoint logs of the serving layer
package localsm

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/autoscaling"
	"github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
	"github.com/sagedeploy/sagedeploy/localsm/control"
	"github.com/sagedeploy/sagedeploy/localsm/quotas"
	"github.com/sagedeploy/sagedeploy/localsm/runtime"
	"github.com/sagedeploy/sagedeploy/localsm/s3"
	"github.com/sagedeploy/sagedeploy/localsm/sts"
)

// Options configure a local SageMaker.
type Options struct {
	// Addr to listen on; "127.0.0.1:0" picks a free port (tests). Default "127.0.0.1:4570".
	Addr string
	// DataDir holds the state, the S3 objects, extracted artifacts and logs. Default
	// DefaultDataDir().
	DataDir string
	// Account is the AWS account id in ARNs; default "000000000000".
	Account string
	// ImageMap maps container image URIs to local commands (bring-your-own serving containers).
	ImageMap map[string]string
	// MaxBodyBytes bounds invocation bodies; 0 means SageMaker's 6 MiB (6291456 bytes).
	MaxBodyBytes int64
	// PingInterval is how often serving process containers are pinged; 0 means every 5 s.
	PingInterval time.Duration
	Logger       *slog.Logger
	// DefaultRegion names the region in ARNs when a request is not signed (SigV4 requests carry
	// their signing region, which is used instead). Default "us-east-1".
	DefaultRegion string
	// MaxModelBytes caps what one model artifact may unpack to (disk and memory); 0 means
	// serving.DefaultMaxModelBytes (4 GiB). An artifact over it fails its endpoint.
	MaxModelBytes int64
	// S3CORSOrigin is the one web origin (e.g. http://localhost:3000) allowed to call the S3 API
	// from a browser. Empty (the default) answers no browser cross-origin request, so that a web
	// page cannot read or replace the model artifacts on this machine.
	S3CORSOrigin string
	// CloudWatch tunes the metrics and alarms service (clock, period scale); Store, Account,
	// Region and Logger are filled in.
	CloudWatch cloudwatch.Options
	// AutoScalingInterval is how often scaling policies are evaluated; default one minute
	// (scaled by CloudWatch.PeriodScale); negative turns the loop off (tests call Evaluate).
	AutoScalingInterval time.Duration
	// EndpointQuotas are the account's endpoint instance quotas Service Quotas reports, by
	// instance type (e.g. {"ml.m5.large": 2}); other types get DefaultEndpointQuota, else
	// quotas.DefaultEndpointInstances. Service Quotas reports them and CreateEndpoint and
	// UpdateEndpoint refuse a fleet past them (ResourceLimitExceeded), as on AWS.
	EndpointQuotas       map[string]float64
	DefaultEndpointQuota float64
	// CaptureFlushInterval is how often data capture files are written to S3; 0 means every
	// 10 s. Buffered records are also written when the server closes.
	CaptureFlushInterval time.Duration
	// ServerlessIdle is how long an on-demand serverless variant keeps its instance after its
	// last invocation (the next one is a cold start); 0 means 5 minutes, negative never stops it.
	ServerlessIdle time.Duration
}

// DefaultAddr is where `sagedeploy local` listens unless told otherwise.
const DefaultAddr = "127.0.0.1:4570"

// DefaultDataDir is the data directory under the user's state directory:
// $XDG_STATE_HOME/sagedeploy/local, or ~/.local/state/sagedeploy/local.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sagedeploy", "local"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find a data directory: %w (pass one explicitly)", err)
	}
	return filepath.Join(home, ".local", "state", "sagedeploy", "local"), nil
}

// Server is a running local SageMaker.
type Server struct {
	opts    Options
	log     *slog.Logger
	ln      net.Listener
	srv     *http.Server
	handler http.Handler

	store   *control.SQLiteStore
	control *control.Control
	runtime *runtime.Runtime
	s3      *s3.Store
	sts     *sts.Handler
	monitor *monitoring
	quotas  *quotas.Service

	recorders sync.Pool // *statusRecorder, see serveLogged

	unlock    func()
	serveErr  chan error
	closeOnce sync.Once
	closeErr  error
}

// Start listens, restores every endpoint that was InService when it last stopped, and serves in
// the background until Close.
func Start(ctx context.Context, opts Options) (srv *Server, err error) {
	if opts, err = opts.withDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("local SageMaker: data directory %s: %w", opts.DataDir, err)
	}
	s := &Server{opts: opts, log: opts.Logger, serveErr: make(chan error, 1)}
	s.recorders.New = func() any { return &statusRecorder{} }
	// On a failure half-way, release what was opened.
	defer func() {
		if err != nil {
			s.release(context.Background())
		}
	}()
	if s.unlock, err = lockDataDir(opts.DataDir); err != nil {
		return nil, fmt.Errorf("local SageMaker: %w", err)
	}

	if s.store, err = control.OpenSQLite(ctx, filepath.Join(opts.DataDir, "state.db")); err != nil {
		return nil, fmt.Errorf("local SageMaker: %w", err)
	}
	if s.s3, err = s3.Open(filepath.Join(opts.DataDir, "s3"), s3.Options{Logger: opts.Logger, CORSOrigin: opts.S3CORSOrigin}); err != nil {
		return nil, fmt.Errorf("local SageMaker: %w", err)
	}
	if s.monitor, err = startMonitoring(ctx, opts); err != nil {
		return nil, fmt.Errorf("local SageMaker: %w", err)
	}
	s.runtime, err = runtime.New(runtime.Options{Artifacts: s.s3, ImageMap: opts.ImageMap,
		WorkDir: filepath.Join(opts.DataDir, "runtime"), MaxBodyBytes: opts.MaxBodyBytes, MaxModelBytes: opts.MaxModelBytes,
		PingInterval: opts.PingInterval, Account: opts.Account, Logger: opts.Logger, Metrics: s.monitor.cloudwatch,
		DefaultRegion: opts.DefaultRegion, Objects: objects{s.s3}, CaptureFlushInterval: opts.CaptureFlushInterval,
		ServerlessIdle: opts.ServerlessIdle})
	if err != nil {
		return nil, fmt.Errorf("local SageMaker: serving layer: %w", err)
	}
	if s.quotas, err = quotas.New(quotas.Options{Default: opts.DefaultEndpointQuota, EndpointInstances: opts.EndpointQuotas,
		Account: opts.Account, Region: opts.DefaultRegion, Logger: opts.Logger}); err != nil {
		return nil, fmt.Errorf("local SageMaker: %w", err)
	}
	s.control, err = control.New(ctx, control.Options{Store: s.store, Serving: s.runtime, Account: opts.Account,
		DefaultRegion: opts.DefaultRegion, Logger: opts.Logger, EndpointQuota: s.quotas.EndpointInstances,
		Alarms: guardrails{s.monitor.cloudwatch}, TimeScale: opts.timeScale()})
	if err != nil {
		return nil, fmt.Errorf("local SageMaker: %w", err)
	}
	if err := s.monitor.startAutoScaling(ctx, opts, controlScaler{s}); err != nil {
		return nil, fmt.Errorf("local SageMaker: %w", err)
	}
	s.sts = sts.New(sts.Options{Account: opts.Account, Logger: opts.Logger})
	s.handler = http.HandlerFunc(s.route)

	s.ln, err = net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("local SageMaker: listen on %s: %w (is another sagedeploy local running? pick another --addr)", opts.Addr, err)
	}
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second}
	go func() { s.serveErr <- s.srv.Serve(s.ln) }()
	s.control.Restore()
	s.log.Info("local SageMaker listening", "url", s.URL(), "data_dir", opts.DataDir)
	return s, nil
}

// withDefaults fills in what opts leaves empty.
func (opts Options) withDefaults() (Options, error) {
	opts.Addr = cmp.Or(opts.Addr, DefaultAddr)
	opts.Account = cmp.Or(opts.Account, "000000000000")
	opts.DefaultRegion = cmp.Or(opts.DefaultRegion, "us-east-1")
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	if opts.DataDir == "" {
		dir, err := DefaultDataDir()
		if err != nil {
			return opts, err
		}
		opts.DataDir = dir
	}
	return opts, nil
}

// URL is the base URL to export as AWS_ENDPOINT_URL, e.g. http://127.0.0.1:4570.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Handler is the whole edge, for embedding under another listener.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops accepting requests, drains in-flight ones, stops every model server and closes the
// state store.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.release(ctx) })
	return s.closeErr
}

func (s *Server) release(ctx context.Context) error {
	var errs []error
	if s.srv != nil {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop listener: %w", err))
		}
		if err := <-s.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("listener: %w", err))
		}
	} else if s.ln != nil {
		s.ln.Close()
	}
	if s.monitor != nil {
		errs = append(errs, s.monitor.close())
	}
	if s.control != nil {
		if err := s.control.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.runtime != nil {
		if err := s.runtime.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop model servers: %w", err))
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close state store: %w", err))
		}
	}
	if s.unlock != nil {
		s.unlock()
	}
	return errors.Join(errs...)
}

// signingService is the service a SigV4 request was signed for ("sagemaker", "s3", "sts"), or "".
// It runs on every request, so it slices the credential scope by hand rather than matching a
// regular expression: Authorization carries Credential=AKID/DATE/REGION/SERVICE/aws4_request,
// a presigned URL the same scope in X-Amz-Credential.
func signingService(r *http.Request) string {
	if auth := firstHeader(r.Header, "Authorization"); auth != "" {
		if _, scope, ok := strings.Cut(auth, "Credential="); ok {
			if service := scopeService(scope); service != "" {
				return service
			}
		}
	}
	// Parsing the query allocates, and invocations have none.
	if r.URL.RawQuery != "" {
		if c := r.URL.Query().Get("X-Amz-Credential"); c != "" {
			if parts := strings.Split(c, "/"); len(parts) >= 4 {
				return parts[3]
			}
		}
	}
	return ""
}

// scopeService is the SERVICE of a credential scope AKID/DATE/REGION/SERVICE/aws4_request
// (what follows in the header is ignored), or "" when the scope is not of that shape.
func scopeService(scope string) string {
	akid, rest, ok := strings.Cut(scope, "/")
	if !ok || akid == "" || strings.ContainsAny(akid, ", \t") {
		return ""
	}
	date, rest, ok := strings.Cut(rest, "/")
	if !ok || len(date) != 8 || strings.Trim(date, "0123456789") != "" {
		return ""
	}
	region, rest, ok := strings.Cut(rest, "/")
	if !ok || !scopeWord(region) {
		return ""
	}
	service, rest, ok := strings.Cut(rest, "/")
	if !ok || !scopeWord(service) || !strings.HasPrefix(rest, "aws4_request") {
		return ""
	}
	return service
}

// scopeWord reports whether s is a non-empty region or service name: [a-z0-9-]+.
func scopeWord(s string) bool {
	for i := range len(s) {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return s != ""
}

// firstHeader is h.Get(key) for a key already in canonical form: it skips re-canonicalising
// the key, which costs more than the map lookup on the invocation path.
func firstHeader(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// isInvocationPath reports whether path is /endpoints/NAME/ followed by invocations,
// invocations-response-stream or async-invocations.
func isInvocationPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/endpoints/")
	if !ok {
		return false
	}
	name, op, ok := strings.Cut(rest, "/")
	if !ok || name == "" {
		return false
	}
	return op == "invocations" || op == "invocations-response-stream" || op == "async-invocations"
}

// isMultipartUpload reports whether the query is S3's multipart upload (?uploads, ?uploadId=),
// which an S3 key such as endpoints/x/invocations may receive unsigned.
func isMultipartUpload(r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return false
	}
	q := r.URL.Query()
	return q.Has("uploads") || q.Has("uploadId")
}

// route sends a request to the part that speaks its protocol, as a cloud edge does by host name:
//   - CloudWatch (signed for "monitoring", its CBOR path or JSON target) and Application Auto
//     Scaling (AnyScaleFrontendService targets) → those services;
//   - Service Quotas (ServiceQuotasV20190624 targets) → the endpoint instance quotas;
//   - X-Amz-Target (AWS JSON) → the SageMaker control plane;
//   - POST /endpoints/NAME/invocations → the runtime;
//   - Action=... in the query or a form body (query protocol; AssumeRoleWithWebIdentity comes
//     unsigned) → STS;
//   - anything else → S3 (path-style).
//
// Invocations, the one call made per prediction, are recognised first by what only they look
// like (see isInvocation), so that they skip the other services' checks.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	service := signingService(r)
	if isInvocation(r, service) {
		s.serveInvocation(w, r)
		return
	}
	switch {
	case cloudwatch.Claims(r, service):
		s.monitor.cloudwatch.ServeHTTP(w, r)
	case autoscaling.Claims(r, service):
		s.monitor.autoscaling.ServeHTTP(w, r)
	case quotas.Claims(r, service):
		s.quotas.ServeHTTP(w, r)
	case r.Header.Get("X-Amz-Target") != "":
		s.control.ServeHTTP(w, r)
	case r.Method == http.MethodPost && isInvocationPath(r.URL.Path) && service != "s3" && !isMultipartUpload(r):
		s.serveInvocation(w, r)
	case service == "sts" || r.URL.Query().Get("Action") != "" || s.isSTSForm(r):
		s.sts.ServeHTTP(w, r)
	default:
		s.serveLogged(w, r, "s3 call", s.s3, slog.LevelInfo)
	}
}

// isInvocation is the fast path of route's invocation case: a POST to an invocation path,
// unsigned or signed for SageMaker, with no X-Amz-Target. None of the services route checks
// before the runtime claims such a request (their path prefix, target or signing name
// differs), so the answer is the same as going through them; a request it refuses still
// reaches the runtime through route's switch when that says so.
func isInvocation(r *http.Request, service string) bool {
	return r.Method == http.MethodPost && (service == "" || service == "sagemaker") &&
		r.Header["X-Amz-Target"] == nil && isInvocationPath(r.URL.Path) && !isMultipartUpload(r)
}

// isSTSForm reports whether a POST carries a URL-encoded form with an Action, the query
// protocol's shape; the body is kept for whoever handles the request.
func (s *Server) isSTSForm(r *http.Request) bool {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return false
	}
	const peek = 64 << 10
	buf, err := io.ReadAll(io.LimitReader(r.Body, peek))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil {
		return false
	}
	// A form with a malformed escape elsewhere still names its Action: STS then says what is
	// wrong with it, rather than S3 answering "404 page not found".
	form, _ := url.ParseQuery(string(buf))
	return form.Get("Action") != ""
}

type readCloser struct {
	io.Reader
	io.Closer
}

// serveLogged serves r with h and logs the answer: what, which path, the status and how long.
// Successful answers log at okLevel and failures at Info or above (see logAnswer). With a
// logger that logs nothing the request passes straight through; otherwise the status recorder
// comes from a pool and the log line's values are built only when its level is enabled, so a
// request at the default level allocates nothing here.
func (s *Server) serveLogged(w http.ResponseWriter, r *http.Request, msg string, h http.Handler, okLevel slog.Level) {
	ctx := r.Context()
	if !s.log.Enabled(ctx, max(okLevel, slog.LevelWarn)) { // nothing this logs is logged
		h.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	rec := s.recorder(w)
	defer s.putRecorder(rec)
	h.ServeHTTP(rec, r)
	s.logAnswer(r, msg, okLevel, rec.status, start)
}

// serveInvocation is serveLogged for invocations, which log at Debug when they succeed: a line
// per prediction would cost a quarter of the runtime's throughput (bench/serving) and drown the
// control-plane calls a user watches for. The clock is read once for the runtime's latency
// metrics and the log line's duration.
func (s *Server) serveInvocation(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if !s.log.Enabled(r.Context(), slog.LevelWarn) {
		s.runtime.ServeInvocation(w, r, arrived)
		return
	}
	rec := s.recorder(w)
	defer s.putRecorder(rec)
	s.runtime.ServeInvocation(rec, r, arrived)
	s.logAnswer(r, "invocation call", slog.LevelDebug, rec.status, arrived)
}

// logAnswer logs an answer with status to r, served since start, at okLevel when it succeeded,
// at least Info when the client erred and Warn when the server did.
func (s *Server) logAnswer(r *http.Request, msg string, okLevel slog.Level, status int, start time.Time) {
	lvl := okLevel
	if status >= 400 {
		lvl = max(lvl, slog.LevelInfo)
	}
	if status >= 500 {
		lvl = slog.LevelWarn
	}
	if ctx := r.Context(); s.log.Enabled(ctx, lvl) {
		s.log.LogAttrs(ctx, lvl, msg, slog.String("method", r.Method), slog.String("resource", r.URL.Path),
			slog.Int("outcome", status), slog.Duration("duration", time.Since(start)))
	}
}

// recorder wraps w in a pooled status recorder, to give back with putRecorder.
func (s *Server) recorder(w http.ResponseWriter) *statusRecorder {
	rec := s.recorders.Get().(*statusRecorder)
	rec.ResponseWriter, rec.status = w, http.StatusOK
	return rec
}

func (s *Server) putRecorder(rec *statusRecorder) {
	rec.ResponseWriter = nil
	s.recorders.Put(rec)
}

// statusRecorder notes the status a handler answers with. Recorders are pooled (Server.recorders):
// one must not be kept past the request it served.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets streamed responses (invocations-response-stream) through.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController access to the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
