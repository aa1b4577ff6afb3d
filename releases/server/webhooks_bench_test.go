package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// BenchmarkWebhookDelivery: events queued in the outbox (one transaction each) until a local
// receiver has accepted every signed delivery: the deliverer's throughput on SQLite.
func BenchmarkWebhookDelivery(b *testing.B) {
	key := make([]byte, 32)
	e := servertest.Start(b, servertest.Options{Server: server.Options{Webhooks: server.WebhookOptions{Key: key, Poll: 5 * time.Millisecond}}})
	got := make(chan struct{}, 4096)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- struct{}{} }))
	defer recv.Close()
	ctx := context.Background()
	if _, _, err := server.CreateWebhook(ctx, e.Store, key, server.WebhookSpec{Name: "bench", URL: recv.URL, Events: "drift.detected"}, "bench"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := e.Store.NotifyDrift(ctx, "dev", "abalone", "bench", nil); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		<-got
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
