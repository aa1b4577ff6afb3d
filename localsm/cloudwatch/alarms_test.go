package cloudwatch_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/sagedeploy/sagedeploy/localsm"
	localcw "github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// changes records the state changes a subscriber sees.
type changes struct {
	mu  sync.Mutex
	got []localcw.StateChange
}

func (c *changes) add(ch localcw.StateChange) {
	c.mu.Lock()
	c.got = append(c.got, ch)
	c.mu.Unlock()
}

func (c *changes) states() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ch := range c.got {
		out = append(out, ch.AlarmName+":"+ch.OldState+">"+ch.NewState)
	}
	return out
}

// An alarm on the runtime's 5XX errors goes to ALARM when enough periods breach, tells its
// subscribers, and goes back to OK when the errors stop.
func TestAlarmOnInvocationErrorsFiresAndRecovers(t *testing.T) {
	e := start(t, "", newClock())
	ctx := context.Background()
	var seen changes
	defer e.srv.CloudWatch().Subscribe(seen.add)()
	_, err := e.cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("abalone-4xx"), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocation4XXErrors"),
		Dimensions: variantDims("alarm-ep"), Statistic: cwtypes.StatisticSum, Period: aws.Int32(60),
		EvaluationPeriods: aws.Int32(3), DatapointsToAlarm: aws.Int32(2), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("notBreaching")})
	if err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	if a := e.alarm("abalone-4xx"); a.StateValue != cwtypes.StateValueInsufficientData || aws.ToString(a.StateReason) != "Unchecked: Initial alarm creation" {
		t.Fatalf("new alarm is %s (%s), want INSUFFICIENT_DATA until evaluated", a.StateValue, aws.ToString(a.StateReason))
	}
	e.serve("alarm-ep", 1)

	minute := func(bad int) {
		t.Helper()
		for i := range 3 {
			if err := e.invoke("alarm-ep", i < bad); (err != nil) != (i < bad) {
				t.Fatalf("invoke (bad body %v): %v", i < bad, err)
			}
		}
		e.clock.advance(time.Minute)
		e.evaluate()
	}
	minute(0)
	if a := e.alarm("abalone-4xx"); a.StateValue != cwtypes.StateValueOk {
		t.Fatalf("after a clean minute the alarm is %s (%s), want OK", a.StateValue, aws.ToString(a.StateReason))
	}
	minute(2)
	if a := e.alarm("abalone-4xx"); a.StateValue != cwtypes.StateValueOk {
		t.Fatalf("after one breaching minute of the 2 needed the alarm is %s, want OK", a.StateValue)
	}
	minute(1)
	a := e.alarm("abalone-4xx")
	if a.StateValue != cwtypes.StateValueAlarm {
		t.Fatalf("after two breaching minutes the alarm is %s (%s), want ALARM", a.StateValue, aws.ToString(a.StateReason))
	}
	if r := aws.ToString(a.StateReason); !strings.Contains(r, "Threshold Crossed: 2 out of the last 3 datapoints") || !strings.Contains(r, "greater than or equal to the threshold (1.0)") {
		t.Fatalf("StateReason = %q, want CloudWatch's threshold-crossed wording", r)
	}
	if !aws.ToTime(a.StateUpdatedTimestamp).Equal(e.clock.Now()) {
		t.Fatalf("StateUpdatedTimestamp = %v, want the evaluation time %v", aws.ToTime(a.StateUpdatedTimestamp), e.clock.Now())
	}
	if got, ok := e.srv.CloudWatch().Alarm("abalone-4xx"); !ok || got.StateValue != localcw.StateAlarm {
		t.Fatalf("Alarm(abalone-4xx) = %v %v, want ALARM", got.StateValue, ok)
	}
	minute(0)
	minute(0)
	if a := e.alarm("abalone-4xx"); a.StateValue != cwtypes.StateValueOk {
		t.Fatalf("after two clean minutes the alarm is %s, want OK", a.StateValue)
	}
	want := []string{"abalone-4xx:INSUFFICIENT_DATA>OK", "abalone-4xx:OK>ALARM", "abalone-4xx:ALARM>OK"}
	if got := seen.states(); !slices.Equal(got, want) {
		t.Fatalf("subscriber saw %v, want %v", got, want)
	}
}

// Each missing-data treatment decides the state of an alarm whose metric has no data, as
// CloudWatch's TreatMissingData says.
func TestMissingDataTreatment(t *testing.T) {
	e := start(t, "", newClock())
	ctx := context.Background()
	for _, treat := range []string{"missing", "notBreaching", "breaching", "ignore"} {
		if _, err := e.cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String("quiet-" + treat), Namespace: aws.String("Test/App"), MetricName: aws.String("Errors"),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2), Threshold: aws.Float64(1),
			ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold, TreatMissingData: aws.String(treat)}); err != nil {
			t.Fatalf("PutMetricAlarm %s: %v", treat, err)
		}
	}
	if _, err := e.cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("quiet-ignore"),
		StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("set by the test")}); err != nil {
		t.Fatalf("SetAlarmState: %v", err)
	}
	e.clock.advance(3 * time.Minute)
	e.evaluate()
	want := map[string]cwtypes.StateValue{"missing": cwtypes.StateValueInsufficientData, "notBreaching": cwtypes.StateValueOk,
		"breaching": cwtypes.StateValueAlarm, "ignore": cwtypes.StateValueAlarm}
	for treat, state := range want {
		if a := e.alarm("quiet-" + treat); a.StateValue != state {
			t.Errorf("TreatMissingData %s: alarm is %s (%s), want %s", treat, a.StateValue, aws.ToString(a.StateReason), state)
		}
	}
	// One breaching datapoint: the alarms that count missing data as good or ignore it still
	// need two, and the one treating it as breaching stays in ALARM.
	if _, err := e.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Test/App"),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Errors"), Value: aws.Float64(5)}}}); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Minute)
	e.evaluate()
	want = map[string]cwtypes.StateValue{"missing": cwtypes.StateValueOk, "notBreaching": cwtypes.StateValueOk,
		"breaching": cwtypes.StateValueAlarm, "ignore": cwtypes.StateValueOk}
	for treat, state := range want {
		if a := e.alarm("quiet-" + treat); a.StateValue != state {
			t.Errorf("TreatMissingData %s with one breaching point of two: alarm is %s (%s), want %s", treat, a.StateValue, aws.ToString(a.StateReason), state)
		}
	}
}

// Alarms are described, found by metric, filtered by state, survive a restart and are deleted.
func TestAlarmsDescribePersistDelete(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	e := start(t, dir, c)
	ctx := context.Background()
	for proto, cw := range e.clients() {
		if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String("latency-" + proto), AlarmDescription: aws.String("p < 1s"), Namespace: aws.String("AWS/SageMaker"),
			MetricName: aws.String("ModelLatency"), Dimensions: variantDims("ep"), Statistic: cwtypes.StatisticAverage,
			Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1e6),
			ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold, AlarmActions: []string{"arn:aws:sns:us-east-1:000000000000:ops"}}); err != nil {
			t.Fatalf("%s: PutMetricAlarm: %v", proto, err)
		}
		out, err := cw.DescribeAlarmsForMetric(ctx, &cloudwatch.DescribeAlarmsForMetricInput{Namespace: aws.String("AWS/SageMaker"),
			MetricName: aws.String("ModelLatency"), Dimensions: variantDims("ep")})
		if err != nil {
			t.Fatalf("%s: DescribeAlarmsForMetric: %v", proto, err)
		}
		if !slices.ContainsFunc(out.MetricAlarms, func(a cwtypes.MetricAlarm) bool {
			return aws.ToString(a.AlarmName) == "latency-"+proto && aws.ToFloat64(a.Threshold) == 1e6 && len(a.Dimensions) == 2 &&
				aws.ToString(a.AlarmArn) == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:latency-"+proto && len(a.AlarmActions) == 1
		}) {
			t.Fatalf("%s: DescribeAlarmsForMetric = %+v, want latency-%s as it was put", proto, out.MetricAlarms, proto)
		}
		_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("bad"), Namespace: aws.String("X"),
			MetricName: aws.String("Y"), Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2),
			DatapointsToAlarm: aws.Int32(3), Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorLessThanThreshold})
		apiError(t, err, "InvalidParameterValue", "DatapointsToAlarm (3) must be between 1 and EvaluationPeriods (2)")
	}
	if _, err := e.cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("latency-cbor"),
		StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("drill")}); err != nil {
		t.Fatal(err)
	}
	inAlarm, err := e.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{StateValue: cwtypes.StateValueAlarm})
	if err != nil || len(inAlarm.MetricAlarms) != 1 || aws.ToString(inAlarm.MetricAlarms[0].StateReason) != "drill" {
		t.Fatalf("DescribeAlarms StateValue=ALARM = %+v, %v; want latency-cbor set by SetAlarmState", inAlarm, err)
	}
	if err := e.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e = start(t, dir, c)
	all, err := e.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("latency-"), MaxRecords: aws.Int32(2)})
	if err != nil || len(all.MetricAlarms) != 2 || aws.ToString(all.NextToken) == "" {
		t.Fatalf("after a restart DescribeAlarms = %+v, %v; want the first 2 of 3 alarms and a NextToken", all, err)
	}
	if a := e.alarm("latency-cbor"); a.StateValue != cwtypes.StateValueAlarm {
		t.Fatalf("after a restart latency-cbor is %s, want the ALARM state it had", a.StateValue)
	}
	_, err = e.cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"latency-cbor", "ghost"}})
	apiError(t, err, "ResourceNotFound", "ghost")
	if _, err := e.cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"latency-cbor", "latency-json", "latency-query"}}); err != nil {
		t.Fatalf("DeleteAlarms: %v", err)
	}
	if left, _ := e.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{}); len(left.MetricAlarms) != 0 {
		t.Fatalf("after DeleteAlarms %d alarms are left", len(left.MetricAlarms))
	}
}

// With PeriodScale, a 60-second period lasts 0.6 seconds: a demo or an end-to-end test can see
// an alarm fire within a canary's bake.
func TestPeriodScaleShortensPeriods(t *testing.T) {
	isolateAWSConfig(t)
	c := newClock()
	srv := localsmtest.Start(t, localsm.Options{AutoScalingInterval: -1,
		CloudWatch: localcw.Options{Now: c.Now, EvaluationInterval: -1, PeriodScale: 0.01}})
	e := &env{t: t, srv: srv, clock: c}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIALOCALTEST", "local-secret", "")),
		config.WithBaseEndpoint(srv.URL()), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	e.cw = cloudwatch.NewFromConfig(cfg)
	ctx := context.Background()
	if _, err := e.cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("fast"), Namespace: aws.String("Test/App"),
		MetricName: aws.String("Errors"), Statistic: cwtypes.StatisticMaximum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
		Threshold: aws.Float64(0), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Test/App"),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Errors"), Value: aws.Float64(1)}}}); err != nil {
		t.Fatal(err)
	}
	c.advance(600 * time.Millisecond)
	e.evaluate()
	if a := e.alarm("fast"); a.StateValue != cwtypes.StateValueAlarm {
		t.Fatalf("0.6 s after a breaching point the alarm is %s (%s), want ALARM", a.StateValue, aws.ToString(a.StateReason))
	}
	c.advance(600 * time.Millisecond)
	e.evaluate()
	if a := e.alarm("fast"); a.StateValue != cwtypes.StateValueInsufficientData {
		t.Fatalf("one quiet scaled minute later the alarm is %s, want INSUFFICIENT_DATA (missing data)", a.StateValue)
	}
}

// Percentiles: p99 of the runtime's ModelLatency reads back near the maximum, and a p90 alarm
// on a user's latency fires on a slow tail that the average hides.
func TestPercentiles(t *testing.T) {
	e := start(t, "", newClock())
	ctx := context.Background()
	values := make([]float64, 0, 100)
	for i := range 100 {
		values = append(values, float64(i+1)) // 1..100 ms: p90 is 90, the average 50.5
	}
	for proto, cw := range e.clients() {
		ns := "Test/" + proto
		if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("tail-" + proto), Namespace: aws.String(ns),
			MetricName: aws.String("Latency"), ExtendedStatistic: aws.String("p90"), Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
			Threshold: aws.Float64(80), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold}); err != nil {
			t.Fatalf("%s: PutMetricAlarm p90: %v", proto, err)
		}
		if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Latency"), Values: values}}}); err != nil {
			t.Fatalf("%s: PutMetricData: %v", proto, err)
		}
		out, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String(ns), MetricName: aws.String("Latency"),
			StartTime: aws.Time(e.clock.Now()), EndTime: aws.Time(e.clock.Now().Add(time.Minute)), Period: aws.Int32(60),
			ExtendedStatistics: []string{"p50", "p90"}})
		if err != nil || len(out.Datapoints) != 1 {
			t.Fatalf("%s: GetMetricStatistics p50, p90 = %+v, %v", proto, out, err)
		}
		for name, want := range map[string]float64{"p50": 50, "p90": 90} {
			if got := out.Datapoints[0].ExtendedStatistics[name]; got < want*0.99 || got > want*1.01 {
				t.Fatalf("%s: %s = %v, want %v within 1%%", proto, name, got, want)
			}
		}
	}
	e.clock.advance(time.Minute)
	e.evaluate()
	for proto := range e.clients() {
		if a := e.alarm("tail-" + proto); a.StateValue != cwtypes.StateValueAlarm || aws.ToString(a.ExtendedStatistic) != "p90" {
			t.Fatalf("p90 alarm %s is %s (%s), want ALARM", proto, a.StateValue, aws.ToString(a.StateReason))
		}
	}
}
