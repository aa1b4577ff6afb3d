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
	// Serverless is set for a serverless variant (ServerlessConfig); it then runs one instance
	// whatever InstanceCount says, and takes at most MaxConcurrency invocations at once.
	Serverless *Serverless
}

// Serverless is a production variant's ServerlessConfig.
type Serverless struct {
	MemorySizeInMB         int
	MaxConcurrency         int
	ProvisionedConcurrency int
}

// DataCapture is an endpoint configuration's DataCaptureConfig, checked by the control plane.
type DataCapture struct {
	// Enabled is EnableCapture (true unless the configuration says false).
	Enabled bool
	// SamplingPercentage is InitialSamplingPercentage: the share of invocations captured, 0-100.
	SamplingPercentage int
	// DestinationS3URI is where capture files go: DEST/ENDPOINT/VARIANT/yyyy/mm/dd/hh/*.jsonl.
	DestinationS3URI string
	// Input and Output say what CaptureOptions asked for.
	Input, Output bool
	// CSVContentTypes and JSONContentTypes (CaptureContentTypeHeader) are captured as text with
	// encoding CSV or JSON; any other content type is captured as BASE64.
	CSVContentTypes, JSONContentTypes []string
}

// Async is an endpoint configuration's AsyncInferenceConfig.
type Async struct {
	// S3OutputPath receives INFERENCE_ID.out for each answered request; S3FailurePath (when set)
	// INFERENCE_ID-error.out for each failed one.
	S3OutputPath  string
	S3FailurePath string
	// MaxConcurrentInvocationsPerInstance bounds the invocations sent to one instance at once;
	// 0 means SageMaker's default of 4.
	MaxConcurrentInvocationsPerInstance int
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
	// Region and Endpoint name the endpoint: the same name may serve in two regions, and the
	// runtime tells them apart by the region an invocation is signed for. An empty Region is the
	// serving layer's default region.
	Region   string
	Endpoint string
	Config   string
	Variants []Variant
	Strategy *Strategy
	// DataCapture and Async are nil when the configuration has none.
	DataCapture *DataCapture
	Async       *Async
}

// ID is the endpoint the deployment is for.
func (d Deployment) ID() EndpointID { return EndpointID{Region: d.Region, Name: d.Endpoint} }

// EndpointID names an endpoint in the serving layer: its region ("" for the default region)
// and its name.
type EndpointID struct {
	Region string
	Name   string
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
	UpdateVariants(ctx context.Context, endpoint EndpointID, updates []VariantUpdate) error
	// Variants reports the live state of an endpoint's variants; ok is false when it serves nothing.
	Variants(endpoint EndpointID) (states []VariantState, ok bool)
	// Remove stops every server of the endpoint after draining in-flight requests.
	Remove(ctx context.Context, endpoint EndpointID) error
	// Close stops every server of every endpoint.
	Close(ctx context.Context) error
}

// Objects reads and writes S3 objects by URL: async inference inputs and results, capture files.
// Implemented over localsm/s3.
type Objects interface {
	// Get returns the object at an s3://bucket/key URL; the error says which bucket or key is
	// missing.
	Get(ctx context.Context, url string) ([]byte, error)
	// Put stores body at an s3://bucket/key URL, replacing what was there. The error says which
	// bucket or key could not be written.
	Put(ctx context.Context, url string, body []byte, contentType string) error
}

// Artifacts reads model artifacts by URL. Implemented by localsm/s3 over its disk store.
type Artifacts interface {
	// Open returns the object at an s3://bucket/key URL. The error says which bucket or key is
	// missing, in words fit for a FailureReason.
	Open(ctx context.Context, url string) (io.ReadCloser, error)
}
