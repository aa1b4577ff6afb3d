package releases

// EnvironmentKind says which SageMaker an environment's endpoints live in.
type EnvironmentKind string

// Environment kinds.
const (
	EnvironmentSageMaker EnvironmentKind = "sagemaker" // Amazon SageMaker in an AWS account
	EnvironmentLocal     EnvironmentKind = "local"     // sagedeploy local
)

// Valid reports whether k is a known kind.
func (k EnvironmentKind) Valid() bool { return k == EnvironmentSageMaker || k == EnvironmentLocal }

// TriggerType says what kind of actor started a release.
type TriggerType string

// Trigger types.
const (
	TriggerPipeline TriggerType = "pipeline" // a CI job
	TriggerCLI      TriggerType = "cli"      // a person running sagedeploy
	TriggerUser     TriggerType = "user"     // a dashboard command, executed by an agent
	TriggerAgent    TriggerType = "agent"    // the agent on its own account
)

// Phase groups a release's progress events by the step of the deploy that reported them.
type Phase string

// Event phases.
const (
	PhaseResolve        Phase = "resolve"
	PhasePreflight      Phase = "preflight"
	PhaseRelease        Phase = "release" // where the release is shown
	PhaseRegister       Phase = "register"
	PhaseModel          Phase = "model"
	PhaseEndpointConfig Phase = "endpoint-config"
	PhaseEndpoint       Phase = "endpoint"
	PhaseWait           Phase = "wait"
	PhaseTraffic        Phase = "traffic" // a blue/green traffic shift
	PhaseBake           Phase = "bake"    // traffic bakes on a step, alarms watched
	PhaseVerify         Phase = "verify"
	PhaseRollback       Phase = "rollback"
	PhaseScale          Phase = "scale"
	PhaseApproval       Phase = "approval"
)

// Reason classifies why a finished release did not succeed. Like Kargo's Failed and Errored, it
// tells a release the model lost (SageMaker rolled back, verification failed) from one the tool
// lost (an error of sagedeploy or of its access to AWS), so people know whom to look at.
type Reason string

// Failure reasons.
const (
	ReasonRolledBack         Reason = "rolled-back"         // SageMaker rolled the update back; the previous version serves
	ReasonVerificationFailed Reason = "verification-failed" // the new version answered the verification wrongly
	ReasonTimedOut           Reason = "timed-out"           // no final endpoint state within the timeout, or the server's no-progress timeout
	ReasonFailed             Reason = "failed"              // SageMaker reported the endpoint Failed
	ReasonErrored            Reason = "errored"             // sagedeploy could not carry the release out (AWS access, bad input, a crash)
	ReasonRejected           Reason = "rejected"            // rejected at the approval gate
	ReasonCanceled           Reason = "canceled"            // canceled by a person or superseded before it ran
)

// Text is the reason as the dashboard and the CLI say it.
func (r Reason) Text() string {
	switch r {
	case ReasonRolledBack:
		return "rolled back by SageMaker"
	case ReasonVerificationFailed:
		return "verification failed"
	case ReasonTimedOut:
		return "timed out"
	case ReasonFailed:
		return "endpoint failed"
	case ReasonErrored:
		return "errored in sagedeploy"
	case ReasonRejected:
		return "rejected at the gate"
	case ReasonCanceled:
		return "canceled"
	}
	return string(r)
}

// CommandState is where a dashboard command is in its delivery: it waits at the gate or for an
// agent, is taken by an agent, and ends with its release.
type CommandState string

// Command states.
const (
	CommandAwaitingApproval CommandState = "awaiting_approval"
	CommandQueued           CommandState = "queued"
	CommandDispatched       CommandState = "dispatched"
	CommandSucceeded        CommandState = "succeeded"
	CommandFailed           CommandState = "failed"
	CommandCanceled         CommandState = "canceled"
)

// Final reports whether the command has ended.
func (s CommandState) Final() bool {
	return s == CommandSucceeded || s == CommandFailed || s == CommandCanceled
}
