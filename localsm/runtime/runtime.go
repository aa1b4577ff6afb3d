// Package runtime runs the model servers behind local SageMaker endpoints and answers
// invocations: routing by variant weight across instances, blue/green swaps, live capacity,
// serverless concurrency and cold starts, async invocations and data capture.
package runtime

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/capture"
	"github.com/sagedeploy/sagedeploy/localsm/serving"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Options configure a Runtime.
type Options struct {
	// Artifacts reads model.tar.gz files by s3:// URL.
	Artifacts spec.Artifacts
	// ImageMap maps a container image URI to a local command line that serves it under the
	// SageMaker serving contract (bring-your-own containers as processes).
	ImageMap map[string]string
	// WorkDir holds extracted artifacts and per-endpoint logs.
	WorkDir string
	// MaxBodyBytes bounds an invocation body; 0 means SageMaker's limit, 6 MiB (the service
	// model's 6291456 bytes, not 6,000,000).
	MaxBodyBytes int64
	// Account is the AWS account id SageMaker names in "endpoint not found" errors; default
	// "000000000000".
	Account string
	// MaxModelBytes caps what one model artifact may unpack to; 0 means serving.DefaultMaxModelBytes.
	MaxModelBytes int64
	// HealthTimeout bounds how long a new instance may take to answer GET /ping; 0 means 60s.
	HealthTimeout time.Duration
	// PingInterval is how often serving process containers are pinged (serving.StartOptions).
	PingInterval time.Duration
	Logger       *slog.Logger
	// Metrics receives every answered invocation's figures (CloudWatch); nil records nothing.
	Metrics spec.MetricsSink
	// DefaultRegion is the region of deployments that name none and of invocations that are not
	// signed; default "us-east-1".
	DefaultRegion string
	// Objects reads async inference inputs and writes their results and data capture files;
	// nil turns both off (async invocations are refused, nothing is captured).
	Objects spec.Objects
	// CaptureFlushInterval is how often data capture files are written; 0 means
	// capture.Options' default.
	CaptureFlushInterval time.Duration
	// ServerlessIdle is how long a serverless variant without ProvisionedConcurrency keeps its
	// instance after its last invocation; the next invocation then starts one again (a cold
	// start). 0 means 5 minutes; negative keeps instances running.
	ServerlessIdle time.Duration
	// ColdStarts, when set, is told how long each cold start of a serverless variant took to set
	// its model up: CloudWatch's ModelSetupTime.
	ColdStarts func(ColdStart)
}

// ColdStart is one cold start of a serverless variant.
type ColdStart struct {
	Endpoint spec.EndpointID
	Variant  string
	// Setup is the time from the invocation's arrival to an instance ready to take it.
	Setup time.Duration
}

const (
	defaultMaxBody = 6 << 20
	// drainTimeout bounds how long a stopping instance may take to finish in-flight requests:
	// a little over SageMaker's 60 s invocation limit.
	drainTimeout = 70 * time.Second
	// pooledBufferLimit keeps very large request buffers out of the pool.
	pooledBufferLimit = 1 << 20
	// sharedLengths is how many Content-Length values (0 up) are made once and shared by
	// every answer: one-row answers and most batches are shorter.
	sharedLengths = 1024
)

// Runtime implements spec.Serving and serves POST /endpoints/{name}/invocations and
// /async-invocations, finding endpoints by the region the request is signed for and its name.
type Runtime struct {
	opts    Options
	log     *slog.Logger
	store   *serving.Store
	ports   *serving.Ports
	maxBody int64
	account string
	region  string // the default region
	tmpDir  string // WorkDir when none was given, removed on Close
	// capture writes data capture files; started by the first captured invocation
	// (captureWriter), so that a runtime whose endpoints capture nothing keeps no queue of
	// events for the garbage collector to scan and no flush loop.
	capture atomic.Pointer[capture.Writer]

	// Async invocations and the serverless idle reaper run in the background under bg,
	// cancelled by Close, which waits for them.
	bg     context.Context
	stopBg context.CancelFunc
	work   sync.WaitGroup

	mu        sync.Mutex // serialises changes to endpoints and closed
	closed    bool
	endpoints atomic.Pointer[map[epKey]*endpoint] // copy on write, read lock-free

	calls sync.Pool // *call
	// lengths[n] is the Content-Length header value for n bytes, shared read-only.
	lengths [][]string
}

var _ spec.Serving = (*Runtime)(nil)

// New returns a Runtime serving nothing yet.
func New(opts Options) (*Runtime, error) {
	r := &Runtime{opts: opts, log: opts.Logger, ports: &serving.Ports{}, maxBody: opts.MaxBodyBytes,
		account: cmp.Or(opts.Account, "000000000000"), region: cmp.Or(opts.DefaultRegion, "us-east-1")}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.maxBody <= 0 {
		r.maxBody = defaultMaxBody
	}
	if r.opts.HealthTimeout <= 0 {
		r.opts.HealthTimeout = 60 * time.Second
	}
	if r.opts.WorkDir == "" {
		dir, err := os.MkdirTemp("", "sagedeploy-runtime-")
		if err != nil {
			return nil, fmt.Errorf("create runtime work directory: %w", err)
		}
		r.opts.WorkDir, r.tmpDir = dir, dir
	}
	store, err := serving.NewStore(filepath.Join(r.opts.WorkDir, "models"))
	if err != nil {
		return nil, err
	}
	r.store = store
	r.bg, r.stopBg = context.WithCancel(context.Background())
	r.endpoints.Store(&map[epKey]*endpoint{})
	r.calls.New = func() any { return &call{} }
	r.lengths = make([][]string, sharedLengths)
	for n := range r.lengths {
		r.lengths[n] = []string{strconv.Itoa(n)}
	}
	if r.opts.ServerlessIdle == 0 {
		r.opts.ServerlessIdle = 5 * time.Minute
	}
	if r.opts.ServerlessIdle > 0 {
		r.work.Add(1)
		go r.reapIdle()
	}
	return r, nil
}

// epKey finds an endpoint: the same name may serve in two regions.
type epKey struct{ region, name string }

// key is where the runtime keeps endpoint id; an empty region is the default one.
func (r *Runtime) key(id spec.EndpointID) epKey {
	return epKey{region: cmp.Or(id.Region, r.region), name: id.Name}
}

// endpoint is one endpoint's serving state.
type endpoint struct {
	name   string
	region string
	table  atomic.Pointer[table] // nil while nothing serves
	// async is the serving configuration's AsyncInferenceConfig; nil when it has none.
	async atomic.Pointer[asyncQueue]
	// backlog counts async invocations accepted and not finished: ApproximateBacklogSize.
	backlog atomic.Int64
	// states is what Variants reports, replaced whenever the serving fleet changes.
	states atomic.Pointer[[]spec.VariantState]

	opMu     sync.Mutex  // one Deploy, UpdateVariants or Remove at a time
	removed  bool        // under opMu: the endpoint is gone; start over from the map
	removing atomic.Bool // Remove is waiting for opMu: operations queued behind it give way
	current  *fleet      // under opMu: the fleet that has all traffic

	cancelMu sync.Mutex
	cancelOp context.CancelFunc // cancels the running operation (Remove, Close)
}

// fleet is the servers of one endpoint configuration.
type fleet struct {
	config   string
	variants []*variant
	async    *spec.Async // the configuration's AsyncInferenceConfig, nil when none
}

// variant is one production variant of a fleet. Its fields change only under the endpoint's
// opMu; routing reads the snapshots taken into tables.
type variant struct {
	name      string
	spec      spec.Variant
	weight    float64
	models    []*serving.Model
	instances []*instance
	started   int                      // instances ever started, for ids
	replaced  []time.Time              // recent replacements of stopped instances
	header    []string                 // X-Amzn-Invoked-Production-Variant value, shared read-only
	ctype     atomic.Pointer[[]string] // Content-Type of the last answer, shared read-only
	// capture is the configuration's data capture when it captures anything; nil otherwise.
	capture *spec.DataCapture
	// active counts a serverless variant's invocations in flight, held to MaxConcurrency.
	active atomic.Int64
	// lastUsed is when a serverless variant last took an invocation (UnixNano).
	lastUsed atomic.Int64
}

func (r *Runtime) lookup(name epKey) *endpoint {
	return (*r.endpoints.Load())[name]
}

// setEndpoint replaces name's entry (nil deletes it); r.mu must be held.
func (r *Runtime) setEndpoint(name epKey, ep *endpoint) {
	m := maps.Clone(*r.endpoints.Load())
	if ep == nil {
		delete(m, name)
	} else {
		m[name] = ep
	}
	r.endpoints.Store(&m)
}

// beginOp locks the endpoint for one operation, creating it if needed, and returns a context
// that Remove and Close can cancel.
func (r *Runtime) beginOp(ctx context.Context, name epKey, create bool) (*endpoint, context.Context, func(), error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, nil, nil, errors.New("the local SageMaker runtime is shut down")
		}
		ep := r.lookup(name)
		if ep == nil {
			if !create {
				r.mu.Unlock()
				return nil, nil, nil, fmt.Errorf("endpoint %s is not serving", name.name)
			}
			ep = &endpoint{name: name.name, region: name.region}
			r.setEndpoint(name, ep)
		}
		r.mu.Unlock()
		ep.opMu.Lock()
		if ep.removed || ep.removing.Load() {
			// Removed meanwhile (and out of the map): start over with a fresh endpoint.
			ep.opMu.Unlock()
			continue
		}
		opCtx, end := ep.startOp(ctx)
		return ep, opCtx, func() { end(); ep.opMu.Unlock() }, nil
	}
}

// startOp makes the running operation cancellable by Remove and Close; opMu must be held.
func (ep *endpoint) startOp(ctx context.Context) (context.Context, func()) {
	opCtx, cancel := context.WithCancel(ctx)
	ep.cancelMu.Lock()
	ep.cancelOp = cancel
	ep.cancelMu.Unlock()
	return opCtx, func() {
		ep.cancelMu.Lock()
		ep.cancelOp = nil
		ep.cancelMu.Unlock()
		cancel()
	}
}

func (ep *endpoint) cancel() {
	ep.cancelMu.Lock()
	if ep.cancelOp != nil {
		ep.cancelOp()
	}
	ep.cancelMu.Unlock()
}

// publishStates records what Variants reports; opMu must be held.
func (ep *endpoint) publishStates() {
	if ep.current == nil {
		ep.states.Store(nil)
		return
	}
	states := make([]spec.VariantState, 0, len(ep.current.variants))
	for _, v := range ep.current.variants {
		states = append(states, spec.VariantState{VariantName: v.name, Weight: v.weight, CurrentInstanceCount: len(v.instances)})
	}
	ep.states.Store(&states)
}

// Variants implements spec.Serving.
func (r *Runtime) Variants(endpoint spec.EndpointID) ([]spec.VariantState, bool) {
	ep := r.lookup(r.key(endpoint))
	if ep == nil {
		return nil, false
	}
	s := ep.states.Load()
	if s == nil {
		return nil, false
	}
	return append([]spec.VariantState(nil), (*s)...), true
}

// Remove implements spec.Serving.
func (r *Runtime) Remove(ctx context.Context, endpoint spec.EndpointID) error {
	k := r.key(endpoint)
	r.mu.Lock()
	ep := r.lookup(k)
	if ep != nil {
		r.setEndpoint(k, nil)
	}
	r.mu.Unlock()
	if ep == nil {
		return nil
	}
	r.removeEndpoint(ctx, ep)
	return nil
}

func (r *Runtime) removeEndpoint(ctx context.Context, ep *endpoint) {
	ep.removing.Store(true)
	ep.cancel() // a deploy in progress rolls back and gives up the endpoint
	ep.opMu.Lock()
	defer ep.opMu.Unlock()
	ep.removed = true
	ep.table.Store(nil)
	ep.async.Store(nil)
	if ep.current != nil {
		r.retire(ctx, ep.current.all())
		ep.current.release()
		ep.current = nil
	}
	ep.states.Store(nil)
}

// Close implements spec.Serving.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	eps := *r.endpoints.Load()
	r.endpoints.Store(&map[epKey]*endpoint{})
	r.mu.Unlock()
	// Queued async invocations give up (their failure is written) before the servers stop.
	r.stopBg()
	r.work.Wait()
	var wg sync.WaitGroup
	for _, ep := range eps {
		wg.Go(func() { r.removeEndpoint(ctx, ep) })
	}
	wg.Wait()
	var err error
	if w := r.capture.Load(); w != nil {
		err = w.Close(ctx)
	}
	if r.tmpDir != "" {
		os.RemoveAll(r.tmpDir)
	}
	return err
}

// all returns every instance of a fleet.
func (f *fleet) all() []*instance {
	var out []*instance
	for _, v := range f.variants {
		out = append(out, v.instances...)
	}
	return out
}

func (f *fleet) instanceCount() int {
	n := 0
	for _, v := range f.variants {
		n += len(v.instances)
	}
	return n
}

// release gives back the fleet's prepared models; its instances must have stopped.
func (f *fleet) release() {
	for _, v := range f.variants {
		for _, m := range v.models {
			m.Release()
		}
	}
}

// retire drains instances that are already out of the routing table, then stops them. Draining
// ends early when ctx does (Close with a deadline); otherwise it is bounded by drainTimeout.
func (r *Runtime) retire(ctx context.Context, insts []*instance) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Go(func() {
			inst.drain(dctx)
			inst.stop(ctx)
		})
	}
	wg.Wait()
}

// logPath is where a process instance's output goes: one directory per endpoint (and region,
// outside the default one).
func (r *Runtime) logPath(ep *endpoint, config, variant, id string) string {
	dir := safeName(ep.name)
	if ep.region != r.region {
		dir += "@" + safeName(ep.region)
	}
	return filepath.Join(r.opts.WorkDir, "logs", dir, safeName(config), safeName(variant)+"-"+id+".log")
}

func safeName(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, s)
}

// call is one invocation's pooled state.
type call struct {
	inv  serving.Invocation
	body []byte
	alt  []byte // second buffer for inference pipelines
}

// ServeHTTP answers POST /endpoints/{name}/invocations and /async-invocations as SageMaker's
// runtime does. The endpoint is looked up in the region the request is signed for.
func (r *Runtime) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.ServeInvocation(w, req, time.Now())
}

// ServeInvocation is ServeHTTP for a caller that has read the clock when the request arrived
// (the edge, which times its log line from the same instant): arrived is where the
// invocation's OverheadLatency and its metrics' timestamp start. Reading the wall and
// monotonic clocks costs about as much as routing the request, so it is read once.
func (r *Runtime) ServeInvocation(w http.ResponseWriter, req *http.Request, arrived time.Time) {
	name, async, ok := r.checkRequest(w, req)
	if !ok {
		return
	}
	ep := r.lookup(epKey{region: cmp.Or(signingRegion(req), r.region), name: name})
	if ep == nil || ep.table.Load() == nil {
		r.notFound(w, name)
		return
	}
	if async {
		r.serveAsync(w, req, ep)
		return
	}
	r.invoke(w, req, ep, r.maxBody, arrived)
}

// invoke answers one invocation of ep, which arrived at start, whose body may hold up to limit
// bytes.
func (r *Runtime) invoke(w http.ResponseWriter, req *http.Request, ep *endpoint, limit int64, start time.Time) {
	c := r.calls.Get().(*call)
	defer r.putCall(c)
	if !r.readRequest(w, req, c, limit) {
		return
	}
	inst, instances, ok := r.pickInstance(req.Context(), w, ep, header(req, "X-Amzn-Sagemaker-Target-Variant"))
	if !ok {
		return
	}
	defer inst.release()
	v := inst.variant
	if s := v.spec.Serverless; s != nil {
		if !admit(w, ep, v, s) {
			return
		}
		defer v.active.Add(-1)
		defer v.lastUsed.Store(time.Now().UnixNano())
	}
	ok, modelTime, total := r.invokeChain(w, req, ep.name, inst, c, start)
	r.recordMetrics(req, ep.name, inst, &c.inv, spec.Invocation{Start: start, ModelLatency: modelTime, Total: total, Instances: instances})
	if !ok {
		return
	}
	if v.capture != nil && capture.Sampled(v.capture) {
		r.record(ep, v, req, c)
	}
	r.writeAnswer(w, &c.inv, v)
}

// recordMetrics reports an answered invocation to the metrics sink (CloudWatch).
func (r *Runtime) recordMetrics(req *http.Request, name string, inst *instance, inv *serving.Invocation, m spec.Invocation) {
	sink := r.opts.Metrics
	if sink == nil || (inv.Status == 0 && req.Context().Err() != nil) {
		return // nothing records, or the client went away: not the model's failure
	}
	m.Endpoint, m.Variant, m.Status = name, inst.variant.name, inv.Status
	sink.Invocation(m)
}

// admit holds a serverless variant to its MaxConcurrency: past it, the invocation is throttled
// as SageMaker throttles it (429 ThrottlingException, which SDKs retry with backoff).
func admit(w http.ResponseWriter, ep *endpoint, v *variant, s *spec.Serverless) bool {
	if v.active.Add(1) <= int64(s.MaxConcurrency) {
		return true
	}
	v.active.Add(-1)
	writeError(w, http.StatusTooManyRequests, "ThrottlingException", apiError{Message: fmt.Sprintf(
		"Rate exceeded: serverless endpoint %s (variant %s) is already running its MaxConcurrency of %d invocation(s). Retry with backoff, or raise MaxConcurrency in the endpoint configuration's ServerlessConfig.",
		ep.name, v.name, s.MaxConcurrency)})
	return false
}

// record queues a sampled invocation for data capture; the bodies are copied, since c's
// buffers go back to the pool.
func (r *Runtime) record(ep *endpoint, v *variant, req *http.Request, c *call) {
	w := r.captureWriter()
	if w == nil {
		return
	}
	ev := capture.Event{Config: v.capture, Endpoint: ep.name, Variant: v.name, Time: time.Now(),
		InputType: header(req, "Content-Type"), OutputType: c.inv.RespContentType,
		InferenceID: header(req, "X-Amzn-Sagemaker-Inference-Id")}
	if v.capture.Input {
		ev.Input = bytes.Clone(c.body)
	}
	if v.capture.Output {
		ev.Output = bytes.Clone(c.inv.Out)
	}
	w.Record(ev)
}

// captureWriter is the data capture writer, started on first use; nil when the runtime has no
// Objects to write to or is shut down.
func (r *Runtime) captureWriter() *capture.Writer {
	if w := r.capture.Load(); w != nil || r.opts.Objects == nil {
		return w
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.capture.Load(); w != nil || r.closed {
		return w
	}
	w := capture.New(capture.Options{Objects: r.opts.Objects, FlushInterval: r.opts.CaptureFlushInterval, Logger: r.log})
	r.capture.Store(w)
	return w
}

// signingRegion is the region in a SigV4 Authorization header's credential scope
// (Credential=AKID/DATE/REGION/SERVICE/aws4_request), or "" for an unsigned request. It runs on
// every invocation, so it slices the header rather than matching a regular expression.
func signingRegion(req *http.Request) string {
	auth := header(req, "Authorization")
	_, scope, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	for range 2 { // skip the key id and the date
		if _, scope, ok = strings.Cut(scope, "/"); !ok {
			return ""
		}
	}
	region, _, ok := strings.Cut(scope, "/")
	if !ok {
		return ""
	}
	return region
}

// checkRequest validates what the URL and headers say and returns the endpoint name and
// whether the call is InvokeEndpointAsync; on a bad request it has answered already.
func (r *Runtime) checkRequest(w http.ResponseWriter, req *http.Request) (name string, async bool, ok bool) {
	name, ok = strings.CutPrefix(req.URL.Path, "/endpoints/")
	if ok {
		var direct bool
		if name, async = strings.CutSuffix(name, "/async-invocations"); !async {
			name, direct = strings.CutSuffix(name, "/invocations")
		}
		ok = async || direct
	}
	switch {
	case !ok || name == "" || strings.IndexByte(name, '/') >= 0:
		writeError(w, http.StatusNotFound, "UnknownOperationException", apiError{Message: "No operation at " + req.Method + " " + req.URL.Path + "; invocations are POST /endpoints/{EndpointName}/invocations."})
	case req.Method != http.MethodPost:
		writeError(w, http.StatusMethodNotAllowed, "UnknownOperationException", apiError{Message: "Invocations are POST /endpoints/{EndpointName}/invocations, not " + req.Method + "."})
	case header(req, "X-Amzn-Sagemaker-Target-Model") != "":
		validationError(w, http.StatusBadRequest, "Endpoint %s is not a multi-model endpoint; remove TargetModel (%s) from the request.", name, header(req, "X-Amzn-Sagemaker-Target-Model"))
	default:
		return name, async, true
	}
	return "", false, false
}

// notFound answers as SageMaker does for an endpoint that does not exist or serves nothing.
func (r *Runtime) notFound(w http.ResponseWriter, name string) {
	validationError(w, http.StatusBadRequest, "Endpoint %s of account %s not found.", name, r.account)
}

// readRequest reads the body (at most maxBody bytes) into c and fills c.inv from the headers.
func (r *Runtime) readRequest(w http.ResponseWriter, req *http.Request, c *call, limit int64) bool {
	if req.ContentLength > limit {
		tooLarge(w, req.ContentLength, limit)
		return false
	}
	body, err := readBody(c.body[:0], req.Body, req.ContentLength, limit)
	c.body = body
	if err != nil {
		if errors.Is(err, errTooLarge) {
			tooLarge(w, int64(len(body)), limit)
		}
		return false // otherwise the client went away
	}
	inv := &c.inv
	inv.Reset()
	inv.Body = c.body
	inv.ContentType = header(req, "Content-Type")
	inv.Accept = header(req, "Accept")
	inv.CustomAttributes = header(req, "X-Amzn-Sagemaker-Custom-Attributes")
	return true
}

// pickInstance routes by weight (or to the target variant) and returns an acquired instance.
func (r *Runtime) pickInstance(ctx context.Context, w http.ResponseWriter, ep *endpoint, target string) (*instance, int, bool) {
	for attempt := 0; ; attempt++ {
		t := ep.table.Load()
		if t == nil {
			r.notFound(w, ep.name)
			return nil, 0, false
		}
		p := &t.all
		if target != "" {
			if p = t.byName[target]; p == nil {
				validationError(w, http.StatusBadRequest, "Variant %s not found on endpoint %s; its variants are %s.", target, ep.name, strings.Join(t.variants, ", "))
				return nil, 0, false
			}
		}
		set := p.pick()
		if set == nil || attempt == 1000 {
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", apiError{Message: "Endpoint " + ep.name + " has no instance to serve the request."})
			return nil, 0, false
		}
		if len(set.insts) == 0 { // a serverless variant scaled to zero
			inst, err := r.warm(ctx, ep, set.variant)
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", apiError{Message: fmt.Sprintf(
					"Serverless endpoint %s could not start variant %s for the request: %v", ep.name, set.variant.name, err)})
				return nil, 0, false
			}
			if inst != nil {
				return inst, 1, true
			}
			continue
		}
		// An instance taken out of the table is closed after the new table is published, so
		// trying again finds the new table.
		if inst := set.next(); inst.acquire() {
			return inst, len(set.insts), true
		}
	}
}

// invokeChain runs the instance's containers in order (an inference pipeline passes each
// answer on as the next request); on a failure it has answered with SageMaker's error.
// It returns whether it succeeded, how long the containers took (SageMaker's ModelLatency) and
// how long since start the last one answered. Times are offsets from start (time.Since reads
// only the monotonic clock; time.Now reads both clocks).
func (r *Runtime) invokeChain(w http.ResponseWriter, req *http.Request, name string, inst *instance, c *call, start time.Time) (ok bool, modelTime, end time.Duration) {
	inv := &c.inv
	for i, srv := range inst.chain {
		if i > 0 {
			c.alt, inv.Out = inv.Out, c.alt[:0]
			inv.Body = c.alt
			inv.ContentType = inv.RespContentType
			inv.RespContentType, inv.RespCustomAttributes = "", ""
		}
		if i < len(inst.chain)-1 {
			inv.Accept = "" // intermediate containers answer in their default format
		} else if i > 0 {
			inv.Accept = header(req, "Accept")
		}
		inv.Status = 0
		t0 := time.Since(start)
		err := srv.Invoke(req.Context(), inv)
		end = time.Since(start)
		modelTime += end - t0
		if err != nil {
			r.invokeFailed(w, req, name, inst, srv, err)
			return false, modelTime, end
		}
		if inv.Status < 200 || inv.Status > 299 {
			r.log.Debug("model error", "endpoint", name, "variant", inst.variant.name, "status", inv.Status)
			modelError(w, inst.variant.name, inv.Status, inv.Out, srv.LogPath())
			return false, modelTime, end
		}
	}
	return true, modelTime, end
}

// invokeFailed answers for a model server that gave no answer.
func (r *Runtime) invokeFailed(w http.ResponseWriter, req *http.Request, name string, inst *instance, srv serving.Instance, err error) {
	switch {
	case req.Context().Err() != nil: // the client went away
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, 424, "ModelError", apiError{Message: "Your invocation timed out while waiting for a response from the model server of variant " + inst.variant.name + "."})
	default:
		r.log.Warn("model server did not answer", "endpoint", name, "variant", inst.variant.name,
			"instance", inst.id, "error", err, "log", srv.LogPath())
		unreachableModel(w, inst.variant.name, err, srv.LogPath())
	}
}

// writeAnswer writes the last container's answer of variant v with SageMaker's response
// headers. Header values are shared read-only slices where they repeat (the variant's name,
// its model's content type, small lengths), so that a one-row answer allocates nothing.
func (r *Runtime) writeAnswer(w http.ResponseWriter, inv *serving.Invocation, v *variant) {
	h := w.Header()
	if inv.RespContentType != "" {
		h["Content-Type"] = v.contentType(inv.RespContentType)
	} else {
		h["Content-Type"] = nil // no sniffing: the model said nothing
	}
	h["X-Amzn-Invoked-Production-Variant"] = v.header
	if inv.RespCustomAttributes != "" {
		h["X-Amzn-Sagemaker-Custom-Attributes"] = []string{inv.RespCustomAttributes}
	}
	if inv.Status == http.StatusNoContent {
		w.WriteHeader(inv.Status)
		return
	}
	h["Content-Length"] = r.contentLength(len(inv.Out))
	w.WriteHeader(inv.Status)
	w.Write(inv.Out)
}

// contentLength is the Content-Length header value for n bytes.
func (r *Runtime) contentLength(n int) []string {
	if n < len(r.lengths) {
		return r.lengths[n]
	}
	return []string{strconv.Itoa(n)}
}

// contentType is the Content-Type header value ct, kept from the variant's last answer: a
// model answers in one type or two, and the slice is shared read-only between answers.
func (v *variant) contentType(ct string) []string {
	if last := v.ctype.Load(); last != nil && (*last)[0] == ct {
		return *last
	}
	val := []string{ct}
	v.ctype.Store(&val)
	return val
}

// header is req.Header.Get(key) for a key in canonical form. Header.Get canonicalises its key
// on every call, which on the invocation path costs more than the lookup itself.
func header(req *http.Request, key string) string {
	if v := req.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// tooLarge refuses a body over the limit as SageMaker's runtime does (413, "HTTP content length
// exceeded N bytes."), and says what to do.
func tooLarge(w http.ResponseWriter, n, limit int64) {
	validationError(w, http.StatusRequestEntityTooLarge,
		"HTTP content length exceeded %d bytes. The request body has %d bytes, over the %d-byte limit for invocations; send fewer rows per request.", limit, n, limit)
}

func (r *Runtime) putCall(c *call) {
	if cap(c.body) > pooledBufferLimit || cap(c.alt) > pooledBufferLimit || cap(c.inv.Out) > pooledBufferLimit {
		return
	}
	c.inv.Body = nil
	r.calls.Put(c)
}

var errTooLarge = errors.New("request body too large")

// readBody reads a request body into dst's storage, refusing more than limit bytes.
func readBody(dst []byte, body io.Reader, size, limit int64) ([]byte, error) {
	if size >= 0 {
		if int64(cap(dst)) < size {
			dst = make([]byte, 0, size)
		}
		dst = dst[:size]
		_, err := io.ReadFull(body, dst)
		return dst, err
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := body.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return dst, errTooLarge
		}
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
