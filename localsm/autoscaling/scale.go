package autoscaling

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// activity is when a target was last scaled, for cooldowns.
type activity struct {
	lastOut, lastIn time.Time
}

// observation is everything a target-tracking decision looks at.
type observation struct {
	Current, Min, Max int
	// PerInstance is InvocationsPerInstance over the last minute; HaveMetric is false when the
	// variant had no invocations (then AWS's target tracking does nothing, and neither do we).
	PerInstance float64
	HaveMetric  bool
	Target      float64
	// SinceOut and SinceIn are how long ago the target last scaled out and in.
	SinceOut, SinceIn                 time.Duration
	ScaleOutCooldown, ScaleInCooldown time.Duration
	DisableScaleIn                    bool
	OutSuspended, InSuspended         bool
}

// decide returns the instance count target tracking wants and why; desired equals o.Current
// when nothing should change.
func decide(o observation) (desired int, reason string) {
	switch {
	case o.Current < o.Min:
		return o.Min, fmt.Sprintf("capacity %d is below the minimum %d", o.Current, o.Min)
	case o.Current > o.Max:
		return o.Max, fmt.Sprintf("capacity %d is above the maximum %d", o.Current, o.Max)
	case !o.HaveMetric:
		return o.Current, "no invocations in the last period"
	}
	// The fleet that keeps each instance at the target serves today's load: load / target,
	// rounded up. The epsilon keeps 2*50/50 from becoming 3 through rounding error.
	want := int(math.Ceil(float64(o.Current)*o.PerInstance/o.Target - 1e-9))
	want = min(max(want, o.Min), o.Max)
	switch {
	case want > o.Current && o.OutSuspended:
		return o.Current, "scale-out is suspended"
	case want > o.Current && o.SinceOut < o.ScaleOutCooldown:
		return o.Current, "in scale-out cooldown"
	case want > o.Current:
		return want, fmt.Sprintf("%s %.4g is above the target %.4g", metricPerInstance, o.PerInstance, o.Target)
	case want < o.Current && (o.DisableScaleIn || o.InSuspended):
		return o.Current, "scale-in is disabled"
	case want < o.Current && min(o.SinceOut, o.SinceIn) < o.ScaleInCooldown:
		return o.Current, "in scale-in cooldown"
	case want < o.Current:
		return want, fmt.Sprintf("%s %.4g is below the target %.4g", metricPerInstance, o.PerInstance, o.Target)
	}
	return o.Current, "at target"
}

func (s *Service) loop() {
	defer close(s.done)
	if s.opts.Interval < 0 || s.opts.Scaler == nil || s.opts.Metrics == nil {
		<-s.stop
		return
	}
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Evaluate(context.Background()); err != nil {
				s.log.Warn("autoscaling could not scale a variant", "error", err)
			}
		}
	}
}

// scaleAction is one change Evaluate decided on.
type scaleAction struct {
	resource, endpoint, variant string
	from, to                    int
	reason                      string
}

// Evaluate runs every target-tracking policy once and applies what they decide. The background
// loop calls it every Interval; tests with their own clock call it directly.
func (s *Service) Evaluate(ctx context.Context) error {
	if s.opts.Scaler == nil || s.opts.Metrics == nil {
		return nil
	}
	var errs []error
	for _, a := range s.plan() {
		s.log.Info("autoscaling variant", "endpoint", a.endpoint, "variant", a.variant, "from", a.from, "to", a.to, "reason", a.reason)
		if err := s.opts.Scaler.SetDesiredInstanceCount(ctx, a.endpoint, a.variant, a.to); err != nil {
			errs = append(errs, fmt.Errorf("scale %s from %d to %d instances: %w", a.resource, a.from, a.to, err))
			continue
		}
		s.recordActivity(a)
	}
	return errors.Join(errs...)
}

// plan decides, per scalable target, the largest count its policies ask for.
func (s *Service) plan() []scaleAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	var out []scaleAction
	for _, id := range sortedKeys(s.targets) {
		t := s.targets[id]
		endpoint, variant := splitResource(id)
		current, ok := s.opts.Scaler.DesiredInstanceCount(endpoint, variant)
		if !ok {
			continue // the endpoint is gone or not serving yet
		}
		perInst, have := s.opts.Metrics.InvocationsPerInstance(endpoint, variant)
		best, reason, found := current, "", false
		for _, k := range sortedKeys(s.policies) {
			p := s.policies[k]
			if p.ResourceId != id {
				continue
			}
			want, why := decide(s.observe(t, p, current, perInst, have, now))
			if !found || want > best {
				best, reason, found = want, why, true
			}
		}
		if found && best != current {
			out = append(out, scaleAction{id, endpoint, variant, current, best, reason})
		}
	}
	return out
}

// observe gathers a decision's inputs; s.mu must be held.
func (s *Service) observe(t *ScalableTarget, p *ScalingPolicy, current int, perInst float64, have bool, now time.Time) observation {
	tt := p.TargetTrackingScalingPolicyConfiguration
	o := observation{Current: current, Min: t.MinCapacity, Max: t.MaxCapacity, PerInstance: perInst, HaveMetric: have,
		Target: *tt.TargetValue, DisableScaleIn: tt.DisableScaleIn,
		ScaleOutCooldown: s.scaled(tt.ScaleOutCooldown, defaultScaleOutCooldown),
		ScaleInCooldown:  s.scaled(tt.ScaleInCooldown, defaultScaleInCooldown),
		SinceOut:         time.Duration(math.MaxInt64), SinceIn: time.Duration(math.MaxInt64)}
	if st := t.SuspendedState; st != nil {
		o.OutSuspended, o.InSuspended = st.DynamicScalingOutSuspended, st.DynamicScalingInSuspended
	}
	if a := s.activity[t.ResourceId]; a != nil {
		if !a.lastOut.IsZero() {
			o.SinceOut = now.Sub(a.lastOut)
		}
		if !a.lastIn.IsZero() {
			o.SinceIn = now.Sub(a.lastIn)
		}
	}
	return o
}

func (s *Service) scaled(seconds *int, def int) time.Duration {
	sec := def
	if seconds != nil {
		sec = *seconds
	}
	return time.Duration(float64(sec) * float64(time.Second) * s.opts.PeriodScale)
}

func (s *Service) recordActivity(a scaleAction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	act := s.activity[a.resource]
	if act == nil {
		act = &activity{}
		s.activity[a.resource] = act
	}
	if a.to > a.from {
		act.lastOut = s.opts.Now()
	} else {
		act.lastIn = s.opts.Now()
	}
}
