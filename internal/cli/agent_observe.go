package cli

import (
	"context"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/agent"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

// observeOptions is the agent's observe loop: endpoints read with the deployer's SageMaker
// client, metrics with a CloudWatch client of the same credentials. A zero interval turns it off.
func observeOptions(d *deploy.Deployer, clients []*releases.Client, every time.Duration, g *globals) *agent.ObserveOptions {
	if every <= 0 {
		return nil
	}
	return &agent.ObserveOptions{Clients: clients, Endpoints: d, Metrics: agent.CloudWatchMetrics{CW: d.CloudWatch()},
		Interval: every, Logger: g.logger().With("part", "observe")}
}

// runAgent executes commands and, beside them, observes endpoints, until ctx ends or the command
// loop stops on a refused token (then the observe loop stops too).
func runAgent(ctx context.Context, o agent.Options, obs *agent.ObserveOptions) error {
	if obs == nil {
		return agent.Run(ctx, o)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = agent.Observe(ctx, *obs) })
	err := agent.Run(ctx, o)
	cancel()
	wg.Wait()
	return err
}
