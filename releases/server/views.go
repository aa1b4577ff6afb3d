package server

import (
	"strconv"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// The dashboard's pages render from flat view structs built here: plain strings, numbers, bools
// and slices of flat structs, every time, duration, class and link already formatted. html/template
// finds a field of a struct with embedded structs through reflect's FieldByNameFunc, and calls
// each template function through reflection; on a 500-component overview these were half of the
// page's CPU. A flat struct's field is found directly, and a formatted string needs no call.

// badgeView is a status badge: the status it stands for, its colour family and its words.
type badgeView struct{ Status, Tone, Label string }

func badge(status string) badgeView {
	return badgeView{Status: status, Tone: tone(status), Label: statusLabel(status)}
}

// releaseBadge is a release's status badge; one waiting at a gate says so.
func releaseBadge(r store.ReleaseRecord) badgeView {
	if r.AwaitingApproval() {
		return badgeView{Status: "pending", Tone: "wait", Label: "Awaiting approval"}
	}
	return badge(string(r.Status))
}

// releaseRow is one line of a table of releases.
type releaseRow struct {
	ID, Short, Href        string
	Model, Environment     string
	ComponentHref          string
	Kind                   string
	Version                int    // 0: none
	From                   string // the version it replaced, "" when none
	Scale                  bool
	Instances              int
	Status                 badgeView
	Reason, ReasonText     string
	Trigger, Pipeline      string // Pipeline only beside a user
	Created, Ago, Duration string
}

func releaseRows(now time.Time, recs []store.ReleaseRecord) []releaseRow {
	rows := make([]releaseRow, len(recs))
	for i, r := range recs {
		rows[i] = releaseRowOf(now, r)
	}
	return rows
}

func releaseRowOf(now time.Time, r store.ReleaseRecord) releaseRow {
	row := releaseRow{ID: r.ID, Short: shortID(r.ID), Href: releaseHref(r.ID), Model: r.Model, Environment: r.Environment,
		ComponentHref: componentHref(r.Environment, r.Model), Kind: string(r.Kind), Version: r.Version.Number,
		Scale: r.Kind == releases.KindScale, Instances: r.InstanceCount, Status: releaseBadge(r),
		Reason: string(r.Reason), ReasonText: reasonText(r.Reason), Trigger: triggerLabel(r.Trigger),
		Created: whenText(r.CreatedAt), Ago: ago(now, r.CreatedAt), Duration: durationText(now, r)}
	if r.PreviousVersion != nil {
		row.From = strconv.Itoa(r.PreviousVersion.Number)
	}
	if r.Trigger.User != "" {
		row.Pipeline = r.Trigger.PipelineID
	}
	return row
}

func releaseHref(id string) string { return "/releases/" + id }

func componentHref(env, model string) string { return "/components/" + env + "/" + model }

// shortID is the tail of a release id, enough to tell releases apart in a list.
func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

func whenText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// durationText is how long r ran (so far), "—" before it started.
func durationText(now time.Time, r store.ReleaseRecord) string {
	if r.StartedAt == nil {
		return "—"
	}
	return humanDuration(r.Duration(now))
}

func countOf(n int, one string) string {
	if n == 1 {
		return strconv.Itoa(n) + " " + one
	}
	return strconv.Itoa(n) + " " + one + "s"
}
