package cloudwatch

import (
	"maps"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// SageMakerNamespace is where the runtime's endpoint metrics go, as on AWS.
const SageMakerNamespace = "AWS/SageMaker"

// Endpoint metric names, per EndpointName and VariantName.
const (
	MetricInvocations            = "Invocations"
	MetricInvocation4XXErrors    = "Invocation4XXErrors"
	MetricInvocation5XXErrors    = "Invocation5XXErrors"
	MetricModelLatency           = "ModelLatency"
	MetricOverheadLatency        = "OverheadLatency"
	MetricInvocationsPerInstance = "InvocationsPerInstance"
)

// variantKey names one endpoint variant without allocating on lookup.
type variantKey struct{ endpoint, variant string }

// variantAcc accumulates one variant's invocations of the current time unit. The serving path
// only takes this variant's short mutex; the unit's totals move into the metric store when the
// unit changes or when someone reads metrics.
type variantAcc struct {
	mu       sync.Mutex
	idx      int64
	pending  bool
	inv      agg
	err4     agg
	err5     agg
	model    agg
	overhead agg
	perInst  agg
	series   [6]*series // in the order of flush's metrics, created on first flush
	endpoint string
	variant  string
}

// recorder turns invocations into metrics.
type recorder struct {
	store *metricStore
	now   func() time.Time // nil: the real clock

	mu   sync.Mutex                         // serialises adding variants
	accs atomicMap[variantKey, *variantAcc] // read lock-free on the serving path
}

var _ spec.MetricsSink = (*Service)(nil)

// Invocation implements spec.MetricsSink.
func (s *Service) Invocation(inv spec.Invocation) { s.rec.record(inv) }

func (r *recorder) record(inv spec.Invocation) {
	acc := r.acc(inv.Endpoint, inv.Variant)
	// With the real clock, the request's arrival is the metric's time and spares a clock read
	// on the serving path; a test's clock is read instead.
	at := inv.Start
	if r.now != nil || at.IsZero() {
		at = r.nowOrReal()
	}
	idx := r.store.index(at)
	e4, e5 := 0.0, 0.0
	switch {
	case inv.Status >= 400 && inv.Status < 500:
		e4 = 1
	case inv.Status == 0 || inv.Status >= 500:
		e5 = 1
	}
	model := float64(inv.ModelLatency.Microseconds())
	overhead := float64(max(inv.Total-inv.ModelLatency, 0).Microseconds())
	perInst := 1.0
	if inv.Instances > 1 {
		perInst = 1 / float64(inv.Instances)
	}
	acc.mu.Lock()
	if acc.pending && acc.idx != idx {
		r.flushLocked(acc)
	}
	acc.idx, acc.pending = idx, true
	acc.inv.add(one(1))
	acc.err4.add(one(e4))
	acc.err5.add(one(e5))
	acc.perInst.add(one(perInst))
	if inv.Status != 0 {
		acc.model.addSample(model)
	}
	acc.overhead.addSample(overhead)
	acc.mu.Unlock()
}

func (r *recorder) nowOrReal() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

func (r *recorder) acc(endpoint, variant string) *variantAcc {
	k := variantKey{endpoint, variant}
	if a, ok := r.accs.load()[k]; ok {
		return a
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.accs.load()
	if a, ok := m[k]; ok {
		return a
	}
	a := &variantAcc{endpoint: endpoint, variant: variant}
	m = maps.Clone(m)
	m[k] = a
	r.accs.store(m)
	return a
}

// flushLocked moves an accumulator's unit into the store; acc.mu must be held.
func (r *recorder) flushLocked(acc *variantAcc) {
	if !acc.pending {
		return
	}
	aggs := [6]*agg{&acc.inv, &acc.err4, &acc.err5, &acc.model, &acc.overhead, &acc.perInst}
	st := r.store
	st.mu.Lock()
	if acc.series[0] == nil {
		dims := []Dimension{{"EndpointName", acc.endpoint}, {"VariantName", acc.variant}}
		names := [6]string{MetricInvocations, MetricInvocation4XXErrors, MetricInvocation5XXErrors,
			MetricModelLatency, MetricOverheadLatency, MetricInvocationsPerInstance}
		units := [6]string{"None", "None", "None", "Microseconds", "Microseconds", "None"}
		for i := range names {
			acc.series[i] = st.get(SageMakerNamespace, names[i], dims, units[i])
		}
	}
	for i, a := range aggs {
		acc.series[i].add(acc.idx, *a)
		*a = agg{}
	}
	st.mu.Unlock()
	acc.pending = false
}

// flushAll makes every invocation so far visible to readers.
func (r *recorder) flushAll() {
	for _, acc := range r.accs.load() {
		acc.mu.Lock()
		r.flushLocked(acc)
		acc.mu.Unlock()
	}
}
