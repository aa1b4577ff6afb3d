package cloudwatch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Alarm states, as the API names them.
const (
	StateOK               = "OK"
	StateAlarm            = "ALARM"
	StateInsufficientData = "INSUFFICIENT_DATA"
)

// MetricAlarm is an alarm on one metric: what PutMetricAlarm asked for and its state, in the
// shape DescribeAlarms answers with (and stored as JSON).
type MetricAlarm struct {
	AlarmName                          string
	AlarmArn                           string
	AlarmDescription                   string
	AlarmConfigurationUpdatedTimestamp time.Time
	ActionsEnabled                     bool
	OKActions                          []string
	AlarmActions                       []string
	InsufficientDataActions            []string
	StateValue                         string
	StateReason                        string
	StateReasonData                    string
	StateUpdatedTimestamp              time.Time
	StateTransitionedTimestamp         time.Time
	MetricName                         string
	Namespace                          string
	Statistic                          string
	ExtendedStatistic                  string
	Dimensions                         []Dimension
	Period                             int64
	Unit                               string
	EvaluationPeriods                  int64
	DatapointsToAlarm                  int64
	Threshold                          float64
	ComparisonOperator                 string
	TreatMissingData                   string
}

// StateChange is an alarm's move from one state to another.
type StateChange struct {
	AlarmName string
	OldState  string
	NewState  string
	Reason    string
	Time      time.Time
}

var comparisons = map[string]struct {
	words  string
	breach func(v, threshold float64) bool
}{
	"GreaterThanOrEqualToThreshold": {"greater than or equal to", func(v, t float64) bool { return v >= t }},
	"GreaterThanThreshold":          {"greater than", func(v, t float64) bool { return v > t }},
	"LessThanThreshold":             {"less than", func(v, t float64) bool { return v < t }},
	"LessThanOrEqualToThreshold":    {"less than or equal to", func(v, t float64) bool { return v <= t }},
}

var missingTreatments = []string{"missing", "notBreaching", "breaching", "ignore"}

// datapoint is one evaluated period: its start and value, or missing.
type datapoint struct {
	start   time.Time
	value   float64
	present bool
}

// verdict is what an evaluation concluded.
type verdict struct {
	state  string
	reason string
	data   string
}

// evaluate decides an alarm's state from its most recent periods, newest first.
func (a *MetricAlarm) evaluate(points []datapoint, now time.Time) (verdict, bool) {
	op := comparisons[a.ComparisonOperator]
	treat := cmp.Or(a.TreatMissingData, "missing")
	var present []datapoint
	breaching := 0
	for _, p := range points {
		switch {
		case p.present:
			present = append(present, p)
			if op.breach(p.value, a.Threshold) {
				breaching++
			}
		case treat == "breaching":
			breaching++
		}
	}
	v := verdict{data: a.reasonData(present, now)}
	switch {
	case int64(breaching) >= a.DatapointsToAlarm:
		v.state = StateAlarm
		v.reason = fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints %s %s %s the threshold (%s) (minimum %d datapoint%s for OK -> ALARM transition).",
			breaching, len(points), formatPoints(present), were(len(present)), op.words, formatValue(a.Threshold), a.DatapointsToAlarm, plural(a.DatapointsToAlarm))
		if treat == "breaching" && len(present) < len(points) {
			v.reason += fmt.Sprintf(" %d missing datapoint%s treated as breaching.", len(points)-len(present), plural(int64(len(points)-len(present))))
		}
	case len(present) == 0 && treat == "ignore":
		return v, false
	case len(present) == 0 && treat == "missing":
		v.state = StateInsufficientData
		v.reason = fmt.Sprintf("Insufficient Data: %d datapoint%s were unknown.", len(points), plural(int64(len(points))))
	default:
		v.state = StateOK
		v.reason = fmt.Sprintf("Threshold Crossed: %d datapoint%s %s %s not %s the threshold (%s).",
			len(present), plural(int64(len(present))), formatPoints(present), were(len(present)), op.words, formatValue(a.Threshold))
		if len(present) == 0 {
			v.reason = fmt.Sprintf("Threshold Crossed: no datapoints were received for %d period%s and %d missing datapoint%s were treated as [NonBreaching].",
				len(points), plural(int64(len(points))), len(points), plural(int64(len(points))))
		}
	}
	return v, true
}

func (a *MetricAlarm) reasonData(present []datapoint, now time.Time) string {
	recent := make([]float64, 0, len(present))
	for _, p := range present {
		recent = append(recent, p.value)
	}
	b, _ := json.Marshal(map[string]any{
		"version": "1.0", "queryDate": now.UTC().Format("2006-01-02T15:04:05.000+0000"),
		"statistic": cmp.Or(a.Statistic, a.ExtendedStatistic), "period": a.Period, "recentDatapoints": recent, "threshold": a.Threshold,
	})
	return string(b)
}

func formatPoints(ps []datapoint) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s (%s)", formatValue(p.value), p.start.UTC().Format("02/01/06 15:04:05")))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func were(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Evaluate evaluates every alarm at the clock's current time, records transitions and tells
// subscribers about them. The background loop calls it every EvaluationInterval; tests with their
// own clock call it after moving the clock.
func (s *Service) Evaluate(ctx context.Context) error {
	s.rec.flushAll()
	now := s.opts.Now()
	s.metrics.pruneOld(now)
	s.mu.Lock()
	var changes []StateChange
	var changed []*MetricAlarm
	for _, name := range s.alarmNames() {
		a := s.alarms[name]
		v, ok := a.evaluate(s.alarmPoints(a, now), now)
		if !ok {
			continue
		}
		if v.state == a.StateValue {
			continue
		}
		a.StateReasonData = v.data
		changes = append(changes, s.transition(a, v.state, v.reason, now))
		changed = append(changed, a)
	}
	err := s.saveAlarms(ctx, changed...)
	s.mu.Unlock()
	s.notify(changes)
	return err
}

// alarmPoints reads an alarm's evaluation range: its last EvaluationPeriods complete periods,
// newest first.
func (s *Service) alarmPoints(a *MetricAlarm, now time.Time) []datapoint {
	period := a.Period
	end := floorDiv(s.metrics.index(now), period) * period
	from := s.metrics.timeOf(end - a.EvaluationPeriods*period)
	got := s.metrics.periods(a.Namespace, a.MetricName, a.Dimensions, from, s.metrics.timeOf(end), period)
	out := make([]datapoint, 0, a.EvaluationPeriods)
	for k := int64(1); k <= a.EvaluationPeriods; k++ {
		start := s.metrics.timeOf(end - k*period)
		dp := datapoint{start: start}
		for _, g := range got {
			if g.start.Equal(start) {
				dp.value, dp.present = g.stat(cmp.Or(a.Statistic, a.ExtendedStatistic))
			}
		}
		out = append(out, dp)
	}
	return out
}

// transition moves an alarm to a state; s.mu must be held.
func (s *Service) transition(a *MetricAlarm, state, reason string, now time.Time) StateChange {
	ch := StateChange{AlarmName: a.AlarmName, OldState: a.StateValue, NewState: state, Reason: reason, Time: now}
	a.StateValue, a.StateReason = state, reason
	a.StateUpdatedTimestamp = now.UTC().Truncate(time.Millisecond)
	a.StateTransitionedTimestamp = a.StateUpdatedTimestamp
	s.log.Info("alarm state changed", "alarm", a.AlarmName, "from", ch.OldState, "to", state, "reason", reason)
	return ch
}

// alarmNames lists alarms in name order; s.mu must be held.
func (s *Service) alarmNames() []string {
	names := make([]string, 0, len(s.alarms))
	for n := range s.alarms {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Subscribe calls fn with every alarm state change from now on, in order, outside any lock of
// the service; fn must not block for long. The returned function stops the calls.
func (s *Service) Subscribe(fn func(StateChange)) (cancel func()) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.nextSub++
	id := s.nextSub
	s.subs[id] = fn
	return func() {
		s.subMu.Lock()
		delete(s.subs, id)
		s.subMu.Unlock()
	}
}

func (s *Service) notify(changes []StateChange) {
	if len(changes) == 0 {
		return
	}
	// One notifier at a time keeps changes in order for every subscriber.
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.subMu.Lock()
	fns := make([]func(StateChange), 0, len(s.subs))
	for _, fn := range s.subs {
		fns = append(fns, fn)
	}
	s.subMu.Unlock()
	for _, ch := range changes {
		for _, fn := range fns {
			fn(ch)
		}
	}
}

// Alarm returns a copy of an alarm, to ask "is alarm X in ALARM now?".
func (s *Service) Alarm(name string) (MetricAlarm, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alarms[name]
	if !ok {
		return MetricAlarm{}, false
	}
	return *a, true
}

const kindAlarm = "alarm"

// saveAlarms persists alarms; s.mu must be held.
func (s *Service) saveAlarms(ctx context.Context, alarms ...*MetricAlarm) error {
	for _, a := range alarms {
		body, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("save alarm %s: %w", a.AlarmName, err)
		}
		if err := s.docs.Put(ctx, kindAlarm, a.AlarmName, body); err != nil {
			return err
		}
	}
	return nil
}
