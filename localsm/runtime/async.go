package runtime

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Async inference (InvokeEndpointAsync): the request names its payload in S3; the runtime
// answers 202 at once with where the result will be, runs the invocation in the background
// through the same routing as InvokeEndpoint, and writes the answer (or the error) to S3.

const (
	// defaultAsyncPerInstance is SageMaker's default MaxConcurrentInvocationsPerInstance.
	defaultAsyncPerInstance = 4
	// asyncMaxBody is SageMaker's limit on an async payload: 1 GB, not the 6 MiB of InvokeEndpoint.
	asyncMaxBody = 1 << 30
)

// asyncQueue is an endpoint's AsyncInferenceConfig and the slots its invocations wait for:
// MaxConcurrentInvocationsPerInstance for each instance serving.
type asyncQueue struct {
	cfg   *spec.Async
	slots chan struct{}
}

func newAsyncQueue(cfg *spec.Async, f *fleet) *asyncQueue {
	if cfg == nil {
		return nil
	}
	per := cmp.Or(cfg.MaxConcurrentInvocationsPerInstance, defaultAsyncPerInstance)
	return &asyncQueue{cfg: cfg, slots: make(chan struct{}, per*max(f.instanceCount(), 1))}
}

// AsyncBacklog is how many async invocations an endpoint has accepted and not finished, the
// figure CloudWatch reports as ApproximateBacklogSize; ok is false for an endpoint that is not
// asynchronous.
func (r *Runtime) AsyncBacklog(endpoint spec.EndpointID) (n int, ok bool) {
	ep := r.lookup(r.key(endpoint))
	if ep == nil {
		return 0, false
	}
	if ep.async.Load() == nil {
		return 0, false
	}
	return int(ep.backlog.Load()), true
}

// asyncJob is one accepted async invocation.
type asyncJob struct {
	ep          *endpoint
	q           *asyncQueue
	id          string
	input       string
	output      string
	failure     string // where the error goes
	contentType string
	accept      string
	attributes  string
}

// serveAsync accepts an InvokeEndpointAsync call: 202 with the output and failure locations in
// headers and the InferenceId in the body, as SageMaker answers.
func (r *Runtime) serveAsync(w http.ResponseWriter, req *http.Request, ep *endpoint) {
	q := ep.async.Load()
	if q == nil || r.opts.Objects == nil {
		validationError(w, http.StatusBadRequest, "Endpoint %s is not an asynchronous endpoint: its endpoint configuration has no AsyncInferenceConfig. Call InvokeEndpoint, or deploy a configuration with AsyncInferenceConfig.OutputConfig.S3OutputPath.", ep.name)
		return
	}
	input := req.Header.Get("X-Amzn-Sagemaker-Inputlocation")
	if !isS3URL(input) {
		validationError(w, http.StatusBadRequest, "InputLocation %q of the async invocation of endpoint %s must be an s3://BUCKET/KEY URL of the request payload.", input, ep.name)
		return
	}
	id := cmp.Or(req.Header.Get("X-Amzn-Sagemaker-Inference-Id"), uuid.NewString())
	j := asyncJob{ep: ep, q: q, id: id, input: input, output: joinS3(q.cfg.S3OutputPath, id+".out"),
		failure:     joinS3(cmp.Or(q.cfg.S3FailurePath, q.cfg.S3OutputPath), id+"-error.out"),
		contentType: req.Header.Get("X-Amzn-Sagemaker-Content-Type"), accept: req.Header.Get("X-Amzn-Sagemaker-Accept"),
		attributes: req.Header.Get("X-Amzn-Sagemaker-Custom-Attributes")}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", apiError{Message: "The local SageMaker runtime is shutting down."})
		return
	}
	r.work.Add(1)
	r.mu.Unlock()
	ep.backlog.Add(1)
	go r.runAsync(j)

	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Amzn-Sagemaker-Outputlocation"] = []string{j.output}
	if q.cfg.S3FailurePath != "" {
		h["X-Amzn-Sagemaker-Failurelocation"] = []string{j.failure}
	}
	body, _ := json.Marshal(map[string]string{"InferenceId": id})
	w.WriteHeader(http.StatusAccepted)
	w.Write(body)
}

// runAsync waits for a slot, reads the payload, invokes and writes the result.
func (r *Runtime) runAsync(j asyncJob) {
	defer r.work.Done()
	defer j.ep.backlog.Add(-1)
	ctx := r.bg
	select {
	case j.q.slots <- struct{}{}:
		defer func() { <-j.q.slots }()
	case <-ctx.Done():
		r.asyncFailed(j, "the local SageMaker shut down before the invocation ran")
		return
	}
	body, err := r.opts.Objects.Get(ctx, j.input)
	if err != nil {
		r.asyncFailed(j, fmt.Sprintf("could not read the input payload %s: %v", j.input, err))
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/endpoints/"+j.ep.name+"/invocations", bytes.NewReader(body))
	if err != nil {
		r.asyncFailed(j, err.Error())
		return
	}
	for k, v := range map[string]string{"Content-Type": j.contentType, "Accept": j.accept,
		"X-Amzn-Sagemaker-Custom-Attributes": j.attributes, "X-Amzn-Sagemaker-Inference-Id": j.id} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	ans := &answer{header: http.Header{}}
	r.invoke(ans, req, j.ep, asyncMaxBody, time.Now())
	switch {
	case ans.status == 0: // nothing answered: the runtime is closing
		r.asyncFailed(j, "the local SageMaker shut down while the invocation ran")
		return
	case ans.status/100 != 2:
		r.asyncFailed(j, strings.TrimSpace(ans.body.String()))
		return
	}
	if err := r.opts.Objects.Put(ctx, j.output, ans.body.Bytes(), ans.header.Get("Content-Type")); err != nil {
		r.log.Error("write async inference output", "endpoint", j.ep.name, "inference_id", j.id, "url", j.output, "error", err)
	}
}

// asyncFailed writes why an async invocation failed to its failure location.
func (r *Runtime) asyncFailed(j asyncJob, reason string) {
	r.log.Info("async invocation failed", "endpoint", j.ep.name, "inference_id", j.id, "reason", reason)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.bg), 30*time.Second)
	defer cancel()
	if err := r.opts.Objects.Put(ctx, j.failure, []byte(reason), "text/plain"); err != nil {
		r.log.Error("write async inference failure", "endpoint", j.ep.name, "inference_id", j.id, "url", j.failure, "error", err)
	}
}

// answer keeps a background invocation's response.
type answer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}

func (a *answer) Write(p []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.body.Write(p)
}

func isS3URL(u string) bool {
	rest, ok := strings.CutPrefix(u, "s3://")
	bucket, key, _ := strings.Cut(rest, "/")
	return ok && bucket != "" && key != ""
}

// joinS3 appends a file name to an s3:// prefix.
func joinS3(prefix, name string) string {
	return strings.TrimRight(prefix, "/") + "/" + name
}
