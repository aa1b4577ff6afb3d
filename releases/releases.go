// Package releases holds the release domain — environments, components, versions, releases with
// their progress events, and the commands the dashboard sends to agents — with the rules of their
// lifecycle (pure functions that refuse with a coded *Error), and the HTTP client that the
// deployer and the agent use to talk to a release server.
package releases

import "time"

// Kind says what a release does to an environment.
type Kind string

// Release kinds.
const (
	KindDeploy   Kind = "deploy"   // a new version from the registry
	KindPromote  Kind = "promote"  // the version an upstream environment runs
	KindRestore  Kind = "restore"  // a chosen earlier version, by re-pointing at the config that served it
	KindRollback Kind = "rollback" // the version served before the current one, because the current one misbehaves
	KindScale    Kind = "scale"    // instance count only
)

// Status is where a release is in its life: pending → running → succeeded | failed | canceled.
type Status string

// Release statuses.
const (
	StatusPending   Status = "pending" // waiting for an approval or for an agent
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled" // rejected at the gate, or abandoned
)

// Final reports whether no further change of status can happen.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Environment is a named stage such as dev or prod.
type Environment struct {
	Name    string          `json:"name"`
	Kind    EnvironmentKind `json:"kind"`
	Region  string          `json:"region,omitempty"`
	Account string          `json:"account,omitempty"`
	// EndpointURL is the local SageMaker's URL for kind "local"; console links point there.
	EndpointURL string `json:"endpoint_url,omitempty"`
	// RequiresApproval makes promotions and deploys into this environment wait for an approval.
	RequiresApproval bool `json:"requires_approval"`
	// AllowSelfApproval lets the user who requested a release approve it too; off by default, so
	// a gate needs four eyes.
	AllowSelfApproval bool `json:"allow_self_approval"`
	// Position orders environments along the pipeline (dev 0, staging 1, prod 2, ...).
	Position int `json:"position"`
}

// Version is one model package version of a model.
type Version struct {
	ModelPackageARN string `json:"model_package_arn"`
	Number          int    `json:"number"`
	Description     string `json:"description,omitempty"`
	PipelineID      string `json:"pipeline_id,omitempty"`
	ProjectID       string `json:"project_id,omitempty"`
	Commit          string `json:"commit,omitempty"`
}

// Trigger says who or what started a release.
type Trigger struct {
	Type       TriggerType `json:"type"`
	User       string      `json:"user,omitempty"`
	PipelineID string      `json:"pipeline_id,omitempty"`
	ProjectID  string      `json:"project_id,omitempty"`
}

// Component is what the Releases page calls a model in an environment.
type Component struct {
	Environment    string    `json:"environment"`
	Model          string    `json:"model"`
	EndpointName   string    `json:"endpoint_name"`
	CurrentVersion *Version  `json:"current_version,omitempty"`
	InstanceType   string    `json:"instance_type,omitempty"`
	InstanceCount  int       `json:"instance_count"`
	EndpointStatus string    `json:"endpoint_status,omitempty"` // SageMaker's EndpointStatus
	ConsoleURL     string    `json:"console_url,omitempty"`
	RestoreEnabled bool      `json:"restore_enabled"`
	ScaleEnabled   bool      `json:"scale_enabled"`
	LastReleaseID  string    `json:"last_release_id,omitempty"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Event is one progress note of a release, in the order the deployer reported it.
type Event struct {
	Seq            int       `json:"seq"` // assigned by the server, 1, 2, 3 … per release
	Time           time.Time `json:"time"`
	Phase          Phase     `json:"phase"`
	Message        string    `json:"message"`
	EndpointStatus string    `json:"endpoint_status,omitempty"`
}

// Release is one attempt to make an environment serve a version.
type Release struct {
	ID                 string   `json:"id"`
	Environment        string   `json:"environment"`
	Model              string   `json:"model"`
	Kind               Kind     `json:"kind"`
	Status             Status   `json:"status"`
	Version            Version  `json:"version"`
	PreviousVersion    *Version `json:"previous_version,omitempty"`
	EndpointName       string   `json:"endpoint_name,omitempty"`
	EndpointConfigName string   `json:"endpoint_config_name,omitempty"`
	InstanceType       string   `json:"instance_type,omitempty"`
	InstanceCount      int      `json:"instance_count,omitempty"`
	Trigger            Trigger  `json:"trigger"`
	// Reason classifies why a finished release did not succeed; FailureReason says it in words.
	Reason        Reason     `json:"reason,omitempty"`
	FailureReason string     `json:"failure_reason,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	// ApprovedBy / RejectedBy name the user who decided at the environment's gate.
	ApprovedBy string `json:"approved_by,omitempty"`
	RejectedBy string `json:"rejected_by,omitempty"`
	// NeedsApproval is set when the release was created into a gated environment.
	NeedsApproval bool `json:"needs_approval"`
	// CommandID names the dashboard command that created the release, if any.
	CommandID string  `json:"command_id,omitempty"`
	Events    []Event `json:"events,omitempty"` // filled on single-release reads
	// HeartbeatSeconds, in the server's answers, is how often a deployer that waits should send a
	// heartbeat so that the server's no-progress timeout never ends a live release.
	HeartbeatSeconds float64 `json:"heartbeat_seconds,omitempty"`
}

// ReleaseStart is what the deployer reports when it begins a release.
type ReleaseStart struct {
	// ID, when set, names a release the server already created for a dashboard command; the
	// deployer then reports into it instead of creating a new one.
	ID                 string   `json:"id,omitempty"`
	Environment        string   `json:"environment"`
	Model              string   `json:"model"`
	Kind               Kind     `json:"kind"`
	Version            Version  `json:"version"`
	PreviousVersion    *Version `json:"previous_version,omitempty"`
	EndpointName       string   `json:"endpoint_name,omitempty"`
	EndpointConfigName string   `json:"endpoint_config_name,omitempty"`
	InstanceType       string   `json:"instance_type,omitempty"`
	InstanceCount      int      `json:"instance_count,omitempty"`
	Trigger            Trigger  `json:"trigger"`
	// RestoreEnabled and ScaleEnabled carry the orb's enable_restore_version and
	// enable_scaling_component: whether the dashboard offers those controls on the component.
	RestoreEnabled *bool `json:"restore_enabled,omitempty"`
	ScaleEnabled   *bool `json:"scale_enabled,omitempty"`
}

// ReleaseFinish is what the deployer reports when a release ends.
type ReleaseFinish struct {
	Status        Status `json:"status"`           // succeeded, failed or canceled
	Reason        Reason `json:"reason,omitempty"` // required when Status is failed
	FailureReason string `json:"failure_reason,omitempty"`
	// ServingVersion is the version the endpoint serves afterwards: the new one on success, the
	// old one when SageMaker or the deployer rolled back. Nil when unknown.
	ServingVersion *Version `json:"serving_version,omitempty"`
	// EndpointModifiedAt is SageMaker's LastModifiedTime of the endpoint when the deployer saw it
	// serve ServingVersion. Finishes of releases of one component can arrive out of order; the
	// server keeps the state of the one that saw the endpoint last. Nil when unknown.
	EndpointModifiedAt *time.Time `json:"endpoint_modified_at,omitempty"`
	EndpointStatus     string     `json:"endpoint_status,omitempty"`
	InstanceType       string     `json:"instance_type,omitempty"`
	InstanceCount      int        `json:"instance_count,omitempty"`
	// Events are progress events the deployer had not sent yet when the release ended: the server
	// stores them, in order, before the outcome and in the same commit, which saves the deployer a
	// round trip at the end of every release. At most MaxEventBatch.
	Events []Event `json:"events,omitempty"`
}

// MaxEventBatch bounds the events one request carries: a batch of events, or those of a finish.
const MaxEventBatch = 500

// CommandKind is what a dashboard user asked an agent to do.
type CommandKind string

// Command kinds.
const (
	CommandRestore  CommandKind = "restore"  // serve Version again
	CommandRollback CommandKind = "rollback" // serve the version before the current one
	CommandScale    CommandKind = "scale"    // set the instance count to Instances
	CommandPromote  CommandKind = "promote"  // serve what FromEnvironment serves
)

// Command is work for an agent, created by the server from a dashboard or API request. Each
// command has a release (ReleaseID) the agent reports its progress into.
type Command struct {
	ID              string      `json:"id"`
	Kind            CommandKind `json:"kind"`
	Environment     string      `json:"environment"`
	Model           string      `json:"model"`
	Version         int         `json:"version,omitempty"`   // restore
	Instances       int         `json:"instances,omitempty"` // scale
	FromEnvironment string      `json:"from_environment,omitempty"`
	ReleaseID       string      `json:"release_id"`
	RequestedBy     string      `json:"requested_by"`
	CreatedAt       time.Time   `json:"created_at"`
	// State is where the command is in its delivery; the release lifecycle moves it.
	State CommandState `json:"state"`
}

// CommandResult is what the agent reports when a command ends.
type CommandResult struct {
	Status  Status `json:"status"` // succeeded or failed
	Message string `json:"message,omitempty"`
}
