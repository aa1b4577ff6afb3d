package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// NotificationDriftDetected is the kind of the notification sent when an agent first sees a
// component's endpoint changed outside sagedeploy (Options.OnDrift receives it).
const NotificationDriftDetected = "drift.detected"

// metricsKeep is how long reported metric points are kept: the longest chart window and a day.
const metricsKeep = 8 * 24 * time.Hour

// observeRoutes registers the agent's reports (observations, metrics) and the views built on
// them: drift, freshness, cost, charts, and adopting an observed state.
func (s *Server) observeRoutes(m *http.ServeMux) {
	a := jsonAPI{s}
	m.HandleFunc("POST /api/v1/components/{env}/{model}/observation", s.api(a.apiObservation))
	m.HandleFunc("POST /api/v1/components/{env}/{model}/metrics", s.api(a.apiReportMetrics))
	m.HandleFunc("GET /api/v1/components/{env}/{model}/metrics", s.api(a.apiMetrics))
	m.HandleFunc("POST /api/v1/components/{env}/{model}/adopt", s.api(a.apiAdopt))
	m.HandleFunc("GET /api/v1/drift", s.api(a.apiDrift))
	m.HandleFunc("GET /api/v1/freshness", s.api(a.apiFreshness))
	m.HandleFunc("GET /api/v1/cost", s.api(a.apiCost))
	d := dashboard{s}
	m.HandleFunc("POST /components/{env}/{model}/adopt", d.page(d.adoptForm))
}

func (s jsonAPI) apiObservation(w http.ResponseWriter, r *http.Request, p principal) error {
	env, model := r.PathValue("env"), r.PathValue("model")
	if err := tokenOnly(p, "report observed endpoints"); err != nil {
		return err
	}
	if err := p.canCommand(env, "report observations"); err != nil {
		return err
	}
	var o releases.Observation
	if err := decodeJSON(r, &o, "the observation"); err != nil {
		return err
	}
	o.Environment, o.Model = env, model
	res, err := s.st.RecordObservation(r.Context(), o)
	if err != nil {
		return err
	}
	s.insights.drop()
	if res.New {
		s.driftDetected(r, *res.Drift)
	}
	writeJSON(w, http.StatusOK, map[string]any{"drift": res.Drift})
	return nil
}

// driftDetected announces a new drift: in the log, the audit log, to the dashboard's streams and
// to the notification hook.
func (s *Server) driftDetected(r *http.Request, d releases.Drift) {
	s.log.Warn("endpoint changed outside sagedeploy", "environment", d.Environment, "model", d.Model, "differences", d.Summary())
	s.audit(r, "agent", NotificationDriftDetected, d.Environment, d.Model, d.Observed.EndpointName, "observed", d.Summary())
	s.notify.signal(driftKey)
	var serving *releases.Version
	if d.Observed.Version > 0 {
		serving = &releases.Version{Number: d.Observed.Version}
	}
	if _, err := s.st.NotifyDrift(context.WithoutCancel(r.Context()), d.Environment, d.Model, d.Summary(), serving); err != nil {
		s.log.Error("queue drift notification", "environment", d.Environment, "model", d.Model, "error", err)
	} else {
		s.notify.signal(outboxKey)
	}
	if s.opts.OnDrift != nil {
		s.opts.OnDrift(context.WithoutCancel(r.Context()), d)
	}
}

// driftKey wakes whoever follows drift (dashboard streams).
const driftKey = "drift"

func (s jsonAPI) apiDrift(w http.ResponseWriter, r *http.Request, p principal) error {
	list, err := s.st.Drifts(r.Context())
	if err != nil {
		return err
	}
	out := []releases.Drift{}
	for _, d := range list {
		if p.canSee(d.Environment) == nil {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"drift": out})
	return nil
}

func (s jsonAPI) apiAdopt(w http.ResponseWriter, r *http.Request, p principal) error {
	env, model := r.PathValue("env"), r.PathValue("model")
	if err := p.canCommand(env, "adopt an observed endpoint state"); err != nil {
		return err
	}
	o, err := s.adopt(r, p, env, model)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"adopted": o})
	return nil
}

func (s *Server) adopt(r *http.Request, p principal, env, model string) (releases.Observation, error) {
	o, err := s.st.AdoptObservation(r.Context(), env, model)
	s.audit(r, p.name(), "component.adopt", env, model, o.EndpointName, outcomeOf(s, r, err), fmt.Sprintf("version %d, %d × %s, config %s", o.Version, o.InstanceCount, o.InstanceType, o.EndpointConfigName))
	if err == nil {
		s.insights.drop()
		s.notify.signal(driftKey)
	}
	return o, err
}

func (s dashboard) adoptForm(w http.ResponseWriter, r *http.Request, se session) error {
	env, model := r.PathValue("env"), r.PathValue("model")
	back := "/components/" + url.PathEscape(env) + "/" + url.PathEscape(model)
	p := se.principal()
	if err := p.canCommand(env, "adopt an observed endpoint state"); err != nil {
		return err
	}
	o, err := s.adopt(r, p, env, model)
	if err != nil {
		redirectFlash(w, r, back, s.publicMessage(r, err), true)
		return nil
	}
	redirectFlash(w, r, back, fmt.Sprintf("Adopted what %s serves: v%d, %d × %s. sagedeploy now records that.", o.EndpointName, o.Version, o.InstanceCount, o.InstanceType), false)
	return nil
}

func (s jsonAPI) apiReportMetrics(w http.ResponseWriter, r *http.Request, p principal) error {
	env, model := r.PathValue("env"), r.PathValue("model")
	if err := tokenOnly(p, "report endpoint metrics"); err != nil {
		return err
	}
	if err := p.canCommand(env, "report metrics"); err != nil {
		return err
	}
	var rep releases.MetricsReport
	if err := decodeJSON(r, &rep, "the metrics report"); err != nil {
		return err
	}
	if len(rep.Points) > 20000 {
		return releases.Errorf(releases.EINVALID, "%d metric points in one report of %s in %s; send at most 20000", len(rep.Points), model, env)
	}
	if _, err := s.st.Component(r.Context(), env, model); err != nil {
		return err
	}
	if err := s.st.AddMetricPoints(r.Context(), env, model, rep.Points, metricsKeep); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// chartWindow parses ?window= (1h, 24h or 7d; default 24h).
func chartWindow(v string) (time.Duration, error) {
	switch strings.ToLower(v) {
	case "1h", "hour":
		return time.Hour, nil
	case "", "24h", "1d", "day":
		return 24 * time.Hour, nil
	case "7d", "week":
		return 7 * 24 * time.Hour, nil
	}
	return 0, releases.Errorf(releases.EINVALID, "unknown window %q: use 1h, 24h or 7d", v)
}

func (s jsonAPI) apiMetrics(w http.ResponseWriter, r *http.Request, p principal) error {
	env, model := r.PathValue("env"), r.PathValue("model")
	if err := p.canSee(env); err != nil {
		return err
	}
	win, err := chartWindow(r.URL.Query().Get("window"))
	if err != nil {
		return err
	}
	pts, err := s.st.MetricPoints(r.Context(), env, model, s.st.Now().Add(-win))
	if err != nil {
		return err
	}
	if pts == nil {
		pts = []releases.MetricPoint{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"environment": env, "model": model, "window": win.String(), "points": pts})
	return nil
}

// driftGauge reads drifted components from the store at scrape time:
// sagedeploy_component_drift{environment, model, differences} is 1 for each.
type driftGauge struct {
	st interface {
		Drifts(context.Context) ([]releases.Drift, error)
	}
	desc *prometheus.Desc
}

func newDriftGauge(st *store.Store) *driftGauge {
	return &driftGauge{st: st, desc: prometheus.NewDesc("sagedeploy_component_drift",
		"1 for each component whose endpoint was changed outside sagedeploy (what differs in the differences label).",
		[]string{"environment", "model", "differences"}, nil)}
}

func (g *driftGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *driftGauge) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := g.st.Drifts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(g.desc, err)
		return
	}
	for _, d := range list {
		fields := make([]string, len(d.Differences))
		for i, x := range d.Differences {
			fields[i] = x.Field
		}
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, 1, d.Environment, d.Model, strings.Join(fields, ","))
	}
}
