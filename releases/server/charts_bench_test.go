package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// BenchmarkInsightsAt200Models measures the pages that carry drift, freshness and charts with
// 200 models in dev, staging and prod (each cell of the overview asks for its drift and
// freshness), and a component page whose charts draw a week of one-minute points (5 metrics).
//
//	go test -run '^$' -bench InsightsAt200Models -benchtime 20x ./releases/server/
func BenchmarkInsightsAt200Models(b *testing.B) {
	e := servertest.Start(b, servertest.Options{Environments: []releases.Environment{
		{Name: "dev", Kind: "local", Position: 0}, {Name: "staging", Kind: "sagemaker", Region: "us-east-1", Position: 1},
		{Name: "prod", Kind: "sagemaker", Region: "us-east-1", Position: 2},
	}})
	for m := range 200 {
		for i, env := range []string{"dev", "staging", "prod"} {
			e.Deploy(env, fmt.Sprintf("model-%03d", m), 3-i, 1)
		}
	}
	var pts []releases.MetricPoint
	now := e.Store.Now().Truncate(time.Minute)
	for i := range 7 * 24 * 60 {
		at := now.Add(-time.Duration(i) * time.Minute)
		for _, m := range []string{releases.MetricInvocations, releases.Metric4XX, releases.Metric5XX, releases.MetricLatencyP50, releases.MetricLatencyP99} {
			pts = append(pts, releases.MetricPoint{Metric: m, Time: at, Value: float64(i % 13)})
		}
	}
	if err := e.Store.AddMetricPoints(context.Background(), "prod", "model-007", pts, 8*24*time.Hour); err != nil {
		b.Fatal(err)
	}
	id := "bench-insights"
	if err := e.Store.CreateSession(context.Background(), store.Session{IDHash: server.HashToken(id), Username: "admin", CSRF: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	s := seeded{url: e.URL, cookie: &http.Cookie{Name: "sagedeploy_session", Value: id}}
	for _, page := range []string{"/", "/components/prod/model-007", "/api/v1/freshness", "/api/v1/cost"} {
		b.Run(page, func(b *testing.B) {
			b.ReportMetric(measure(b, s, page, b.N), "p95-ms")
		})
	}
}
