package localsm

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/sagedeploy/sagedeploy/localsm/autoscaling"
	"github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
	"github.com/sagedeploy/sagedeploy/localsm/cloudwatch/docstore"
	"github.com/sagedeploy/sagedeploy/localsm/control"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// monitoring is CloudWatch and Application Auto Scaling, whose alarms, targets and policies
// live in DATA_DIR/monitoring.db (apart from state.db, whose loader refuses kinds it does not
// know).
type monitoring struct {
	docs        *docstore.Store
	cloudwatch  *cloudwatch.Service
	autoscaling *autoscaling.Service
}

// startMonitoring starts CloudWatch, which the runtime reports to; startAutoScaling follows once
// the control plane it scales through exists.
func startMonitoring(ctx context.Context, opts Options) (m *monitoring, err error) {
	m = &monitoring{}
	if m.docs, err = docstore.Open(ctx, filepath.Join(opts.DataDir, "monitoring.db")); err != nil {
		return nil, err
	}
	cw := opts.CloudWatch
	cw.Store, cw.Account, cw.Region, cw.Logger = m.docs, opts.Account, opts.DefaultRegion, opts.Logger
	if m.cloudwatch, err = cloudwatch.New(ctx, cw); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

func (m *monitoring) startAutoScaling(ctx context.Context, opts Options, scaler autoscaling.Scaler) (err error) {
	cw := opts.CloudWatch
	m.autoscaling, err = autoscaling.New(ctx, autoscaling.Options{Store: m.docs, Scaler: scaler,
		Metrics: perInstance{m.cloudwatch}, Account: opts.Account, Region: opts.DefaultRegion,
		Now: cw.Now, PeriodScale: cw.PeriodScale, Interval: opts.AutoScalingInterval, Logger: opts.Logger})
	return err
}

func (m *monitoring) close() error {
	if m.autoscaling != nil {
		m.autoscaling.Close()
	}
	if m.cloudwatch != nil {
		m.cloudwatch.Close()
	}
	if err := m.docs.Close(); err != nil {
		return fmt.Errorf("close monitoring store: %w", err)
	}
	return nil
}

// CloudWatch is the server's CloudWatch: its alarms can be watched (guardrails) and evaluated.
func (s *Server) CloudWatch() *cloudwatch.Service { return s.monitor.cloudwatch }

// AutoScaling is the server's Application Auto Scaling.
func (s *Server) AutoScaling() *autoscaling.Service { return s.monitor.autoscaling }

// guardrails lets the control plane watch CloudWatch alarms during deployments
// (AutoRollbackConfiguration).
type guardrails struct{ cw *cloudwatch.Service }

func (g guardrails) AlarmState(name string) (state, reason string, ok bool) {
	a, ok := g.cw.Alarm(name)
	return a.StateValue, a.StateReason, ok
}

func (g guardrails) WatchAlarms(fn func(name, state, reason string)) (cancel func()) {
	return g.cw.Subscribe(func(ch cloudwatch.StateChange) { fn(ch.AlarmName, ch.NewState, ch.Reason) })
}

// timeScale is how much shorter than real time periods and bakes run (1: real time).
func (opts Options) timeScale() float64 { return cmp.Or(opts.CloudWatch.PeriodScale, 1) }

// perInstance reads the metric target tracking follows: InvocationsPerInstance, Sum per minute.
type perInstance struct{ cw *cloudwatch.Service }

func (p perInstance) InvocationsPerInstance(endpoint, variant string) (float64, bool) {
	return p.cw.LatestPeriod(cloudwatch.Metric{Namespace: cloudwatch.SageMakerNamespace,
		MetricName: cloudwatch.MetricInvocationsPerInstance,
		Dimensions: []cloudwatch.Dimension{{Name: "EndpointName", Value: endpoint}, {Name: "VariantName", Value: variant}}},
		60, "Sum")
}

// controlScaler changes instance counts through UpdateEndpointWeightsAndCapacities, so that
// autoscaling goes through the control plane's checks, persistence and endpoint status like any
// client's call, and shows in DescribeEndpoint.
type controlScaler struct{ srv *Server }

func (c controlScaler) DesiredInstanceCount(endpoint, variant string) (int, bool) {
	// Scaling targets are registered without a region here: they act in the default region.
	states, ok := c.srv.runtime.Variants(spec.EndpointID{Region: c.srv.opts.DefaultRegion, Name: endpoint})
	if !ok {
		return 0, false
	}
	for _, v := range states {
		if v.VariantName == variant {
			return v.CurrentInstanceCount, true
		}
	}
	return 0, false
}

func (c controlScaler) SetDesiredInstanceCount(ctx context.Context, endpoint, variant string, n int) error {
	body, _ := json.Marshal(map[string]any{"EndpointName": endpoint,
		"DesiredWeightsAndCapacities": []map[string]any{{"VariantName": variant, "DesiredInstanceCount": n}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Target", "SageMaker.UpdateEndpointWeightsAndCapacities")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	rec := &bufferedResponse{header: http.Header{}}
	c.srv.control.ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		return fmt.Errorf("UpdateEndpointWeightsAndCapacities: %s", bytes.TrimSpace(rec.body.Bytes()))
	}
	return nil
}

// bufferedResponse keeps an in-process answer.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

var (
	_ spec.MetricsSink     = (*cloudwatch.Service)(nil)
	_ control.AlarmWatcher = guardrails{}
)
