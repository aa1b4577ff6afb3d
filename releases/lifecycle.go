package releases

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// The release lifecycle: pure functions that take a release (or a command's state) as it is, with
// who acts and when, and either change it as the rules allow or return an *Error saying why not.
// The store loads, calls one of them and saves in one transaction; the server maps the codes to
// HTTP statuses. No I/O happens here, so every rule is tested by a table.

// Gated reports whether a release of kind k waits at env's gate: deploys and promotions bring a
// new version into the environment; restores and scaling are the emergency tools and do not wait.
func Gated(env Environment, k Kind) bool {
	return env.RequiresApproval && (k == KindDeploy || k == KindPromote)
}

// ValidKind reports whether k is a release kind.
func ValidKind(k Kind) bool {
	switch k {
	case KindDeploy, KindPromote, KindRestore, KindRollback, KindScale:
		return true
	}
	return false
}

// AwaitingApproval reports whether the release waits at its environment's gate.
func (r Release) AwaitingApproval() bool {
	return r.Status == StatusPending && r.NeedsApproval && r.ApprovedBy == "" && r.RejectedBy == ""
}

// Check refuses a start report that no release could accept, naming what is wrong.
func (st ReleaseStart) Check() error {
	var miss []string
	for _, f := range []struct{ name, value string }{{"environment", st.Environment}, {"model", st.Model}, {"kind", string(st.Kind)}} {
		if f.value == "" {
			miss = append(miss, f.name)
		}
	}
	if len(miss) > 0 {
		return Errorf(EINVALID, "the release start is missing %s; for example %s", strings.Join(miss, ", "), `{"environment": "dev", "model": "abalone", "kind": "deploy", "version": {"number": 3}}`)
	}
	if err := CheckModelName(st.Model); err != nil {
		return err
	}
	if err := CheckEnvironmentName(st.Environment); err != nil {
		return err
	}
	if !ValidKind(st.Kind) {
		return Errorf(EINVALID, "release kind %q is not valid: use deploy, promote, restore, rollback or scale", st.Kind)
	}
	if st.ID == "" && st.Kind != KindScale && st.Version.Number <= 0 {
		return Errorf(EINVALID, "the %s of %s in %s names no version: set version.number (the model package version), e.g. {\"version\": {\"number\": 3}}", st.Kind, st.Model, st.Environment)
	}
	if st.Version.Number < 0 || st.InstanceCount < 0 {
		return Errorf(EINVALID, "version number and instance count cannot be negative")
	}
	return nil
}

// Check refuses a finish report that cannot end any release.
func (f ReleaseFinish) Check() error {
	switch {
	case f.Status == "":
		return Errorf(EINVALID, "the release finish is missing status; for example %s", `{"status": "succeeded", "serving_version": {"number": 3}}`)
	case !f.Status.Final():
		return Errorf(EINVALID, "status %q does not end a release: use succeeded, failed or canceled", f.Status)
	case f.Reason != "" && !f.Reason.Valid():
		return Errorf(EINVALID, "reason %q is not valid: use rolled-back, verification-failed, timed-out, failed, errored or canceled", f.Reason)
	case f.InstanceCount < 0:
		return Errorf(EINVALID, "instance count cannot be negative")
	case len(f.Events) > MaxEventBatch:
		return Errorf(EINVALID, "the release finish carries %d events; it takes at most %d: send the ones before them with POST /api/v1/releases/{id}/events", len(f.Events), MaxEventBatch)
	}
	for i, e := range f.Events {
		if strings.TrimSpace(e.Message) == "" {
			return Errorf(EINVALID, "event %d of the release finish is missing message; nothing was recorded; for example %s", i+1, `{"status": "succeeded", "events": [{"phase": "verify", "message": "verified: the endpoint answered the sample"}]}`)
		}
	}
	return nil
}

// AlreadyServes reports whether the release proposes the version its target serves already (as
// the deployer reported it): approving it would only confirm the status quo, so no gate holds it.
func AlreadyServes(r Release) bool {
	return r.PreviousVersion != nil && r.Version.Number > 0 && r.PreviousVersion.Number == r.Version.Number
}

// Open starts a release a deployer reports on its own: pending at the gate when env's gate holds
// releases of its kind and the release brings a version the environment does not serve yet,
// running from now otherwise.
func Open(r *Release, env Environment, now time.Time) {
	r.NeedsApproval = Gated(env, r.Kind) && !AlreadyServes(*r)
	r.Status, r.StartedAt = StatusPending, nil
	if !r.NeedsApproval {
		r.Status, r.StartedAt = StatusRunning, &now
	}
}

// Continue applies a deployer's start report to a release the server created for a command: the
// report fills in what the deployer resolved, and the release begins running unless it still
// waits at the gate. started says whether it began with this report.
func Continue(r *Release, st ReleaseStart, now time.Time) (started bool, err error) {
	if r.Environment != st.Environment || r.Model != st.Model {
		return false, Errorf(ECONFLICT, "release %s is for model %s in environment %s, but the report names model %s in environment %s", r.ID, r.Model, r.Environment, st.Model, st.Environment)
	}
	if r.Status.Final() {
		return false, Errorf(ECONFLICT, "release %s already ended (%s); start a new release instead", r.ID, r.Status)
	}
	if st.Version.Number > 0 || st.Version.ModelPackageARN != "" {
		r.Version = st.Version
	}
	if st.PreviousVersion != nil {
		r.PreviousVersion = st.PreviousVersion
	}
	r.EndpointName = cmp.Or(st.EndpointName, r.EndpointName)
	r.EndpointConfigName = cmp.Or(st.EndpointConfigName, r.EndpointConfigName)
	r.InstanceType = cmp.Or(st.InstanceType, r.InstanceType)
	r.InstanceCount = cmp.Or(st.InstanceCount, r.InstanceCount)
	if r.Status == StatusPending && !r.AwaitingApproval() {
		r.Status, r.StartedAt = StatusRunning, &now
		return true, nil
	}
	return false, nil
}

// Approve lets a release through its environment's gate. A release a deployer waits on starts
// running; a release created for a dashboard command stays pending until an agent takes it. The
// four-eyes rule holds unless env allows self-approval: whoever requested the release may not
// approve it.
func Approve(r *Release, env Environment, user string, now time.Time) error {
	if err := awaitingDecision(r, user); err != nil {
		return err
	}
	if err := FourEyes(*r, env, user); err != nil {
		return err
	}
	r.ApprovedBy = user
	if r.CommandID == "" {
		r.Status, r.StartedAt = StatusRunning, &now
	}
	return nil
}

// Requester is who asked for the release: the dashboard user or token of a command, or the user
// a CI pipeline or the CLI reported. "" when nobody is named.
func (r Release) Requester() string { return r.Trigger.User }

// FourEyes refuses user's approval of r when user requested it and env's gate does not allow
// self-approval. Names compare without case, as people type them.
func FourEyes(r Release, env Environment, user string) error {
	req := r.Requester()
	if env.AllowSelfApproval || req == "" || !strings.EqualFold(req, user) {
		return nil
	}
	return Errorf(EFORBIDDEN, "the four-eyes rule of environment %s: %s requested release %s of %s, so someone else must approve it "+
		"(an admin can allow self-approval for %s in Settings or with `sagedeploy server env add %s --allow-self-approval`)",
		env.Name, req, r.ID, r.Model, env.Name, env.Name)
}

// Reject stops a release at its environment's gate: it ends canceled, with ReasonRejected.
func Reject(r *Release, user, why string, now time.Time) error {
	if err := awaitingDecision(r, user); err != nil {
		return err
	}
	r.RejectedBy = user
	end(r, StatusCanceled, ReasonRejected, "rejected at the approval gate by "+user+suffix(why), now)
	return nil
}

// awaitingDecision refuses a decision on a release that does not wait at a gate, saying why.
func awaitingDecision(r *Release, user string) error {
	switch {
	case user == "":
		return Errorf(EINVALID, "a decision on release %s needs the name of the user who makes it", r.ID)
	case r.AwaitingApproval():
		return nil
	case r.ApprovedBy != "":
		return Errorf(ECONFLICT, "release %s was already approved by %s (status %s)", r.ID, r.ApprovedBy, r.Status)
	case r.RejectedBy != "":
		return Errorf(ECONFLICT, "release %s was already rejected by %s", r.ID, r.RejectedBy)
	case !r.NeedsApproval:
		return Errorf(ECONFLICT, "release %s of %s in %s does not need an approval (status %s)", r.ID, r.Model, r.Environment, r.Status)
	}
	return Errorf(ECONFLICT, "release %s is %s, not waiting for approval", r.ID, r.Status)
}

// Cancel abandons a pending release that no agent executes yet. cmd is the state of the
// release's command, "" when it has none.
func Cancel(r *Release, cmd CommandState, user string, now time.Time) error {
	if r.Status != StatusPending {
		return Errorf(ECONFLICT, "release %s is %s; only a pending release can be canceled", r.ID, r.Status)
	}
	if cmd == CommandDispatched {
		return Errorf(ECONFLICT, "release %s: an agent is already executing its command; wait for it to finish", r.ID)
	}
	end(r, StatusCanceled, ReasonCanceled, "canceled by "+user, now)
	return nil
}

// Finish records the outcome a deployer or agent reports. changed is false when the release
// already ended with the same status, so that a retried report is harmless. A failure reported
// without a reason (older clients) counts as ReasonErrored.
func Finish(r *Release, f ReleaseFinish, now time.Time) (changed bool, err error) {
	if err := f.Check(); err != nil {
		return false, err
	}
	if r.Status.Final() && !lateReport(*r, f) {
		if r.Status == f.Status {
			return false, nil
		}
		return false, Errorf(ECONFLICT, "release %s already ended as %s; it cannot become %s", r.ID, r.Status, f.Status)
	}
	if r.AwaitingApproval() && f.Status == StatusSucceeded {
		return false, Errorf(ECONFLICT, "release %s of %s in %s still waits for approval; it cannot succeed before someone approves it", r.ID, r.Model, r.Environment)
	}
	reason := f.Reason
	switch f.Status {
	case StatusSucceeded:
		reason = ""
	case StatusFailed:
		reason = cmp.Or(reason, ReasonErrored)
	case StatusCanceled:
		reason = cmp.Or(reason, ReasonCanceled)
	}
	why := f.FailureReason
	if f.Status == StatusFailed {
		why = cmp.Or(why, "the deployer reported a failure without a reason")
	}
	end(r, f.Status, reason, why, now)
	r.InstanceType = cmp.Or(f.InstanceType, r.InstanceType)
	r.InstanceCount = cmp.Or(f.InstanceCount, r.InstanceCount)
	return true, nil
}

// lateReport reports whether f is the deployer's own outcome of a release the server timed out
// for lack of progress: the deployer knows better (it was waiting on a long bake, or the network
// dropped its heartbeats), so its report corrects the release.
func lateReport(r Release, f ReleaseFinish) bool {
	return r.Status == StatusFailed && r.Reason == ReasonTimedOut && (f.Status != r.Status || f.Reason != r.Reason)
}

// TimeOut fails a release that reported nothing since idleSince, when that is not after cutoff: its
// deployer or agent stopped. It reports false, changing nothing, when the release has ended or
// made progress since.
func TimeOut(r *Release, idleSince, cutoff time.Time, why string, now time.Time) bool {
	if r.Status.Final() || idleSince.After(cutoff) {
		return false
	}
	end(r, StatusFailed, ReasonTimedOut, why, now)
	return true
}

// Supersede closes a release that an earlier attempt of a CI pipeline left open, because by ran
// the same step again: CI re-runs a step only after the earlier attempt ended, so its deployer is
// gone. A release that never started ends canceled, one that ran ends failed (errored).
func Supersede(r *Release, by Release, now time.Time) error {
	if r.Status.Final() {
		return Errorf(ECONFLICT, "release %s already ended (%s); release %s cannot supersede it", r.ID, r.Status, by.ID)
	}
	why := fmt.Sprintf("Superseded by release %s: pipeline %s ran this step again before this release reported an outcome (its deployer stopped).", by.ID, by.Trigger.PipelineID)
	if r.StartedAt == nil {
		end(r, StatusCanceled, ReasonCanceled, why, now)
	} else {
		end(r, StatusFailed, ReasonErrored, why, now)
	}
	return nil
}

func end(r *Release, st Status, reason Reason, why string, now time.Time) {
	r.Status, r.Reason, r.FailureReason, r.FinishedAt = st, reason, why, &now
}

func suffix(why string) string {
	if why == "" {
		return ""
	}
	return ": " + why
}

// Valid reports whether r is a known reason.
func (r Reason) Valid() bool {
	switch r {
	case ReasonRolledBack, ReasonVerificationFailed, ReasonTimedOut, ReasonFailed, ReasonErrored, ReasonRejected, ReasonCanceled:
		return true
	}
	return false
}

// Issue links a planned command and its release as they are created: the release pending, at
// the gate when gated; the command waiting at the gate too, or queued for an agent.
func Issue(cmd *Command, rel *Release, gated bool) {
	rel.Status, rel.NeedsApproval, rel.CommandID = StatusPending, gated, cmd.ID
	cmd.State, cmd.ReleaseID = NewCommandState(gated), rel.ID
}

// NewCommandState is where a new command starts: at the gate when its release needs an approval,
// else queued for an agent.
func NewCommandState(gated bool) CommandState {
	if gated {
		return CommandAwaitingApproval
	}
	return CommandQueued
}

// ApproveCommand queues a command for an agent once its release passed the gate.
func ApproveCommand(c *Command) error {
	if c.State != CommandAwaitingApproval {
		return Errorf(ECONFLICT, "command %s is %s, not waiting for approval", c.ID, c.State)
	}
	c.State = CommandQueued
	return nil
}

// ClaimCommand hands a queued command to an agent.
func ClaimCommand(c *Command) error {
	if c.State != CommandQueued {
		return Errorf(ECONFLICT, "command %s is %s; only a queued command can be taken by an agent", c.ID, c.State)
	}
	c.State = CommandDispatched
	return nil
}

// RequeueCommand puts a command an agent took back in the queue, because that agent's token was
// revoked before it started the release: no report of it would be accepted.
func RequeueCommand(c *Command) error {
	if c.State != CommandDispatched {
		return Errorf(ECONFLICT, "command %s is %s; only a command an agent took can go back to the queue", c.ID, c.State)
	}
	c.State = CommandQueued
	return nil
}

// StartCommand marks a command dispatched when the executor starts its release, even if the
// executor reported before the agent's claim was recorded.
func StartCommand(c *Command) error {
	if c.State != CommandQueued && c.State != CommandDispatched {
		return Errorf(ECONFLICT, "command %s is %s; its release cannot start now", c.ID, c.State)
	}
	c.State = CommandDispatched
	return nil
}

// CompleteCommand records the result an agent reports. changed is false when the command already
// ended the same way (a retried report).
func CompleteCommand(c *Command, result Status) (changed bool, err error) {
	next := CommandState(result)
	if !next.Final() {
		return false, Errorf(EINVALID, "status %q does not end command %s: use succeeded, failed or canceled", result, c.ID)
	}
	if c.State.Final() {
		if c.State == next {
			return false, nil
		}
		return false, Errorf(ECONFLICT, "command %s already ended as %s", c.ID, c.State)
	}
	if c.State != CommandDispatched {
		return false, Errorf(ECONFLICT, "command %s is %s: no agent has taken it, so it cannot have a result", c.ID, c.State)
	}
	c.State = next
	return true, nil
}

// CancelCommand ends a command whose release was canceled before an agent took it.
func CancelCommand(c *Command) error {
	if c.State != CommandAwaitingApproval && c.State != CommandQueued {
		return Errorf(ECONFLICT, "command %s is %s; only a command no agent has taken can be canceled", c.ID, c.State)
	}
	c.State = CommandCanceled
	return nil
}

// TimeOutCommand fails a command whose release timed out.
func TimeOutCommand(c *Command) error {
	if c.State != CommandQueued && c.State != CommandDispatched {
		return Errorf(ECONFLICT, "command %s is %s; it cannot time out", c.ID, c.State)
	}
	c.State = CommandFailed
	return nil
}
