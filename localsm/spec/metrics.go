package spec

import "time"

// Invocation is what the serving layer reports about one invocation it answered.
type Invocation struct {
	// Start is when the request arrived.
	Start    time.Time
	Endpoint string
	Variant  string
	// Status is the HTTP status the model's container answered with; 0 when no container
	// answered (it died or timed out).
	Status int
	// ModelLatency is the time spent in the model's containers; Total the whole request.
	ModelLatency time.Duration
	Total        time.Duration
	// Instances is how many instances the variant had when it was routed.
	Instances int
}

// MetricsSink receives every invocation's figures. Implemented by localsm/cloudwatch, which
// turns them into AWS/SageMaker metrics. It is called on the serving path: it must not block.
type MetricsSink interface {
	Invocation(inv Invocation)
}
