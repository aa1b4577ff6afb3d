package cloudwatch

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Dimension is a name/value pair that identifies a metric, as in the API.
type Dimension struct {
	Name  string
	Value string
}

// Metric names a metric, as in the API.
type Metric struct {
	Namespace  string
	MetricName string
	Dimensions []Dimension
}

// agg is the statistics of the samples in one bucket: enough to answer SampleCount, Sum,
// Average, Minimum and Maximum over any range of buckets.
type agg struct {
	n, sum, min, max float64
	// sk is the samples' distribution, for percentiles; nil when only pre-aggregated statistic
	// sets were put (CloudWatch has no percentiles for those either).
	sk *sketch
}

// add merges b into a. A sketch is never shared: a takes a copy of b's.
func (a *agg) add(b agg) {
	if b.n == 0 {
		return
	}
	if a.n == 0 {
		*a = b
		a.sk = b.sk.clone()
		return
	}
	if b.sk != nil {
		if a.sk == nil {
			a.sk = &sketch{}
		}
		a.sk.merge(b.sk)
	}
	a.n += b.n
	a.sum += b.sum
	a.min = math.Min(a.min, b.min)
	a.max = math.Max(a.max, b.max)
}

func one(v float64) agg { return agg{n: 1, sum: v, min: v, max: v} }

// sampled is one sample whose distribution is kept, for percentiles.
func sampled(v float64) agg {
	a := one(v)
	a.sk = &sketch{}
	a.sk.addValue(v, 1)
	return a
}

// addSample adds one sample to a, keeping its distribution, without allocating once a has a
// sketch (the serving path).
func (a *agg) addSample(v float64) {
	if a.sk == nil || a.n == 0 {
		a.add(sampled(v))
		return
	}
	a.sk.addValue(v, 1)
	a.n++
	a.sum += v
	a.min = math.Min(a.min, v)
	a.max = math.Max(a.max, v)
}

// stat computes a statistic of an aggregate; ok is false for a name it does not know, or a
// percentile of samples whose distribution was not kept.
func (a agg) stat(name string) (float64, bool) {
	if q, ok := percentile(name); ok {
		if a.sk == nil {
			return 0, false
		}
		return a.sk.quantile(q), true
	}
	switch name {
	case "SampleCount":
		return a.n, true
	case "Sum":
		return a.sum, true
	case "Average":
		return a.sum / a.n, true
	case "Minimum":
		return a.min, true
	case "Maximum":
		return a.max, true
	}
	return 0, false
}

var statistics = []string{"SampleCount", "Average", "Sum", "Minimum", "Maximum"}

// bucket is one unit of time's samples.
type bucket struct {
	idx int64 // time / unit
	agg
}

// series is one metric: a namespace, a name and a set of dimensions.
type series struct {
	ns, name string
	dims     []Dimension // sorted by name
	unit     string
	buckets  []bucket // sorted by idx
}

func (s *series) add(idx int64, a agg) {
	n := len(s.buckets)
	if n > 0 && s.buckets[n-1].idx == idx {
		s.buckets[n-1].add(a)
		return
	}
	if n == 0 || s.buckets[n-1].idx < idx {
		s.buckets = append(s.buckets, bucket{idx, a})
		return
	}
	i := sort.Search(n, func(i int) bool { return s.buckets[i].idx >= idx })
	if s.buckets[i].idx == idx {
		s.buckets[i].add(a)
		return
	}
	s.buckets = slices.Insert(s.buckets, i, bucket{idx, a})
}

// rangeAgg aggregates the buckets with from <= idx < to.
func (s *series) rangeAgg(from, to int64) agg {
	var out agg
	i := sort.Search(len(s.buckets), func(i int) bool { return s.buckets[i].idx >= from })
	for ; i < len(s.buckets) && s.buckets[i].idx < to; i++ {
		out.add(s.buckets[i].agg)
	}
	return out
}

// prune drops buckets before idx.
func (s *series) prune(idx int64) {
	i := sort.Search(len(s.buckets), func(i int) bool { return s.buckets[i].idx >= idx })
	if i > 0 {
		s.buckets = slices.Delete(s.buckets, 0, i)
	}
}

// seriesKey identifies a series: namespace, name and dimensions sorted by name.
func seriesKey(ns, name string, dims []Dimension) string {
	var b strings.Builder
	b.WriteString(ns)
	b.WriteByte(0)
	b.WriteString(name)
	for _, d := range dims {
		b.WriteByte(0)
		b.WriteString(d.Name)
		b.WriteByte('=')
		b.WriteString(d.Value)
	}
	return b.String()
}

func sortedDims(dims []Dimension) []Dimension {
	out := slices.Clone(dims)
	slices.SortFunc(out, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// metricStore holds every series in memory, at a resolution of one unit (a second, scaled).
type metricStore struct {
	unit      time.Duration
	retention time.Duration

	mu        sync.Mutex
	series    map[string]*series
	lastPrune time.Time
}

func newMetricStore(unit, retention time.Duration) *metricStore {
	return &metricStore{unit: unit, retention: retention, series: map[string]*series{}}
}

func (m *metricStore) index(t time.Time) int64 { return t.UnixNano() / int64(m.unit) }

func (m *metricStore) timeOf(idx int64) time.Time { return time.Unix(0, idx*int64(m.unit)).UTC() }

// get returns the series for a metric, creating it; m.mu must be held.
func (m *metricStore) get(ns, name string, dims []Dimension, unit string) *series {
	dims = sortedDims(dims)
	key := seriesKey(ns, name, dims)
	s := m.series[key]
	if s == nil {
		s = &series{ns: ns, name: name, dims: dims, unit: unit}
		m.series[key] = s
	}
	if s.unit == "" {
		s.unit = unit
	}
	return s
}

// find returns an existing series; m.mu must be held.
func (m *metricStore) find(ns, name string, dims []Dimension) *series {
	return m.series[seriesKey(ns, name, sortedDims(dims))]
}

// add records samples at t.
func (m *metricStore) add(ns, name string, dims []Dimension, unit string, t time.Time, a agg) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.get(ns, name, dims, unit).add(m.index(t), a)
}

// pruneOld drops data older than the retention, at most once a minute of the store's time.
func (m *metricStore) pruneOld(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.lastPrune) < time.Minute {
		return
	}
	m.lastPrune = now
	cut := m.index(now.Add(-m.retention))
	for k, s := range m.series {
		s.prune(cut)
		if len(s.buckets) == 0 {
			delete(m.series, k)
		}
	}
}

// point is one period's aggregate.
type point struct {
	start time.Time
	agg
}

// periods aggregates a series over [from, to) in periods of period units, aligned to the
// period; periods without samples are left out.
func (m *metricStore) periods(ns, name string, dims []Dimension, from, to time.Time, period int64) []point {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.find(ns, name, dims)
	if s == nil || period <= 0 {
		return nil
	}
	var out []point
	first := floorDiv(m.index(from), period) * period
	last := m.index(to)
	for p := first; p < last; p += period {
		if a := s.rangeAgg(p, p+period); a.n > 0 {
			out = append(out, point{m.timeOf(p), a})
		}
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// metricInfo names a series, for ListMetrics.
type metricInfo struct {
	ns, name   string
	dims       []Dimension
	lastSample time.Time
}

func (m *metricStore) list() []metricInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]metricInfo, 0, len(m.series))
	for _, s := range m.series {
		var last time.Time
		if n := len(s.buckets); n > 0 {
			last = m.timeOf(s.buckets[n-1].idx)
		}
		out = append(out, metricInfo{s.ns, s.name, s.dims, last})
	}
	slices.SortFunc(out, func(a, b metricInfo) int {
		return strings.Compare(seriesKey(a.ns, a.name, a.dims), seriesKey(b.ns, b.name, b.dims))
	})
	return out
}

// LatestPeriod is a statistic of a metric over its most recent complete period of period
// (scaled) seconds; ok is false when the period has no samples.
func (s *Service) LatestPeriod(m Metric, period int64, stat string) (value float64, ok bool) {
	s.rec.flushAll()
	now := s.opts.Now()
	end := floorDiv(s.metrics.index(now), period) * period
	pts := s.metrics.periods(m.Namespace, m.MetricName, m.Dimensions, s.metrics.timeOf(end-period), s.metrics.timeOf(end), period)
	if len(pts) == 0 {
		return 0, false
	}
	return pts[0].stat(stat)
}
