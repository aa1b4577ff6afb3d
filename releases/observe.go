package releases

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Observation is what an agent saw on a component's endpoint: read from SageMaker itself
// (DescribeEndpoint, its configuration, its tags), not from what sagedeploy reported.
type Observation struct {
	Environment        string `json:"environment"`
	Model              string `json:"model"`
	EndpointName       string `json:"endpoint_name"`
	Missing            bool   `json:"missing,omitempty"` // the endpoint does not exist
	EndpointStatus     string `json:"endpoint_status,omitempty"`
	EndpointConfigName string `json:"endpoint_config_name,omitempty"`
	Version            int    `json:"version,omitempty"` // 0: unknown (a model not made by sagedeploy)
	InstanceType       string `json:"instance_type,omitempty"`
	InstanceCount      int    `json:"instance_count"`
	// AutoscaleMin and AutoscaleMax are the range Application Auto Scaling keeps the instances
	// in (0 when the endpoint is not autoscaled): counts within it are not drift.
	AutoscaleMin int       `json:"autoscale_min,omitempty"`
	AutoscaleMax int       `json:"autoscale_max,omitempty"`
	ObservedAt   time.Time `json:"observed_at"`
}

// Difference is one way an endpoint differs from what sagedeploy recorded.
type Difference struct {
	Field    string `json:"field"` // version, config, instances, instance_type, status, endpoint
	Recorded string `json:"recorded"`
	Observed string `json:"observed"`
}

// String says the difference as the dashboard and the CLI do.
func (d Difference) String() string {
	return fmt.Sprintf("%s %s → %s", d.Field, cmpOrDash(d.Recorded), cmpOrDash(d.Observed))
}

func cmpOrDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// Drift is a component whose endpoint was changed outside sagedeploy.
type Drift struct {
	Environment string       `json:"environment"`
	Model       string       `json:"model"`
	Differences []Difference `json:"differences"`
	Observed    Observation  `json:"observed"`
	Since       time.Time    `json:"since"` // first observation that differed
}

// Summary is the drift in one line: "changed outside sagedeploy: version 2 → 3, instances 1 → 2".
func (d Drift) Summary() string {
	parts := make([]string, len(d.Differences))
	for i, x := range d.Differences {
		parts[i] = x.String()
	}
	return "changed outside sagedeploy: " + strings.Join(parts, ", ")
}

// Recorded is what sagedeploy last recorded for a component, the side a drift check compares
// an observation with.
type Recorded struct {
	Version            int
	EndpointConfigName string // "" when unknown: not compared
	InstanceType       string
	InstanceCount      int
	EndpointStatus     string
}

// Compare lists how o differs from rec. A component with a release in progress is not compared
// (its endpoint is meant to be changing), nor are fields either side does not know.
func Compare(rec Recorded, o Observation) []Difference {
	if o.Missing {
		return []Difference{{Field: "endpoint", Recorded: "exists", Observed: "deleted"}}
	}
	var out []Difference
	add := func(field, r, ob string) {
		if r != "" && ob != "" && r != ob {
			out = append(out, Difference{Field: field, Recorded: r, Observed: ob})
		}
	}
	add("version", itoaPos(rec.Version), itoaPos(o.Version))
	add("config", rec.EndpointConfigName, o.EndpointConfigName)
	add("instance_type", rec.InstanceType, o.InstanceType)
	if !o.autoscaledWithin(o.InstanceCount) {
		add("instances", itoaPos(rec.InstanceCount), itoaPos(o.InstanceCount))
	}
	// Only a settled status counts: Updating after a console change shows in config or instances
	// once it settles, and would flap otherwise.
	if settled(o.EndpointStatus) && settled(rec.EndpointStatus) {
		add("status", rec.EndpointStatus, o.EndpointStatus)
	}
	return out
}

// autoscaledWithin reports whether Application Auto Scaling manages the instances and n is in
// its range: then a count other than the recorded one is the scaler's doing, not drift.
func (o Observation) autoscaledWithin(n int) bool {
	return o.AutoscaleMax > 0 && n >= o.AutoscaleMin && n <= o.AutoscaleMax
}

func settled(status string) bool {
	return status == "InService" || status == "Failed" || status == "OutOfService"
}

func itoaPos(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// MetricPoint is one value of an endpoint metric in one period, as read from CloudWatch.
type MetricPoint struct {
	Metric string    `json:"metric"` // Invocations, Invocation4XXErrors, Invocation5XXErrors, ModelLatencyP50, ModelLatencyP99
	Time   time.Time `json:"time"`   // start of the period
	Value  float64   `json:"value"`
}

// Metrics the agent reads per component; latency is in microseconds as SageMaker reports it.
const (
	MetricInvocations = "Invocations"
	Metric4XX         = "Invocation4XXErrors"
	Metric5XX         = "Invocation5XXErrors"
	MetricLatencyP50  = "ModelLatencyP50"
	MetricLatencyP99  = "ModelLatencyP99"
)

// MetricsReport is what an agent sends for one component: points over a window.
type MetricsReport struct {
	Environment string        `json:"environment"`
	Model       string        `json:"model"`
	Points      []MetricPoint `json:"points"`
}
