package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/pricing"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// ComponentCost is the estimated monthly cost of one component and whether it sits idle.
type ComponentCost struct {
	Environment   string  `json:"environment"`
	Model         string  `json:"model"`
	Region        string  `json:"region,omitempty"`
	InstanceType  string  `json:"instance_type,omitempty"`
	InstanceCount int     `json:"instance_count"`
	HourlyUSD     float64 `json:"hourly_usd"`
	MonthlyUSD    float64 `json:"monthly_usd"`
	Priced        bool    `json:"priced"`
	Note          string  `json:"note,omitempty"`
	// Idle is set when the metrics cover at least IdleDays and show no invocation in them.
	Idle           bool       `json:"idle"`
	IdleDays       int        `json:"idle_days,omitempty"`
	LastInvocation *time.Time `json:"last_invocation,omitempty"`
}

// EnvironmentCost adds up an environment's priced components.
type EnvironmentCost struct {
	Environment string  `json:"environment"`
	MonthlyUSD  float64 `json:"monthly_usd"`
	Unpriced    int     `json:"unpriced"` // components without a known price, not in MonthlyUSD
	Idle        int     `json:"idle"`
}

// CostReport is the answer of GET /api/v1/cost.
type CostReport struct {
	Components   []ComponentCost   `json:"components"`
	Environments []EnvironmentCost `json:"environments"`
	IdleDays     int               `json:"idle_days"`
	PriceSource  string            `json:"price_source"`
	PriceDate    string            `json:"price_date"`
}

// defaultIdleDays is how long an endpoint may go without an invocation before it is flagged.
const defaultIdleDays = 7

func (s *Server) cost(ctx context.Context, idleDays int) (CostReport, error) {
	rep := CostReport{Components: []ComponentCost{}, Environments: []EnvironmentCost{}, IdleDays: idleDays, PriceSource: pricing.Source, PriceDate: pricing.Date}
	envs, err := s.st.Environments(ctx)
	if err != nil {
		return rep, err
	}
	comps, err := s.st.Components(ctx)
	if err != nil {
		return rep, err
	}
	spans, err := s.st.InvocationSpans(ctx)
	if err != nil {
		return rep, err
	}
	totals := map[string]*EnvironmentCost{}
	byName := map[string]releases.Environment{}
	for _, e := range envs {
		totals[e.Name], byName[e.Name] = &EnvironmentCost{Environment: e.Name}, e
	}
	for _, c := range comps {
		cc := priceComponent(byName[c.Environment], c.Component)
		span := spans[store.ServingKey{Environment: c.Environment, Model: c.Model}]
		s.flagIdle(&cc, span[0], span[1], idleDays)
		rep.Components = append(rep.Components, cc)
		t := totals[c.Environment]
		if t == nil {
			continue
		}
		t.MonthlyUSD += cc.MonthlyUSD
		if !cc.Priced {
			t.Unpriced++
		}
		if cc.Idle {
			t.Idle++
		}
	}
	for _, e := range envs {
		rep.Environments = append(rep.Environments, *totals[e.Name])
	}
	return rep, nil
}

func priceComponent(env releases.Environment, c releases.Component) ComponentCost {
	cc := ComponentCost{Environment: c.Environment, Model: c.Model, Region: env.Region, InstanceType: c.InstanceType, InstanceCount: c.InstanceCount}
	if env.Kind == releases.EnvironmentLocal {
		cc.Priced, cc.Note = true, "local SageMaker: no AWS charge"
		return cc
	}
	h, ok := pricing.Hourly(env.Region, c.InstanceType)
	if !ok {
		cc.Note = fmt.Sprintf("no list price known for %s in %s (the embedded table of %s has only a few types)", c.InstanceType, env.Region, pricing.Date)
		return cc
	}
	cc.Priced, cc.HourlyUSD = true, h
	cc.MonthlyUSD = h * pricing.HoursPerMonth * float64(c.InstanceCount)
	return cc
}

func (s *Server) markIdle(ctx context.Context, cc *ComponentCost, idleDays int) error {
	first, last, err := s.st.InvocationSpan(ctx, cc.Environment, cc.Model)
	if err == nil {
		s.flagIdle(cc, first, last, idleDays)
	}
	return err
}

// flagIdle sets Idle when the metrics go back idleDays (first, the oldest Invocations point) and
// show no invocation since then (last, the newest period with one).
func (s *Server) flagIdle(cc *ComponentCost, first, last time.Time, idleDays int) {
	if first.IsZero() {
		return
	}
	if !last.IsZero() {
		cc.LastInvocation = &last
	}
	cutoff := s.st.Now().Add(-time.Duration(idleDays) * 24 * time.Hour)
	cc.Idle = !first.After(cutoff) && (last.IsZero() || last.Before(cutoff))
	if cc.Idle {
		cc.IdleDays = idleDays
	}
}

func (s jsonAPI) apiCost(w http.ResponseWriter, r *http.Request, p principal) error {
	days := defaultIdleDays
	if v := r.URL.Query().Get("idle_days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 365 {
			return releases.Errorf(releases.EINVALID, "idle_days=%q: give a whole number of days from 1 to 365", v)
		}
		days = n
	}
	rep, err := s.cost(r.Context(), days)
	if err != nil {
		return err
	}
	if p.token != nil {
		rep = rep.only(p.token.Environment)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// only keeps one environment's part of the report.
func (rep CostReport) only(env string) CostReport {
	out := rep
	out.Components, out.Environments = []ComponentCost{}, []EnvironmentCost{}
	for _, c := range rep.Components {
		if c.Environment == env {
			out.Components = append(out.Components, c)
		}
	}
	for _, e := range rep.Environments {
		if e.Environment == env {
			out.Environments = append(out.Environments, e)
		}
	}
	return out
}
