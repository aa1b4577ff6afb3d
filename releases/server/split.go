package server

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// TrafficSplit is how a blue/green deploy shares an endpoint's traffic between the version it
// replaces and the new one, as the release's traffic events last reported it. The dashboard
// draws it as a bar with its text beside it, so a canary can be watched rather than read.
type TrafficSplit struct {
	New        int     `json:"new_version"`
	Old        int     `json:"old_version"`
	NewPercent float64 `json:"new_percent"`
	// Stage says where the shift stands: "waiting for the first shift", "shifting", "baking",
	// "done" or "rolled back".
	Stage string `json:"stage"`
}

// OldPercent is the share the replaced version still serves.
func (s *TrafficSplit) OldPercent() float64 { return 100 - s.NewPercent }

// NewWidth and OldWidth are the bar's segment widths on its 0–100 scale.
func (s *TrafficSplit) NewWidth() string { return percent(s.NewPercent) }
func (s *TrafficSplit) OldWidth() string { return percent(s.OldPercent()) }

// Text is the split in words, for people who do not see the bar's colours.
func (s *TrafficSplit) Text() string {
	return "new v" + strconv.Itoa(s.New) + ": " + percent(s.NewPercent) + "% · old v" + strconv.Itoa(s.Old) + ": " + percent(s.OldPercent()) + "%"
}

func percent(p float64) string {
	return strconv.FormatFloat(math.Round(p*10)/10, 'f', -1, 64)
}

// shiftedPercent reads the share on the new fleet from a traffic event. The local SageMaker says
// "traffic shifted 20% to endpoint config …"; the deployer says "… serves all traffic from …" once
// the shift is complete.
var shiftedPercent = regexp.MustCompile(`shifted (\d+(?:\.\d+)?)%`)

func trafficPercent(e releases.Event) (float64, bool) {
	if e.Phase != releases.PhaseTraffic {
		return 0, false
	}
	if strings.Contains(e.Message, "serves all traffic") {
		return 100, true
	}
	m := shiftedPercent.FindStringSubmatch(e.Message)
	if m == nil {
		return 0, false
	}
	p, err := strconv.ParseFloat(m[1], 64)
	if err != nil || p < 0 || p > 100 {
		return 0, false
	}
	return p, true
}

// trafficSplitOf is the split of release r after its events, or nil when r moves no traffic
// between two versions (a first deploy, a scale, a release still waiting to start, or a finished
// one that never reported a shift).
func trafficSplitOf(r store.ReleaseRecord, events []releases.Event) *TrafficSplit {
	switch r.Kind {
	case releases.KindDeploy, releases.KindPromote, releases.KindRestore, releases.KindRollback:
	default:
		return nil
	}
	prev := r.PreviousVersion
	if prev == nil || prev.Number == 0 || r.Version.Number == 0 || prev.Number == r.Version.Number {
		return nil
	}
	s := &TrafficSplit{New: r.Version.Number, Old: prev.Number, Stage: "waiting for the first shift"}
	seen := false
	for _, e := range events {
		if p, ok := trafficPercent(e); ok {
			s.NewPercent, s.Stage, seen = p, "shifting", true
		} else if e.Phase == releases.PhaseBake && seen {
			s.Stage = "baking"
		}
	}
	switch {
	case r.Status == releases.StatusSucceeded && seen:
		s.NewPercent, s.Stage = 100, "done"
	case r.Status.Final() && seen:
		// A failed blue/green deploy leaves the old fleet serving: SageMaker or the deployer
		// rolled the traffic back.
		s.NewPercent, s.Stage = 0, "rolled back"
	case r.Status.Final(), r.Status == releases.StatusPending:
		return nil
	case s.NewPercent >= 100:
		s.Stage = "done"
	}
	return s
}

// activeSplit is the traffic split of a component's active release, if it moves traffic.
func (s *Server) activeSplit(ctx context.Context, active *store.ReleaseRecord) (*TrafficSplit, error) {
	if active == nil || active.Status != releases.StatusRunning {
		return nil, nil
	}
	events, err := s.st.Events(ctx, active.ID, 0)
	if err != nil {
		return nil, fmt.Errorf("read the events of release %s: %w", active.ID, err)
	}
	return trafficSplitOf(*active, events), nil
}
