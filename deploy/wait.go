package deploy

import (
	"context"
	"fmt"
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
	start := d.now()
	var last types.EndpointStatus
	var delay time.Duration
	for {
		desc, err := d.describeEndpoint(ctx, name)
		if err != nil {
			return nil, err
		}
		elapsed := d.now().Sub(start)
		if desc == nil {
			if last != "" {
				d.emit(Event{Phase: phase, Endpoint: name, Message: fmt.Sprintf("endpoint %s is gone (%s)", name, round(elapsed))}, sink)
			}
			return nil, nil
		}
		st := desc.EndpointStatus
		if st != last {
			msg := fmt.Sprintf("endpoint %s is %s", name, st)
			if last != "" {
				msg = fmt.Sprintf("endpoint %s: %s → %s (%s)", name, last, st, round(elapsed))
			}
			if r := aws.ToString(desc.FailureReason); r != "" && !pending(st) && st != types.EndpointStatusInService {
				msg += ": " + r
			}
			d.emit(Event{Phase: phase, Endpoint: name, EndpointStatus: string(st), Elapsed: elapsed, Message: msg}, sink)
			last = st
		} else {
			d.emit(Event{Phase: phase, Endpoint: name, EndpointStatus: string(st), Elapsed: elapsed, Tick: true,
				Message: fmt.Sprintf("endpoint %s is %s (%s)", name, st, round(elapsed))}, sink)
		}
		if !pending(st) {
			return desc, nil
		}
		delay = d.opts.Poll.next(delay)
		if now := d.now(); !now.Before(deadline) {
			return desc, errorf(ErrTimeout, "endpoint %s is still %s after %s", name, st, round(now.Sub(start)))
		} else if until := deadline.Sub(now); delay > until {
			delay = until
		}
		if err := sleep(ctx, delay); err != nil {
			return desc, fmt.Errorf("wait for endpoint %s: %w", name, err)
		}
	}
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
