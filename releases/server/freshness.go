package server

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// freshness says, per model ("" for all), how far each environment is behind the one before it
// along the pipeline (environments ordered by position). Pairs where the upstream serves nothing
// are left out: there is nothing to be behind.
func (s *Server) freshness(ctx context.Context, model string) ([]releases.Freshness, error) {
	envs, err := s.st.Environments(ctx)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(envs, func(i, j int) bool { return envs[i].Position < envs[j].Position })
	models := []string{model}
	if model == "" {
		if models, err = s.st.Models(ctx); err != nil {
			return nil, err
		}
		sort.Strings(models)
	}
	out := []releases.Freshness{}
	for _, m := range models {
		for i := 1; i < len(envs); i++ {
			f, ok, err := s.freshnessOf(ctx, m, envs[i-1].Name, envs[i].Name)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// freshnessOf compares env with its upstream for one model; ok is false when the upstream serves
// nothing. It reads two components and the upstream's history: cheap enough per overview cell.
func (s *Server) freshnessOf(ctx context.Context, model, upstream, env string) (releases.Freshness, bool, error) {
	upVer, err := s.servingVersion(ctx, upstream, model)
	if err != nil || upVer == 0 {
		return releases.Freshness{}, false, err
	}
	ver, err := s.servingVersion(ctx, env, model)
	if err != nil {
		return releases.Freshness{}, false, err
	}
	hist, err := s.st.ServedVersions(ctx, upstream, model)
	if err != nil {
		return releases.Freshness{}, false, err
	}
	return releases.FreshnessOf(model, env, upstream, ver, upVer, servedOf(hist), s.st.Now()), true, nil
}

// servingVersion is the version a component serves, 0 when none or no such component.
func (s *Server) servingVersion(ctx context.Context, env, model string) (int, error) {
	c, err := s.st.Component(ctx, env, model)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.CurrentVersion == nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return c.CurrentVersion.Number, nil
}

func servedOf(h []store.ServedVersion) []releases.Served {
	out := make([]releases.Served, len(h))
	for i, v := range h {
		out[i] = releases.Served{Number: v.Number, FirstServedAt: v.FirstServedAt}
	}
	return out
}

func (s jsonAPI) apiFreshness(w http.ResponseWriter, r *http.Request, p principal) error {
	list, err := s.freshness(r.Context(), r.URL.Query().Get("model"))
	if err != nil {
		return err
	}
	out := []releases.Freshness{}
	for _, f := range list {
		if p.canSee(f.Environment) == nil {
			out = append(out, f)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"freshness": out})
	return nil
}
