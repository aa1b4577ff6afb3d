package releases

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Routes of the agent's observe loop and of the views built on it:
//
//	POST /api/v1/components/{env}/{model}/observation  Observation → 200 {"drift": Drift or null}
//	POST /api/v1/components/{env}/{model}/metrics      MetricsReport → 204
//	GET  /api/v1/drift                                 → 200 {"drift": [Drift]}
//	GET  /api/v1/freshness                             → 200 {"freshness": [Freshness]}
//	GET  /api/v1/cost?idle_days=7                      → 200 CostReport (package server)
//	GET  /api/v1/components/{env}/{model}/metrics?window=1h|24h|7d → 200 {"points": [MetricPoint]}
//	POST /api/v1/components/{env}/{model}/adopt        → 200 {"adopted": Observation} (deployer role or the env's token)

func componentPath(env, model, tail string) string {
	return "/api/v1/components/" + url.PathEscape(env) + "/" + url.PathEscape(model) + "/" + tail
}

// ReportObservation sends what the agent saw on a component's endpoint; the answer is the drift
// the server found (nil: in sync).
func (c *Client) ReportObservation(ctx context.Context, o Observation) (*Drift, error) {
	var out struct {
		Drift *Drift `json:"drift"`
	}
	if err := c.do(ctx, http.MethodPost, componentPath(o.Environment, o.Model, "observation"), o, &out, 30*time.Second); err != nil {
		return nil, fmt.Errorf("report observation of %s in %s: %w", o.Model, o.Environment, err)
	}
	return out.Drift, nil
}

// ReportMetrics sends metric points of a component's endpoint.
func (c *Client) ReportMetrics(ctx context.Context, rep MetricsReport) error {
	err := c.do(ctx, http.MethodPost, componentPath(rep.Environment, rep.Model, "metrics"), rep, nil, 60*time.Second)
	if err != nil && !errors.Is(err, errNoContent) {
		return fmt.Errorf("report metrics of %s in %s: %w", rep.Model, rep.Environment, err)
	}
	return nil
}

// Components lists the components of the token's environment.
func (c *Client) Components(ctx context.Context) ([]Component, error) {
	var out struct {
		Components []Component `json:"components"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/components", nil, &out, 30*time.Second); err != nil {
		return nil, fmt.Errorf("list components: %w", err)
	}
	return out.Components, nil
}

// Drift lists the components the server marks "changed outside sagedeploy".
func (c *Client) Drift(ctx context.Context) ([]Drift, error) {
	var out struct {
		Drift []Drift `json:"drift"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/drift", nil, &out, 30*time.Second); err != nil {
		return nil, fmt.Errorf("read drift: %w", err)
	}
	return out.Drift, nil
}

// Freshness lists how far each environment is behind the one before it, per model ("" for all).
func (c *Client) Freshness(ctx context.Context, model string) ([]Freshness, error) {
	var out struct {
		Freshness []Freshness `json:"freshness"`
	}
	q := ""
	if model != "" {
		q = "?model=" + url.QueryEscape(model)
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/freshness"+q, nil, &out, 30*time.Second); err != nil {
		return nil, fmt.Errorf("read freshness: %w", err)
	}
	return out.Freshness, nil
}
