package server

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"strconv"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// componentPageData is the component page, flat (see views.go). Base is the component's path,
// under which its forms post.
type componentPageData struct {
	Env, Model, Base string
	Status           badgeView
	ConsoleURL       string
	Active           *activeLine
	Busy             bool // a release is in progress: commands wait
	Split            *splitView
	Drift            *driftView
	Current          *versionFacts
	Previous         int    // the version a rollback restores, 0 when none
	RollbackConfirm  string // set with Previous
	Next             string // the environment a promotion goes to
	PromoteConfirm   string
	CanRestore       bool
	CanScale         bool
	Instances        int
	InstanceType     string
	EndpointName     string
	EndpointStatus   *badgeView
	Updated          string
	LastRelease      string // id
	LastReleaseShort string
	Cost             *costView
	Charts           template.HTML
	Versions         []versionRow
	Releases         []releaseRow
}

// activeLine is the call-out about a release of the component in progress.
type activeLine struct{ Href, Kind, State, Short string }

// versionFacts is what the component page says of the version it serves.
type versionFacts struct {
	Number                   int
	Description, ARN, Commit string
}

type versionRow struct {
	Number           int
	Current          bool
	ARN              string
	Description      string
	Commit, Pipeline string
	First, FirstAgo  string
	Last, LastAgo    string
	Restore          bool
	RestoreConfirm   string
}

// driftView is the call-out of a component changed outside sagedeploy, with its two ways out.
type driftView struct {
	Key, Seen       string
	Differences     []releases.Difference // Recorded and Observed say "—" when empty
	CanDeploy       bool
	CSRF            string
	Adopt           bool
	AdoptHref       string
	AdoptVersion    int
	Redeploy        int // the recorded version, 0 when none
	RedeployHref    string
	RedeployConfirm string
}

// costView is a component's estimated cost, formatted.
type costView struct {
	Priced             bool
	Monthly, Hourly    string // Hourly "" when not per instance-hour
	InstanceCount      int
	InstanceType, Note string
	Idle               bool
	IdleDays           int
}

// splitView is a TrafficSplit as the bar draws it.
type splitView struct {
	New, Old                 int
	NewWidth, OldWidth, Text string
	Stage                    string
}

func splitViewOf(s *TrafficSplit) *splitView {
	if s == nil {
		return nil
	}
	return &splitView{New: s.New, Old: s.Old, NewWidth: s.NewWidth(), OldWidth: s.OldWidth(), Text: s.Text(), Stage: s.Stage}
}

// componentPageView builds the component page for a user who may (canDeploy) or may not change it.
func (s *Server) componentPageView(ctx context.Context, d ComponentDetail, canDeploy bool, csrf string) componentPageData {
	c, now := d.Component, s.st.Now()
	p := componentPageData{Env: c.Environment, Model: c.Model, Base: componentHref(c.Environment, c.Model),
		Status: badge(componentStatus(c)), ConsoleURL: c.ConsoleURL, Busy: d.Active != nil, Split: splitViewOf(d.Split),
		CanRestore: c.RestoreEnabled, CanScale: c.ScaleEnabled, Instances: c.InstanceCount, InstanceType: cmp.Or(c.InstanceType, "instance"),
		EndpointName: c.EndpointName, Updated: ago(now, c.UpdatedAt), LastRelease: c.LastReleaseID, LastReleaseShort: shortID(c.LastReleaseID),
		Releases: releaseRows(now, d.Releases)}
	if a := d.Active; a != nil {
		state := string(a.Status)
		if a.AwaitingApproval() {
			state = "waiting for approval"
		}
		p.Active = &activeLine{Href: releaseHref(a.ID), Kind: string(a.Kind), State: state, Short: shortID(a.ID)}
	}
	if c.EndpointStatus != "" {
		b := badge(c.EndpointStatus)
		p.EndpointStatus = &b
	}
	if v := c.CurrentVersion; v != nil {
		p.Current = &versionFacts{Number: v.Number, Description: v.Description, ARN: v.ModelPackageARN, Commit: v.Commit}
		if d.NextEnvironment != "" {
			p.Next = d.NextEnvironment
			p.PromoteConfirm = fmt.Sprintf("Promote %s v%d to %s?", c.Model, v.Number, d.NextEnvironment)
		}
	}
	if d.Previous != nil {
		p.Previous = d.Previous.Number
		p.RollbackConfirm = fmt.Sprintf("Roll %s in %s back to v%d?", c.Model, c.Environment, d.Previous.Number)
	}
	for _, v := range d.Versions {
		p.Versions = append(p.Versions, versionRowOf(now, c, v, canDeploy))
	}
	p.Drift = s.driftViewOf(now, c, canDeploy, csrf)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p.Cost = costViewOf(s.componentCost(ctx, c.Component))
	h, err := s.componentCharts(ctx, c.Environment, c.Model)
	s.viewErr("draw charts", err)
	p.Charts = chartStyle + h
	return p
}

func versionRowOf(now time.Time, c store.ComponentView, v store.ServedVersion, canDeploy bool) versionRow {
	row := versionRow{Number: v.Number, Current: v.Current, ARN: cmp.Or(v.ModelPackageARN, "—"), Description: v.Description,
		Commit: v.Commit, Pipeline: v.PipelineID, First: whenText(v.FirstServedAt), FirstAgo: ago(now, v.FirstServedAt),
		Last: whenText(v.LastServedAt), LastAgo: "now", Restore: !v.Current && canDeploy && c.RestoreEnabled}
	if !v.Current {
		row.LastAgo = ago(now, v.LastServedAt)
	}
	if row.Restore {
		row.RestoreConfirm = fmt.Sprintf("Restore v%d of %s in %s?", v.Number, c.Model, c.Environment)
	}
	return row
}

// driftViewOf is c's drift call-out from the insight cache, nil when its endpoint serves what
// sagedeploy recorded.
func (s *Server) driftViewOf(now time.Time, c store.ComponentView, canDeploy bool, csrf string) *driftView {
	dr := s.snapshot().drift[store.ServingKey{Environment: c.Environment, Model: c.Model}]
	if dr == nil {
		return nil
	}
	base := componentHref(c.Environment, c.Model)
	v := &driftView{Key: dr.Environment + "/" + dr.Model, Seen: ago(now, dr.Since), CanDeploy: canDeploy, CSRF: csrf,
		Adopt: !dr.Observed.Missing, AdoptHref: componentHref(dr.Environment, dr.Model) + "/adopt", AdoptVersion: dr.Observed.Version}
	for _, x := range dr.Differences {
		v.Differences = append(v.Differences, releases.Difference{Field: x.Field, Recorded: cmp.Or(x.Recorded, "—"), Observed: cmp.Or(x.Observed, "—")})
	}
	if cv := c.CurrentVersion; cv != nil {
		v.Redeploy, v.RedeployHref = cv.Number, base+"/restore"
		v.RedeployConfirm = "Redeploy v" + strconv.Itoa(cv.Number) + " of " + c.Model + " in " + c.Environment + ", as sagedeploy recorded it?"
	}
	return v
}

func costViewOf(cc *ComponentCost) *costView {
	if cc == nil {
		return nil
	}
	v := &costView{Priced: cc.Priced, Monthly: fmt.Sprintf("%.0f", cc.MonthlyUSD), InstanceCount: cc.InstanceCount,
		InstanceType: cc.InstanceType, Note: cc.Note, Idle: cc.Idle, IdleDays: cc.IdleDays}
	if cc.HourlyUSD != 0 {
		v.Hourly = fmt.Sprintf("%.3f", cc.HourlyUSD)
	}
	return v
}
