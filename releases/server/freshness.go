package server

import (
	"context"
	"net/http"
	"sort"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// freshness says, per model, how far each environment is behind the one before it along the
// pipeline (environments ordered by position). Pairs where the upstream never served the model
// are left out: there is nothing to be behind.
func (s *Server) freshness(ctx context.Context, model string) ([]releases.Freshness, error) {
	envs, err := s.st.Environments(ctx)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(envs, func(i, j int) bool { return envs[i].Position < envs[j].Position })
	comps, err := s.st.Components(ctx)
	if err != nil {
		return nil, err
	}
	serving := map[[2]string]int{} // (env, model) → version
	var models []string
	for _, c := range comps {
		if model != "" && c.Model != model {
			continue
		}
		if _, seen := serving[[2]string{"", c.Model}]; !seen {
			serving[[2]string{"", c.Model}] = 0
			models = append(models, c.Model)
		}
		if c.CurrentVersion != nil {
			serving[[2]string{c.Environment, c.Model}] = c.CurrentVersion.Number
		}
	}
	sort.Strings(models)
	out := []releases.Freshness{}
	for _, m := range models {
		for i := 1; i < len(envs); i++ {
			up, env := envs[i-1].Name, envs[i].Name
			upVer := serving[[2]string{up, m}]
			if upVer == 0 {
				continue
			}
			hist, err := s.st.ServedVersions(ctx, up, m)
			if err != nil {
				return nil, err
			}
			out = append(out, releases.FreshnessOf(m, env, up, serving[[2]string{env, m}], upVer, servedOf(hist), s.st.Now()))
		}
	}
	return out, nil
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
