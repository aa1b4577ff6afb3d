package control

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Deployment guardrails: an UpdateEndpoint whose DeploymentConfig names CloudWatch alarms in
// AutoRollbackConfiguration is watched while it deploys. When one of them goes into ALARM before
// the new fleet has taken over, the deployment stops, traffic returns to the old fleet, and the
// endpoint is InService again on its previous configuration with a FailureReason naming the
// alarm, as SageMaker rolls back a blue/green or rolling deployment.

// AlarmWatcher is what guardrails need of CloudWatch. Implemented over localsm/cloudwatch.
type AlarmWatcher interface {
	// AlarmState is the alarm's state ("OK", "ALARM" or "INSUFFICIENT_DATA") and the reason
	// CloudWatch gave for it; ok is false when there is no such alarm.
	AlarmState(name string) (state, reason string, ok bool)
	// WatchAlarms calls fn on every change of an alarm's state until cancel is called. fn is
	// called from CloudWatch's evaluation and must not block.
	WatchAlarms(fn func(name, state, reason string)) (cancel func())
}

const alarmState = "ALARM"

// statusUpdateRollbackFailed is SageMaker's status for an endpoint whose rollback failed.
const statusUpdateRollbackFailed = "UpdateRollbackFailed"

// alarmTrip is the cause of a deployment stopped by an alarm.
type alarmTrip struct {
	alarm  string
	reason string
}

func (a *alarmTrip) Error() string {
	return fmt.Sprintf("CloudWatch alarm %s went into ALARM state", a.alarm)
}

// rollbackAlarms are the alarm names of a DeploymentConfig's AutoRollbackConfiguration.
func rollbackAlarms(dc map[string]any) []string {
	var in struct {
		AutoRollbackConfiguration *struct {
			Alarms []struct{ AlarmName string }
		}
	}
	if dc == nil || bind(dc, &in) != nil || in.AutoRollbackConfiguration == nil {
		return nil
	}
	var names []string
	for _, a := range in.AutoRollbackConfiguration.Alarms {
		if a.AlarmName != "" {
			names = append(names, a.AlarmName)
		}
	}
	return names
}

// checkRollbackAlarms refuses a DeploymentConfig whose rollback alarms CloudWatch does not know:
// a guardrail on a missing alarm would never fire. (The service model has already checked that
// there are 1 to 10 named alarms.)
func (c *Control) checkRollbackAlarms(dc map[string]any) error {
	if c.opts.Alarms == nil {
		return nil
	}
	var missing []string
	for _, name := range rollbackAlarms(dc) {
		if _, _, ok := c.opts.Alarms.AlarmState(name); !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return errValidation("The alarm(s) %s in AutoRollbackConfiguration do not exist in CloudWatch. Create them (PutMetricAlarm) before deploying with them.", strings.Join(missing, ", "))
	}
	return nil
}

// guard returns a context that is cancelled, with an *alarmTrip as its cause, as soon as one of
// alarms is in ALARM, and a stop function that ends the watch and reports the trip, if any.
func (c *Control) guard(ctx context.Context, endpoint string, alarms []string) (context.Context, func() *alarmTrip) {
	gctx, cancel := context.WithCancelCause(ctx)
	if len(alarms) == 0 || c.opts.Alarms == nil {
		return gctx, func() *alarmTrip { cancel(nil); return nil }
	}
	var tripped atomic.Pointer[alarmTrip]
	trip := func(name, reason string) {
		t := &alarmTrip{alarm: name, reason: reason}
		if tripped.CompareAndSwap(nil, t) {
			c.log.Warn("rollback alarm in ALARM; rolling the deployment back", "endpoint", endpoint, "alarm", name, "reason", reason)
			cancel(t)
		}
	}
	stop := c.opts.Alarms.WatchAlarms(func(name, state, reason string) {
		if state == alarmState && slices.Contains(alarms, name) {
			trip(name, reason)
		}
	})
	// An alarm already in ALARM when the deployment starts stops it too.
	for _, name := range alarms {
		if state, reason, ok := c.opts.Alarms.AlarmState(name); ok && state == alarmState {
			trip(name, reason)
		}
	}
	return gctx, func() *alarmTrip {
		stop()
		cancel(nil)
		return tripped.Load()
	}
}

// rolledBackReason is the FailureReason of a deployment an alarm rolled back.
func rolledBackReason(t *alarmTrip, previousConfig string) string {
	msg := fmt.Sprintf("Deployment rolled back: CloudWatch alarm %s went into ALARM state during the deployment", t.alarm)
	if t.reason != "" {
		msg += " (" + strings.TrimSuffix(t.reason, ".") + ")"
	}
	if previousConfig != "" {
		// No closing period: clients quote the reason inside sentences of their own.
		msg += "; all traffic is back on endpoint configuration " + previousConfig
	}
	return failureReason(errors.New(msg))
}

// alarmRollback ends an update an alarm stopped. When the alarm fired before the new fleet took
// all traffic, the serving layer has already moved traffic back to the old fleet. When it fired
// in the final bake, the serving layer has finished and stopped the old fleet (it keeps old fleets
// only for a bake it is not told to abandon), so the previous configuration is deployed again, all
// at once. Either way the endpoint ends InService on the previous configuration with the alarm
// as FailureReason, or UpdateRollbackFailed on the new one if the old cannot serve again.
func (c *Control) alarmRollback(ctx context.Context, key string, gen int64, dep, previous deployment, t *alarmTrip, shifted bool, start time.Time) {
	reason := rolledBackReason(t, previous.ConfigName)
	if shifted {
		again := previous.Spec
		again.Strategy = nil
		if err := c.deploy(ctx, again); err != nil {
			if ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("%s, but serving it again failed: %w", reason, err)
			c.logOutcome("rollback", dep.Spec.Endpoint, previous.ConfigName, start, err)
			c.transition(key, gen, func(e *endpointRes) {
				e.Pending, e.Status, e.FailureReason = nil, statusUpdateRollbackFailed, failureReason(err)
				e.Current, e.ConfigName = settled(dep), dep.ConfigName
			})
			return
		}
	}
	c.logOutcome("update", dep.Spec.Endpoint, dep.ConfigName, start, errors.New(reason))
	c.transition(key, gen, func(e *endpointRes) {
		e.Pending, e.Status, e.FailureReason = nil, statusInService, reason
	})
}
