package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// overviewCell is one component on the overview: what its endpoint serves, and beside it (never in
// its place) the release in progress and a last release that failed.
type overviewCell struct {
	C      *store.ComponentView
	Active *store.ReleaseRecord
	Failed *store.ReleaseRecord
}

type overviewRow struct {
	Model string
	Cells []overviewCell
}

// overviewData is the overview page: the model × environment matrix, filtered by Query.
type overviewData struct {
	Envs    []releases.Environment
	Rows    []overviewRow
	Models  int // before filtering
	Query   string
	Recent  []store.ReleaseRecord
	Pending []store.ReleaseRecord
}

func (s dashboard) overviewPage(w http.ResponseWriter, r *http.Request, se session) error {
	d, err := s.overview(r.Context(), strings.TrimSpace(r.URL.Query().Get("q")))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "overview", &se, pageData{Title: "Overview", Nav: "overview", Data: d})
	return nil
}

func (s dashboard) overview(ctx context.Context, query string) (overviewData, error) {
	d := overviewData{Query: query}
	var err error
	if d.Envs, err = s.st.Environments(ctx); err != nil {
		return d, err
	}
	comps, err := s.st.Components(ctx)
	if err != nil {
		return d, err
	}
	active, failed, err := s.unfinishedAndFailed(ctx)
	if err != nil {
		return d, err
	}
	byKey := map[string]*store.ComponentView{}
	var models []string
	for i := range comps {
		c := &comps[i]
		if _, seen := byKey["m:"+c.Model]; !seen {
			models = append(models, c.Model)
			byKey["m:"+c.Model] = nil
		}
		byKey[c.Environment+"/"+c.Model] = c
	}
	slices.SortFunc(models, naturalCompare)
	d.Models = len(models)
	for _, m := range models {
		if !matchesModel(m, query) {
			continue
		}
		row := overviewRow{Model: m}
		for _, e := range d.Envs {
			cell := overviewCell{C: byKey[e.Name+"/"+m], Active: active[e.Name+"/"+m]}
			if cell.Failed, err = s.lastFailed(ctx, cell.C, failed); err != nil {
				return d, err
			}
			row.Cells = append(row.Cells, cell)
		}
		d.Rows = append(d.Rows, row)
	}
	recent, err := s.st.ListReleases(ctx, store.ReleaseFilter{Limit: 10})
	if err != nil {
		return d, err
	}
	d.Recent = recent.Releases
	d.Pending, err = s.st.PendingApprovals(ctx)
	return d, err
}

// unfinishedAndFailed reads, in three queries whatever the number of models, the newest
// unfinished release of each component (keyed environment/model) and the recent failed releases
// (keyed by id), so that a 200-model overview does not ask the store once per cell.
func (s dashboard) unfinishedAndFailed(ctx context.Context) (active, failed map[string]*store.ReleaseRecord, err error) {
	active, failed = map[string]*store.ReleaseRecord{}, map[string]*store.ReleaseRecord{}
	for _, st := range []releases.Status{releases.StatusRunning, releases.StatusPending} {
		page, err := s.st.ListReleases(ctx, store.ReleaseFilter{Status: st, Limit: 500})
		if err != nil {
			return nil, nil, err
		}
		for i := range page.Releases {
			rec := &page.Releases[i]
			key := rec.Environment + "/" + rec.Model
			// Lists come newest first, running before pending: the first seen is the one to show.
			if _, ok := active[key]; !ok {
				active[key] = rec
			}
		}
	}
	page, err := s.st.ListReleases(ctx, store.ReleaseFilter{Status: releases.StatusFailed, Limit: 500})
	if err != nil {
		return nil, nil, err
	}
	for i := range page.Releases {
		failed[page.Releases[i].ID] = &page.Releases[i]
	}
	return active, failed, nil
}

// lastFailed is c's last release when it failed: from the recent failures read at once, else (an
// old failure) read on its own.
func (s dashboard) lastFailed(ctx context.Context, c *store.ComponentView, recent map[string]*store.ReleaseRecord) (*store.ReleaseRecord, error) {
	if c == nil || c.LastReleaseStatus != releases.StatusFailed || c.LastReleaseID == "" {
		return nil, nil
	}
	if r, ok := recent[c.LastReleaseID]; ok {
		return r, nil
	}
	r, err := s.st.Release(ctx, c.LastReleaseID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return &r, err
}

// matchesModel is the overview's filter: a case-insensitive substring of the model name.
func matchesModel(model, query string) bool {
	return query == "" || strings.Contains(strings.ToLower(model), strings.ToLower(query))
}

// naturalCompare orders names the way people count: runs of digits compare as numbers, so bulk2
// comes before bulk10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			if c := compareDigits(a[:da], b[:db]); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return strings.Compare(a[:1], b[:1])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// compareDigits compares two runs of digits by value, without parsing (runs may be long); on
// equal values the shorter run (fewer leading zeros) comes first.
func compareDigits(a, b string) int {
	ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(ta) != len(tb) {
		return len(ta) - len(tb)
	}
	if c := strings.Compare(ta, tb); c != 0 {
		return c
	}
	return len(a) - len(b)
}
