package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases/store"
)

type pageResult struct {
	name, path string
	latency    []time.Duration
	bytes      int
}

// measurePages requests each page many times, one request after another, as one user would,
// and keeps the latency of each (client side: request sent to body read).
func (b *bench) measurePages(ctx context.Context) ([]pageResult, error) {
	env := b.envs[len(b.envs)-1].Name // the production environment, the one people watch
	busiest := b.envs[0].Name         // the environment with the most releases
	model := b.models[min(7, len(b.models)-1)]
	deep, err := b.cursor(ctx, url.Values{}, 10_000)
	if err != nil {
		return nil, err
	}
	deepEnv, err := b.cursor(ctx, url.Values{"environment": {busiest}}, 5_000)
	if err != nil {
		return nil, err
	}
	pages := []pageResult{
		{name: "overview", path: "/"},
		{name: "timeline, first page", path: "/releases"},
	}
	if deep != "" {
		pages = append(pages, pageResult{name: "timeline, page 201 (10,000 back)", path: "/releases?before=" + url.QueryEscape(deep)})
	}
	pages = append(pages, pageResult{name: "timeline, environment " + busiest, path: "/releases?environment=" + busiest})
	if deepEnv != "" {
		pages = append(pages, pageResult{name: "timeline, environment " + busiest + ", page 101",
			path: "/releases?environment=" + busiest + "&before=" + url.QueryEscape(deepEnv)})
	}
	pages = append(pages,
		pageResult{name: "timeline, environment " + env, path: "/releases?environment=" + env},
		pageResult{name: "timeline, model " + model, path: "/releases?model=" + model},
		pageResult{name: "timeline, component " + model + " in " + env, path: "/releases?environment=" + env + "&model=" + model},
		pageResult{name: "component " + model + " in " + env, path: "/components/" + env + "/" + model},
	)
	for i := range pages {
		p := &pages[i]
		for range b.o.warmup {
			if _, _, err := b.get(ctx, p.path); err != nil {
				return nil, err
			}
		}
		for range b.o.requests {
			body, d, err := b.get(ctx, p.path)
			if err != nil {
				return nil, err
			}
			if !strings.Contains(string(body), "</html>") {
				return nil, fmt.Errorf("GET %s answered something else than a whole page: %.200s", p.path, body)
			}
			p.latency = append(p.latency, d)
			p.bytes = len(body)
		}
	}
	return pages, nil
}

// cursor walks the timeline through the JSON API and returns the cursor that continues after
// the first `back` releases matching filter ("" when there are not that many).
func (b *bench) cursor(ctx context.Context, filter url.Values, back int) (string, error) {
	const limit = 200
	cursor := ""
	for seen := 0; seen < back; seen += limit {
		q := url.Values{}
		for k, v := range filter {
			q[k] = v
		}
		q.Set("limit", fmt.Sprint(min(limit, back-seen)))
		if cursor != "" {
			q.Set("before", cursor)
		}
		body, _, err := b.get(ctx, "/api/v1/releases?"+q.Encode())
		if err != nil {
			return "", err
		}
		var page store.ReleasePage
		if err := json.Unmarshal(body, &page); err != nil {
			return "", fmt.Errorf("decode a page of releases: %w", err)
		}
		if page.Older == "" {
			return "", nil
		}
		cursor = page.Older
	}
	return cursor, nil
}
