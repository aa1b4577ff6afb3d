// Package quickstart runs sagedeploy's first-run story for real on an all-in-one stack: register
// the abalone example's two XGBoost versions, deploy v1 to dev and measure its predictions, promote
// it to prod through the approval gate, deploy v2 to dev, and roll dev back to v1 — every step a
// real release on the dashboard. It is what `sagedeploy quickstart` runs.
//
// Every step is safe to repeat: a run interrupted anywhere (or a second run on the same data
// directory) continues from what exists — the registered versions are reused, not registered
// again, and a promotion an earlier run left waiting for approval is canceled first.
package quickstart

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Defaults of a run.
const (
	DefaultModel  = "abalone"
	DefaultBucket = "sagedeploy-quickstart"
	// Dev and Prod are the stack's environments the story moves through.
	Dev  = "dev"
	Prod = "prod"
	// TriggerUser names the quickstart as who started its releases.
	TriggerUser = "quickstart"
)

// Steps is the number of steps a run prints.
const Steps = 7

// Options configure a run.
type Options struct {
	// Stack is the running all-in-one sagedeploy to run on (required).
	Stack *allinone.Stack
	// Out receives the progress, for a person to read; nothing is printed when nil.
	Out io.Writer
	// Yes approves the promotion to prod itself instead of waiting for someone to click Approve
	// on the dashboard.
	Yes bool
	// Model is the model package group; DefaultModel when empty.
	Model string
	// Bucket receives the artifacts in the local S3; DefaultBucket when empty.
	Bucket string
	// ApprovalPoll is how often the waiting promotion checks for the approval; 250ms when zero.
	ApprovalPoll time.Duration
	// Verbose also prints every progress event of the deployer, not only the milestones.
	Verbose bool
}

// Result is what a run did.
type Result struct {
	Model string `json:"model"`
	// Versions are the registered versions, v1 then v2.
	Versions []deploy.Version `json:"versions"`
	// Releases are the releases the run made on the dashboard, in order.
	Releases []Release `json:"releases"`
	// Metrics measure the predictions of each version dev served, against the labels.
	Metrics map[int]abalone.Metrics `json:"metrics"`
	// Serving is what each environment serves at the end.
	Serving  map[string]int `json:"serving"`
	Duration time.Duration  `json:"duration_ns"`
}

// Release is one release the run made.
type Release struct {
	ID          string        `json:"id"`
	Environment string        `json:"environment"`
	Kind        releases.Kind `json:"kind"`
	Version     int           `json:"version"`
	URL         string        `json:"url"`
	Duration    time.Duration `json:"duration_ns"`
}

// run is one quickstart in progress.
type run struct {
	o     Options
	p     *printer
	s     *allinone.Stack
	dev   *deploy.Deployer
	prod  *deploy.Deployer
	res   *Result
	start time.Time
}

// Run runs the whole story and returns what it did. It stops at the first failure (or when ctx
// ends), leaving what exists for a re-run to continue from.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Stack == nil {
		return nil, errors.New("quickstart: no stack to run on")
	}
	o.Model = cmp.Or(o.Model, DefaultModel)
	o.Bucket = cmp.Or(o.Bucket, DefaultBucket)
	if o.ApprovalPoll <= 0 {
		o.ApprovalPoll = 250 * time.Millisecond
	}
	r := &run{o: o, s: o.Stack, p: newPrinter(o.Out), start: time.Now(),
		res: &Result{Model: o.Model, Metrics: map[int]abalone.Metrics{}, Serving: map[string]int{}}}
	progress := func(e deploy.Event) { r.p.event(e, o.Verbose) }
	var err error
	if r.dev, err = r.s.Deployer(ctx, Dev, deploy.Options{Progress: progress, ApprovalPoll: o.ApprovalPoll}); err != nil {
		return nil, err
	}
	if r.prod, err = r.s.Deployer(ctx, Prod, deploy.Options{Progress: progress, ApprovalPoll: o.ApprovalPoll}); err != nil {
		return nil, err
	}
	steps := []struct {
		title string
		do    func(context.Context) error
	}{
		{fmt.Sprintf("Register %s v1 and v2 (Approved) in the model registry", o.Model), r.register},
		{"Deploy v1 to dev", func(ctx context.Context) error { return r.deploy(ctx, 1) }},
		{"Evaluate dev: predict every abalone's rings, compare with the labels", func(ctx context.Context) error { return r.evaluate(ctx, 1) }},
		{"Promote dev's v1 to prod, through prod's approval gate", r.promote},
		{"Deploy v2 to dev", func(ctx context.Context) error { return r.deploy(ctx, 2) }},
		{"Evaluate dev again, now on v2", func(ctx context.Context) error { return r.evaluate(ctx, 2) }},
		{"Roll dev back to the version it served before (v1)", r.rollback},
	}
	for i, st := range steps {
		r.p.step(i+1, len(steps), st.title)
		t0 := time.Now()
		if err := st.do(ctx); err != nil {
			if ctx.Err() != nil {
				r.p.line("interrupted: everything made so far stays; run the quickstart again to continue")
				return r.res, fmt.Errorf("quickstart interrupted at step %d (%s): %w", i+1, st.title, ctx.Err())
			}
			return r.res, fmt.Errorf("quickstart step %d (%s): %w", i+1, st.title, err)
		}
		r.p.done(time.Since(t0))
	}
	st, err := r.dev.Status(ctx, deploy.StatusRequest{Model: r.o.Model})
	if err != nil {
		return r.res, err
	}
	for _, c := range st.Components {
		if c.Version != nil {
			r.res.Serving[c.Environment] = c.Version.Number
		}
	}
	r.res.Duration = time.Since(r.start)
	return r.res, nil
}

// register adds v1 and v2 unless the registry already holds them (a re-run): registering again
// would add v3 and v4 with the same artifacts.
func (r *run) register(ctx context.Context) error {
	for _, n := range abalone.Versions() {
		data, err := abalone.Artifact(n)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])[:16]
		v, err := r.dev.ResolveVersion(ctx, r.o.Model, n)
		switch {
		case err == nil:
			if !strings.Contains(v.ModelDataURL, digest) {
				return fmt.Errorf("model %s already has a version %d with another artifact (%s) in %s: run the quickstart with a fresh --data-dir",
					r.o.Model, n, v.ModelDataURL, r.s.DataDir())
			}
			r.p.line(fmt.Sprintf("v%d  already registered  %s", n, v.ModelDataURL))
		case errors.Is(err, deploy.ErrGroupNotFound), errors.Is(err, deploy.ErrVersionNotFound):
			reg, err := r.dev.Register(ctx, deploy.RegisterRequest{
				Model: r.o.Model, Artifact: fmt.Sprintf("abalone-v%d/model.tar.gz", n), ArtifactData: data,
				Bucket: r.o.Bucket, Approve: true, Description: descriptions[n],
			})
			if err != nil {
				return err
			}
			if reg.Version.Number != n {
				return fmt.Errorf("the registry numbered the artifact of v%d as version %d: model %s in %s holds other versions; run the quickstart with a fresh --data-dir",
					n, reg.Version.Number, r.o.Model, r.s.DataDir())
			}
			v = reg.Version
			r.p.line(fmt.Sprintf("v%d  registered, %s  %s", n, v.ApprovalStatus, v.ModelDataURL))
		default:
			return err
		}
		r.res.Versions = append(r.res.Versions, v)
	}
	return nil
}

var descriptions = map[int]string{
	1: "abalone baseline: XGBoost, 5 rounds, max_depth 2",
	2: "abalone: XGBoost, 80 rounds, max_depth 6 (lower error)",
}

// trigger marks the quickstart's releases, so that a re-run recognises what an interrupted run
// left behind.
func trigger() *releases.Trigger { return &releases.Trigger{Type: "cli", User: TriggerUser} }

func (r *run) deploy(ctx context.Context, n int) error {
	res, err := r.dev.Deploy(ctx, deploy.DeployRequest{
		Model: r.o.Model, Environment: Dev, Version: n, Trigger: trigger(),
		Description: descriptions[n],
		// Check the new version answers sensibly before calling it done; put the old one back if not.
		Verify:            &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation("0..40")},
		RollbackOnFailure: true,
	})
	r.record(res, Dev)
	if err != nil {
		return err
	}
	if !res.Changed {
		r.p.line(fmt.Sprintf("%s already served v%d: nothing to change", res.Endpoint, res.Version.Number))
		return nil
	}
	r.p.line(fmt.Sprintf("%s now serves v%d", res.Endpoint, res.Version.Number))
	return nil
}

// evaluate invokes dev with every row of the data set and compares the predictions with the labels.
func (r *run) evaluate(ctx context.Context, n int) error {
	rows, err := abalone.Rows()
	if err != nil {
		return err
	}
	out, err := r.dev.Invoke(ctx, deploy.InvokeRequest{Model: r.o.Model, Environment: Dev, Body: abalone.FeaturesCSV(rows), ContentType: "text/csv", Accept: "text/csv"})
	if err != nil {
		return err
	}
	preds, err := ParsePredictions(out.Body)
	if err != nil {
		return fmt.Errorf("read the predictions of %s: %w", out.Endpoint, err)
	}
	if len(preds) != len(rows) {
		return fmt.Errorf("%s answered %d predictions for %d rows", out.Endpoint, len(preds), len(rows))
	}
	m := abalone.Evaluate(preds, rows)
	r.res.Metrics[n] = m
	line := fmt.Sprintf("v%d over %d abalones: RMSE %.3f rings, MAE %.3f rings", n, m.N, m.RMSE, m.MAE)
	if prev, ok := r.res.Metrics[n-1]; ok && n > 1 {
		line += fmt.Sprintf("  (v%d: RMSE %.3f, MAE %.3f)", n-1, prev.RMSE, prev.MAE)
	}
	r.p.line(line)
	r.p.line(fmt.Sprintf("first abalone: %d rings, v%d predicts %.2f", int(rows[0].Rings), n, preds[0]))
	return nil
}

// promote serves dev's version in prod. prod's gate holds the release until someone approves it
// (or the run does, with Yes).
func (r *run) promote(ctx context.Context) error {
	stepStart := r.s.Store().Now().Truncate(time.Millisecond)
	if err := r.cancelLeftovers(ctx, stepStart); err != nil {
		return err
	}
	type outcome struct {
		res deploy.PromoteResult
		err error
	}
	done := make(chan outcome, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		res, err := r.prod.Promote(pctx, deploy.PromoteRequest{Model: r.o.Model, From: Dev, To: Prod, Trigger: trigger()})
		done <- outcome{res, err}
	}()
	var pending string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case out := <-done:
			r.record(out.res.DeployResult, Prod)
			if out.err != nil {
				if errors.Is(out.err, deploy.ErrRejected) {
					return fmt.Errorf("%w; prod keeps serving what it served. Run the quickstart again to ask again", out.err)
				}
				return out.err
			}
			r.p.line(fmt.Sprintf("%s now serves v%d, the very model package dev serves", out.res.Endpoint, out.res.Version.Number))
			return nil
		case <-ctx.Done():
			// Leave no promotion waiting at the gate with nobody behind it.
			if pending != "" {
				cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_, _ = r.s.Store().Cancel(cctx, pending, TriggerUser+" (interrupted)")
				ccancel()
			}
			<-done
			return ctx.Err()
		case <-tick.C:
			if err := r.watchGate(ctx, stepStart, &pending); err != nil {
				return err
			}
		}
	}
}

// watchGate looks once for the promotion waiting at prod's gate: approves it with --yes, else says
// where to click. pending keeps the release found, so that it is handled once.
func (r *run) watchGate(ctx context.Context, stepStart time.Time, pending *string) error {
	if *pending != "" {
		return nil
	}
	id, err := r.findPending(ctx, stepStart)
	if err != nil || id == "" {
		return nil
	}
	*pending = id
	url := r.s.ServerURL() + "/releases/" + id
	if r.o.Yes {
		r.p.line("prod requires an approval: approving it (--yes)")
		return r.s.Approve(ctx, id, TriggerUser+" --yes")
	}
	r.p.attention(fmt.Sprintf("prod requires an approval. Open %s\n      (signed in as admin) and click Approve — or Reject. Waiting… (--yes approves from here)", url))
	return nil
}

// findPending finds the promotion this run is waiting with at prod's gate.
func (r *run) findPending(ctx context.Context, since time.Time) (string, error) {
	recs, err := r.s.Store().PendingApprovals(ctx)
	if err != nil {
		return "", err
	}
	for _, rec := range recs {
		if rec.Environment == Prod && rec.Model == r.o.Model && rec.Kind == releases.KindPromote &&
			rec.Trigger.User == TriggerUser && !rec.CreatedAt.Before(since) {
			return rec.ID, nil
		}
	}
	return "", nil
}

// cancelLeftovers cancels promotions an interrupted earlier run left waiting at prod's gate.
func (r *run) cancelLeftovers(ctx context.Context, before time.Time) error {
	recs, err := r.s.Store().PendingApprovals(ctx)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.Environment == Prod && rec.Model == r.o.Model && rec.Trigger.User == TriggerUser && rec.CreatedAt.Before(before) {
			if _, err := r.s.Store().Cancel(ctx, rec.ID, TriggerUser); err != nil && !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("cancel release %s, left waiting by an earlier quickstart: %w", rec.ID, err)
			}
			r.p.line(fmt.Sprintf("canceled release %s, left waiting for an approval by an earlier run", rec.ID))
		}
	}
	return nil
}

func (r *run) rollback(ctx context.Context) error {
	res, err := r.dev.Rollback(ctx, deploy.RollbackRequest{Model: r.o.Model, Environment: Dev, Trigger: trigger()})
	r.record(res, Dev)
	if err != nil {
		return err
	}
	if res.Version.Number != 1 {
		return fmt.Errorf("dev rolled back to v%d, expected v1", res.Version.Number)
	}
	r.p.line(fmt.Sprintf("%s serves v%d again (same endpoint configuration as before)", res.Endpoint, res.Version.Number))
	return nil
}

// record notes a release and prints its link.
func (r *run) record(res deploy.DeployResult, env string) {
	if res.ReleaseID == "" {
		return
	}
	rel := Release{ID: res.ReleaseID, Environment: env, Kind: res.Kind, Version: res.Version.Number,
		URL: r.s.ServerURL() + "/releases/" + res.ReleaseID, Duration: res.Duration}
	r.res.Releases = append(r.res.Releases, rel)
	r.p.line(fmt.Sprintf("release %s: %s", shortID(rel.ID), rel.URL))
}

// shortID is how the dashboard abbreviates release ids (their random end).
func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// ParsePredictions reads a text/csv answer: one prediction per line (or comma-separated).
func ParsePredictions(body string) ([]float64, error) {
	fields := strings.FieldsFunc(body, func(c rune) bool { return c == '\n' || c == '\r' || c == ',' })
	out := make([]float64, 0, len(fields))
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(v) {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}
