package deploy

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/releases"
)

// pending reports statuses that change by themselves. RollingBack is pending too: SageMaker
// returns the endpoint to InService on the previous configuration afterwards.
func pending(s types.EndpointStatus) bool {
	switch s {
	case types.EndpointStatusCreating, types.EndpointStatusUpdating, types.EndpointStatusSystemUpdating,
		types.EndpointStatusRollingBack, types.EndpointStatusDeleting:
		return true
	}
	return false
}

// describeEndpoint returns the endpoint, or nil when it does not exist.
func (d *Deployer) describeEndpoint(ctx context.Context, name string) (*sagemaker.DescribeEndpointOutput, error) {
	out, err := d.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("describe endpoint %s: %w", name, err)
	}
	return out, nil
}

// waitSettled polls the endpoint with DescribeEndpoint — at once, then on the poll schedule —
// until its status is no longer pending, it is gone (nil result), or deadline passes
// (ErrTimeout). Status changes are reported as events of phase, polls without change as ticks.
func (d *Deployer) waitSettled(ctx context.Context, name string, deadline time.Time, phase releases.Phase, sink func(Event)) (*sagemaker.DescribeEndpointOutput, error) {
	return d.watch(ctx, waitSpec{name: name, deadline: deadline, phase: phase}, sink)
}

// waitSpec is what a wait watches: the endpoint, its phase, and its clock. A step, when set, is
// the time each blue/green stage (traffic shift, bake) may take: every new stage moves the
// deadline to at least that far ahead, so --timeout bounds each step, not the whole shift.
type waitSpec struct {
	name     string
	deadline time.Time
	phase    releases.Phase
	step     time.Duration
	alarms   []string // the rollback alarms a bake watches, named in its events
	// started, when set, is the status the call that started the change put the endpoint in
	// (Creating, Updating): the first look waits a poll interval instead of asking SageMaker
	// what it just said — on AWS that answer is always the same.
	started types.EndpointStatus
}

// waitState is what a wait has seen so far.
type waitState struct {
	start time.Time
	last  types.EndpointStatus
	seen  map[string]bool // the blue/green stages reported, by stageKey
}

func (d *Deployer) watch(ctx context.Context, w waitSpec, sink func(Event)) (*sagemaker.DescribeEndpointOutput, error) {
	st := waitState{start: d.now(), seen: map[string]bool{}}
	var delay time.Duration
	if w.started != "" {
		d.emit(Event{Phase: w.phase, Endpoint: w.name, EndpointStatus: string(w.started), Message: fmt.Sprintf("endpoint %s is %s", w.name, w.started)}, sink)
		st.last, delay = w.started, d.opts.Poll.next(0)
		if err := sleep(ctx, min(delay, max(w.deadline.Sub(d.now()), 0))); err != nil {
			return nil, fmt.Errorf("wait for endpoint %s: %w", w.name, err)
		}
	}
	for {
		desc, err := d.describeEndpoint(ctx, w.name)
		if err != nil {
			return nil, err
		}
		if desc == nil {
			if st.last != "" {
				d.emit(Event{Phase: w.phase, Endpoint: w.name, Message: fmt.Sprintf("endpoint %s is gone (%s)", w.name, round(d.now().Sub(st.start)))}, sink)
			}
			return nil, nil
		}
		d.observe(desc, &w, &st, sink)
		if !pending(desc.EndpointStatus) {
			return desc, nil
		}
		delay = d.opts.Poll.next(delay)
		if now := d.now(); !now.Before(w.deadline) {
			return desc, errorf(ErrTimeout, "endpoint %s is still %s after %s", w.name, desc.EndpointStatus, round(now.Sub(st.start)))
		} else if until := w.deadline.Sub(now); delay > until {
			delay = until
		}
		if err := sleep(ctx, delay); err != nil {
			return desc, fmt.Errorf("wait for endpoint %s: %w", w.name, err)
		}
	}
}

// observe reports what changed since the last poll: the status, a new blue/green stage, or
// nothing (a tick, which keeps a live status line and the release's heartbeat going).
func (d *Deployer) observe(desc *sagemaker.DescribeEndpointOutput, w *waitSpec, st *waitState, sink func(Event)) {
	elapsed := d.now().Sub(st.start)
	status := desc.EndpointStatus
	changed := false
	if status != st.last {
		msg := fmt.Sprintf("endpoint %s is %s", w.name, status)
		if st.last != "" {
			msg = fmt.Sprintf("endpoint %s: %s → %s (%s)", w.name, st.last, status, round(elapsed))
		}
		if r := aws.ToString(desc.FailureReason); r != "" && !pending(status) && status != types.EndpointStatusInService {
			msg += ": " + r
		}
		d.emit(Event{Phase: w.phase, Endpoint: w.name, EndpointStatus: string(status), Elapsed: elapsed, Message: msg}, sink)
		st.last, changed = status, true
	}
	for _, vs := range stages(desc) {
		if k := stageKey(vs); !st.seen[k] {
			st.seen[k], changed = true, true
			d.emit(stageEvent(w, vs, status, elapsed), sink)
			if w.step > 0 {
				w.deadline = later(w.deadline, d.now().Add(w.step))
			}
		}
	}
	if !changed {
		d.emit(Event{Phase: w.phase, Endpoint: w.name, EndpointStatus: string(status), Elapsed: elapsed, Tick: true,
			Message: fmt.Sprintf("endpoint %s is %s (%s)", w.name, status, round(elapsed))}, sink)
	}
}

// stages is the blue/green stages (ActivatingTraffic, Baking) SageMaker reports for the
// deployment under way, from the new fleet's variants and the serving ones, oldest first.
func stages(desc *sagemaker.DescribeEndpointOutput) []types.ProductionVariantStatus {
	var all []types.ProductionVariantStatus
	if p := desc.PendingDeploymentSummary; p != nil {
		for _, v := range p.ProductionVariants {
			all = append(all, v.VariantStatus...)
		}
	}
	for _, v := range desc.ProductionVariants {
		all = append(all, v.VariantStatus...)
	}
	all = slices.DeleteFunc(all, func(s types.ProductionVariantStatus) bool {
		return s.Status != types.VariantStatusActivatingTraffic && s.Status != types.VariantStatusBaking
	})
	slices.SortStableFunc(all, func(a, b types.ProductionVariantStatus) int {
		return aws.ToTime(a.StartTime).Compare(aws.ToTime(b.StartTime))
	})
	return all
}

func stageKey(s types.ProductionVariantStatus) string {
	return string(s.Status) + "|" + aws.ToString(s.StatusMessage) + "|" + aws.ToTime(s.StartTime).String()
}

// stageEvent is the release event of a blue/green stage: a traffic shift, or a bake with the
// alarms that would roll it back.
func stageEvent(w *waitSpec, s types.ProductionVariantStatus, status types.EndpointStatus, elapsed time.Duration) Event {
	msg := cmp.Or(aws.ToString(s.StatusMessage), string(s.Status))
	phase := releases.PhaseTraffic
	if s.Status == types.VariantStatusBaking {
		phase = releases.PhaseBake
		if len(w.alarms) > 0 {
			msg += "; watching alarms " + strings.Join(w.alarms, ", ")
		} else {
			msg += "; no rollback alarms watched"
		}
	}
	return Event{Phase: phase, Endpoint: w.name, EndpointStatus: string(status), Elapsed: elapsed,
		Message: fmt.Sprintf("endpoint %s: %s (%s)", w.name, msg, round(elapsed))}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// round shortens durations for messages.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
