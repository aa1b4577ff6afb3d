package store

import (
	"context"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
)

// TestTimelineQueriesUseIndexes checks SQLite's plan for every timeline filter: an index search
// that yields rows already in (created_at, id) order, never a scan of the releases table or a
// sort, so a page costs the same at 100,000 releases as at 100.
func TestTimelineQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := ReleaseRecord{Release: releases.Release{ID: "x"}}
	cur := Cursor(first)
	for _, f := range []ReleaseFilter{
		{}, {Environment: "dev"}, {Model: "abalone"}, {Environment: "dev", Model: "abalone"},
		{Before: cur}, {Environment: "dev", Before: cur}, {Model: "abalone", After: cur}, {Environment: "dev", Model: "abalone", Before: cur},
		{Status: releases.StatusPending},
	} {
		q, args, _, _, err := listQuery(f)
		if err != nil {
			t.Fatal(err)
		}
		p := plan(t, s, q, args...)
		if !strings.Contains(p, "USING INDEX releases_") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("filter %+v: plan %q; want an index walk in (created_at, id) order without a sort", f, p)
		}
	}
	// "Is a release of this component in progress?" looks up only unfinished releases.
	if p := plan(t, s, "SELECT id"+activeWhere, activeArgs("dev", "abalone")...); !strings.Contains(p, "releases_env_model_status (environment=? AND model=? AND status=?)") {
		t.Errorf("active release plan %q; want the (environment, model, status) index", p)
	}
}

func plan(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	return strings.Join(steps, "; ")
}

// TestOverviewQueriesAreBoundedByComponents checks SQLite's plans of what the overview reads: the
// components table drives its query and reaches each last release by primary key, and unfinished
// releases come from the status index; neither walks the history of releases.
func TestOverviewQueriesAreBoundedByComponents(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := plan(t, s, componentSummaryQuery)
	if !strings.Contains(p, "SCAN c") || strings.Contains(p, "SCAN r") || !strings.Contains(p, "SEARCH r USING INDEX sqlite_autoindex_releases_1 (id=?)") {
		t.Errorf("overview plan %q; want a scan of components and each last release searched by id", p)
	}
	if p := plan(t, s, unfinishedQuery, unfinishedArgs()...); !strings.Contains(p, "SEARCH releases USING INDEX releases_status_created (status=?)") {
		t.Errorf("unfinished releases plan %q; want the (status, created_at, id) index", p)
	}
}
