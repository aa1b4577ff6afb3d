package server

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// overviewData is the overview page: the model × environment matrix, filtered by Query.
type overviewData struct {
	Envs        []envHead
	Rows        []overviewRow
	Count       string // "3 of 50 models across 10 environments"
	Query       string
	PendingText string // the approvals call-out, "" when nothing waits
	Colspan     int
	FirstEnv    string
	Recent      []releaseRow
	pending     int
}

// envHead is an environment's column head: its gate, where it runs, what it costs.
type envHead struct {
	Name     string
	Gate     bool
	Where    string
	Cost     bool
	Monthly  string
	Unpriced int
	Idle     int
}

// overviewRow is a model's row: its cells' views, and their HTML (cellCache) that the page shows.
type overviewRow struct {
	Model string
	Cells []overviewCell
	HTML  []template.HTML
}

// overviewCell is one component on the overview: what its endpoint serves, and beside it (never in
// its place) the release in progress or a last release that failed. Serving is false for a model
// not deployed in the environment; Release alone is then a first release on its way.
type overviewCell struct {
	Env          string
	Serving      bool
	Href, Key    string
	Version      string
	Status       badgeView
	Instances    int
	InstanceType string
	Endpoint     string
	Updated      string
	Release      cellRelease
	Drift        string // what changed outside sagedeploy, "" when nothing did
	Freshness    string // how far behind upstream, "" when level
}

// cellRelease is the line of a cell about a release in progress or a failed last one, if Shown.
type cellRelease struct {
	Shown  bool
	Failed bool
	State  string
	Title  string
	Text   string
	Status badgeView
	href   string // the release's page, where a cell without a component links
}

func (s dashboard) overviewPage(w http.ResponseWriter, r *http.Request, se session) error {
	d, err := s.overview(r.Context(), strings.TrimSpace(r.URL.Query().Get("q")))
	if err != nil {
		return err
	}
	if err := s.cellsHTML(d.Rows); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "overview", &se, pageData{Title: "Overview", Nav: "overview", Data: d, Pending: d.pending, pendingRead: true})
	return nil
}

// overview reads, whatever the length of the history, the environments, one row per component
// with its last release, the unfinished releases and the ten newest: the matrix follows the
// number of components. Drift, freshness and cost come from the insight cache.
func (s dashboard) overview(ctx context.Context, query string) (overviewData, error) {
	d := overviewData{Query: query}
	envs, err := s.st.Environments(ctx)
	if err != nil {
		return d, err
	}
	comps, err := s.st.ComponentSummaries(ctx)
	if err != nil {
		return d, err
	}
	unfinished, err := s.st.UnfinishedReleases(ctx)
	if err != nil {
		return d, err
	}
	recent, err := s.st.ListReleases(ctx, store.ReleaseFilter{Limit: 10})
	if err != nil {
		return d, err
	}
	now, snap := s.st.Now(), s.snapshot()
	d.Envs, d.Colspan, d.Recent = envHeads(envs, snap), len(envs)+1, releaseRows(now, recent.Releases)
	if len(envs) > 0 {
		d.FirstEnv = envs[0].Name
	}
	models := d.fillRows(now, envs, comps, activeByComponent(unfinished), snap)
	d.Count = countOf(models, "model") + " across " + countOf(len(envs), "environment")
	if query != "" {
		d.Count = strconv.Itoa(len(d.Rows)) + " of " + d.Count
	}
	for _, r := range unfinished {
		if r.AwaitingApproval() {
			d.pending++
		}
	}
	if d.pending > 0 {
		d.PendingText = countOf(d.pending, "release") + " waiting for approval →"
	}
	return d, nil
}

// fillRows builds the matrix rows of the models matching the query, in natural order, and
// returns the number of models before filtering.
func (d *overviewData) fillRows(now time.Time, envs []releases.Environment, comps []store.ComponentSummary, active map[store.ServingKey]cellRelease, snap *insightSnapshot) int {
	byKey := make(map[store.ServingKey]*store.ComponentSummary, len(comps))
	var models []string
	seen := map[string]bool{}
	for i := range comps {
		c := &comps[i]
		if !seen[c.Model] {
			seen[c.Model] = true
			models = append(models, c.Model)
		}
		byKey[store.ServingKey{Environment: c.Environment, Model: c.Model}] = c
	}
	slices.SortFunc(models, naturalCompare)
	for _, m := range models {
		if !matchesModel(m, d.Query) {
			continue
		}
		row := overviewRow{Model: m, Cells: make([]overviewCell, len(envs))}
		for i, e := range envs {
			key := store.ServingKey{Environment: e.Name, Model: m}
			a, ok := active[key]
			row.Cells[i] = cellOf(now, key, byKey[key], a, ok, snap)
		}
		d.Rows = append(d.Rows, row)
	}
	return len(models)
}

func cellOf(now time.Time, key store.ServingKey, c *store.ComponentSummary, active cellRelease, isActive bool, snap *insightSnapshot) overviewCell {
	cell := overviewCell{Env: key.Environment, Key: key.Environment + "/" + key.Model, Release: active}
	if c == nil {
		cell.Href = active.href
		return cell
	}
	cell.Serving, cell.Href = true, componentHref(key.Environment, key.Model)
	cell.Version, cell.Status = "—", badge(cmp.Or(c.EndpointStatus, string(c.LastReleaseStatus)))
	if c.CurrentVersion > 0 {
		cell.Version = "v" + strconv.Itoa(c.CurrentVersion)
	}
	cell.Instances, cell.InstanceType = c.InstanceCount, cmp.Or(c.InstanceType, "instance")
	cell.Endpoint, cell.Updated = c.EndpointName, ago(now, c.UpdatedAt)
	if !isActive && c.LastReleaseStatus == releases.StatusFailed && c.LastReleaseID != "" {
		cell.Release = cellRelease{Shown: true, Failed: true, State: "failed", Title: c.LastReleaseFailure, Status: badge("failed"),
			Text: "last " + string(c.LastReleaseKind) + versionSuffix(c.LastReleaseVersion)}
	}
	if dr := snap.drift[key]; dr != nil {
		cell.Drift = dr.Summary()
	}
	if f := snap.fresh[key]; f != nil && f.VersionsBehind > 0 {
		cell.Freshness = f.Text
	}
	return cell
}

// activeByComponent is the release in progress to show on each component: the newest running
// one, else the newest waiting.
func activeByComponent(unfinished []store.ReleaseRecord) map[store.ServingKey]cellRelease {
	out := map[store.ServingKey]cellRelease{}
	for _, st := range []releases.Status{releases.StatusRunning, releases.StatusPending} {
		for _, r := range unfinished {
			key := store.ServingKey{Environment: r.Environment, Model: r.Model}
			if _, seen := out[key]; seen || r.Status != st {
				continue
			}
			text := string(r.Kind) + versionSuffix(r.Version.Number)
			if r.Kind == releases.KindScale {
				text += " to " + strconv.Itoa(r.InstanceCount)
			}
			state := string(r.Status)
			if r.AwaitingApproval() {
				state = "pending"
			}
			out[key] = cellRelease{Shown: true, State: state, Text: text, Status: releaseBadge(r), href: releaseHref(r.ID)}
		}
	}
	return out
}

// cellCache keeps the HTML of the overview's cells by their view. A cell's HTML is a function of
// its flat, comparable view alone, and from one request to the next almost every cell is the same:
// the cell template then runs only for the cells that changed, not 500 times per page.
type cellCache struct {
	mu   sync.Mutex
	html map[overviewCell]template.HTML
}

// cellsHTML fills the rows' HTML from the cache and renders the cells it does not hold.
func (s dashboard) cellsHTML(rows []overviewRow) error {
	missing := s.cachedCells(rows)
	if len(missing) == 0 {
		return nil
	}
	fresh := make(map[overviewCell]template.HTML, len(missing))
	t := s.pages["overview"]
	var buf bytes.Buffer
	for _, at := range missing {
		cell := rows[at[0]].Cells[at[1]]
		if _, done := fresh[cell]; !done {
			buf.Reset()
			if err := t.ExecuteTemplate(&buf, "matrix-cell", cell); err != nil {
				return fmt.Errorf("render the overview's cell %s: %w", cell.Key, err)
			}
			fresh[cell] = template.HTML(buf.String())
		}
		rows[at[0]].HTML[at[1]] = fresh[cell]
	}
	c := &s.cells
	c.mu.Lock()
	maps.Copy(c.html, fresh)
	c.mu.Unlock()
	return nil
}

// cachedCells fills the HTML of the cells the cache holds and returns where the others are (row,
// cell). The cache starts afresh when it grows past a few pages' worth of cells, so that cells of
// the past do not pile up.
func (s dashboard) cachedCells(rows []overviewRow) (missing [][2]int) {
	n := 0
	for _, r := range rows {
		n += len(r.Cells)
	}
	c := &s.cells
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.html == nil || len(c.html) > max(4096, 4*n) {
		c.html = map[overviewCell]template.HTML{}
	}
	for i := range rows {
		rows[i].HTML = make([]template.HTML, len(rows[i].Cells))
		for j, cell := range rows[i].Cells {
			h, ok := c.html[cell]
			if !ok {
				missing = append(missing, [2]int{i, j})
			}
			rows[i].HTML[j] = h
		}
	}
	return missing
}

func versionSuffix(n int) string {
	if n == 0 {
		return ""
	}
	return " v" + strconv.Itoa(n)
}

func envHeads(envs []releases.Environment, snap *insightSnapshot) []envHead {
	out := make([]envHead, len(envs))
	for i, e := range envs {
		h := envHead{Name: e.Name, Gate: e.RequiresApproval, Where: "SageMaker"}
		switch {
		case e.Kind == releases.EnvironmentLocal:
			h.Where = "local SageMaker"
		case e.Region != "":
			h.Where += " · " + e.Region
		}
		if c := snap.cost[e.Name]; c != nil {
			h.Cost, h.Monthly, h.Unpriced, h.Idle = true, fmt.Sprintf("%.0f", c.MonthlyUSD), c.Unpriced, c.Idle
		}
		out[i] = h
	}
	return out
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
