package cloudwatch

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StatisticSet is a pre-aggregated set of samples, as PutMetricData takes it.
type StatisticSet struct {
	SampleCount, Sum, Minimum, Maximum float64
}

// MetricDatum is one entry of PutMetricData.
type MetricDatum struct {
	MetricName        string
	Dimensions        []Dimension
	Timestamp         time.Time
	Value             *float64
	StatisticValues   *StatisticSet
	Values            []float64
	Counts            []float64
	Unit              string
	StorageResolution int64
}

type putMetricDataInput struct {
	Namespace  string
	MetricData []MetricDatum
}

func (s *Service) putMetricData(_ context.Context, tree map[string]any) (any, error) {
	var in putMetricDataInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	if in.Namespace == "" {
		return nil, errMissing("Namespace")
	}
	if strings.HasPrefix(in.Namespace, "AWS/") {
		return nil, errInvalidValue("The value %s for parameter Namespace is invalid: namespaces starting with AWS/ are reserved for metrics AWS services emit (the local SageMaker writes AWS/SageMaker itself when endpoints are invoked).", in.Namespace)
	}
	if len(in.MetricData) == 0 {
		return nil, errMissing("MetricData")
	}
	now := s.opts.Now()
	for i, d := range in.MetricData {
		a, err := datumAgg(d, i+1)
		if err != nil {
			return nil, err
		}
		t := d.Timestamp
		if t.IsZero() {
			t = now
		}
		s.metrics.add(in.Namespace, d.MetricName, d.Dimensions, d.Unit, t, a)
	}
	return nil, nil
}

// datumAgg turns one datum's value, values or statistic set into an aggregate.
func datumAgg(d MetricDatum, n int) (agg, error) {
	param := "MetricData.member." + strconv.Itoa(n)
	if d.MetricName == "" {
		return agg{}, errMissing(param + ".MetricName")
	}
	given := 0
	for _, set := range []bool{d.Value != nil, d.StatisticValues != nil, d.Values != nil} {
		if set {
			given++
		}
	}
	if given != 1 {
		return agg{}, errCombination("The parameters %s.Value, %s.StatisticValues and %s.Values are mutually exclusive and one of them is required.", param, param, param)
	}
	switch {
	case d.Value != nil:
		return sampled(*d.Value), nil
	case d.StatisticValues != nil:
		st := d.StatisticValues
		if st.SampleCount <= 0 || st.Minimum > st.Maximum {
			return agg{}, errInvalidValue("The parameter %s.StatisticValues must have a positive SampleCount and Minimum <= Maximum.", param)
		}
		return agg{n: st.SampleCount, sum: st.Sum, min: st.Minimum, max: st.Maximum}, nil
	}
	if d.Counts != nil && len(d.Counts) != len(d.Values) {
		return agg{}, errInvalidValue("The parameters %s.Values and %s.Counts must be of the same size.", param, param)
	}
	var a agg
	sk := &sketch{}
	for i, v := range d.Values {
		c := 1.0
		if d.Counts != nil {
			c = d.Counts[i]
		}
		sk.addValue(v, c)
		a.add(agg{n: c, sum: v * c, min: v, max: v})
	}
	a.sk = sk
	return a, nil
}

type getMetricStatisticsInput struct {
	Namespace          string
	MetricName         string
	Dimensions         []Dimension
	StartTime          time.Time
	EndTime            time.Time
	Period             int64
	Statistics         []string
	ExtendedStatistics []string
	Unit               string
}

// Datapoint is one period of GetMetricStatistics.
type Datapoint struct {
	Timestamp   time.Time
	SampleCount *float64
	Average     *float64
	Sum         *float64
	Minimum     *float64
	Maximum     *float64
	Unit        string
	// ExtendedStatistics holds the percentiles asked for, by name ("p99").
	ExtendedStatistics map[string]float64
}

type getMetricStatisticsOutput struct {
	Label      string
	Datapoints []Datapoint
}

func (s *Service) getMetricStatistics(_ context.Context, tree map[string]any) (any, error) {
	var in getMetricStatisticsInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	for name, empty := range map[string]bool{"Namespace": in.Namespace == "", "MetricName": in.MetricName == "",
		"StartTime": in.StartTime.IsZero(), "EndTime": in.EndTime.IsZero(), "Period": in.Period == 0} {
		if empty {
			return nil, errMissing(name)
		}
	}
	for _, st := range in.ExtendedStatistics {
		if _, ok := percentile(st); !ok {
			return nil, errInvalidValue("The value %s for parameter ExtendedStatistics is invalid; percentiles are p0 to p100, such as p99 or p99.9.", st)
		}
	}
	if len(in.Statistics) == 0 && len(in.ExtendedStatistics) == 0 {
		return nil, errCombination("Must specify either Statistics or ExtendedStatistics.")
	}
	for _, st := range in.Statistics {
		if !slices.Contains(statistics, st) {
			return nil, errInvalidValue("The value %s for parameter Statistics is invalid; use SampleCount, Average, Sum, Minimum or Maximum.", st)
		}
	}
	if err := checkPeriod(in.Period, "Period"); err != nil {
		return nil, err
	}
	if !in.StartTime.Before(in.EndTime) {
		return nil, errInvalidValue("The parameter StartTime must be less than the parameter EndTime.")
	}
	s.rec.flushAll()
	unit := s.seriesUnit(in.Namespace, in.MetricName, in.Dimensions)
	out := getMetricStatisticsOutput{Label: in.MetricName, Datapoints: []Datapoint{}}
	for _, p := range s.metrics.periods(in.Namespace, in.MetricName, in.Dimensions, in.StartTime, in.EndTime, in.Period) {
		dp := Datapoint{Timestamp: p.start, Unit: cmp.Or(unit, "None")}
		for _, st := range in.Statistics {
			v, _ := p.stat(st)
			ptr := &v
			switch st {
			case "SampleCount":
				dp.SampleCount = ptr
			case "Average":
				dp.Average = ptr
			case "Sum":
				dp.Sum = ptr
			case "Minimum":
				dp.Minimum = ptr
			case "Maximum":
				dp.Maximum = ptr
			}
		}
		if len(in.ExtendedStatistics) > 0 {
			dp.ExtendedStatistics = map[string]float64{}
			for _, st := range in.ExtendedStatistics {
				if v, ok := p.stat(st); ok {
					dp.ExtendedStatistics[st] = v
				}
			}
		}
		out.Datapoints = append(out.Datapoints, dp)
	}
	return out, nil
}

// checkPeriod applies CloudWatch's rule: 1, 5, 10, 20, 30 or a multiple of 60 seconds.
func checkPeriod(p int64, param string) error {
	if p <= 0 || (p >= 60 && p%60 != 0) || (p < 60 && !slices.Contains([]int64{1, 5, 10, 20, 30}, p)) {
		return errInvalidValue("The parameter %s must be 1, 5, 10, 20, 30 or a multiple of 60 seconds; got %d.", param, p)
	}
	return nil
}

func (s *Service) seriesUnit(ns, name string, dims []Dimension) string {
	s.metrics.mu.Lock()
	defer s.metrics.mu.Unlock()
	if ser := s.metrics.find(ns, name, dims); ser != nil {
		return ser.unit
	}
	return ""
}

type metricStat struct {
	Metric Metric
	Period int64
	Stat   string
	Unit   string
}

type metricDataQuery struct {
	Id         string
	MetricStat *metricStat
	Expression string
	Label      string
	ReturnData *bool
	Period     int64
}

type getMetricDataInput struct {
	MetricDataQueries []metricDataQuery
	StartTime         time.Time
	EndTime           time.Time
	ScanBy            string
	MaxDatapoints     int64
	NextToken         string
}

type metricDataResult struct {
	Id         string
	Label      string
	Timestamps []time.Time
	Values     []float64
	StatusCode string
}

type getMetricDataOutput struct {
	MetricDataResults []metricDataResult
	Messages          []struct{}
}

func (s *Service) getMetricData(_ context.Context, tree map[string]any) (any, error) {
	var in getMetricDataInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	if len(in.MetricDataQueries) == 0 {
		return nil, errMissing("MetricDataQueries")
	}
	if in.StartTime.IsZero() || in.EndTime.IsZero() {
		return nil, errMissing("StartTime and EndTime")
	}
	s.rec.flushAll()
	out := getMetricDataOutput{MetricDataResults: []metricDataResult{}, Messages: []struct{}{}}
	for i, q := range in.MetricDataQueries {
		res, err := s.metricDataResult(q, i+1, in)
		if err != nil {
			return nil, err
		}
		if q.ReturnData == nil || *q.ReturnData {
			out.MetricDataResults = append(out.MetricDataResults, res)
		}
	}
	return out, nil
}

func (s *Service) metricDataResult(q metricDataQuery, n int, in getMetricDataInput) (metricDataResult, error) {
	param := "MetricDataQueries.member." + strconv.Itoa(n)
	if q.Id == "" {
		return metricDataResult{}, errMissing(param + ".Id")
	}
	if q.Expression != "" || q.MetricStat == nil {
		return metricDataResult{}, errInvalidValue("Query %s: sagedeploy local answers MetricStat queries only, not metric math expressions (%q).", q.Id, q.Expression)
	}
	ms := q.MetricStat
	if !validStat(ms.Stat) {
		return metricDataResult{}, errInvalidValue("Query %s: the statistic %q is not one sagedeploy local computes; use SampleCount, Average, Sum, Minimum, Maximum or a percentile such as p99.", q.Id, ms.Stat)
	}
	if err := checkPeriod(ms.Period, param+".MetricStat.Period"); err != nil {
		return metricDataResult{}, err
	}
	res := metricDataResult{Id: q.Id, Label: cmp.Or(q.Label, ms.Metric.MetricName), StatusCode: "Complete",
		Timestamps: []time.Time{}, Values: []float64{}}
	points := s.metrics.periods(ms.Metric.Namespace, ms.Metric.MetricName, ms.Metric.Dimensions, in.StartTime, in.EndTime, ms.Period)
	if in.ScanBy != "TimestampAscending" {
		slices.Reverse(points)
	}
	for _, p := range points {
		v, ok := p.stat(ms.Stat)
		if !ok {
			continue // a percentile of statistic sets: CloudWatch leaves the point out too
		}
		res.Timestamps = append(res.Timestamps, p.start)
		res.Values = append(res.Values, v)
	}
	return res, nil
}

type dimensionFilter struct {
	Name  string
	Value string
}

type listMetricsInput struct {
	Namespace      string
	MetricName     string
	Dimensions     []dimensionFilter
	RecentlyActive string
	NextToken      string
}

type listMetricsOutput struct {
	Metrics []Metric
}

func (s *Service) listMetrics(_ context.Context, tree map[string]any) (any, error) {
	var in listMetricsInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	if in.RecentlyActive != "" && in.RecentlyActive != "PT3H" {
		return nil, errInvalidValue("The value %s for parameter RecentlyActive is invalid; the only value is PT3H.", in.RecentlyActive)
	}
	s.rec.flushAll()
	recent := s.opts.Now().Add(-time.Duration(float64(3*time.Hour) * s.opts.PeriodScale))
	out := listMetricsOutput{Metrics: []Metric{}}
	for _, m := range s.metrics.list() {
		if (in.Namespace != "" && m.ns != in.Namespace) || (in.MetricName != "" && m.name != in.MetricName) ||
			!matchDims(m.dims, in.Dimensions) || (in.RecentlyActive != "" && m.lastSample.Before(recent)) {
			continue
		}
		out.Metrics = append(out.Metrics, Metric{Namespace: m.ns, MetricName: m.name, Dimensions: slices.Clone(m.dims)})
	}
	return out, nil
}

func matchDims(have []Dimension, filters []dimensionFilter) bool {
	for _, f := range filters {
		if !slices.ContainsFunc(have, func(d Dimension) bool { return d.Name == f.Name && (f.Value == "" || d.Value == f.Value) }) {
			return false
		}
	}
	return true
}
