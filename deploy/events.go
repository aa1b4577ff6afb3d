package deploy

import (
	"errors"
	"fmt"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Event is one progress note of an operation.
type Event struct {
	Time time.Time `json:"time"`
	// Phase groups events as the release server does.
	Phase          releases.Phase `json:"phase"`
	Message        string         `json:"message"`
	Endpoint       string         `json:"endpoint,omitempty"`
	EndpointStatus string         `json:"endpoint_status,omitempty"`
	// Elapsed is the time since the wait began, for wait events.
	Elapsed time.Duration `json:"elapsed,omitempty"`
	// Tick marks a heartbeat while waiting with no change: a live status line redraws it, logs
	// and the release server skip it.
	Tick bool `json:"tick,omitempty"`
}

// PollSchedule is how a wait polls: the first check is immediate, then it sleeps Initial, growing
// by Factor after each check up to Max.
type PollSchedule struct {
	Initial time.Duration `json:"initial"`
	Max     time.Duration `json:"max"`
	Factor  float64       `json:"factor"`
}

// DefaultPoll suits AWS, where endpoint changes take minutes (the SDK's own waiter polls every
// 30 s, which makes short updates look slow).
var DefaultPoll = PollSchedule{Initial: 250 * time.Millisecond, Max: 10 * time.Second, Factor: 1.5}

// LocalPoll suits the local SageMaker, where changes take milliseconds.
var LocalPoll = PollSchedule{Initial: time.Millisecond, Max: 100 * time.Millisecond, Factor: 2}

// next returns the sleep after one of cur.
func (p PollSchedule) next(cur time.Duration) time.Duration {
	if cur <= 0 {
		return p.Initial
	}
	f := p.Factor
	if f < 1 {
		f = 1
	}
	n := time.Duration(float64(cur) * f)
	if p.Max > 0 && n > p.Max {
		n = p.Max
	}
	return n
}

// Errors callers can test for with errors.Is; the error texts say what happened and what to do.
var (
	// ErrGroupNotFound: the model package group does not exist.
	ErrGroupNotFound = errors.New("model package group not found")
	// ErrNoApprovedVersion: the group has no Approved version (or the pinned one is not Approved).
	ErrNoApprovedVersion = errors.New("no approved version")
	// ErrVersionNotFound: a pinned version does not exist.
	ErrVersionNotFound = errors.New("version not found")
	// ErrEndpointNotFound: the environment has no endpoint.
	ErrEndpointNotFound = errors.New("endpoint not found")
	// ErrRolledBack: SageMaker rolled the update back; the previous configuration still serves.
	ErrRolledBack = errors.New("update rolled back")
	// ErrDeployFailed: the endpoint went to Failed.
	ErrDeployFailed = errors.New("deployment failed")
	// ErrBusy: another deployment kept the endpoint busy longer than the lock timeout.
	ErrBusy = errors.New("endpoint busy with another deployment")
	// ErrVerification: the new version answered the verification request wrongly.
	ErrVerification = errors.New("verification failed")
	// ErrTimeout: the endpoint did not reach a final state within the timeout.
	ErrTimeout = errors.New("timed out")
	// ErrNothingToRollBack: no earlier version is known for the endpoint.
	ErrNothingToRollBack = errors.New("nothing to roll back to")
	// ErrInvalid: the request itself is wrong (a missing or malformed field).
	ErrInvalid = errors.New("invalid request")
	// ErrRejected: the release was rejected at the release server's approval gate.
	ErrRejected = errors.New("release rejected")
	// ErrNoCredentials: the AWS SDK's default chain found no credentials.
	ErrNoCredentials = errors.New("no AWS credentials")
)

// Reason returns the error of err's chain that carries one of the kinds above with a full sentence
// for the user — without the SDK's "operation error ..., get identity: ..." wrapping around it —
// or err itself when there is none.
func Reason(err error) error {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke
	}
	return err
}

// kindError is an error of one of the kinds above whose text is a full sentence of its own.
type kindError struct {
	kind  error
	msg   string
	cause error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.cause }

// errorf returns an error of kind with a formatted message; a %w in format names its cause.
func errorf(kind error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &kindError{kind: kind, msg: err.Error(), cause: errors.Unwrap(err)}
}

// FailureReason classifies err for a finished release, as the release server and --output json
// show it: the model lost (SageMaker rolled back, verification failed, the endpoint failed), the
// clock ran out, or sagedeploy itself could not carry the release out. Empty for nil.
func FailureReason(err error) releases.Reason {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRolledBack):
		return releases.ReasonRolledBack
	case errors.Is(err, ErrVerification):
		return releases.ReasonVerificationFailed
	case errors.Is(err, ErrTimeout):
		return releases.ReasonTimedOut
	case errors.Is(err, ErrDeployFailed):
		return releases.ReasonFailed
	case errors.Is(err, ErrRejected):
		return releases.ReasonRejected
	}
	return releases.ReasonErrored
}
