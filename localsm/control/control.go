// Package control is the local SageMaker's control plane: the SageMaker API (AWS JSON 1.1) for
// models, endpoint configurations, endpoints, the model registry and tags, with AWS's validation,
// errors, ARNs, pagination and endpoint lifecycle, persisted in a Store and deployed through a
// spec.Serving.
//
// One account, one namespace per region, as in AWS: a request works on the region its SigV4
// credential scope names (DefaultRegion when unsigned), so a model created through eu-west-1 is
// neither listed in us-east-1 nor blocks the same name there, and ARNs carry that region.
package control

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Options configure a Control.
type Options struct {
	// Store persists resources; required.
	Store Store
	// Serving runs what endpoints serve; required.
	Serving spec.Serving
	// Account is the account id in ARNs; default "000000000000".
	Account string
	// DefaultRegion is used when a request carries no SigV4 credential scope; default "us-east-1".
	DefaultRegion string
	// RollbackHold is how long a failed UpdateEndpointWeightsAndCapacities shows RollingBack
	// before the endpoint is back InService with its previous weights and counts; default one
	// second.
	RollbackHold time.Duration
	// Alarms is CloudWatch, for deployment guardrails (AutoRollbackConfiguration); nil disables them.
	Alarms AlarmWatcher
	// TimeScale shortens the waits of deployment strategies (bakes, termination waits) as
	// CloudWatch's PeriodScale shortens its periods; default 1.
	TimeScale float64
	// EndpointQuota, when set, is the account's endpoint quota of an instance type, in
	// instances: CreateEndpoint and UpdateEndpoint refuse a fleet past it (ResourceLimitExceeded),
	// as SageMaker does, counting every endpoint of the region.
	EndpointQuota func(instanceType string) float64
	// MaxRequestBytes bounds a control-plane request body; default 2 MiB.
	MaxRequestBytes int64
	Logger          *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Control serves the SageMaker control-plane API.
type Control struct {
	opts  Options
	model *serviceModel
	log   *slog.Logger
	ops   map[string]operation

	mu  sync.Mutex
	st  *state
	seq int64 // orders resources created within the same clock tick

	// Background endpoint jobs: ctx is cancelled by Close; jobs tracks them; active is the job in
	// flight per endpoint, so that DeleteEndpoint can stop a deploy.
	ctx    context.Context
	cancel context.CancelFunc
	jobs   sync.WaitGroup
	active map[string]*job
	closed bool
	// stages is the latest blue/green stage the serving layer reported per endpoint name, shown
	// by DescribeEndpoint while that deployment is pending.
	stages map[string]stageNote
}

// request is one decoded control-plane call.
type request struct {
	op     string
	region string
	input  map[string]any
}

// key is the key of a model, configuration or endpoint named name in the request's region.
func (r *request) key(name string) string { return scoped(r.region, nameKey(name)) }

type operation func(ctx context.Context, r *request) (any, error)

// New loads the stored state and returns a Control. Call Restore to make endpoints serve again.
func New(ctx context.Context, opts Options) (*Control, error) {
	if opts.Store == nil || opts.Serving == nil {
		return nil, errors.New("control: Store and Serving are required")
	}
	opts.Account = cmp.Or(opts.Account, "000000000000")
	opts.DefaultRegion = cmp.Or(opts.DefaultRegion, "us-east-1")
	opts.RollbackHold = cmp.Or(opts.RollbackHold, time.Second)
	opts.MaxRequestBytes = cmp.Or(opts.MaxRequestBytes, 2<<20)
	opts.TimeScale = cmp.Or(opts.TimeScale, 1)
	if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(opts.Account) {
		return nil, fmt.Errorf("control: account %q must be 12 digits, as AWS account ids are", opts.Account)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := loadServiceModel()
	if err != nil {
		return nil, err
	}
	st, err := loadState(ctx, opts.Store, opts.DefaultRegion)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Control{opts: opts, model: m, log: opts.Logger, st: st, ctx: bg, cancel: cancel,
		active: map[string]*job{}, stages: map[string]stageNote{}}
	c.seq = st.maxSeq()
	c.ops = map[string]operation{
		"CreateModel":                        c.createModel,
		"DescribeModel":                      c.describeModel,
		"DeleteModel":                        c.deleteModel,
		"ListModels":                         c.listModels,
		"CreateEndpointConfig":               c.createEndpointConfig,
		"DescribeEndpointConfig":             c.describeEndpointConfig,
		"DeleteEndpointConfig":               c.deleteEndpointConfig,
		"ListEndpointConfigs":                c.listEndpointConfigs,
		"CreateEndpoint":                     c.createEndpoint,
		"UpdateEndpoint":                     c.updateEndpoint,
		"UpdateEndpointWeightsAndCapacities": c.updateEndpointWeightsAndCapacities,
		"DescribeEndpoint":                   c.describeEndpoint,
		"ListEndpoints":                      c.listEndpoints,
		"DeleteEndpoint":                     c.deleteEndpoint,
		"CreateModelPackageGroup":            c.createModelPackageGroup,
		"DescribeModelPackageGroup":          c.describeModelPackageGroup,
		"ListModelPackageGroups":             c.listModelPackageGroups,
		"CreateModelPackage":                 c.createModelPackage,
		"DescribeModelPackage":               c.describeModelPackage,
		"ListModelPackages":                  c.listModelPackages,
		"UpdateModelPackage":                 c.updateModelPackage,
		"AddTags":                            c.addTags,
		"ListTags":                           c.listTags,
		"DeleteTags":                         c.deleteTags,
	}
	for name := range c.ops {
		if _, ok := m.Operations[name]; !ok {
			return nil, fmt.Errorf("control: operation %s missing from the service model", name)
		}
	}
	return c, nil
}

// TargetPrefix is the X-Amz-Target prefix of SageMaker control-plane calls.
const TargetPrefix = "SageMaker."

// ServeHTTP answers one AWS JSON 1.1 call (POST /, X-Amz-Target: SageMaker.<Operation>).
func (c *Control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Every AWS answer carries a request id; SDKs report it with errors.
	w.Header().Set("X-Amzn-RequestId", uuid.NewString())
	target := r.Header.Get("X-Amz-Target")
	op := strings.TrimPrefix(target, TargetPrefix)
	out, resource, err := c.serve(r, op)
	attrs := []any{"op", op}
	if resource != "" {
		attrs = append(attrs, "resource", resource)
	}
	if err != nil {
		ae := writeError(w, err)
		attrs = append(attrs, "outcome", ae.Code, "error", ae.Message, "duration", time.Since(start))
		level := slog.LevelInfo
		if ae.Status >= 500 {
			level = slog.LevelError
		}
		c.log.Log(r.Context(), level, "sagemaker call", attrs...)
		return
	}
	if out == nil {
		out = struct{}{}
	}
	writeJSON(w, http.StatusOK, out)
	c.log.Info("sagemaker call", append(attrs, "outcome", "ok", "duration", time.Since(start))...)
}

func (c *Control) serve(r *http.Request, op string) (out any, resource string, err error) {
	defer func() {
		// A bug in one operation must not take the server down; the client gets a 500.
		if p := recover(); p != nil {
			c.log.Error("panic in control plane", "op", op, "panic", p)
			out, err = nil, errInternal(fmt.Errorf("internal error in %s", op))
		}
	}()
	if r.Method != http.MethodPost {
		return nil, "", apiErr(http.StatusBadRequest, "UnknownOperationException", "SageMaker operations are called with POST /, not %s", r.Method)
	}
	handler, ok := c.ops[op]
	if !ok {
		if contains(c.model.AllOperations, op) {
			return nil, "", apiErr(http.StatusBadRequest, "UnknownOperationException",
				"SageMaker.%s is a SageMaker operation that sagedeploy local does not implement; it serves models, endpoint configurations, endpoints, the model registry and tags", op)
		}
		return nil, "", apiErr(http.StatusBadRequest, "UnknownOperationException", "Unknown operation %q", r.Header.Get("X-Amz-Target"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, c.opts.MaxRequestBytes+1))
	if err != nil {
		return nil, "", errSerialization("Could not read the request body: %v", err)
	}
	if int64(len(body)) > c.opts.MaxRequestBytes {
		return nil, "", apiErr(http.StatusRequestEntityTooLarge, "SerializationException", "Request body is larger than %d bytes", c.opts.MaxRequestBytes)
	}
	in, err := c.model.decodeInput(op, body)
	if err != nil {
		return nil, "", err
	}
	resource = resourceOf(in)
	req := &request{op: op, region: SigningRegion(r, c.opts.DefaultRegion), input: in}
	out, err = handler(r.Context(), req)
	return out, resource, err
}

// resourceOf picks the name a call is about, for the log.
func resourceOf(in map[string]any) string {
	for _, k := range []string{"EndpointName", "EndpointConfigName", "ModelName", "ModelPackageGroupName",
		"ModelPackageName", "ModelPackageArn", "ResourceArn"} {
		if s, ok := in[k].(string); ok {
			return s
		}
	}
	return ""
}

var credentialScope = regexp.MustCompile(`Credential=[^/,\s]+/[0-9]{8}/([a-z0-9-]+)/`)

// SigningRegion is the region a SigV4-signed request was signed for, from its Authorization
// header's credential scope (or a presigned URL's X-Amz-Credential); def when unsigned.
func SigningRegion(r *http.Request, def string) string {
	if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1]
	}
	if cred := r.URL.Query().Get("X-Amz-Credential"); cred != "" {
		if parts := strings.Split(cred, "/"); len(parts) >= 3 && parts[2] != "" {
			return parts[2]
		}
	}
	return def
}

// bind turns a validated input document into an operation's Go input type.
func bind(in map[string]any, v any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return errSerialization("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return errSerialization("%v", err)
	}
	return nil
}

// Close stops background deploys and waits for them. It does not stop the serving layer or
// close the store; their owner does.
func (c *Control) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	done := make(chan struct{})
	go func() { c.jobs.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("control: background deploys still running: %w", ctx.Err())
	}
}

// now is the current time at millisecond precision, the precision the API reports.
func (c *Control) now() time.Time { return c.opts.Now().UTC().Truncate(time.Millisecond) }

func (c *Control) arn(region, resourceType, name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/%s", region, c.opts.Account, resourceType, name)
}
