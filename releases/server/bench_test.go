package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// BenchmarkDashboardAt100kReleases measures the dashboard pages with 100,000 releases recorded,
// against the same pages with 100 releases in the same run (the baseline), and reports the p95
// latency of each, in milliseconds, and the ratio to the baseline.
//
//	go test -run '^$' -bench DashboardAt100k -benchtime 200x ./releases/server/
func BenchmarkDashboardAt100kReleases(b *testing.B) {
	small := seededServer(b, 100)
	large := seededServer(b, 100_000)
	for _, page := range []string{"/", "/releases", "/releases?environment=prod&model=model-07", "/components/prod/model-07", "/api/v1/releases?environment=dev&limit=50"} {
		b.Run(page, func(b *testing.B) {
			base := measure(b, small, page, 50)
			b.ResetTimer()
			p95 := measure(b, large, page, b.N)
			b.ReportMetric(p95, "p95-ms")
			b.ReportMetric(p95/base, "x-baseline")
		})
	}
}

type seeded struct {
	url    string
	cookie *http.Cookie
}

func seededServer(b *testing.B, n int) seeded {
	e := servertest.Start(b, servertest.Options{Environments: []releases.Environment{
		{Name: "dev", Kind: "local", Position: 0}, {Name: "staging", Kind: "sagemaker", Region: "eu-west-1", Position: 1},
		{Name: "prod", Kind: "sagemaker", Region: "eu-west-1", Position: 2, RequiresApproval: true},
	}})
	envs := []string{"dev", "staging", "prod"}
	start := time.Now().Add(-time.Duration(n) * time.Minute)
	var batch []store.ReleaseRecord
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * time.Minute)
		fin := at.Add(4 * time.Minute)
		st := releases.StatusSucceeded
		if i%17 == 0 {
			st = releases.StatusFailed
		}
		batch = append(batch, store.ReleaseRecord{Release: releases.Release{Environment: envs[i%3], Model: fmt.Sprintf("model-%02d", i%20),
			Kind: releases.KindDeploy, Status: st, Version: releases.Version{Number: i/60 + 1}, InstanceCount: 2, InstanceType: "ml.m5.large",
			Trigger: releases.Trigger{Type: "pipeline", PipelineID: fmt.Sprint(i)}, CreatedAt: at, StartedAt: &at, FinishedAt: &fin}})
		if len(batch) == 5000 {
			if err := e.Store.ImportReleases(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := e.Store.ImportReleases(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	for m := 0; m < 20; m++ {
		for _, env := range envs {
			e.Deploy(env, fmt.Sprintf("model-%02d", m), n/60+1, 2)
		}
	}
	id := "bench-session-" + fmt.Sprint(n)
	now := e.Store.Now()
	if err := e.Store.CreateSession(context.Background(), store.Session{IDHash: server.HashToken(id), Username: "admin", CSRF: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	return seeded{url: e.URL, cookie: &http.Cookie{Name: "sagedeploy_session", Value: id}}
}

// measure requests page n times and returns the p95 latency in milliseconds.
func measure(b *testing.B, s seeded, page string, n int) float64 {
	var lat []float64
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("GET", s.url+page, nil)
		req.AddCookie(s.cookie)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", page, resp.StatusCode)
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
	}
	slices.Sort(lat)
	return lat[(len(lat)*95)/100-boolInt(len(lat)*95%100 == 0)]
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
