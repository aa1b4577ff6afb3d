package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// BenchmarkInvoke measures invocations of the abalone model (version 2, 50+ trees) through real
// HTTP on loopback, single-row and 100-row text/csv bodies, with 8 concurrent clients. The
// loopback-baseline case is a handler that answers a constant: the difference is the runtime's
// cost (routing, parsing, prediction, encoding). The in-process cases call ServeHTTP without
// the network, to show the runtime's own time and allocations.
//
//	go test -run '^$' -bench Invoke -benchtime 3s ./localsm/runtime
func BenchmarkInvoke(b *testing.B) {
	e := newEnv(b, nil)
	e.deploy(b, xgbDeployment("abalone", 2, 2))
	rows, err := abalone.Rows()
	if err != nil {
		b.Fatal(err)
	}
	bodies := map[string][]byte{"1row": abalone.FeaturesCSV(rows[:1]), "100rows": abalone.FeaturesCSV(rows[:100])}

	baseline := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/csv")
		w.Write([]byte("9.5\n"))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	baseline.Listener = ln
	baseline.Start()
	b.Cleanup(baseline.Close)

	for _, name := range []string{"1row", "100rows"} {
		body := bodies[name]
		b.Run("loopback-baseline/"+name, func(b *testing.B) {
			benchHTTP(b, baseline.URL+"/endpoints/abalone/invocations", body)
		})
		b.Run("http/"+name, func(b *testing.B) {
			benchHTTP(b, e.url+"/endpoints/abalone/invocations", body)
		})
		b.Run("in-process/"+name, func(b *testing.B) {
			b.ReportAllocs()
			w := &discardWriter{h: http.Header{}}
			req := httptest.NewRequest(http.MethodPost, "/endpoints/abalone/invocations", nil)
			req.Header.Set("Content-Type", "text/csv")
			r := bytes.NewReader(body)
			b.ResetTimer()
			for b.Loop() {
				r.Reset(body)
				req.Body = io.NopCloser(r)
				req.ContentLength = int64(len(body))
				clear(w.h)
				w.status = 0
				e.rt.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// discardWriter is an http.ResponseWriter that keeps nothing but the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// benchHTTP posts body to url from 8 goroutines and reports throughput and latency percentiles.
func benchHTTP(b *testing.B, url string, body []byte) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.SetParallelism(max(1, 8/goruntime.GOMAXPROCS(0))) // 8 clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		buf := make([]byte, 0, 16<<10)
		for pb.Next() {
			t0 := time.Now()
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "text/csv")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			out := bytes.NewBuffer(buf[:0])
			out.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d: %s", resp.StatusCode, out.Bytes())
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "inv/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkDeployFromScratch measures what a restart of `sagedeploy local` costs per endpoint:
// Deploy of the abalone model with the built-in server, and of a process container (start and
// health check included), on a fresh runtime each time.
func BenchmarkDeployFromScratch(b *testing.B) {
	e := newEnv(b, nil)
	proc := e.processDeployment(b, "scorer", "scorer-bench", 1, nil)
	for _, tc := range []struct {
		name string
		dep  func(i int) (string, error)
	}{
		{"xgboost", func(i int) (string, error) {
			dep := xgbDeployment(fmt.Sprint("abalone-", i), 2, 1)
			return dep.Endpoint, e.rt.Deploy(context.Background(), dep, nil)
		}},
		{"process", func(i int) (string, error) {
			dep := proc
			dep.Endpoint = fmt.Sprint("scorer-", i)
			return dep.Endpoint, e.rt.Deploy(context.Background(), dep, nil)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				name, err := tc.dep(i)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				e.rt.Remove(context.Background(), id(name))
				b.StartTimer()
			}
		})
	}
}
