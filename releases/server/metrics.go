package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// metrics are the server's Prometheus metrics, in a registry of its own so that several servers
// can live in one process (tests, `sagedeploy up`).
type metrics struct {
	reg             *prometheus.Registry
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	releaseDuration *prometheus.HistogramVec
	commandLatency  *prometheus.HistogramVec
}

func newMetrics(st *store.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagedeploy_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagedeploy_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern (long polls and event streams excluded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		releaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagedeploy_release_duration_seconds",
			Help:    "Duration of finished releases from start to end, by kind and final status.",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600},
		}, []string{"kind", "status"}),
		commandLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagedeploy_command_latency_seconds",
			Help:    "Dashboard command latency: until an agent picked it up (stage=pickup) and until it completed (stage=complete).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}, []string{"kind", "stage"}),
	}
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.releaseDuration, m.commandLatency,
		&releaseCounter{st: st, desc: prometheus.NewDesc("sagedeploy_releases", "Releases recorded, by status.", []string{"status"}, nil)},
		newDriftGauge(st), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) observeRelease(r store.ReleaseRecord) {
	if r.StartedAt == nil || r.FinishedAt == nil {
		return
	}
	m.releaseDuration.WithLabelValues(string(r.Kind), string(r.Status)).Observe(r.FinishedAt.Sub(*r.StartedAt).Seconds())
}

func (m *metrics) observeCommand(kind releases.CommandKind, stage string, d time.Duration) {
	m.commandLatency.WithLabelValues(string(kind), stage).Observe(d.Seconds())
}

func (m *metrics) observeHTTP(route, method string, code int, d time.Duration, streamed bool) {
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	if !streamed {
		m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
	}
}

// releaseCounter reads release counts from the store at scrape time, so they are right across
// restarts and across servers sharing one database.
type releaseCounter struct {
	st   *store.Store
	desc *prometheus.Desc
}

func (c *releaseCounter) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *releaseCounter) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.st.CountByStatus(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range []releases.Status{releases.StatusPending, releases.StatusRunning, releases.StatusSucceeded, releases.StatusFailed, releases.StatusCanceled} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
