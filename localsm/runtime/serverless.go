package runtime

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Serverless variants run one instance that takes up to MaxConcurrency invocations at once
// (see admit). Without ProvisionedConcurrency, the instance stops after ServerlessIdle without
// invocations, and the next invocation starts it again: a cold start, whose setup time is
// reported to Options.ColdStarts and counts in that invocation's overhead latency.

// warm starts an instance for a serverless variant scaled to zero and returns it acquired for
// the caller's invocation, so that the reaper cannot take it away first. It returns nil with no
// error when another invocation started one meanwhile: the caller routes again.
func (r *Runtime) warm(ctx context.Context, ep *endpoint, v *variant) (*instance, error) {
	start := time.Now()
	ep.opMu.Lock()
	defer ep.opMu.Unlock()
	f := ep.current
	if ep.removed || f == nil || !slices.Contains(f.variants, v) {
		return nil, errors.New("the endpoint is changing; retry")
	}
	if len(v.instances) > 0 {
		return nil, nil
	}
	opCtx, end := ep.startOp(ctx)
	defer end()
	insts, err := r.startInstances(opCtx, ep, f.config, v, 1, nil)
	if err != nil {
		r.retire(context.Background(), insts)
		return nil, err
	}
	v.instances = insts
	v.lastUsed.Store(time.Now().UnixNano())
	ep.table.Store(buildTable(share{f, 1}))
	ep.publishStates()
	inst := insts[0]
	inst.acquire() // not in any drain yet: cannot fail
	setup := time.Since(start)
	r.log.Info("serverless cold start", "endpoint", ep.name, "region", ep.region, "variant", v.name, "setup", setup)
	if r.opts.ColdStarts != nil {
		r.opts.ColdStarts(ColdStart{Endpoint: specID(ep), Variant: v.name, Setup: setup})
	}
	return inst, nil
}

// reapIdle stops the instances of serverless variants left idle for ServerlessIdle.
func (r *Runtime) reapIdle() {
	defer r.work.Done()
	idle := r.opts.ServerlessIdle
	t := time.NewTicker(min(max(idle/4, 5*time.Millisecond), 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-r.bg.Done():
			return
		case <-t.C:
			for _, ep := range *r.endpoints.Load() {
				r.reap(ep, idle)
			}
		}
	}
}

// reap scales ep's idle serverless variants to zero. An endpoint busy with an operation (a
// deploy, a shift) is left for the next round.
func (r *Runtime) reap(ep *endpoint, idle time.Duration) {
	if !ep.opMu.TryLock() {
		return
	}
	defer ep.opMu.Unlock()
	f := ep.current
	if ep.removed || ep.removing.Load() || f == nil {
		return
	}
	var stopped []*instance
	now := time.Now().UnixNano()
	for _, v := range f.variants {
		s := v.spec.Serverless
		if s == nil || s.ProvisionedConcurrency > 0 || len(v.instances) == 0 || now-v.lastUsed.Load() < int64(idle) ||
			slices.ContainsFunc(v.instances, func(i *instance) bool { return i.inflight.Load() > 0 }) {
			continue
		}
		stopped = append(stopped, v.instances...)
		v.instances = nil
	}
	if len(stopped) == 0 {
		return
	}
	ep.table.Store(buildTable(share{f, 1}))
	ep.publishStates()
	r.log.Info("serverless variant idle; instance stopped until the next invocation", "endpoint", ep.name, "region", ep.region)
	r.retire(context.Background(), stopped)
}

func specID(ep *endpoint) spec.EndpointID { return spec.EndpointID{Region: ep.region, Name: ep.name} }
