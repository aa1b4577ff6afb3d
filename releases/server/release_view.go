package server

import (
	"cmp"
	"strconv"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// releasePageData is the release page, flat (see views.go).
type releasePageData struct {
	ID, Heading, Kind  string
	StatusValue        string // the release's own status, for scripts
	Status             badgeView
	Model, Env         string
	ComponentHref      string
	Version, Was       string // "v3" or "—"; Was "" when nothing was replaced
	ARN, Description   string
	Commit             string
	Endpoint           string
	EndpointConfig     string
	Instances          string
	Trigger            string
	Pipeline, Project  string
	Created            string
	Started, Finished  string // "15:04:05 UTC" or "—"
	StartedISO         string
	FinishedISO        string
	Duration           string
	ApprovedBy         string
	FailureReason      string
	FailureTitle       string
	Reason, ReasonText string
	Awaiting           bool
	Approval           *compareView
	Command            *commandView
	Split              *splitView
	Final              bool
	LastSeq            int
	Events             []eventRow
}

// commandView is the dashboard command behind a release.
type commandView struct {
	RequestedBy, State, Env string
	AgentSeen               string // how long ago an agent of Env asked for work, "" when none did
	Note                    string
	Cancelable              bool // still pending and not handed to an agent
}

type eventRow struct {
	Seq                   int
	Clock, Phase, Message string
	Status                *badgeView
}

func releasePageOf(now time.Time, v ReleaseView, split *TrafficSplit, agentSeen *time.Time, approval *approvalView) releasePageData {
	r := v.ReleaseRecord
	p := releasePageData{ID: r.ID, Kind: string(r.Kind), Heading: titleCase(string(r.Kind)) + " of " + r.Model + versionSuffix(r.Version.Number) + " in " + r.Environment,
		StatusValue: string(r.Status), Status: releaseBadge(r), Model: r.Model, Env: r.Environment, ComponentHref: componentHref(r.Environment, r.Model),
		Version: "—", ARN: r.Version.ModelPackageARN, Description: r.Version.Description, Commit: r.Version.Commit,
		Endpoint: cmp.Or(r.EndpointName, "—"), EndpointConfig: r.EndpointConfigName, Instances: "—", Trigger: triggerLabel(r.Trigger),
		Pipeline: r.Trigger.PipelineID, Project: r.Trigger.ProjectID, Created: whenText(r.CreatedAt),
		Started: clockUTC(r.StartedAt), Finished: clockUTC(r.FinishedAt), Duration: durationText(now, r), ApprovedBy: r.ApprovedBy,
		FailureReason: r.FailureReason, FailureTitle: "Failed", Reason: string(r.Reason), ReasonText: reasonText(r.Reason),
		Awaiting: v.AwaitingApproval, Split: splitViewOf(split), Final: r.Status.Final()}
	if r.Version.Number != 0 {
		p.Version = "v" + strconv.Itoa(r.Version.Number)
	}
	if r.PreviousVersion != nil {
		p.Was = "v" + strconv.Itoa(r.PreviousVersion.Number)
	}
	if r.InstanceCount != 0 {
		p.Instances = strconv.Itoa(r.InstanceCount) + " × " + cmp.Or(r.InstanceType, "instance")
	}
	if r.Status == releases.StatusCanceled {
		p.FailureTitle = "Canceled"
	}
	if r.StartedAt != nil {
		p.StartedISO = r.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	if r.FinishedAt != nil {
		p.FinishedISO = r.FinishedAt.UTC().Format(time.RFC3339Nano)
	}
	if approval != nil {
		c := compareViewOf(*approval)
		p.Approval = &c
	}
	if c := v.Command; c != nil {
		p.Command = &commandView{RequestedBy: c.RequestedBy, State: strings.ReplaceAll(string(c.State), "_", " "), Env: c.Environment,
			Note: c.Note, Cancelable: r.Status == releases.StatusPending && c.State != releases.CommandDispatched}
		if agentSeen != nil {
			p.Command.AgentSeen = ago(now, *agentSeen)
		}
	}
	for _, e := range v.Events {
		row := eventRow{Seq: e.Seq, Clock: e.Time.UTC().Format("15:04:05"), Phase: string(e.Phase), Message: e.Message}
		if e.EndpointStatus != "" {
			b := badge(e.EndpointStatus)
			row.Status = &b
		}
		p.Events = append(p.Events, row)
		p.LastSeq = e.Seq
	}
	return p
}

// clockUTC is the time of day of t, "—" when there is none.
func clockUTC(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.UTC().Format("15:04:05") + " UTC"
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// compareView is an approval's comparison of what the environment serves now with what it would
// serve once approved; the *Changed fields mark the rows that differ.
type compareView struct {
	Environment                   string
	NowVersion                    string // "" when nothing is served
	ProposedVersion               string // "" when unknown
	ProposedDescription           string
	NowConfig, ProposedConfig     string
	NowInstances                  string
	ProposedInstances             string
	VersionChanged, ConfigChanged bool
	InstancesChanged              bool
}

func compareViewOf(a approvalView) compareView {
	ch := a.Changes()
	v := compareView{Environment: a.Environment, NowConfig: cmp.Or(a.Now.Config, "—"), ProposedConfig: cmp.Or(a.Proposed.Config, "named when the deploy runs"),
		NowInstances: instancesText(a.Now), ProposedInstances: instancesText(a.Proposed),
		VersionChanged: ch["version"], ConfigChanged: ch["config"], InstancesChanged: ch["instances"]}
	if n := a.Now.Version; n != nil {
		v.NowVersion = "v" + strconv.Itoa(n.Number)
	}
	if p := a.Proposed.Version; p != nil {
		v.ProposedVersion, v.ProposedDescription = "v"+strconv.Itoa(p.Number), p.Description
	}
	return v
}

func instancesText(s servingSide) string {
	if s.InstanceCount == 0 {
		return "—"
	}
	return strconv.Itoa(s.InstanceCount) + " × " + cmp.Or(s.InstanceType, "instance")
}

// approvalCard is one release on the approvals page.
type approvalCard struct {
	ID, Short, Href     string
	Kind, Model, Env    string
	ComponentHref       string
	Requester, Pipeline string // Pipeline only beside a user
	Own                 bool   // requested by the signed-in user
	Created, Ago        string
	Compare             compareView
}

func approvalCardOf(now time.Time, a approvalView, user string) approvalCard {
	r := a.ReleaseRecord
	c := approvalCard{ID: r.ID, Short: shortID(r.ID), Href: releaseHref(r.ID), Kind: string(r.Kind), Model: r.Model, Env: r.Environment,
		ComponentHref: componentHref(r.Environment, r.Model), Requester: triggerLabel(r.Trigger),
		Own: r.Trigger.User != "" && r.Trigger.User == user, Created: whenText(r.CreatedAt), Ago: ago(now, r.CreatedAt), Compare: compareViewOf(a)}
	if r.Trigger.User != "" {
		c.Pipeline = r.Trigger.PipelineID
	}
	return c
}

// auditRow is one entry of the audit log; TargetHref links a release's entries.
type auditRow struct {
	Action, Created, Ago            string
	Actor, Where                    string
	Target, TargetHref, TargetShort string
	OK                              bool
	Outcome, Detail, RemoteAddr     string
}

func auditRowOf(now time.Time, a store.AuditEntry) auditRow {
	row := auditRow{Action: a.Action, Created: whenText(a.Time), Ago: ago(now, a.Time), Actor: a.Actor, Where: a.Environment,
		Target: a.Target, OK: a.Outcome == "ok", Outcome: a.Outcome, Detail: a.Detail, RemoteAddr: a.RemoteAddr}
	if a.Model != "" {
		row.Where += " / " + a.Model
	}
	if a.Target != "" && (strings.HasPrefix(a.Action, "release.") || strings.HasPrefix(a.Action, "command.")) {
		row.TargetHref, row.TargetShort = releaseHref(a.Target), shortID(a.Target)
	}
	return row
}
