package cloudwatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// Invocations become AWS/SageMaker metrics per endpoint and variant, read back through every
// protocol CloudWatch clients speak.
func TestInvocationsBecomeSageMakerMetrics(t *testing.T) {
	e := start(t, "", newClock())
	e.serve("metrics-ep", 2)
	for range 5 {
		if err := e.invoke("metrics-ep", false); err != nil {
			t.Fatalf("invoke: %v", err)
		}
	}
	if err := e.invoke("metrics-ep", true); err == nil {
		t.Fatal("an unreadable CSV body was answered with a prediction")
	}
	from, to := e.clock.Now().Add(-time.Hour), e.clock.Now().Add(time.Hour)
	for proto, cw := range e.clients() {
		t.Run(proto, func(t *testing.T) {
			ctx := context.Background()
			want := map[string]float64{"Invocations": 6, "Invocation4XXErrors": 1, "Invocation5XXErrors": 0, "InvocationsPerInstance": 3}
			for name, sum := range want {
				out, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
					Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String(name), Dimensions: variantDims("metrics-ep"),
					StartTime: aws.Time(from), EndTime: aws.Time(to), Period: aws.Int32(60),
					Statistics: []cwtypes.Statistic{cwtypes.StatisticSum, cwtypes.StatisticSampleCount}})
				if err != nil {
					t.Fatalf("GetMetricStatistics %s: %v", name, err)
				}
				if len(out.Datapoints) != 1 || aws.ToFloat64(out.Datapoints[0].Sum) != sum || aws.ToFloat64(out.Datapoints[0].SampleCount) != 6 {
					t.Fatalf("%s datapoints = %+v, want one with Sum %v over 6 samples", name, out.Datapoints, sum)
				}
				if got := aws.ToTime(out.Datapoints[0].Timestamp); !got.Equal(e.clock.Now()) {
					t.Fatalf("%s datapoint at %v, want the period starting %v", name, got, e.clock.Now())
				}
			}
			lat, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to),
				MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("lat"), MetricStat: &cwtypes.MetricStat{
					Metric: &cwtypes.Metric{Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("ModelLatency"), Dimensions: variantDims("metrics-ep")},
					Period: aws.Int32(60), Stat: aws.String("Maximum")}}, {Id: aws.String("p99"), MetricStat: &cwtypes.MetricStat{
					Metric: &cwtypes.Metric{Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("ModelLatency"), Dimensions: variantDims("metrics-ep")},
					Period: aws.Int32(60), Stat: aws.String("p99")}}}})
			if err != nil {
				t.Fatalf("GetMetricData: %v", err)
			}
			r := lat.MetricDataResults
			if len(r) != 2 || aws.ToString(r[0].Id) != "lat" || len(r[0].Values) != 1 || r[0].Values[0] <= 0 || r[0].StatusCode != cwtypes.StatusCodeComplete {
				t.Fatalf("ModelLatency results = %+v, want one positive maximum (microseconds)", r)
			}
			if len(r[1].Values) != 1 || r[1].Values[0] <= 0 || r[1].Values[0] > r[0].Values[0]*1.01 {
				t.Fatalf("ModelLatency p99 = %v, want a positive value no more than 1%% over the maximum %v", r[1].Values, r[0].Values)
			}
			list, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("AWS/SageMaker"),
				Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("EndpointName"), Value: aws.String("metrics-ep")}}})
			if err != nil {
				t.Fatalf("ListMetrics: %v", err)
			}
			if len(list.Metrics) != 6 {
				t.Fatalf("ListMetrics = %d metrics, want the 6 SageMaker endpoint metrics", len(list.Metrics))
			}
		})
	}
}

// Metrics a user puts are aggregated by period and statistic.
func TestPutMetricDataAndStatistics(t *testing.T) {
	e := start(t, "", newClock())
	ctx := context.Background()
	t0 := e.clock.Now()
	for proto, cw := range e.clients() {
		ns := "Test/" + proto
		_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: []cwtypes.MetricDatum{
			{MetricName: aws.String("Latency"), Timestamp: aws.Time(t0.Add(5 * time.Second)), Value: aws.Float64(10)},
			{MetricName: aws.String("Latency"), Timestamp: aws.Time(t0.Add(50 * time.Second)), Values: []float64{20, 30}, Counts: []float64{1, 2}},
			{MetricName: aws.String("Latency"), Timestamp: aws.Time(t0.Add(70 * time.Second)), StatisticValues: &cwtypes.StatisticSet{
				SampleCount: aws.Float64(2), Sum: aws.Float64(4), Minimum: aws.Float64(1), Maximum: aws.Float64(3)}},
		}})
		if err != nil {
			t.Fatalf("%s: PutMetricData: %v", proto, err)
		}
		out, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String(ns), MetricName: aws.String("Latency"),
			StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(2 * time.Minute)), Period: aws.Int32(60),
			Statistics: []cwtypes.Statistic{cwtypes.StatisticAverage, cwtypes.StatisticMinimum, cwtypes.StatisticMaximum, cwtypes.StatisticSampleCount}})
		if err != nil {
			t.Fatalf("%s: GetMetricStatistics: %v", proto, err)
		}
		if len(out.Datapoints) != 2 {
			t.Fatalf("%s: %d datapoints, want 2 minutes", proto, len(out.Datapoints))
		}
		for _, dp := range out.Datapoints {
			first := aws.ToTime(dp.Timestamp).Equal(t0)
			want := [4]float64{2, 1, 3, 2} // avg, min, max, count of the second minute
			if first {
				want = [4]float64{22.5, 10, 30, 4} // (10+20+30*2)/4
			}
			got := [4]float64{aws.ToFloat64(dp.Average), aws.ToFloat64(dp.Minimum), aws.ToFloat64(dp.Maximum), aws.ToFloat64(dp.SampleCount)}
			if got != want {
				t.Fatalf("%s: datapoint at %v = %v, want %v", proto, aws.ToTime(dp.Timestamp), got, want)
			}
		}
	}
}

// Bad requests get CloudWatch's error codes, with messages that say what to change.
func TestMetricErrors(t *testing.T) {
	e := start(t, "", newClock())
	ctx := context.Background()
	for proto, cw := range e.clients() {
		_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/SageMaker"),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Invocations"), Value: aws.Float64(1)}}})
		apiError(t, err, "InvalidParameterValue", "reserved")
		_, err = cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("X"), MetricName: aws.String("Y"),
			StartTime: aws.Time(e.clock.Now()), EndTime: aws.Time(e.clock.Now().Add(time.Hour)), Period: aws.Int32(45),
			Statistics: []cwtypes.Statistic{cwtypes.StatisticSum}})
		apiError(t, err, "InvalidParameterValue", "multiple of 60")
		_, err = cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("nope"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("test")})
		apiError(t, err, "ResourceNotFound", "nope")
		if t.Failed() {
			t.Fatalf("protocol %s", proto)
		}
	}
}
