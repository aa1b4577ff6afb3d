// Package runtime runs the model servers behind local SageMaker endpoints and answers
// invocations: routing by variant weight across instances, blue/green swaps, live capacity.
package runtime

import (
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
	// MaxBodyBytes bounds an invocation body (SageMaker's limit is 6 MB); 0 means 6 MiB.
	MaxBodyBytes int64
	// HealthTimeout bounds how long a new instance may take to answer GET /ping; 0 means 60s.
	HealthTimeout time.Duration
	Logger        *slog.Logger
	// Metrics receives every answered invocation's figures (CloudWatch); nil records nothing.
	Metrics spec.MetricsSink
}

const (
	defaultMaxBody = 6 << 20
	// drainTimeout bounds how long a stopping instance may take to finish in-flight requests:
	// a little over SageMaker's 60 s invocation limit.
	drainTimeout = 70 * time.Second
	// pooledBufferLimit keeps very large request buffers out of the pool.
	pooledBufferLimit = 1 << 20
)

// Runtime implements spec.Serving and serves POST /endpoints/{name}/invocations.
type Runtime struct {
	opts    Options
	log     *slog.Logger
	store   *serving.Store
	ports   *serving.Ports
	maxBody int64
	tmpDir  string // WorkDir when none was given, removed on Close

	mu        sync.Mutex // serialises changes to endpoints and closed
	closed    bool
	endpoints atomic.Pointer[map[string]*endpoint] // copy on write, read lock-free

	calls sync.Pool // *call
}

var _ spec.Serving = (*Runtime)(nil)

// New returns a Runtime serving nothing yet.
func New(opts Options) (*Runtime, error) {
	r := &Runtime{opts: opts, log: opts.Logger, ports: &serving.Ports{}, maxBody: opts.MaxBodyBytes}
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
	r.endpoints.Store(&map[string]*endpoint{})
	r.calls.New = func() any { return &call{} }
	return r, nil
}

// endpoint is one endpoint's serving state.
type endpoint struct {
	name  string
	table atomic.Pointer[table] // nil while nothing serves
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
}

// variant is one production variant of a fleet. Its fields change only under the endpoint's
// opMu; routing reads the snapshots taken into tables.
type variant struct {
	name      string
	spec      spec.Variant
	weight    float64
	models    []*serving.Model
	instances []*instance
	started   int         // instances ever started, for ids
	replaced  []time.Time // recent replacements of stopped instances
	header    []string    // X-Amzn-Invoked-Production-Variant value, shared read-only
}

func (r *Runtime) lookup(name string) *endpoint {
	return (*r.endpoints.Load())[name]
}

// setEndpoint replaces name's entry (nil deletes it); r.mu must be held.
func (r *Runtime) setEndpoint(name string, ep *endpoint) {
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
func (r *Runtime) beginOp(ctx context.Context, name string, create bool) (*endpoint, context.Context, func(), error) {
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
				return nil, nil, nil, fmt.Errorf("endpoint %s is not serving", name)
			}
			ep = &endpoint{name: name}
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
func (r *Runtime) Variants(endpoint string) ([]spec.VariantState, bool) {
	ep := r.lookup(endpoint)
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
func (r *Runtime) Remove(ctx context.Context, endpoint string) error {
	r.mu.Lock()
	ep := r.lookup(endpoint)
	if ep != nil {
		r.setEndpoint(endpoint, nil)
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
	r.endpoints.Store(&map[string]*endpoint{})
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, ep := range eps {
		wg.Go(func() { r.removeEndpoint(ctx, ep) })
	}
	wg.Wait()
	if r.tmpDir != "" {
		os.RemoveAll(r.tmpDir)
	}
	return nil
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

// logPath is where a process instance's output goes: one directory per endpoint.
func (r *Runtime) logPath(endpoint, config, variant, id string) string {
	return filepath.Join(r.opts.WorkDir, "logs", safeName(endpoint), safeName(config), safeName(variant)+"-"+id+".log")
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

// ServeHTTP answers POST /endpoints/{name}/invocations as SageMaker's runtime does.
func (r *Runtime) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	name, ok := strings.CutPrefix(req.URL.Path, "/endpoints/")
	if ok {
		name, ok = strings.CutSuffix(name, "/invocations")
	}
	if !ok || name == "" || strings.IndexByte(name, '/') >= 0 {
		writeError(w, http.StatusNotFound, "UnknownOperationException", apiError{Message: "No operation at " + req.Method + " " + req.URL.Path + "; invocations are POST /endpoints/{EndpointName}/invocations."})
		return
	}
	if req.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "UnknownOperationException", apiError{Message: "Invocations are POST /endpoints/{EndpointName}/invocations, not " + req.Method + "."})
		return
	}
	ep := r.lookup(name)
	if ep == nil || ep.table.Load() == nil {
		validationError(w, http.StatusBadRequest, "Endpoint %s not found.", name)
		return
	}
	if tm := req.Header.Get("X-Amzn-Sagemaker-Target-Model"); tm != "" {
		validationError(w, http.StatusBadRequest, "Endpoint %s is not a multi-model endpoint; remove TargetModel (%s) from the request.", name, tm)
		return
	}
	if req.ContentLength > r.maxBody {
		r.tooLarge(w, req.ContentLength)
		return
	}

	c := r.calls.Get().(*call)
	defer r.putCall(c)
	body, err := readBody(c.body[:0], req.Body, req.ContentLength, r.maxBody)
	c.body = body
	if err != nil {
		if errors.Is(err, errTooLarge) {
			r.tooLarge(w, int64(len(body)))
			return
		}
		return // the client went away
	}

	target := req.Header.Get("X-Amzn-Sagemaker-Target-Variant")
	var inst *instance
	var instances int
	for attempt := 0; ; attempt++ {
		t := ep.table.Load()
		if t == nil {
			validationError(w, http.StatusBadRequest, "Endpoint %s not found.", name)
			return
		}
		p := &t.all
		if target != "" {
			if p = t.byName[target]; p == nil {
				validationError(w, http.StatusBadRequest, "Variant %s not found on endpoint %s; its variants are %s.", target, name, strings.Join(t.variants, ", "))
				return
			}
		}
		set := p.pick()
		if set == nil || attempt == 1000 {
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", apiError{Message: "Endpoint " + name + " has no instance to serve the request."})
			return
		}
		// An instance taken out of the table is closed after the new table is published, so
		// trying again finds the new table.
		if inst = set.next(); inst.acquire() {
			instances = len(set.insts)
			break
		}
	}
	defer inst.release()

	inv := &c.inv
	inv.Reset()
	inv.Body = c.body
	inv.ContentType = req.Header.Get("Content-Type")
	inv.Accept = req.Header.Get("Accept")
	inv.CustomAttributes = req.Header.Get("X-Amzn-Sagemaker-Custom-Attributes")
	var modelTime time.Duration
	if sink := r.opts.Metrics; sink != nil {
		defer func() {
			if inv.Status == 0 && req.Context().Err() != nil {
				return // the client went away: not the model's failure
			}
			sink.Invocation(spec.Invocation{Start: start, Endpoint: name, Variant: inst.variant.name, Status: inv.Status,
				ModelLatency: modelTime, Total: time.Since(start), Instances: instances})
		}()
	}
	for i, srv := range inst.chain {
		if i > 0 {
			// Inference pipeline: the previous container's answer is this one's request.
			c.alt, inv.Out = inv.Out, c.alt[:0]
			inv.Body = c.alt
			inv.ContentType = inv.RespContentType
			inv.RespContentType, inv.RespCustomAttributes = "", ""
		}
		if i < len(inst.chain)-1 {
			inv.Accept = "" // intermediate containers answer in their default format
		} else if i > 0 {
			inv.Accept = req.Header.Get("Accept")
		}
		inv.Status = 0
		t0 := time.Now()
		err := srv.Invoke(req.Context(), inv)
		modelTime += time.Since(t0)
		if err != nil {
			if req.Context().Err() != nil {
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				writeError(w, 424, "ModelError", apiError{Message: "Your invocation timed out while waiting for a response from the model server of variant " + inst.variant.name + "."})
				return
			}
			r.log.Warn("model server did not answer", "endpoint", name, "variant", inst.variant.name,
				"instance", inst.id, "error", err, "log", srv.LogPath())
			unreachableModel(w, inst.variant.name, err, srv.LogPath())
			return
		}
		if inv.Status < 200 || inv.Status > 299 {
			r.log.Debug("model error", "endpoint", name, "variant", inst.variant.name, "status", inv.Status)
			modelError(w, inst.variant.name, inv.Status, inv.Out, srv.LogPath())
			return
		}
	}

	h := w.Header()
	if inv.RespContentType != "" {
		h["Content-Type"] = []string{inv.RespContentType}
	} else {
		h["Content-Type"] = nil // no sniffing: the model said nothing
	}
	h["X-Amzn-Invoked-Production-Variant"] = inst.variant.header
	if inv.RespCustomAttributes != "" {
		h["X-Amzn-Sagemaker-Custom-Attributes"] = []string{inv.RespCustomAttributes}
	}
	if inv.Status == http.StatusNoContent {
		w.WriteHeader(inv.Status)
		return
	}
	h["Content-Length"] = []string{strconv.Itoa(len(inv.Out))}
	w.WriteHeader(inv.Status)
	w.Write(inv.Out)
}

func (r *Runtime) tooLarge(w http.ResponseWriter, n int64) {
	validationError(w, http.StatusRequestEntityTooLarge,
		"Request body of %d bytes exceeds the %d-byte limit for invocations; send fewer rows per request.", n, r.maxBody)
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
