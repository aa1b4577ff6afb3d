// Package spec is the contract between the local SageMaker's control plane and its serving layer:
// what an endpoint deployment looks like, and what the control plane may ask of the servers.
// It holds types and interfaces only, so that control and runtime depend on it and not on each other.
package spec

import (
	"context"
	"io"
	"time"
)

// Container is one container of a SageMaker model, as CreateModel described it.
type Container struct {
	// Image is the inference image URI, e.g. an ECR sagemaker-xgboost URI or a user's own image.
	Image string
	// ModelDataURL is the s3:// URL of the model.tar.gz artifact; empty when the model has none.
	ModelDataURL string
	// Environment is passed to the serving process.
	Environment map[string]string
	// ModelPackageName is set when the container was created from a registry model package; the
	// control plane resolves it to Image and ModelDataURL before handing the container over.
	ModelPackageName string
}

// Variant is one production variant of an endpoint configuration, with its model resolved.
type Variant struct {
	Name          string
	ModelName     string
	Containers    []Container
	InstanceType  string
	InstanceCount int
	// Weight is the variant's InitialVariantWeight; traffic is split in proportion to weights.
	Weight float64
}

// CapacitySize is SageMaker's CapacitySize: Type is "INSTANCE_COUNT" or "CAPACITY_PERCENT".
type CapacitySize struct {
	Type  string
	Value int
}

// Strategy is the blue/green traffic shift SageMaker's DeploymentConfig asks for.
// A nil *Strategy means all at once with no waits.
type Strategy struct {
	// Type is "ALL_AT_ONCE", "CANARY" or "LINEAR".
	Type string
	// Canary is the first step's size for CANARY; Linear the size of every step for LINEAR.
	Canary *CapacitySize
	Linear *CapacitySize
	// WaitInterval is how long traffic bakes after each shift.
	WaitInterval time.Duration
	// TerminationWait is how long old servers keep running after all traffic moved.
	TerminationWait time.Duration
	// MaximumExecutionTimeout bounds the whole shift.
	MaximumExecutionTimeout time.Duration
}

// Deployment is everything needed to make an endpoint serve an endpoint configuration.
type Deployment struct {
	// Endpoint is the endpoint's name. The control plane keeps regions apart, but lets one
	// endpoint name live in one region at a time, so that the serving layer and the runtime's
	// invocation URL (/endpoints/NAME/invocations) know endpoints by name alone.
	Endpoint string
	Config   string
	Variants []Variant
	Strategy *Strategy
}

// Event is a progress note from the serving layer, logged by the control plane.
type Event struct {
	Time    time.Time
	Message string
	// Status, when set, is the blue/green stage the note begins, as DescribeEndpoint names a
	// variant's status during a deployment: StageActivatingTraffic or StageBaking.
	Status string
}

// Blue/green stages of a deployment (SageMaker's VariantStatus values).
const (
	StageActivatingTraffic = "ActivatingTraffic"
	StageBaking            = "Baking"
)

// VariantUpdate is one entry of UpdateEndpointWeightsAndCapacities. Nil fields stay as they are.
type VariantUpdate struct {
	VariantName   string
	Weight        *float64
	InstanceCount *int
}

// VariantState is what the serving layer reports about a running variant.
type VariantState struct {
	VariantName          string
	Weight               float64
	CurrentInstanceCount int
}

// Serving runs the model servers behind endpoints. Implemented by localsm/runtime.
type Serving interface {
	// Deploy makes dep.Endpoint serve dep. If the endpoint already serves something, the new
	// servers start and pass health checks while the old ones keep serving; traffic then moves as
	// dep.Strategy says, and old servers drain in-flight requests before they stop. It returns once
	// all traffic is on the new servers. On error (a model that cannot be fetched, read or started)
	// the previous deployment keeps serving untouched, and the error text is fit to be the
	// endpoint's FailureReason. progress may be nil.
	Deploy(ctx context.Context, dep Deployment, progress func(Event)) error
	// UpdateVariants changes weights and instance counts of a serving endpoint live.
	UpdateVariants(ctx context.Context, endpoint string, updates []VariantUpdate) error
	// Variants reports the live state of an endpoint's variants; ok is false when it serves nothing.
	Variants(endpoint string) (states []VariantState, ok bool)
	// Remove stops every server of the endpoint after draining in-flight requests.
	Remove(ctx context.Context, endpoint string) error
	// Close stops every server of every endpoint.
	Close(ctx context.Context) error
}

// Artifacts reads model artifacts by URL. Implemented by localsm/s3 over its disk store.
type Artifacts interface {
	// Open returns the object at an s3://bucket/key URL. The error says which bucket or key is
	// missing, in words fit for a FailureReason.
	Open(ctx context.Context, url string) (io.ReadCloser, error)
}
