// Package cloudwatch is the local SageMaker's Amazon CloudWatch: the metrics its runtime emits
// (AWS/SageMaker per endpoint and variant) and those clients put, queried as CloudWatch answers,
// and metric alarms really evaluated on them, whose state changes can be watched (guardrail
// rollbacks). It speaks every protocol CloudWatch clients use: query (AWS CLI v2, boto3), Smithy
// RPC v2 CBOR (AWS SDK for Go v2) and JSON 1.0.
package cloudwatch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sagedeploy/sagedeploy/localsm/cloudwatch/docstore"
)

// Options configure the CloudWatch service.
type Options struct {
	// Store keeps alarms across restarts; nil keeps them in memory only.
	Store *docstore.Store
	// Account and Region name alarms in ARNs; default "000000000000" and "us-east-1".
	Account string
	Region  string
	// Now is the clock metrics are stamped and alarms evaluated with; default time.Now.
	Now func() time.Time
	// PeriodScale shortens time for tests and demos: a period of one second lasts PeriodScale
	// seconds, so an alarm on 60-second periods with PeriodScale 0.05 evaluates 3-second windows.
	// Default 1.
	PeriodScale float64
	// EvaluationInterval is how often alarms are evaluated in the background; default ten
	// (scaled) seconds; negative turns the background evaluation off (tests call Evaluate).
	EvaluationInterval time.Duration
	// Retention bounds how far back metrics are kept in memory; default 24 hours.
	Retention time.Duration
	Logger    *slog.Logger
}

// Service is a running CloudWatch.
type Service struct {
	opts    Options
	log     *slog.Logger
	docs    *docstore.Store
	metrics *metricStore
	rec     *recorder
	ops     map[string]func(ctx context.Context, in map[string]any) (any, error)

	mu     sync.Mutex // guards alarms
	alarms map[string]*MetricAlarm

	subMu    sync.Mutex
	subs     map[int]func(StateChange)
	nextSub  int
	notifyMu sync.Mutex

	stop chan struct{}
	done chan struct{}
}

// New loads the stored alarms and starts evaluating them.
func New(ctx context.Context, opts Options) (*Service, error) {
	opts.Account = cmp.Or(opts.Account, "000000000000")
	opts.Region = cmp.Or(opts.Region, "us-east-1")
	opts.PeriodScale = cmp.Or(opts.PeriodScale, 1)
	opts.Retention = cmp.Or(opts.Retention, 24*time.Hour)
	if opts.PeriodScale < 0 {
		return nil, fmt.Errorf("cloudwatch: PeriodScale %v must be positive", opts.PeriodScale)
	}
	realClock := opts.Now == nil
	if realClock {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	unit := max(time.Duration(float64(time.Second)*opts.PeriodScale), time.Microsecond)
	opts.EvaluationInterval = cmp.Or(opts.EvaluationInterval, 10*unit)
	s := &Service{opts: opts, log: opts.Logger, docs: opts.Store, metrics: newMetricStore(unit, opts.Retention),
		alarms: map[string]*MetricAlarm{}, subs: map[int]func(StateChange){}, stop: make(chan struct{}), done: make(chan struct{})}
	s.rec = &recorder{store: s.metrics}
	if !realClock {
		s.rec.now = opts.Now
	}
	s.rec.accs.store(map[variantKey]*variantAcc{})
	s.registerOps()
	if err := s.loadAlarms(ctx); err != nil {
		return nil, err
	}
	go s.loop()
	return s, nil
}

func (s *Service) loadAlarms(ctx context.Context) error {
	docs, err := s.docs.Load(ctx, kindAlarm)
	if err != nil {
		return fmt.Errorf("cloudwatch: %w", err)
	}
	for name, body := range docs {
		var a MetricAlarm
		if err := json.Unmarshal(body, &a); err != nil {
			return fmt.Errorf("cloudwatch: stored alarm %s is unreadable: %w", name, err)
		}
		s.alarms[name] = &a
	}
	return nil
}

func (s *Service) loop() {
	defer close(s.done)
	if s.opts.EvaluationInterval < 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(s.opts.EvaluationInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Evaluate(context.Background()); err != nil {
				s.log.Warn("alarm evaluation could not save alarm states", "error", err)
			}
		}
	}
}

// Close stops evaluating alarms. It does not close the Store; its owner does.
func (s *Service) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *Service) registerOps() {
	s.ops = map[string]func(context.Context, map[string]any) (any, error){
		"PutMetricData":           s.putMetricData,
		"GetMetricStatistics":     s.getMetricStatistics,
		"GetMetricData":           s.getMetricData,
		"ListMetrics":             s.listMetrics,
		"PutMetricAlarm":          s.putMetricAlarm,
		"DescribeAlarms":          s.describeAlarms,
		"DescribeAlarmsForMetric": s.describeAlarmsForMetric,
		"SetAlarmState":           s.setAlarmState,
		"DeleteAlarms":            s.deleteAlarms,
	}
}

// ServeHTTP answers one CloudWatch call in the protocol it came in.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := uuid.NewString()
	w.Header().Set("X-Amzn-RequestId", requestID)
	proto, op, in, err := decodeRequest(r)
	var out any
	if err == nil {
		out, err = s.call(r.Context(), op, in)
	}
	if err != nil {
		ae := writeFailure(w, proto, requestID, err)
		level := slog.LevelInfo
		if ae.Status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "cloudwatch call", "op", op, "outcome", ae.Code, "error", ae.Message, "duration", time.Since(start))
		return
	}
	writeResult(w, proto, op, requestID, out)
	s.log.Info("cloudwatch call", "op", op, "outcome", "ok", "duration", time.Since(start))
}

func (s *Service) call(ctx context.Context, op string, in map[string]any) (out any, err error) {
	defer func() {
		// A bug in one operation must not take the server down; the client gets a 500.
		if p := recover(); p != nil {
			s.log.Error("panic in cloudwatch", "op", op, "panic", p)
			out, err = nil, apiErr(http.StatusInternalServerError, "InternalServiceError", "internal error in %s", op)
		}
	}()
	handler, ok := s.ops[op]
	if !ok {
		return nil, unknownOperation(op)
	}
	return handler(ctx, in)
}

func reflectValue(v any) reflect.Value { return reflect.ValueOf(v) }

// atomicMap is a copy-on-write map read without locks.
type atomicMap[K comparable, V any] struct{ p atomic.Pointer[map[K]V] }

func (m *atomicMap[K, V]) load() map[K]V { return *m.p.Load() }

func (m *atomicMap[K, V]) store(v map[K]V) { m.p.Store(&v) }
