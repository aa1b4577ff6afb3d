// Package autoscaling is the local SageMaker's Application Auto Scaling for endpoint variants:
// scalable targets and target-tracking policies on SageMakerVariantInvocationsPerInstance over
// AWS JSON 1.1 (X-Amz-Target AnyScaleFrontendService.*), and the loop that moves a variant's
// instance count within its bounds from the metric the runtime emits.
package autoscaling

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
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sagedeploy/sagedeploy/localsm/cloudwatch/docstore"
)

// Scaler is what the control plane does for autoscaling: report and change a variant's
// desired instance count (UpdateEndpointWeightsAndCapacities' path).
type Scaler interface {
	// DesiredInstanceCount is the variant's instance count; ok is false when the endpoint or
	// the variant does not exist.
	DesiredInstanceCount(endpoint, variant string) (n int, ok bool)
	SetDesiredInstanceCount(ctx context.Context, endpoint, variant string, n int) error
}

// MetricSource reads the metric a policy tracks.
type MetricSource interface {
	// InvocationsPerInstance is the variant's InvocationsPerInstance Sum over the last complete
	// minute (scaled); ok is false when it had no invocations.
	InvocationsPerInstance(endpoint, variant string) (float64, bool)
}

// Options configure the service.
type Options struct {
	// Store keeps targets and policies across restarts; nil keeps them in memory only.
	Store *docstore.Store
	// Scaler and Metrics drive scaling; with either nil, policies are kept but never act.
	Scaler  Scaler
	Metrics MetricSource
	Account string
	Region  string
	Now     func() time.Time
	// PeriodScale shortens cooldowns and the evaluation interval, as cloudwatch.Options does.
	PeriodScale float64
	// Interval is how often policies are evaluated in the background; default one (scaled)
	// minute; negative turns the background loop off (tests call Evaluate).
	Interval time.Duration
	Logger   *slog.Logger
}

// Service serves the Application Auto Scaling API and scales variants.
type Service struct {
	opts Options
	log  *slog.Logger
	ops  map[string]func(ctx context.Context, body []byte) (any, error)

	mu       sync.Mutex
	targets  map[string]*ScalableTarget // by resource id
	policies map[string]*ScalingPolicy  // by resource id + "/" + policy name
	activity map[string]*activity       // by resource id: last scaling times

	stop chan struct{}
	done chan struct{}
}

// TargetPrefix is the X-Amz-Target prefix of Application Auto Scaling calls.
const TargetPrefix = "AnyScaleFrontendService."

// Claims reports whether a request is an Application Auto Scaling call.
func Claims(r *http.Request, signedFor string) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix) || signedFor == "application-autoscaling"
}

// New loads stored targets and policies and starts the scaling loop.
func New(ctx context.Context, opts Options) (*Service, error) {
	opts.Account = cmp.Or(opts.Account, "000000000000")
	opts.Region = cmp.Or(opts.Region, "us-east-1")
	opts.PeriodScale = cmp.Or(opts.PeriodScale, 1)
	opts.Interval = cmp.Or(opts.Interval, time.Duration(float64(time.Minute)*opts.PeriodScale))
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{opts: opts, log: opts.Logger, targets: map[string]*ScalableTarget{},
		policies: map[string]*ScalingPolicy{}, activity: map[string]*activity{},
		stop: make(chan struct{}), done: make(chan struct{})}
	s.ops = map[string]func(context.Context, []byte) (any, error){
		"RegisterScalableTarget":   s.registerScalableTarget,
		"DeregisterScalableTarget": s.deregisterScalableTarget,
		"DescribeScalableTargets":  s.describeScalableTargets,
		"PutScalingPolicy":         s.putScalingPolicy,
		"DescribeScalingPolicies":  s.describeScalingPolicies,
		"DeleteScalingPolicy":      s.deleteScalingPolicy,
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	go s.loop()
	return s, nil
}

const (
	kindTarget = "scalable-target"
	kindPolicy = "scaling-policy"
)

func (s *Service) load(ctx context.Context) error {
	targets, err := s.opts.Store.Load(ctx, kindTarget)
	if err != nil {
		return fmt.Errorf("autoscaling: %w", err)
	}
	for k, body := range targets {
		var t ScalableTarget
		if err := json.Unmarshal(body, &t); err != nil {
			return fmt.Errorf("autoscaling: stored scalable target %s is unreadable: %w", k, err)
		}
		s.targets[k] = &t
	}
	policies, err := s.opts.Store.Load(ctx, kindPolicy)
	if err != nil {
		return fmt.Errorf("autoscaling: %w", err)
	}
	for k, body := range policies {
		var p ScalingPolicy
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("autoscaling: stored scaling policy %s is unreadable: %w", k, err)
		}
		s.policies[k] = &p
	}
	return nil
}

func (s *Service) save(ctx context.Context, kind, key string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save %s %s: %w", kind, key, err)
	}
	return s.opts.Store.Put(ctx, kind, key, body)
}

// Close stops the scaling loop. It does not close the Store; its owner does.
func (s *Service) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// ServeHTTP answers one AWS JSON 1.1 call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set("X-Amzn-RequestId", uuid.NewString())
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	out, err := s.serve(r, op)
	if err != nil {
		ae := writeError(w, err)
		s.log.Info("application autoscaling call", "op", op, "outcome", ae.Code, "error", ae.Message, "duration", time.Since(start))
		return
	}
	if out == nil {
		out = struct{}{}
	}
	writeJSON(w, http.StatusOK, out)
	s.log.Info("application autoscaling call", "op", op, "outcome", "ok", "duration", time.Since(start))
}

func (s *Service) serve(r *http.Request, op string) (out any, err error) {
	defer func() {
		// A bug in one operation must not take the server down; the client gets a 500.
		if p := recover(); p != nil {
			s.log.Error("panic in application autoscaling", "op", op, "panic", p)
			out, err = nil, apiErr(http.StatusInternalServerError, "InternalServiceException", "internal error in %s", op)
		}
	}()
	handler, ok := s.ops[op]
	if !ok {
		return nil, apiErr(http.StatusBadRequest, "UnknownOperationException",
			"Application Auto Scaling operation %q is not served by sagedeploy local; it serves scalable targets and scaling policies for SageMaker variants.", op)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "SerializationException", "Could not read the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	return handler(r.Context(), body)
}

// decode reads a JSON input.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return apiErr(http.StatusBadRequest, "SerializationException", "The request body does not match the operation's input: %v", err)
	}
	return nil
}

// APIError is an Application Auto Scaling error.
type APIError struct {
	Code    string
	Message string
	Status  int
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

func errValidation(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "ValidationException", format, args...)
}

func errNotFound(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "ObjectNotFoundException", format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"__type":"InternalServiceException","message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	w.Write(body)
}

func writeError(w http.ResponseWriter, err error) *APIError {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = apiErr(http.StatusInternalServerError, "InternalServiceException", "%v", err)
	}
	w.Header().Set("X-Amzn-ErrorType", ae.Code)
	writeJSON(w, ae.Status, map[string]string{"__type": ae.Code, "message": ae.Message})
	return ae
}

// epoch is a timestamp as AWS JSON carries it: seconds since the epoch.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	return json.Marshal(float64(time.Time(t).UnixMilli()) / 1e3)
}

func (t *epoch) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*t = epoch(time.UnixMilli(int64(f * 1e3)).UTC())
	return nil
}
