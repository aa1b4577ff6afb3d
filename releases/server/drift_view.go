package server

import (
	"context"
	"html/template"
	"sort"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// viewCtx bounds the insight cache's reads: they serve every page for a second, so they follow
// the server's life rather than one request's.
func (s *Server) viewCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, 5*time.Second)
}

func (s *Server) viewErr(what string, err error) {
	if err != nil {
		s.log.Error(what, "err", err)
	}
}

// componentCost prices the component the page already read, nil (and a log line) when its
// environment or metrics cannot be read: the page then shows no cost rather than an error.
func (s *Server) componentCost(ctx context.Context, c releases.Component) *ComponentCost {
	e, err := s.st.Environment(ctx, c.Environment)
	if err != nil {
		s.viewErr("read environment for cost", err)
		return nil
	}
	cc := priceComponent(e, c)
	s.viewErr("read invocations for cost", s.markIdle(ctx, &cc, defaultIdleDays))
	return &cc
}

// chartStyle colours and patterns the charts; inline so the pictures need no change to the
// shared stylesheet.
const chartStyle template.HTML = `<style>
.charts figure{margin:0 0 12px}
.chart{width:100%;height:auto;max-width:720px;display:block}
.chart .axis line{stroke:#94a3b8}.chart .axis text,.chart text{font-size:11px;fill:#475569}
.series{fill:none}.s-inv{stroke:#2563eb}.s-4xx{stroke:#d97706}.s-5xx{stroke:#dc2626}.s-p50{stroke:#0f766e}.s-p99{stroke:#7c3aed}
.marker line{stroke:#334155}.legend .key{margin-right:10px;white-space:nowrap}
.seg rect{fill:#c7d2fe}.seg-1 rect{fill:#a5b4fc}.seg-rollback rect{fill:#fde68a;stroke:#b45309;stroke-dasharray:3 2}
.bar rect{fill:#60a5fa}.bar-failed rect{fill:#fca5a5;stroke:#b91c1c;stroke-dasharray:2 2}
.chart-text{font-size:13px;color:#334155}
.drift-callout{border-left:4px solid #b45309}
</style>`

// insightCache keeps every component's drift and freshness for a second, so that an overview of
// hundreds of cells reads them with three queries rather than several per cell. Reports that
// change drift drop it at once.
type insightCache struct {
	mu   sync.Mutex
	at   time.Time
	snap *insightSnapshot
}

type insightSnapshot struct {
	drift map[store.ServingKey]*releases.Drift
	fresh map[store.ServingKey]*releases.Freshness
	cost  map[string]*EnvironmentCost
}

const insightTTL = time.Second

func (c *insightCache) drop() {
	c.mu.Lock()
	c.snap = nil
	c.mu.Unlock()
}

// snapshot is the cached drift and freshness, read again when older than insightTTL. A failed
// read is logged and gives an empty snapshot: the page shows no insight rather than an error.
func (s *Server) snapshot() *insightSnapshot {
	c := &s.insights
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != nil && time.Since(c.at) < insightTTL {
		return c.snap
	}
	ctx, cancel := s.viewCtx()
	defer cancel()
	snap, err := s.readInsights(ctx)
	if err != nil {
		s.viewErr("read drift and freshness", err)
		return &insightSnapshot{}
	}
	c.snap, c.at = snap, time.Now()
	return snap
}

func (s *Server) readInsights(ctx context.Context) (*insightSnapshot, error) {
	snap := &insightSnapshot{drift: map[store.ServingKey]*releases.Drift{}, fresh: map[store.ServingKey]*releases.Freshness{}, cost: map[string]*EnvironmentCost{}}
	rep, err := s.cost(ctx, defaultIdleDays)
	if err != nil {
		return nil, err
	}
	for i, e := range rep.Environments {
		snap.cost[e.Environment] = &rep.Environments[i]
	}
	drifts, err := s.st.Drifts(ctx)
	if err != nil {
		return nil, err
	}
	for i, d := range drifts {
		snap.drift[store.ServingKey{Environment: d.Environment, Model: d.Model}] = &drifts[i]
	}
	envs, err := s.st.Environments(ctx)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(envs, func(i, j int) bool { return envs[i].Position < envs[j].Position })
	comps, err := s.st.Components(ctx)
	if err != nil {
		return nil, err
	}
	served, err := s.st.FirstServed(ctx)
	if err != nil {
		return nil, err
	}
	serving := map[store.ServingKey]int{}
	for _, c := range comps {
		if c.CurrentVersion != nil {
			serving[store.ServingKey{Environment: c.Environment, Model: c.Model}] = c.CurrentVersion.Number
		}
	}
	for _, c := range comps {
		for i := 1; i < len(envs); i++ {
			up, key := store.ServingKey{Environment: envs[i-1].Name, Model: c.Model}, store.ServingKey{Environment: envs[i].Name, Model: c.Model}
			if key.Environment != c.Environment || serving[up] == 0 {
				continue
			}
			f := releases.FreshnessOf(c.Model, key.Environment, up.Environment, serving[key], serving[up], served[up], s.st.Now())
			snap.fresh[key] = &f
		}
	}
	return snap, nil
}
