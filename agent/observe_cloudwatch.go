package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/sagedeploy/sagedeploy/releases"
)

// CloudWatchAPI is the part of the CloudWatch client the agent uses.
type CloudWatchAPI interface {
	ListMetrics(ctx context.Context, in *cloudwatch.ListMetricsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.ListMetricsOutput, error)
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// CloudWatchMetrics reads SageMaker's endpoint metrics (namespace AWS/SageMaker, per
// EndpointName and VariantName) at one-minute periods. Counts are summed over the endpoint's
// variants; latency percentiles are the worst variant's, so a slow canary shows.
type CloudWatchMetrics struct{ CW CloudWatchAPI }

const sageMakerNamespace = "AWS/SageMaker"

// metricQuery is one series the agent reads per variant.
type metricQuery struct {
	id, metric, stat, as string
	sum                  bool // add variants up (else keep the largest)
}

var _ MetricsReader = CloudWatchMetrics{}

func metricQueries() []metricQuery {
	return []metricQuery{
		{"inv", "Invocations", "Sum", releases.MetricInvocations, true},
		{"e4", "Invocation4XXErrors", "Sum", releases.Metric4XX, true},
		{"e5", "Invocation5XXErrors", "Sum", releases.Metric5XX, true},
		{"p50", "ModelLatency", "p50", releases.MetricLatencyP50, false},
		{"p99", "ModelLatency", "p99", releases.MetricLatencyP99, false},
	}
}

// EndpointMetrics reads the endpoint's metrics over [from, to).
func (m CloudWatchMetrics) EndpointMetrics(ctx context.Context, endpoint string, from, to time.Time) ([]releases.MetricPoint, error) {
	variants, err := m.variants(ctx, endpoint)
	if err != nil || len(variants) == 0 {
		return nil, err
	}
	var queries []types.MetricDataQuery
	what := map[string]metricQuery{}
	for vi, v := range variants {
		for _, q := range metricQueries() {
			id := fmt.Sprintf("%s_%d", q.id, vi)
			what[id] = q
			queries = append(queries, types.MetricDataQuery{Id: aws.String(id), MetricStat: &types.MetricStat{
				Metric: &types.Metric{Namespace: aws.String(sageMakerNamespace), MetricName: aws.String(q.metric), Dimensions: []types.Dimension{
					{Name: aws.String("EndpointName"), Value: aws.String(endpoint)}, {Name: aws.String("VariantName"), Value: aws.String(v)}}},
				Period: aws.Int32(60), Stat: aws.String(q.stat)}})
		}
	}
	merged := map[string]map[time.Time]float64{}
	in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: queries}
	p := cloudwatch.NewGetMetricDataPaginator(m.CW, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("get metric data of endpoint %s: %w", endpoint, err)
		}
		for _, r := range page.MetricDataResults {
			mergeResult(merged, what[aws.ToString(r.Id)], r)
		}
	}
	return flatten(merged), nil
}

func mergeResult(merged map[string]map[time.Time]float64, q metricQuery, r types.MetricDataResult) {
	if q.as == "" {
		return
	}
	if merged[q.as] == nil {
		merged[q.as] = map[time.Time]float64{}
	}
	for i, t := range r.Timestamps {
		if i >= len(r.Values) {
			break
		}
		t = t.UTC()
		if q.sum {
			merged[q.as][t] += r.Values[i]
		} else {
			merged[q.as][t] = max(merged[q.as][t], r.Values[i])
		}
	}
}

func flatten(merged map[string]map[time.Time]float64) []releases.MetricPoint {
	var out []releases.MetricPoint
	for name, series := range merged {
		for t, v := range series {
			out = append(out, releases.MetricPoint{Metric: name, Time: t, Value: v})
		}
	}
	return out
}

// variants lists the endpoint's variants that have metrics.
func (m CloudWatchMetrics) variants(ctx context.Context, endpoint string) ([]string, error) {
	in := &cloudwatch.ListMetricsInput{Namespace: aws.String(sageMakerNamespace), MetricName: aws.String("Invocations"),
		Dimensions: []types.DimensionFilter{{Name: aws.String("EndpointName"), Value: aws.String(endpoint)}}}
	seen := map[string]bool{}
	var out []string
	p := cloudwatch.NewListMetricsPaginator(m.CW, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list metrics of endpoint %s: %w", endpoint, err)
		}
		for _, mt := range page.Metrics {
			for _, d := range mt.Dimensions {
				if v := aws.ToString(d.Value); aws.ToString(d.Name) == "VariantName" && !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	return out, nil
}
