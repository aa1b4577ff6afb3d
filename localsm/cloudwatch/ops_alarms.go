package cloudwatch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tag is a resource tag.
type Tag struct {
	Key   string
	Value string
}

type putMetricAlarmInput struct {
	AlarmName               string
	AlarmDescription        string
	ActionsEnabled          *bool
	OKActions               []string
	AlarmActions            []string
	InsufficientDataActions []string
	MetricName              string
	Namespace               string
	Statistic               string
	ExtendedStatistic       string
	Dimensions              []Dimension
	Period                  int64
	Unit                    string
	EvaluationPeriods       int64
	DatapointsToAlarm       int64
	Threshold               *float64
	ComparisonOperator      string
	TreatMissingData        string
	Metrics                 []metricDataQuery
	ThresholdMetricId       string
	Tags                    []Tag
}

// check validates an alarm definition as CloudWatch does, in its words.
func (in *putMetricAlarmInput) check() error {
	switch {
	case in.AlarmName == "":
		return errMissing("AlarmName")
	case len(in.AlarmName) > 255:
		return errInvalidValue("The parameter AlarmName must be at most 255 characters long.")
	case in.Metrics != nil || in.ThresholdMetricId != "":
		return errInvalidValue("Alarm %s: sagedeploy local evaluates alarms on one metric (MetricName, Namespace, Statistic, Period), not on metric math (Metrics).", in.AlarmName)
	case in.MetricName == "":
		return errMissing("MetricName")
	case in.Namespace == "":
		return errMissing("Namespace")
	case in.EvaluationPeriods < 1:
		return errInvalidValue("The parameter EvaluationPeriods must be at least 1.")
	case in.DatapointsToAlarm < 0 || in.DatapointsToAlarm > in.EvaluationPeriods:
		return errInvalidValue("Alarm %s: DatapointsToAlarm (%d) must be between 1 and EvaluationPeriods (%d).", in.AlarmName, in.DatapointsToAlarm, in.EvaluationPeriods)
	case in.Threshold == nil:
		return errMissing("Threshold")
	case in.ComparisonOperator == "":
		return errMissing("ComparisonOperator")
	}
	if err := in.checkStatistic(); err != nil {
		return err
	}
	if _, ok := comparisons[in.ComparisonOperator]; !ok {
		return errInvalidValue("The value %s for parameter ComparisonOperator is invalid; use GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold.", in.ComparisonOperator)
	}
	if in.TreatMissingData != "" && !slices.Contains(missingTreatments, in.TreatMissingData) {
		return errInvalidValue("The value %s for parameter TreatMissingData is invalid; use missing, notBreaching, breaching or ignore.", in.TreatMissingData)
	}
	return checkPeriod(in.Period, "Period")
}

// checkStatistic accepts one of Statistic and ExtendedStatistic (a percentile).
func (in *putMetricAlarmInput) checkStatistic() error {
	switch {
	case in.ExtendedStatistic != "" && in.Statistic != "":
		return errCombination("Alarm %s: give Statistic or ExtendedStatistic, not both.", in.AlarmName)
	case in.ExtendedStatistic != "":
		if _, ok := percentile(in.ExtendedStatistic); !ok {
			return errInvalidValue("The value %s for parameter ExtendedStatistic is invalid; percentiles are p0 to p100, such as p99 or p99.9.", in.ExtendedStatistic)
		}
	case in.Statistic == "":
		return errMissing("Statistic")
	case !slices.Contains(statistics, in.Statistic):
		return errInvalidValue("The value %s for parameter Statistic is invalid; use SampleCount, Average, Sum, Minimum or Maximum.", in.Statistic)
	}
	return nil
}

func (s *Service) putMetricAlarm(ctx context.Context, tree map[string]any) (any, error) {
	var in putMetricAlarmInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	a := &MetricAlarm{
		AlarmName: in.AlarmName, AlarmDescription: in.AlarmDescription,
		AlarmArn:                           fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", s.opts.Region, s.opts.Account, in.AlarmName),
		AlarmConfigurationUpdatedTimestamp: now, ActionsEnabled: in.ActionsEnabled == nil || *in.ActionsEnabled,
		OKActions: orEmpty(in.OKActions), AlarmActions: orEmpty(in.AlarmActions), InsufficientDataActions: orEmpty(in.InsufficientDataActions),
		MetricName: in.MetricName, Namespace: in.Namespace, Statistic: in.Statistic, ExtendedStatistic: in.ExtendedStatistic, Dimensions: orEmpty(in.Dimensions),
		Period: in.Period, Unit: in.Unit, EvaluationPeriods: in.EvaluationPeriods,
		DatapointsToAlarm: max(in.DatapointsToAlarm, 0), Threshold: *in.Threshold,
		ComparisonOperator: in.ComparisonOperator, TreatMissingData: in.TreatMissingData,
		StateValue: StateInsufficientData, StateReason: "Unchecked: Initial alarm creation",
		StateUpdatedTimestamp: now, StateTransitionedTimestamp: now,
	}
	if a.DatapointsToAlarm == 0 {
		a.DatapointsToAlarm = a.EvaluationPeriods
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.alarms[a.AlarmName]; ok {
		// Updating an alarm keeps its state until the next evaluation, as CloudWatch does.
		a.StateValue, a.StateReason, a.StateReasonData = old.StateValue, old.StateReason, old.StateReasonData
		a.StateUpdatedTimestamp, a.StateTransitionedTimestamp = old.StateUpdatedTimestamp, old.StateTransitionedTimestamp
	}
	if err := s.saveAlarms(ctx, a); err != nil {
		return nil, apiErr(500, "InternalServiceError", "save alarm %s: %v", a.AlarmName, err)
	}
	s.alarms[a.AlarmName] = a
	return nil, nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type describeAlarmsInput struct {
	AlarmNames      []string
	AlarmNamePrefix string
	AlarmTypes      []string
	StateValue      string
	ActionPrefix    string
	MaxRecords      int64
	NextToken       string
}

type describeAlarmsOutput struct {
	MetricAlarms    []MetricAlarm
	CompositeAlarms []struct{}
	NextToken       string
}

func (s *Service) describeAlarms(_ context.Context, tree map[string]any) (any, error) {
	var in describeAlarmsInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	if in.StateValue != "" && !slices.Contains([]string{StateOK, StateAlarm, StateInsufficientData}, in.StateValue) {
		return nil, errInvalidValue("The value %s for parameter StateValue is invalid; use OK, ALARM or INSUFFICIENT_DATA.", in.StateValue)
	}
	if in.MaxRecords < 0 || in.MaxRecords > 100 {
		return nil, errInvalidValue("The parameter MaxRecords must be between 1 and 100.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := describeAlarmsOutput{MetricAlarms: []MetricAlarm{}, CompositeAlarms: []struct{}{}}
	if len(in.AlarmTypes) > 0 && !slices.Contains(in.AlarmTypes, "MetricAlarm") {
		return out, nil
	}
	limit := int(cmp.Or(in.MaxRecords, 50))
	for _, name := range s.alarmNames() {
		a := s.alarms[name]
		if (len(in.AlarmNames) > 0 && !slices.Contains(in.AlarmNames, name)) || !strings.HasPrefix(name, in.AlarmNamePrefix) ||
			(in.StateValue != "" && a.StateValue != in.StateValue) || (in.NextToken != "" && name <= in.NextToken) ||
			(in.ActionPrefix != "" && !hasActionPrefix(a, in.ActionPrefix)) {
			continue
		}
		if len(out.MetricAlarms) == limit {
			out.NextToken = out.MetricAlarms[limit-1].AlarmName
			break
		}
		out.MetricAlarms = append(out.MetricAlarms, *a)
	}
	return out, nil
}

func hasActionPrefix(a *MetricAlarm, prefix string) bool {
	for _, acts := range [][]string{a.OKActions, a.AlarmActions, a.InsufficientDataActions} {
		if slices.ContainsFunc(acts, func(s string) bool { return strings.HasPrefix(s, prefix) }) {
			return true
		}
	}
	return false
}

type describeAlarmsForMetricInput struct {
	MetricName        string
	Namespace         string
	Statistic         string
	ExtendedStatistic string
	Dimensions        []Dimension
	Period            int64
	Unit              string
}

func (s *Service) describeAlarmsForMetric(_ context.Context, tree map[string]any) (any, error) {
	var in describeAlarmsForMetricInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	if in.MetricName == "" {
		return nil, errMissing("MetricName")
	}
	if in.Namespace == "" {
		return nil, errMissing("Namespace")
	}
	key := seriesKey(in.Namespace, in.MetricName, sortedDims(in.Dimensions))
	s.mu.Lock()
	defer s.mu.Unlock()
	out := describeAlarmsOutput{MetricAlarms: []MetricAlarm{}}
	for _, name := range s.alarmNames() {
		a := s.alarms[name]
		if seriesKey(a.Namespace, a.MetricName, sortedDims(a.Dimensions)) != key ||
			(in.Statistic != "" && a.Statistic != in.Statistic) || (in.Period != 0 && a.Period != in.Period) ||
			(in.Unit != "" && a.Unit != in.Unit) {
			continue
		}
		out.MetricAlarms = append(out.MetricAlarms, *a)
	}
	return struct{ MetricAlarms []MetricAlarm }{out.MetricAlarms}, nil
}

type setAlarmStateInput struct {
	AlarmName       string
	StateValue      string
	StateReason     string
	StateReasonData string
}

func (s *Service) setAlarmState(ctx context.Context, tree map[string]any) (any, error) {
	var in setAlarmStateInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	switch {
	case in.AlarmName == "":
		return nil, errMissing("AlarmName")
	case in.StateReason == "":
		return nil, errMissing("StateReason")
	case !slices.Contains([]string{StateOK, StateAlarm, StateInsufficientData}, in.StateValue):
		return nil, errInvalidValue("The value %s for parameter StateValue is invalid; use OK, ALARM or INSUFFICIENT_DATA.", in.StateValue)
	}
	if in.StateReasonData != "" && !jsonValid(in.StateReasonData) {
		return nil, apiErr(400, "InvalidFormat", "The parameter StateReasonData is not valid JSON.")
	}
	s.mu.Lock()
	a, ok := s.alarms[in.AlarmName]
	if !ok {
		s.mu.Unlock()
		return nil, errNotFound("Alarm %s not found", in.AlarmName)
	}
	var changes []StateChange
	if a.StateValue != in.StateValue {
		changes = append(changes, s.transition(a, in.StateValue, in.StateReason, s.opts.Now()))
	}
	// The state holds until the next evaluation says otherwise, as on CloudWatch.
	a.StateReason, a.StateReasonData = in.StateReason, in.StateReasonData
	err := s.saveAlarms(ctx, a)
	s.mu.Unlock()
	s.notify(changes)
	if err != nil {
		return nil, apiErr(500, "InternalServiceError", "save alarm %s: %v", a.AlarmName, err)
	}
	return nil, nil
}

type deleteAlarmsInput struct {
	AlarmNames []string
}

func (s *Service) deleteAlarms(ctx context.Context, tree map[string]any) (any, error) {
	var in deleteAlarmsInput
	if err := bind(tree, &in); err != nil {
		return nil, err
	}
	if len(in.AlarmNames) == 0 {
		return nil, errMissing("AlarmNames")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []string
	for _, n := range in.AlarmNames {
		if _, ok := s.alarms[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, errNotFound("%d of the alarms you asked to delete were not found: %s; nothing was deleted.", len(missing), strings.Join(missing, ", "))
	}
	if err := s.docs.Delete(ctx, kindAlarm, in.AlarmNames...); err != nil {
		return nil, apiErr(500, "InternalServiceError", "delete alarms: %v", err)
	}
	for _, n := range in.AlarmNames {
		delete(s.alarms, n)
	}
	return nil, nil
}

func jsonValid(s string) bool { return json.Valid([]byte(s)) }
