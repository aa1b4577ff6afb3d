package cloudwatch_test

import (
	"context"
	"testing"
	"time"

	localcw "github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// BenchmarkInvocationSink measures what the runtime pays per invocation to emit its six
// AWS/SageMaker metrics, with every core recording on the same variant (the worst contention).
// An abalone invocation costs ~100 µs end to end here (bench/serving), so tens of nanoseconds
// are far inside the 5% budget.
//
//	go test -run '^$' -bench InvocationSink ./localsm/cloudwatch
func BenchmarkInvocationSink(b *testing.B) {
	svc, err := localcw.New(context.Background(), localcw.Options{EvaluationInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(svc.Close)
	inv := spec.Invocation{Start: time.Now(), Endpoint: "abalone", Variant: "AllTraffic", Status: 200,
		ModelLatency: 80 * time.Microsecond, Total: 100 * time.Microsecond, Instances: 2}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			svc.Invocation(inv)
		}
	})
}
