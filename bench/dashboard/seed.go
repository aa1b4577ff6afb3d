package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// envNames are the environments, in pipeline order; the last two need an approval.
var envNames = []string{"dev", "test", "qa", "integration", "perf", "staging", "uat", "canary", "prod-us", "prod-eu"}

var modelNames = []string{
	"abalone", "churn", "fraud", "credit-risk", "ltv", "propensity", "recommender", "ranker", "search-ctr", "ad-ctr",
	"demand", "pricing", "inventory", "eta", "routing", "forecast", "anomaly", "spam", "toxicity", "sentiment",
	"intent", "ner", "lang-id", "ocr-quality", "image-tags", "nsfw", "face-match", "kyc", "aml", "chargeback",
	"default-risk", "upsell", "cross-sell", "next-best-action", "retention", "nps", "support-triage", "lead-score", "match-rate", "dedupe",
	"geo-risk", "device-risk", "bot-score", "session-risk", "claim-fraud", "underwriting", "energy-load", "sensor-drift", "wear", "yield",
}

func environments(n int) []releases.Environment {
	var out []releases.Environment
	for i, name := range envNames[:n] {
		e := releases.Environment{Name: name, Kind: "sagemaker", Region: "eu-west-1", Account: "123456789012", Position: i}
		if i == 0 {
			e = releases.Environment{Name: name, Kind: "local", EndpointURL: "http://127.0.0.1:4570", Position: i}
		}
		if i >= n-2 && n > 2 {
			e.RequiresApproval = true
		}
		out = append(out, e)
	}
	return out
}

// history makes n finished releases over the last year, oldest first, as a team of this size
// would have: deploys through the pipeline, promotions between environments, now and then a
// restore or a scale from the dashboard, a few failures and rejections; each with the events
// the deployer reports.
type history struct {
	rng      *rand.Rand
	envs     []releases.Environment
	models   []string
	events   int
	versions map[string]int // model → newest version number
}

func newHistory(envs []releases.Environment, models []string, events int) *history {
	return &history{rng: rand.New(rand.NewPCG(2026, 11)), envs: envs, models: models, events: events, versions: map[string]int{}}
}

var phases = []struct{ phase, message, status string }{
	{"resolve", "resolved version %d of %s in the model registry", ""},
	{"model", "created model %s-v%d", ""},
	{"endpoint-config", "created endpoint configuration %s-%s-v%d", ""},
	{"endpoint", "updating endpoint %s-%s", "Updating"},
	{"wait", "endpoint %s-%s is InService", "InService"},
	{"verify", "sample invocation answered in 41 ms", ""},
	{"wait", "instances healthy: 2 of 2", ""},
}

func (h *history) release(i, n int, now time.Time) store.ReleaseRecord {
	r := h.rng
	// Spread over a year, a little irregularly, strictly increasing.
	created := now.Add(-365 * 24 * time.Hour).Add(time.Duration(float64(i)+r.Float64()*0.9) * (364 * 24 * time.Hour) / time.Duration(max(n, 1)))
	// Earlier environments see more releases.
	ei := min(int(r.ExpFloat64()*float64(len(h.envs))/3), len(h.envs)-1)
	env := h.envs[ei]
	model := h.models[r.IntN(len(h.models))]
	kind := releases.KindDeploy
	switch p := r.Float64(); {
	case ei > 0 && p < 0.35:
		kind = releases.KindPromote
	case p < 0.40:
		kind = releases.KindRestore
	case p < 0.48:
		kind = releases.KindScale
	}
	if kind == releases.KindDeploy && ei == 0 {
		h.versions[model]++
	}
	v := max(h.versions[model]-ei/3, 1)
	version := releases.Version{Number: v, ModelPackageARN: fmt.Sprintf("arn:aws:sagemaker:eu-west-1:123456789012:model-package/%s/%d", model, v),
		PipelineID: fmt.Sprintf("pipe-%d", 40000+i), ProjectID: "proj-" + model}
	trigger := releases.Trigger{Type: "pipeline", PipelineID: version.PipelineID, ProjectID: version.ProjectID}
	if kind == releases.KindRestore || kind == releases.KindScale {
		trigger = releases.Trigger{Type: "user", User: []string{"alice", "bob", "carol", "dan"}[r.IntN(4)]}
	}
	status := releases.StatusSucceeded
	switch p := r.Float64(); {
	case p < 0.07:
		status = releases.StatusFailed
	case p < 0.09 && env.RequiresApproval:
		status = releases.StatusCanceled
	}
	started := created.Add(time.Duration(2+r.IntN(20)) * time.Second)
	finished := started.Add(time.Duration(240+r.IntN(480)) * time.Second)
	rec := store.ReleaseRecord{Release: releases.Release{
		ID: fmt.Sprintf("seed-%07d", i), Environment: env.Name, Model: model, Kind: kind, Status: status, Version: version,
		EndpointName: model + "-" + env.Name, EndpointConfigName: fmt.Sprintf("%s-%s-v%d", model, env.Name, v),
		InstanceType: "ml.m5.large", InstanceCount: 1 + r.IntN(4), Trigger: trigger,
		CreatedAt: created, StartedAt: &started, FinishedAt: &finished,
	}, UpdatedAt: finished}
	if v > 1 {
		rec.PreviousVersion = &releases.Version{Number: v - 1}
	}
	if env.RequiresApproval && (kind == releases.KindDeploy || kind == releases.KindPromote) {
		rec.NeedsApproval = true
		if status == releases.StatusCanceled {
			rec.RejectedBy, rec.FailureReason = "carol", "rejected at the gate: wait for the load test"
			rec.StartedAt = nil
		} else {
			rec.ApprovedBy = "carol"
		}
	}
	if status == releases.StatusFailed {
		rec.FailureReason = "endpoint " + rec.EndpointName + " failed: the primary container did not pass the ping health check"
	}
	at := started
	for k := range h.events {
		p := phases[k%len(phases)]
		msg := p.message
		switch p.phase {
		case "resolve":
			msg = fmt.Sprintf(msg, v, model)
		case "model":
			msg = fmt.Sprintf(msg, model, v)
		case "endpoint-config":
			msg = fmt.Sprintf(msg, model, env.Name, v)
		case "endpoint", "wait":
			if k%len(phases) < 5 {
				msg = fmt.Sprintf(msg, model, env.Name)
			}
		}
		status := p.status
		if status == "InService" && rec.Status == releases.StatusFailed {
			msg, status = rec.FailureReason, "Failed"
		}
		at = at.Add(time.Duration(1+r.IntN(60)) * time.Second)
		rec.Events = append(rec.Events, releases.Event{Time: at, Phase: releases.Phase(p.phase), Message: msg, EndpointStatus: status})
	}
	return rec
}

// seed imports n releases of history through the store's bulk path, in transactions of batch.
func seed(ctx context.Context, st *store.Store, h *history, n int, now time.Time) error {
	const batch = 2000
	recs := make([]store.ReleaseRecord, 0, batch)
	for i := range n {
		recs = append(recs, h.release(i, n, now))
		if len(recs) == batch || i == n-1 {
			if err := st.ImportReleases(ctx, recs); err != nil {
				return fmt.Errorf("import releases %d-%d: %w", i+2-len(recs), i+1, err)
			}
			recs = recs[:0]
			if (i+1)%20000 < batch {
				logf("  %d of %d releases", i+1, n)
			}
		}
	}
	return nil
}
