package agent_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/sagedeploy/sagedeploy/agent"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// throttledReader answers like SageMaker over its rate limit for the first calls, then with
// what the endpoint serves.
type throttledReader struct {
	mu        sync.Mutex
	throttles int
	calls     int
}

func (r *throttledReader) ObserveEndpoint(_ context.Context, name string) (releases.Observation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.throttles {
		return releases.Observation{}, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	}
	return releases.Observation{EndpointName: name, EndpointStatus: "InService", Version: 1, InstanceType: "ml.m5.large", InstanceCount: 1}, nil
}

// intervals records the intervals the observe loop announces when it slows down.
type intervals struct {
	mu  sync.Mutex
	got []time.Duration
}

func (h *intervals) Enabled(context.Context, slog.Level) bool { return true }
func (h *intervals) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *intervals) WithGroup(string) slog.Handler            { return h }
func (h *intervals) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "interval" {
			h.mu.Lock()
			h.got = append(h.got, a.Value.Duration())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

// TestObserveBacksOffWhenThrottled: three throttled rounds double the interval up to its cap
// (10ms → 20, 40, 40); then the endpoint is read and its observation reaches the server.
func TestObserveBacksOffWhenThrottled(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	reader := &throttledReader{throttles: 3}
	log := &intervals{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Observe(ctx, agent.ObserveOptions{Clients: []*releases.Client{e.Client("dev")}, Endpoints: reader,
			Interval: 10 * time.Millisecond, MaxInterval: 40 * time.Millisecond, Logger: slog.New(log)})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, _, err := e.Store.Observation(context.Background(), "dev", "abalone")
		if err != nil {
			t.Fatal(err)
		}
		if o != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no observation of dev/abalone reached the server within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Observe: %v", err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	if len(log.got) != len(want) {
		t.Fatalf("slowed down to %v, want %v", log.got, want)
	}
	for i := range want {
		if log.got[i] != want[i] {
			t.Fatalf("slowed down to %v, want %v", log.got, want)
		}
	}
}
