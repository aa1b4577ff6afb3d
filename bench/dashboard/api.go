package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// bench drives one running release server.
type bench struct {
	o      options
	base   string
	st     *store.Store
	envs   []releases.Environment
	models []string
	tokens map[string]string // environment → integration token

	approver, approverPW string
	viewer, viewerPW     string
	browser              *http.Client // signed in as viewer
}

// setUp creates the users and the integration tokens, as `sagedeploy server` commands do.
func (b *bench) setUp(ctx context.Context) error {
	b.approver, b.approverPW = "carol", "approver-password-1"
	b.viewer, b.viewerPW = "alice", "viewer-password-1"
	if _, err := server.AddUser(ctx, b.st, b.approver, store.RoleDeployer, b.approverPW, bcrypt.MinCost); err != nil {
		return fmt.Errorf("add user %s: %w", b.approver, err)
	}
	if _, err := server.AddUser(ctx, b.st, b.viewer, store.RoleViewer, b.viewerPW, bcrypt.MinCost); err != nil {
		return fmt.Errorf("add user %s: %w", b.viewer, err)
	}
	for _, e := range b.envs {
		tok, _, err := server.CreateToken(ctx, b.st, e.Name, "ci-"+e.Name, "bench")
		if err != nil {
			return fmt.Errorf("create token for %s: %w", e.Name, err)
		}
		b.tokens[e.Name] = tok
	}
	return nil
}

// client is the deployer's client for env, on its own connections.
func (b *bench) client(env string) *releases.Client {
	return releases.NewClient(b.base, b.tokens[env], &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}})
}

// approve approves a pending release through the API as a deployer.
func (b *bench) approve(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/api/v1/releases/"+url.PathEscape(id)+"/approve", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(b.approver, b.approverPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("approve release %s: %w %d: %s", id, errStatus, resp.StatusCode, body)
	}
	return nil
}

// deploy reports one whole release as the deployer does, and the time each AddEvent took.
func (b *bench) deploy(ctx context.Context, c *releases.Client, env, model string, version, events int) ([]time.Duration, error) {
	v := releases.Version{Number: version, ModelPackageARN: fmt.Sprintf("arn:aws:sagemaker:eu-west-1:123456789012:model-package/%s/%d", model, version)}
	r, err := c.StartRelease(ctx, releases.ReleaseStart{Environment: env, Model: model, Kind: releases.KindDeploy, Version: v,
		EndpointName: model + "-" + env, InstanceType: "ml.m5.large", InstanceCount: 2,
		Trigger: releases.Trigger{Type: "pipeline", PipelineID: fmt.Sprintf("pipe-%d", 90000+version)}})
	if err != nil {
		return nil, err
	}
	if r.Status == releases.StatusPending {
		if err := b.approve(ctx, r.ID); err != nil {
			return nil, err
		}
	}
	lat := make([]time.Duration, 0, events)
	for k := range events {
		p := phases[k%len(phases)]
		t0 := time.Now()
		if _, err := c.AddEvent(ctx, r.ID, releases.Event{Phase: releases.Phase(p.phase), Message: "step " + p.phase + " of " + model + "-" + env, EndpointStatus: p.status}); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	_, err = c.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &v,
		EndpointStatus: "InService", InstanceType: "ml.m5.large", InstanceCount: 2})
	return lat, err
}

type liveResult struct {
	releases, events int
	elapsed          time.Duration
	eventLatency     []time.Duration
}

// liveReleases records a release of every component through the API, four deployers at a time,
// so that components, their current versions and what they served are derived as in production.
func (b *bench) liveReleases(ctx context.Context) (liveResult, error) {
	type job struct{ env, model string }
	jobs := make(chan job)
	var mu sync.Mutex
	var res liveResult
	var firstErr error
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 4 {
		wg.Go(func() {
			clients := map[string]*releases.Client{}
			for j := range jobs {
				c := clients[j.env]
				if c == nil {
					c = b.client(j.env)
					clients[j.env] = c
				}
				lat, err := b.deploy(ctx, c, j.env, j.model, 500, b.o.events)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("release of %s in %s: %w", j.model, j.env, err)
				}
				res.releases++
				res.events += len(lat)
				res.eventLatency = append(res.eventLatency, lat...)
				mu.Unlock()
			}
		})
	}
	for _, e := range b.envs {
		for _, m := range b.models {
			jobs <- job{e.Name, m}
		}
	}
	close(jobs)
	wg.Wait()
	res.elapsed = time.Since(t0)
	return res, firstErr
}

// leavePending starts n deploys into the last (gated) environment and leaves them waiting for
// an approval, as the overview usually shows some.
func (b *bench) leavePending(ctx context.Context, n int) error {
	env := b.envs[len(b.envs)-1]
	if !env.RequiresApproval {
		return nil
	}
	c := b.client(env.Name)
	for i := range n {
		_, err := c.StartRelease(ctx, releases.ReleaseStart{Environment: env.Name, Model: b.models[i%len(b.models)], Kind: releases.KindPromote,
			Version: releases.Version{Number: 501}, Trigger: releases.Trigger{Type: "pipeline", PipelineID: "pipe-pending"}})
		if err != nil {
			return err
		}
	}
	return nil
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs the viewer in through the sign-in form, as a browser does.
func (b *bench) signIn(ctx context.Context) error {
	jar, _ := cookiejar.New(nil)
	b.browser = &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 2},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page, _, err := b.get(ctx, "/login")
	if err != nil {
		return err
	}
	m := csrfInput.FindSubmatch(page)
	if m == nil {
		return fmt.Errorf("the sign-in page has no CSRF field")
	}
	form := url.Values{"username": {b.viewer}, "password": {b.viewerPW}, "csrf": {string(m[1])}, "next": {"/"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.browser.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign in as %s: %w %d: %s", b.viewer, errStatus, resp.StatusCode, body)
	}
	home, _, err := b.get(ctx, "/")
	if err != nil {
		return err
	}
	if !strings.Contains(string(home), b.viewer) {
		return fmt.Errorf("signed in, but the overview does not name user %s", b.viewer)
	}
	return nil
}

// get fetches a path as the signed-in browser and fails on anything but 200.
func (b *bench) get(ctx context.Context, path string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	resp, err := b.browser.Do(req)
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %w %d: %.300s", path, errStatus, resp.StatusCode, body)
	}
	return body, d, nil
}

type ingestResult struct {
	clients int
	events  int
	elapsed time.Duration
	latency []time.Duration
}

// ingest has several deployers report events as fast as the server takes them, each into a
// running release of its own, for the configured time.
func (b *bench) ingest(ctx context.Context) (ingestResult, error) {
	res := ingestResult{clients: b.o.ingestConns}
	var mu sync.Mutex
	var firstErr error
	var count atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(b.o.ingestTime)
	t0 := time.Now()
	for w := range b.o.ingestConns {
		env := b.envs[w%max(len(b.envs)-2, 1)] // ungated: no approval in the way
		model := b.models[w%len(b.models)]
		wg.Go(func() {
			c := b.client(env.Name)
			fail := func(err error) {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			r, err := c.StartRelease(ctx, releases.ReleaseStart{Environment: env.Name, Model: model, Kind: releases.KindDeploy,
				Version: releases.Version{Number: 600 + w}, Trigger: releases.Trigger{Type: "pipeline", PipelineID: "pipe-ingest"}})
			if err != nil {
				fail(err)
				return
			}
			var lat []time.Duration
			for k := 0; time.Now().Before(deadline); k++ {
				p := phases[k%len(phases)]
				t := time.Now()
				if _, err := c.AddEvent(ctx, r.ID, releases.Event{Phase: releases.Phase(p.phase), Message: fmt.Sprintf("progress %d", k), EndpointStatus: p.status}); err != nil {
					fail(err)
					return
				}
				lat = append(lat, time.Since(t))
				count.Add(1)
			}
			if _, err := c.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded}); err != nil {
				fail(err)
			}
			mu.Lock()
			res.latency = append(res.latency, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(t0)
	res.events = int(count.Load())
	return res, firstErr
}

// percentile returns the p-th percentile (nearest rank) of durations.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
