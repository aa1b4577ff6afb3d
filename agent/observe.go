package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/sagedeploy/sagedeploy/releases"
)

// EndpointReader reads what an endpoint serves from SageMaker itself (the deployer does this
// with DescribeEndpoint, DescribeEndpointConfig and the tags of the configuration's model).
type EndpointReader interface {
	ObserveEndpoint(ctx context.Context, name string) (releases.Observation, error)
}

// MetricsReader reads an endpoint's metrics over [from, to) (CloudWatchMetrics does it).
type MetricsReader interface {
	EndpointMetrics(ctx context.Context, endpoint string, from, to time.Time) ([]releases.MetricPoint, error)
}

// ObserveOptions configure the observe loop.
type ObserveOptions struct {
	// Clients are the release server clients, one per environment token; each environment's
	// components are observed with the client of that environment.
	Clients   []*releases.Client
	Endpoints EndpointReader
	Metrics   MetricsReader // nil: no metrics are read
	Logger    *slog.Logger
	// Interval between two looks at every component. Default 60s.
	Interval time.Duration
	// MaxInterval caps the interval after SageMaker or CloudWatch throttled the agent. Default 15m.
	MaxInterval time.Duration
	// FirstWindow is how much metric history the first round reads. Default 3h.
	FirstWindow time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Observe looks at every component's endpoint on an interval and reports what it sees, and the
// endpoint's metrics, to the release server, which marks drift. It returns when ctx ends. A
// round that SageMaker or CloudWatch throttled doubles the interval (up to MaxInterval), so
// the agent stays within the APIs' rate limits; a quiet round brings it back.
func Observe(ctx context.Context, o ObserveOptions) error {
	if len(o.Clients) == 0 || o.Endpoints == nil {
		return errors.New("observe: no release server client or no endpoint reader")
	}
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	o.Interval = cmp.Or(max(o.Interval, 0), time.Minute)
	o.MaxInterval = max(cmp.Or(o.MaxInterval, 15*time.Minute), o.Interval)
	o.FirstWindow = cmp.Or(o.FirstWindow, 3*time.Hour)
	if o.Now == nil {
		o.Now = time.Now
	}
	ob := &observer{o: o, lastRead: map[string]time.Time{}}
	wait := o.Interval
	for {
		throttled := ob.round(ctx)
		if throttled {
			wait = min(wait*2, o.MaxInterval)
			o.Logger.Warn("AWS throttled the observe loop; observing less often", "interval", wait)
		} else {
			wait = o.Interval
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

type observer struct {
	o        ObserveOptions
	lastRead map[string]time.Time // env/model → end of the last metrics window reported
}

// round observes every environment once; it reports whether any call was throttled.
func (ob *observer) round(ctx context.Context) (throttled bool) {
	for _, c := range ob.o.Clients {
		comps, err := c.Components(ctx)
		if err != nil {
			if ctx.Err() == nil {
				ob.o.Logger.Warn("observe: list components", "server", c.BaseURL(), "err", err)
			}
			continue
		}
		for _, comp := range comps {
			if ctx.Err() != nil {
				return throttled
			}
			if err := ob.component(ctx, c, comp); err != nil {
				throttled = throttled || isThrottle(err)
				ob.o.Logger.Warn("observe component", "environment", comp.Environment, "model", comp.Model, "err", err)
			}
		}
	}
	return throttled
}

// component observes one component's endpoint and reads its metrics since the last round.
func (ob *observer) component(ctx context.Context, c *releases.Client, comp releases.Component) error {
	obs, err := ob.o.Endpoints.ObserveEndpoint(ctx, comp.EndpointName)
	if err != nil {
		return fmt.Errorf("observe endpoint %s: %w", comp.EndpointName, err)
	}
	obs.Environment, obs.Model = comp.Environment, comp.Model
	drift, err := c.ReportObservation(ctx, obs)
	if err != nil {
		return err
	}
	if drift != nil {
		ob.o.Logger.Info("endpoint differs from what sagedeploy recorded", "environment", comp.Environment, "model", comp.Model, "drift", drift.Summary())
	}
	if ob.o.Metrics == nil || obs.Missing {
		return nil
	}
	return ob.metrics(ctx, c, comp)
}

func (ob *observer) metrics(ctx context.Context, c *releases.Client, comp releases.Component) error {
	key := comp.Environment + "/" + comp.Model
	to := ob.o.Now().UTC()
	from, seen := ob.lastRead[key]
	if !seen {
		from = to.Add(-ob.o.FirstWindow)
	}
	// CloudWatch may still add to the last periods read: read them again (the server replaces them).
	from = from.Add(-5 * time.Minute).Truncate(time.Minute)
	pts, err := ob.o.Metrics.EndpointMetrics(ctx, comp.EndpointName, from, to)
	if err != nil {
		return fmt.Errorf("read metrics of endpoint %s: %w", comp.EndpointName, err)
	}
	if len(pts) > 0 {
		if err := c.ReportMetrics(ctx, releases.MetricsReport{Environment: comp.Environment, Model: comp.Model, Points: pts}); err != nil {
			return err
		}
	}
	ob.lastRead[key] = to
	return nil
}

// isThrottle reports an AWS answer that asks the caller to slow down.
func isThrottle(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	code := ae.ErrorCode()
	return strings.Contains(code, "Throttl") || code == "TooManyRequestsException" || code == "RequestLimitExceeded" || code == "LimitExceededException"
}
