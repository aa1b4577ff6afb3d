package server

import (
	"context"
	"html/template"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// insightFuncs are the template functions of the pictures, drift, freshness and cost: pages call
// them per component, so the pages' own data need not know about them. Each reads the store
// with a short timeout of its own; a failure shows as nothing (and a log line), never as a
// broken page.
func (s *Server) insightFuncs() template.FuncMap {
	return template.FuncMap{
		"dict": dict,
		"drift": func(env, model string) *releases.Drift {
			ctx, cancel := s.viewCtx()
			defer cancel()
			_, d, err := s.st.Observation(ctx, env, model)
			s.viewErr("read drift", err)
			return d
		},
		"charts": func(env, model string) template.HTML {
			ctx, cancel := s.viewCtx()
			defer cancel()
			h, err := s.componentCharts(ctx, env, model)
			s.viewErr("draw charts", err)
			return chartStyle + h
		},
		"freshness": func(env, model string) *releases.Freshness {
			ctx, cancel := s.viewCtx()
			defer cancel()
			list, err := s.freshness(ctx, model)
			s.viewErr("compute freshness", err)
			for _, f := range list {
				if f.Environment == env {
					return &f
				}
			}
			return nil
		},
		"cost": func(env, model string) *ComponentCost {
			ctx, cancel := s.viewCtx()
			defer cancel()
			return s.componentCost(ctx, env, model)
		},
	}
}

func (s *Server) viewCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, 5*time.Second)
}

func (s *Server) viewErr(what string, err error) {
	if err != nil {
		s.log.Error(what, "err", err)
	}
}

func (s *Server) componentCost(ctx context.Context, env, model string) *ComponentCost {
	c, err := s.st.Component(ctx, env, model)
	if err != nil {
		s.viewErr("read component for cost", err)
		return nil
	}
	e, err := s.st.Environment(ctx, env)
	if err != nil {
		s.viewErr("read environment for cost", err)
		return nil
	}
	cc := priceComponent(e, c.Component)
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

// dict builds a map from key, value pairs, to pass several values to a partial.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			m[k] = kv[i+1]
		}
	}
	return m
}
