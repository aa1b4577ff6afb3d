package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/serving"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Deploy implements spec.Serving: blue/green. The new fleet starts and passes health checks
// while the old one serves; traffic moves as dep.Strategy says; the old fleet drains and stops.
func (r *Runtime) Deploy(ctx context.Context, dep spec.Deployment, progress func(spec.Event)) error {
	stage := func(status, format string, args ...any) {
		if progress != nil {
			progress(spec.Event{Time: time.Now(), Message: fmt.Sprintf(format, args...), Status: status})
		}
	}
	emit := func(format string, args ...any) { stage("", format, args...) }
	if err := validate(dep); err != nil {
		return err
	}
	ep, opCtx, end, err := r.beginOp(ctx, r.key(dep.ID()), true)
	if err != nil {
		return err
	}
	defer end()

	nf, err := r.startFleet(opCtx, ep, dep, emit)
	if err != nil {
		if ep.current == nil {
			r.forget(ep)
		} else {
			emit("the new configuration failed to start; endpoint config %s keeps serving", ep.current.config)
		}
		return err
	}
	old := ep.current
	if old == nil {
		ep.table.Store(buildTable(share{nf, 1}))
		ep.current = nf
		ep.async.Store(newAsyncQueue(dep.Async, nf))
		ep.publishStates()
		emit("serving endpoint config %s: all traffic on %d instance(s)", nf.config, nf.instanceCount())
		return nil
	}

	if err := r.shift(opCtx, ep, old, nf, dep.Strategy, stage); err != nil {
		ep.table.Store(buildTable(share{old, 1}))
		emit("traffic rolled back to endpoint config %s: %v", old.config, err)
		r.retire(context.Background(), nf.all())
		nf.release()
		return fmt.Errorf("shift traffic to endpoint config %s: %w", nf.config, err)
	}
	ep.current = nf
	ep.async.Store(newAsyncQueue(dep.Async, nf))
	ep.publishStates()

	if s := dep.Strategy; s != nil && s.TerminationWait > 0 {
		stage(spec.StageBaking, "keeping the %d old instance(s) of %s for %s before terminating them", old.instanceCount(), old.config, s.TerminationWait)
		sleep(opCtx, s.TerminationWait)
	}
	emit("draining %d old instance(s) of endpoint config %s", old.instanceCount(), old.config)
	r.retire(context.Background(), old.all())
	old.release()
	emit("old instances stopped; endpoint config %s serves all traffic", nf.config)
	return nil
}

func validate(dep spec.Deployment) error {
	if dep.Endpoint == "" {
		return errors.New("deployment has no endpoint name")
	}
	if len(dep.Variants) == 0 {
		return fmt.Errorf("endpoint config %s has no production variant", dep.Config)
	}
	seen := map[string]bool{}
	for _, v := range dep.Variants {
		if seen[v.Name] {
			return fmt.Errorf("endpoint config %s names variant %s twice", dep.Config, v.Name)
		}
		seen[v.Name] = true
		if len(v.Containers) == 0 {
			return fmt.Errorf("variant %s (model %s) has no container", v.Name, v.ModelName)
		}
		if v.Weight < 0 || math.IsNaN(v.Weight) {
			return fmt.Errorf("variant %s has a negative weight", v.Name)
		}
		if s := v.Serverless; s != nil && s.MaxConcurrency < 1 {
			return fmt.Errorf("serverless variant %s has a MaxConcurrency of %d; it must be at least 1", v.Name, s.MaxConcurrency)
		}
	}
	return nil
}

// forget drops an endpoint whose first deployment failed; opMu is held.
func (r *Runtime) forget(ep *endpoint) {
	k := epKey{region: ep.region, name: ep.name}
	r.mu.Lock()
	if r.lookup(k) == ep {
		r.setEndpoint(k, nil)
	}
	r.mu.Unlock()
	ep.removed = true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFleet prepares every variant's models and starts its instances, all healthy, or
// stops whatever it started and says why.
func (r *Runtime) startFleet(ctx context.Context, ep *endpoint, dep spec.Deployment, emit func(string, ...any)) (*fleet, error) {
	f := &fleet{config: dep.Config, async: dep.Async}
	ok := false
	defer func() {
		if !ok {
			r.retire(context.Background(), f.all())
			f.release()
		}
	}()
	for _, vs := range dep.Variants {
		v := &variant{name: vs.Name, spec: vs, weight: vs.Weight, header: []string{vs.Name}, capture: captures(dep.DataCapture)}
		v.lastUsed.Store(time.Now().UnixNano()) // a new serverless variant stays warm for ServerlessIdle
		f.variants = append(f.variants, v)
		for _, c := range vs.Containers {
			m, err := serving.Prepare(ctx, c, serving.Source{Artifacts: r.opts.Artifacts, Store: r.store, ImageMap: r.opts.ImageMap,
				MaxModelBytes: r.opts.MaxModelBytes})
			if err != nil {
				return nil, fmt.Errorf("variant %s (model %s): %w", vs.Name, vs.ModelName, err)
			}
			v.models = append(v.models, m)
			emit("variant %s: model %s ready for %s", vs.Name, vs.ModelName, m.Describe())
		}
	}
	total := 0
	for _, v := range f.variants {
		total += instancesOf(v.spec)
	}
	emit("starting %d instance(s) for endpoint config %s", total, dep.Config)
	for _, v := range f.variants {
		insts, err := r.startInstances(ctx, ep, dep.Config, v, instancesOf(v.spec), emit)
		v.instances = insts
		if err != nil {
			return nil, err
		}
	}
	ok = true
	return f, nil
}

// instancesOf is how many instances a variant runs: a serverless variant runs one, which
// takes up to MaxConcurrency invocations at once.
func instancesOf(v spec.Variant) int {
	if v.Serverless != nil {
		return 1
	}
	return max(v.InstanceCount, 1)
}

// captures is the data capture a fleet's variants do, nil when they capture nothing.
func captures(dc *spec.DataCapture) *spec.DataCapture {
	if dc == nil || !dc.Enabled || dc.SamplingPercentage <= 0 || !(dc.Input || dc.Output) {
		return nil
	}
	return dc
}

// startInstances starts n more instances of a variant concurrently. On error it returns the
// ones that did start, for the caller to retire.
func (r *Runtime) startInstances(ctx context.Context, ep *endpoint, config string, v *variant, n int, emit func(string, ...any)) ([]*instance, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		started  []*instance
		firstErr error
		healthy  int
		wg       sync.WaitGroup
	)
	base := v.started
	v.started += n
	for k := range n {
		id := strconv.Itoa(base + k + 1)
		wg.Go(func() {
			inst, err := r.startInstance(ctx, ep, config, v, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel() // one failure fails the deployment; stop waiting for the rest
				}
				return
			}
			started = append(started, inst)
			healthy++
			if emit != nil && v.models[0].Kind() == serving.KindProcess {
				emit("variant %s: instance %s healthy (%d of %d)", v.name, id, healthy, n)
			}
		})
	}
	wg.Wait()
	slices.SortFunc(started, func(a, b *instance) int { return compareIDs(a.id, b.id) })
	if firstErr != nil {
		return started, fmt.Errorf("variant %s: %w", v.name, firstErr)
	}
	if emit != nil {
		emit("variant %s: %d instance(s) of %s healthy", v.name, n, cmp.Or(v.spec.InstanceType, "local"))
	}
	return started, nil
}

func compareIDs(a, b string) int {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return x - y
}

// startInstance starts one instance: one server per container, in order. A process that later
// stops on its own is replaced, as SageMaker replaces a failed instance.
func (r *Runtime) startInstance(ctx context.Context, ep *endpoint, config string, v *variant, id string) (*instance, error) {
	inst := newInstance(id, v, nil)
	chain := make([]serving.Instance, 0, len(v.models))
	for i, m := range v.models {
		instID := id
		if len(v.models) > 1 {
			instID = id + "-container" + strconv.Itoa(i+1)
		}
		srv, err := m.Start(ctx, serving.StartOptions{
			Endpoint: ep.name, Variant: v.name, InstanceID: instID,
			LogPath:       r.logPath(ep, config, v.name, instID),
			HealthTimeout: r.opts.HealthTimeout,
			PingInterval:  r.opts.PingInterval,
			Ports:         r.ports,
			OnExit:        func() { r.replaceDead(ep, v, inst) },
			Logger:        r.log,
		})
		if err != nil {
			inst.closed.Store(true) // its servers exit now: nothing to replace
			for _, s := range chain {
				s.Stop(context.Background())
			}
			return nil, err
		}
		chain = append(chain, srv)
	}
	inst.chain = chain
	return inst, nil
}

// replaceDead starts a replacement for an instance whose server stopped on its own, swaps it in
// and retires the dead one. A variant whose servers keep dying is replaced at most three
// times a minute.
func (r *Runtime) replaceDead(ep *endpoint, v *variant, dead *instance) {
	if dead.closed.Load() {
		return // being retired, or it never served
	}
	ep.opMu.Lock()
	defer ep.opMu.Unlock()
	f := ep.current
	if ep.removed || ep.removing.Load() || f == nil || !slices.Contains(f.variants, v) || !slices.Contains(v.instances, dead) || dead.closed.Load() {
		return
	}
	now := time.Now()
	v.replaced = slices.DeleteFunc(v.replaced, func(t time.Time) bool { return now.Sub(t) > time.Minute })
	if len(v.replaced) >= 3 {
		r.log.Error("model server keeps stopping; not replacing it again", "endpoint", ep.name, "variant", v.name, "instance", dead.id)
		return
	}
	v.replaced = append(v.replaced, now)
	ctx, end := ep.startOp(context.Background())
	defer end()
	r.log.Warn("replacing a stopped instance", "endpoint", ep.name, "variant", v.name, "instance", dead.id)
	insts, err := r.startInstances(ctx, ep, f.config, v, 1, nil)
	if err != nil {
		r.retire(context.Background(), insts)
		r.log.Error("could not replace a stopped instance", "endpoint", ep.name, "variant", v.name, "error", err)
		return
	}
	v.instances = slices.Clone(v.instances)
	v.instances[slices.Index(v.instances, dead)] = insts[0]
	ep.table.Store(buildTable(share{f, 1}))
	ep.publishStates()
	r.retire(context.Background(), []*instance{dead})
}

// shiftSteps returns the cumulative fractions of traffic on the new fleet after each step.
func shiftSteps(s *spec.Strategy, oldInstances int) []float64 {
	if s == nil {
		return []float64{1}
	}
	size := func(c *spec.CapacitySize) float64 {
		if c == nil {
			return 0
		}
		switch strings.ToUpper(c.Type) {
		case "INSTANCE_COUNT":
			return float64(c.Value) / float64(max(oldInstances, 1))
		case "CAPACITY_PERCENT":
			return float64(c.Value) / 100
		}
		return 0
	}
	switch strings.ToUpper(s.Type) {
	case "CANARY":
		if c := size(s.Canary); c > 0 && c < 1 {
			return []float64{c, 1}
		}
	case "LINEAR":
		if l := size(s.Linear); l > 0 && l < 1 {
			var steps []float64
			for k := 1; float64(k)*l < 1-1e-9; k++ {
				steps = append(steps, float64(k)*l)
			}
			return append(steps, 1)
		}
	}
	return []float64{1}
}

// shift moves traffic from old to nf step by step, baking between steps. On error (the
// context ends: MaximumExecutionTimeout, Remove, Close) the caller rolls traffic back.
func (r *Runtime) shift(ctx context.Context, ep *endpoint, old, nf *fleet, s *spec.Strategy, stage func(string, string, ...any)) error {
	if s != nil && s.MaximumExecutionTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, s.MaximumExecutionTimeout,
			fmt.Errorf("the deployment took longer than its MaximumExecutionTimeout of %s", s.MaximumExecutionTimeout))
		defer cancel()
	}
	steps := shiftSteps(s, old.instanceCount())
	for i, p := range steps {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		ep.table.Store(buildTable(share{old, 1 - p}, share{nf, p}))
		if p < 1 {
			stage(spec.StageActivatingTraffic, "traffic shifted %s%% to endpoint config %s (%s%% stays on %s)", pct(p), nf.config, pct(1-p), old.config)
		} else {
			stage(spec.StageActivatingTraffic, "traffic shifted 100%% to endpoint config %s", nf.config)
		}
		if i < len(steps)-1 && s.WaitInterval > 0 {
			stage(spec.StageBaking, "baking for %s before the next step", s.WaitInterval)
			if sleep(ctx, s.WaitInterval) != nil {
				return context.Cause(ctx)
			}
		}
	}
	return nil
}

func pct(p float64) string {
	return strconv.FormatFloat(math.Round(p*1000)/10, 'f', -1, 64)
}

// UpdateVariants implements spec.Serving: weights change at once; added instances start and
// pass health checks before they get traffic; removed ones leave the routing table, drain and
// stop.
func (r *Runtime) UpdateVariants(ctx context.Context, endpoint spec.EndpointID, updates []spec.VariantUpdate) error {
	ep, opCtx, end, err := r.beginOp(ctx, r.key(endpoint), false)
	if err != nil {
		return err
	}
	defer end()
	f := ep.current
	if f == nil {
		return fmt.Errorf("endpoint %s is not serving", endpoint.Name)
	}
	byName, err := checkUpdates(endpoint.Name, f, updates)
	if err != nil {
		return err
	}

	// Start every added instance first, so that a failure changes nothing.
	added := map[*variant][]*instance{}
	for _, u := range updates {
		v := byName[u.VariantName]
		if u.InstanceCount == nil || *u.InstanceCount <= len(v.instances)+len(added[v]) {
			continue
		}
		insts, err := r.startInstances(opCtx, ep, f.config, v, *u.InstanceCount-len(v.instances)-len(added[v]), nil)
		added[v] = append(added[v], insts...)
		if err != nil {
			for _, more := range added {
				r.retire(context.Background(), more)
			}
			return err
		}
	}
	var removed []*instance
	for _, u := range updates {
		v := byName[u.VariantName]
		if u.Weight != nil {
			v.weight = *u.Weight
		}
		if u.InstanceCount == nil {
			continue
		}
		insts := append(slices.Clone(v.instances), added[v]...)
		delete(added, v)
		if n := *u.InstanceCount; n < len(insts) {
			removed = append(removed, insts[n:]...)
			insts = insts[:n]
		}
		v.instances = insts
	}
	ep.table.Store(buildTable(share{f, 1}))
	ep.async.Store(newAsyncQueue(f.async, f))
	ep.publishStates()
	r.retire(context.Background(), removed)
	return nil
}

// checkUpdates refuses updates naming no variant of f or asking for impossible values, and
// returns f's variants by name.
func checkUpdates(endpoint string, f *fleet, updates []spec.VariantUpdate) (map[string]*variant, error) {
	byName := map[string]*variant{}
	for _, v := range f.variants {
		byName[v.name] = v
	}
	for _, u := range updates {
		v := byName[u.VariantName]
		if v == nil {
			return nil, fmt.Errorf("endpoint %s has no variant %s; its variants are %s", endpoint, u.VariantName, strings.Join(variantNames(f), ", "))
		}
		if u.Weight != nil && (*u.Weight < 0 || math.IsNaN(*u.Weight)) {
			return nil, fmt.Errorf("variant %s: weight %v is negative", u.VariantName, *u.Weight)
		}
		if u.InstanceCount != nil && *u.InstanceCount < 1 {
			return nil, fmt.Errorf("variant %s: instance count %d is below 1", u.VariantName, *u.InstanceCount)
		}
		if u.InstanceCount != nil && v.spec.Serverless != nil {
			return nil, fmt.Errorf("variant %s is serverless: it has no instance count to change; change MaxConcurrency with a new endpoint configuration", u.VariantName)
		}
	}
	return byName, nil
}

func variantNames(f *fleet) []string {
	var names []string
	for _, v := range f.variants {
		names = append(names, v.name)
	}
	return names
}
