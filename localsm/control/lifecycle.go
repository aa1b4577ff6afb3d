package control

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Endpoint lifecycle. Every change of an endpoint's status runs as one background job per
// endpoint, so DescribeEndpoint shows Creating/Updating/Deleting for as long as the serving layer
// works. Each job carries the endpoint's generation at its start; a job whose endpoint has moved
// on (deleted, recreated) leaves it alone.

// job is the background work in flight for one endpoint.
type job struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startJobLocked runs fn in the background for endpoint key. The caller holds c.mu and has
// already persisted the status the job starts from.
func (c *Control) startJobLocked(key string, fn func(ctx context.Context)) {
	if c.closed {
		return
	}
	prev := c.active[key]
	ctx, cancel := context.WithCancel(c.ctx)
	j := &job{cancel: cancel, done: make(chan struct{})}
	c.active[key] = j
	c.jobs.Add(1)
	go func() {
		defer c.jobs.Done()
		defer close(j.done)
		defer cancel()
		if prev != nil {
			// Never two jobs on one endpoint at once: a delete waits for the deploy it cancelled.
			<-prev.done
		}
		fn(ctx)
		c.mu.Lock()
		if c.active[key] == j {
			delete(c.active, key)
		}
		c.mu.Unlock()
	}()
}

// cancelJobLocked stops the job in flight for key, if any; the next job waits for it to end.
func (c *Control) cancelJobLocked(key string) {
	if j := c.active[key]; j != nil {
		j.cancel()
	}
}

// transition applies fn to endpoint key if it is still at generation gen, persists and installs
// the result. It reports whether the endpoint was still there to change.
func (c *Control) transition(key string, gen int64, fn func(e *endpointRes)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.st.endpoints[key]
	if !ok || cur.Gen != gen {
		return false
	}
	e := clone(cur)
	fn(e)
	e.Modified = c.now()
	if err := c.put(context.Background(), kindEndpoint, key, e); err != nil {
		// The process keeps serving the truth it knows; the store catches up on the next write.
		c.log.Error("save endpoint state", "endpoint", e.Name, "error", err)
	}
	c.st.endpoints[key] = e
	return true
}

// deploy, updateVariants and remove call the serving layer; a panic there fails the one
// operation instead of taking the whole server down.
func (c *Control) deploy(ctx context.Context, dep spec.Deployment) (err error) {
	defer c.recoverServing(&err, "deploy")
	return c.opts.Serving.Deploy(ctx, dep, c.progress(dep.Endpoint, dep.Config))
}

func (c *Control) updateVariants(ctx context.Context, endpoint spec.EndpointID, updates []spec.VariantUpdate) (err error) {
	defer c.recoverServing(&err, "update variants")
	return c.opts.Serving.UpdateVariants(ctx, endpoint, updates)
}

func (c *Control) remove(ctx context.Context, endpoint spec.EndpointID) (err error) {
	defer c.recoverServing(&err, "remove")
	return c.opts.Serving.Remove(ctx, endpoint)
}

func (c *Control) recoverServing(err *error, what string) {
	if p := recover(); p != nil {
		c.log.Error("panic in serving layer", "call", what, "panic", p)
		*err = fmt.Errorf("internal error in the local serving layer during %s: %v", what, p)
	}
}

// failureReason fits an error into DescribeEndpoint's FailureReason (at most 1024 characters).
func failureReason(err error) string {
	s := err.Error()
	if len(s) > 1024 {
		s = s[:1021] + "..."
	}
	return s
}

// stageNote is the blue/green stages the deployment of config on an endpoint went through.
type stageNote struct {
	config string
	evs    []spec.Event
}

func (c *Control) progress(endpoint, config string) func(spec.Event) {
	return func(ev spec.Event) {
		c.log.Info("endpoint progress", "endpoint", endpoint, "message", ev.Message)
		if ev.Status == "" {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		n := c.stages[endpoint]
		if n.config != config {
			n = stageNote{config: config} // a new deployment starts its own list
		}
		// A shift or bake is often over between two polls: every stage stays listed until the
		// deployment ends, so that a watcher misses none (at most the last 16).
		n.evs = append(n.evs[max(len(n.evs)-15, 0):], ev)
		c.stages[endpoint] = n
	}
}

// stagesOf is the stages the deployment of config on endpoint went through, oldest first.
func (c *Control) stagesOf(endpoint, config string) []spec.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.stages[endpoint]; n.config == config {
		return slices.Clone(n.evs)
	}
	return nil
}

// closing reports whether ctx ended because the control plane is closing: the job then leaves
// the endpoint's status as it is, to be resumed on the next start.
func (c *Control) closing(ctx context.Context) bool {
	return ctx.Err() != nil && c.ctx.Err() != nil
}

// runCreate deploys a new endpoint: Creating → InService, or Failed with the serving layer's
// reason.
func (c *Control) runCreate(ctx context.Context, key string, gen int64, dep deployment) {
	start := time.Now()
	err := c.deploy(ctx, dep.Spec)
	if ctx.Err() != nil {
		return // closing (resumed on restart) or deleting (the delete job takes over)
	}
	c.transition(key, gen, func(e *endpointRes) {
		e.Pending = nil
		if err != nil {
			e.Status = statusFailed
			e.FailureReason = failureReason(err)
			return
		}
		e.Status = statusInService
		e.FailureReason = ""
		e.Current = settled(dep)
		e.ConfigName = dep.ConfigName
	})
	c.logOutcome("create", dep.Spec.Endpoint, dep.ConfigName, start, err)
}

// runUpdate moves an endpoint to a new configuration: Updating → InService on the new one. On
// failure it goes straight back to InService on the previous configuration with FailureReason
// set, as SageMaker shows a failed UpdateEndpoint (RollingBack is for failed weight and capacity
// changes). An endpoint that was not serving (OutOfService) returns to OutOfService.
//
// With rollback alarms (AutoRollbackConfiguration), an alarm in ALARM before the new fleet has
// taken over stops the deployment: traffic goes back to the old fleet and FailureReason names the
// alarm.
func (c *Control) runUpdate(ctx context.Context, key string, gen int64, dep deployment, before string) {
	start := time.Now()
	alarms, previous := c.guardrailsOf(key, gen)
	gctx, stopGuard := c.guard(ctx, dep.Spec.Endpoint, alarms)
	err := c.deploy(gctx, c.forServing(dep.Spec))
	trip := stopGuard()
	if ctx.Err() != nil {
		return
	}
	if trip != nil && previous != nil {
		c.alarmRollback(ctx, key, gen, dep, *previous, trip, err == nil, start)
		return
	}
	c.logOutcome("update", dep.Spec.Endpoint, dep.ConfigName, start, err)
	if err == nil {
		c.transition(key, gen, func(e *endpointRes) {
			e.Pending = nil
			e.Status = statusInService
			e.FailureReason = ""
			e.Current = settled(dep)
			e.ConfigName = dep.ConfigName
		})
		return
	}
	c.transition(key, gen, func(e *endpointRes) {
		e.Pending = nil
		e.Status = before
		e.FailureReason = failureReason(err)
	})
}

// guardrailsOf reads what the update at gen of endpoint key runs under: the rollback alarms of
// its DeploymentConfig and the deployment it replaces (nil when nothing served).
func (c *Control) guardrailsOf(key string, gen int64) (alarms []string, previous *deployment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.st.endpoints[key]
	if !ok || e.Gen != gen {
		return nil, nil
	}
	return rollbackAlarms(e.LastDeploymentConfig), e.Current
}

// forServing is dep as the serving layer runs it. An all-at-once shift bakes for its
// WaitInterval once all traffic has moved, with the old fleet kept for a rollback, as SageMaker
// does; the serving layer keeps old fleets for TerminationWait, so the bake is added to it. The
// waits are shortened by TimeScale, so that bakes of minutes last seconds in tests and demos, in
// step with CloudWatch's periods.
func (c *Control) forServing(dep spec.Deployment) spec.Deployment {
	if dep.Strategy == nil {
		return dep
	}
	s := *dep.Strategy
	if s.Type == "ALL_AT_ONCE" {
		s.TerminationWait += s.WaitInterval
	}
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * c.opts.TimeScale) }
	s.WaitInterval, s.TerminationWait = scale(s.WaitInterval), scale(s.TerminationWait)
	s.MaximumExecutionTimeout = scale(s.MaximumExecutionTimeout)
	dep.Strategy = &s
	return dep
}

// rollBack shows RollingBack for RollbackHold, then InService with the previous weights and
// counts, as SageMaker shows a failed UpdateEndpointWeightsAndCapacities.
func (c *Control) rollBack(ctx context.Context, key string, gen int64, reason string) {
	if !c.transition(key, gen, func(e *endpointRes) {
		e.Status = statusRollingBack
		e.FailureReason = reason
	}) {
		return
	}
	t := time.NewTimer(c.opts.RollbackHold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		if c.closing(ctx) {
			return
		}
	}
	c.transition(key, gen, func(e *endpointRes) { e.Status = statusInService })
}

// runWeights applies UpdateEndpointWeightsAndCapacities: Updating → InService; on failure
// RollingBack → InService with the previous weights and counts and FailureReason set.
func (c *Control) runWeights(ctx context.Context, key string, gen int64, endpoint spec.EndpointID, updates []spec.VariantUpdate, previous *deployment) {
	start := time.Now()
	err := c.updateVariants(ctx, endpoint, updates)
	if ctx.Err() != nil {
		return
	}
	c.logOutcome("update weights and capacities", endpoint.Name, "", start, err)
	if err == nil {
		c.transition(key, gen, func(e *endpointRes) {
			e.Status = statusInService
			e.FailureReason = ""
			e.Current = settled(*e.Current)
		})
		return
	}
	c.transition(key, gen, func(e *endpointRes) { e.Current = previous })
	c.rollBack(ctx, key, gen, failureReason(err))
}

// runDelete stops the endpoint's servers and forgets it: Deleting → gone.
func (c *Control) runDelete(ctx context.Context, key string, gen int64, id spec.EndpointID) {
	endpoint := id.Name
	if err := c.remove(ctx, id); err != nil {
		if c.closing(ctx) {
			return
		}
		c.log.Error("remove endpoint servers", "endpoint", endpoint, "error", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.st.endpoints[key]; !ok || cur.Gen != gen {
		return
	}
	if err := c.persist(context.Background(), nil, DocKey{kindEndpoint, key}); err != nil {
		c.log.Error("delete endpoint record", "endpoint", endpoint, "error", err)
	}
	delete(c.st.endpoints, key)
	c.log.Info("endpoint deleted", "endpoint", endpoint)
}

// settled is a deployment once all its traffic and instances are in place.
func settled(dep deployment) *deployment {
	out := dep
	out.Variants = make([]variantState, len(dep.Variants))
	for i, v := range dep.Variants {
		v.CurrentWeight = v.DesiredWeight
		v.CurrentInstanceCount = v.DesiredInstanceCount
		out.Variants[i] = v
	}
	out.Spec.Variants = make([]spec.Variant, len(dep.Spec.Variants))
	copy(out.Spec.Variants, dep.Spec.Variants)
	for i := range out.Spec.Variants {
		for _, v := range out.Variants {
			if v.Name == out.Spec.Variants[i].Name {
				out.Spec.Variants[i].Weight = v.DesiredWeight
				out.Spec.Variants[i].InstanceCount = v.DesiredInstanceCount
			}
		}
	}
	return &out
}

func (c *Control) logOutcome(what, endpoint, config string, start time.Time, err error) {
	attrs := []any{"endpoint", endpoint, "duration", time.Since(start).Round(time.Millisecond)}
	if config != "" {
		attrs = append(attrs, "config", config)
	}
	if err != nil {
		c.log.Warn("endpoint "+what+" failed", append(attrs, "reason", err.Error())...)
		return
	}
	c.log.Info("endpoint "+what+" done", attrs...)
}

// Restore makes every endpoint serve again after a start, in the background:
//   - InService (and RollingBack, SystemUpdating) endpoints are deployed again from the same
//     snapshot. Meanwhile DescribeEndpoint reports SystemUpdating, AWS's status for maintenance
//     that changes nothing the user asked for; then InService again. If the snapshot can no
//     longer be served (an artifact was deleted), the endpoint becomes OutOfService with the
//     reason; UpdateEndpoint can bring it back.
//   - An endpoint caught Creating by a crash is created again; one caught Updating first gets its
//     previous configuration back, then the update is run again; one caught Deleting is deleted.
//   - Failed and OutOfService endpoints stay as they are.
func (c *Control) Restore() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, e := range c.st.endpoints {
		gen := e.Gen
		switch e.Status {
		case statusInService, statusRollingBack, statusSystemUpdating, statusUpdateRollbackFailed:
			if e.Current == nil {
				continue
			}
			ne := clone(e)
			ne.Status = statusSystemUpdating
			c.st.endpoints[key] = ne
			dep := inRegion(*e.Current, e.Region)
			c.startJobLocked(key, func(ctx context.Context) { c.runRestore(ctx, key, gen, dep) })
		case statusCreating:
			if e.Pending == nil {
				continue
			}
			dep := inRegion(e.Pending.Deployment, e.Region)
			c.startJobLocked(key, func(ctx context.Context) { c.runCreate(ctx, key, gen, dep) })
		case statusUpdating:
			c.restoreUpdate(key, e)
		case statusDeleting:
			id := e.id()
			c.startJobLocked(key, func(ctx context.Context) { c.runDelete(ctx, key, gen, id) })
		}
	}
}

// restoreUpdate resumes an update a crash interrupted: the previous configuration serves
// again, then the update runs again. c.mu is held.
func (c *Control) restoreUpdate(key string, e *endpointRes) {
	gen := e.Gen
	var cur, pending *deployment
	if e.Current != nil {
		d := inRegion(*e.Current, e.Region)
		cur = &d
	}
	if e.Pending != nil {
		d := inRegion(e.Pending.Deployment, e.Region)
		pending = &d
	}
	c.startJobLocked(key, func(ctx context.Context) {
		if cur == nil {
			if pending != nil {
				c.runUpdate(ctx, key, gen, *pending, statusOutOfService)
			}
			return
		}
		if !c.runRestore(ctx, key, gen, *cur) || pending == nil {
			return
		}
		c.transition(key, gen, func(e *endpointRes) { e.Status = statusUpdating })
		c.runUpdate(ctx, key, gen, *pending, statusInService)
	})
}

// inRegion completes a deployment stored before deployments named their region, data capture
// and async settings in the serving layer's terms: the region of its endpoint, and the settings
// from the configuration it echoes.
func inRegion(dep deployment, region string) deployment {
	if dep.Spec.Region == "" {
		dep.Spec.Region = region
	}
	if dep.Spec.DataCapture == nil {
		dep.Spec.DataCapture, _ = dataCaptureOf(dep.ConfigName, dep.DataCaptureConfig)
	}
	if dep.Spec.Async == nil {
		dep.Spec.Async, _ = asyncOf(dep.ConfigName, dep.AsyncInferenceConfig)
	}
	return dep
}

// runRestore deploys what an endpoint served before the restart; it reports success.
func (c *Control) runRestore(ctx context.Context, key string, gen int64, dep deployment) bool {
	start := time.Now()
	err := c.deploy(ctx, dep.Spec)
	if ctx.Err() != nil {
		return false
	}
	c.logOutcome("restore", dep.Spec.Endpoint, dep.ConfigName, start, err)
	c.transition(key, gen, func(e *endpointRes) {
		if err != nil {
			e.Status = statusOutOfService
			e.FailureReason = failureReason(fmt.Errorf("could not serve endpoint configuration %s again after a restart: %w", dep.ConfigName, err))
			return
		}
		e.Status = statusInService
	})
	return err == nil
}

// strategyOf turns a DeploymentConfig into the serving layer's traffic-shift strategy.
func strategyOf(dc map[string]any) (*spec.Strategy, error) {
	if dc == nil {
		return nil, nil
	}
	var in struct {
		BlueGreenUpdatePolicy *struct {
			TrafficRoutingConfiguration struct {
				Type                  string
				WaitIntervalInSeconds int
				CanarySize            *struct {
					Type  string
					Value int
				}
				LinearStepSize *struct {
					Type  string
					Value int
				}
			}
			TerminationWaitInSeconds         int
			MaximumExecutionTimeoutInSeconds int
		}
		RollingUpdatePolicy *rollingPolicy
	}
	if err := bind(dc, &in); err != nil {
		return nil, err
	}
	p := in.BlueGreenUpdatePolicy
	if in.RollingUpdatePolicy != nil {
		if p != nil {
			return nil, errValidation("Give either BlueGreenUpdatePolicy or RollingUpdatePolicy in DeploymentConfig, not both.")
		}
		return rollingStrategy(in.RollingUpdatePolicy)
	}
	if p == nil {
		return nil, nil
	}
	t := p.TrafficRoutingConfiguration
	s := &spec.Strategy{Type: t.Type, WaitInterval: time.Duration(t.WaitIntervalInSeconds) * time.Second,
		TerminationWait:         time.Duration(p.TerminationWaitInSeconds) * time.Second,
		MaximumExecutionTimeout: time.Duration(p.MaximumExecutionTimeoutInSeconds) * time.Second}
	switch t.Type {
	case "CANARY":
		if t.CanarySize == nil {
			return nil, errValidation("TrafficRoutingConfiguration of type CANARY needs CanarySize (INSTANCE_COUNT or CAPACITY_PERCENT and a value).")
		}
		if t.LinearStepSize != nil {
			return nil, errValidation("LinearStepSize applies to LINEAR traffic routing, not CANARY.")
		}
		s.Canary = &spec.CapacitySize{Type: t.CanarySize.Type, Value: t.CanarySize.Value}
	case "LINEAR":
		if t.LinearStepSize == nil {
			return nil, errValidation("TrafficRoutingConfiguration of type LINEAR needs LinearStepSize (INSTANCE_COUNT or CAPACITY_PERCENT and a value).")
		}
		if t.CanarySize != nil {
			return nil, errValidation("CanarySize applies to CANARY traffic routing, not LINEAR.")
		}
		s.Linear = &spec.CapacitySize{Type: t.LinearStepSize.Type, Value: t.LinearStepSize.Value}
	case "ALL_AT_ONCE":
		if t.CanarySize != nil || t.LinearStepSize != nil {
			return nil, errValidation("ALL_AT_ONCE traffic routing takes neither CanarySize nor LinearStepSize.")
		}
	}
	for _, size := range []*spec.CapacitySize{s.Canary, s.Linear} {
		if size != nil && size.Type == "CAPACITY_PERCENT" && size.Value > 100 {
			return nil, errValidation("A CAPACITY_PERCENT step of %d%% is more than 100%%.", size.Value)
		}
	}
	return s, nil
}

// rollingPolicy is a DeploymentConfig's RollingUpdatePolicy.
type rollingPolicy struct {
	MaximumBatchSize *struct {
		Type  string
		Value int
	}
	WaitIntervalInSeconds            *int
	MaximumExecutionTimeoutInSeconds int
	RollbackMaximumBatchSize         *struct {
		Type  string
		Value int
	}
}

// rollingStrategy turns a RollingUpdatePolicy into the serving layer's strategy: traffic moves
// to the new instances one batch of MaximumBatchSize at a time, each batch baking for
// WaitIntervalInSeconds, as a linear shift in steps of the batch size. A rollback moves all
// traffic back at once: locally the old instances are still there, so RollbackMaximumBatchSize
// only needs to be valid.
func rollingStrategy(p *rollingPolicy) (*spec.Strategy, error) {
	if p.MaximumBatchSize == nil {
		return nil, errValidation("RollingUpdatePolicy needs MaximumBatchSize (INSTANCE_COUNT or CAPACITY_PERCENT and a value).")
	}
	if p.WaitIntervalInSeconds == nil {
		return nil, errValidation("RollingUpdatePolicy needs WaitIntervalInSeconds, the bake after each batch.")
	}
	for _, b := range []*struct {
		Type  string
		Value int
	}{p.MaximumBatchSize, p.RollbackMaximumBatchSize} {
		if b == nil {
			continue
		}
		if b.Type != "INSTANCE_COUNT" && b.Type != "CAPACITY_PERCENT" {
			return nil, errValidation("A batch size of a RollingUpdatePolicy has Type INSTANCE_COUNT or CAPACITY_PERCENT, not %q.", b.Type)
		}
		if b.Value < 1 || (b.Type == "CAPACITY_PERCENT" && b.Value > 100) {
			return nil, errValidation("A %s batch size of %d is out of range.", b.Type, b.Value)
		}
	}
	return &spec.Strategy{Type: "LINEAR", Linear: &spec.CapacitySize{Type: p.MaximumBatchSize.Type, Value: p.MaximumBatchSize.Value},
		WaitInterval:            time.Duration(*p.WaitIntervalInSeconds) * time.Second,
		MaximumExecutionTimeout: time.Duration(p.MaximumExecutionTimeoutInSeconds) * time.Second}, nil
}

var errClosed = errors.New("the local SageMaker is shutting down")

// inProgress is true for statuses during which an endpoint cannot be changed.
func inProgress(status string) bool {
	switch status {
	case statusCreating, statusUpdating, statusSystemUpdating, statusRollingBack, statusDeleting:
		return true
	}
	return false
}
