// Package agent executes the commands users give on the release server's dashboard (restore,
// rollback, scale, promote). It long-polls the server with one environment-scoped token per
// environment it serves and runs each command with an Executor — the deployer, with the agent's
// own cloud credentials — so the server never holds any.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Executor carries out one command. It reports progress into the command's release
// (cmd.ReleaseID) through c, the release server client (with the token of the command's
// environment) that delivered the command — the deployer does this by calling StartRelease with
// ReleaseStart.ID = cmd.ReleaseID, then AddEvent and FinishRelease. An error means the command
// failed; the agent then finishes the release as failed if the executor did not.
type Executor interface {
	Execute(ctx context.Context, c *releases.Client, cmd releases.Command) error
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, c *releases.Client, cmd releases.Command) error

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, c *releases.Client, cmd releases.Command) error {
	return f(ctx, c, cmd)
}

// Options configure an agent.
type Options struct {
	// Clients talk to the release server, one per environment token. Each is polled on its own,
	// so a slow command in one environment does not hold up another.
	Clients  []*releases.Client
	Executor Executor
	Logger   *slog.Logger
	// PollWait is how long one long poll waits for a command. Default 30s.
	PollWait time.Duration
	// RetryMin and RetryMax bound the backoff after the server could not be reached.
	// Defaults 1s and 30s.
	RetryMin, RetryMax time.Duration
	// ReportTimeout bounds the reports the agent makes after a command (finishing a release,
	// completing the command), which must get through even while the agent is stopping.
	// Default 30s.
	ReportTimeout time.Duration
}

// Run polls for commands and executes them until ctx ends (then it returns nil once in-flight
// commands have been reported) or a token is refused (then it returns that error: the agent
// cannot do anything useful with a revoked or unknown token).
func Run(ctx context.Context, o Options) error {
	if len(o.Clients) == 0 {
		return errors.New("agent: no release server token: pass at least one --token")
	}
	if o.Executor == nil {
		return errors.New("agent: no executor")
	}
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	o.PollWait = cmp.Or(max(o.PollWait, 0), 30*time.Second)
	o.RetryMin = cmp.Or(max(o.RetryMin, 0), time.Second)
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(30*time.Second, o.RetryMin)
	}
	o.ReportTimeout = cmp.Or(max(o.ReportTimeout, 0), 30*time.Second)
	// A refused token stops the whole agent: it would otherwise look healthy while one of its
	// environments is not served at all.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		fatalErr error
	)
	for i, c := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := poll(ctx, o, c, i); err != nil {
				once.Do(func() { fatalErr = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	return fatalErr
}

// poll serves one token until ctx ends; it returns an error only for a refused token.
func poll(ctx context.Context, o Options, c *releases.Client, n int) error {
	log := o.Logger.With("server", c.BaseURL(), "token", n+1)
	backoff := o.RetryMin
	log.Info("agent polling for commands")
	for ctx.Err() == nil {
		cmd, err := c.NextCommand(ctx, o.PollWait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ae *releases.APIError
			if errors.As(err, &ae) && (ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden) {
				return fmt.Errorf("release server %s refused agent token #%d: %s", c.BaseURL(), n+1, ae.Message)
			}
			log.Warn("cannot reach the release server; retrying", "err", err, "in", backoff)
			if !sleep(ctx, jitter(backoff)) {
				return nil
			}
			backoff = min(backoff*2, o.RetryMax)
			continue
		}
		backoff = o.RetryMin
		if cmd == nil {
			continue
		}
		handle(ctx, o, c, *cmd, log)
	}
	return nil
}

// handle executes one command and makes sure its release and the command end, whatever the
// executor did: nothing stays running after the agent is done with it.
func handle(ctx context.Context, o Options, c *releases.Client, cmd releases.Command, log *slog.Logger) {
	log = log.With("command", cmd.ID, "kind", cmd.Kind, "environment", cmd.Environment, "model", cmd.Model, "release", cmd.ReleaseID)
	log.Info("executing command", "requested_by", cmd.RequestedBy)
	start := time.Now()
	execErr := safeExecute(ctx, o.Executor, c, cmd)

	// Reports must get through even when ctx ended (the agent is stopping).
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ReportTimeout)
	defer cancel()
	rel, err := c.Release(rctx, cmd.ReleaseID)
	if err != nil {
		log.Error("read the command's release", "err", err)
	}
	if err == nil && !rel.Status.Final() {
		reason := "the executor ended without finishing the release"
		switch {
		case execErr != nil && ctx.Err() != nil:
			reason = "the agent stopped while executing the command: " + execErr.Error()
		case execErr != nil:
			reason = execErr.Error()
		}
		// The executor did not say why, so the release failed in the tool, not in SageMaker.
		f := releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonErrored, FailureReason: reason}
		if rel, err = c.FinishRelease(rctx, cmd.ReleaseID, f); err != nil {
			log.Error("finish the command's release as failed", "err", err)
		}
	}
	res := releases.CommandResult{Status: releases.StatusSucceeded}
	switch {
	case execErr != nil:
		res = releases.CommandResult{Status: releases.StatusFailed, Message: execErr.Error()}
	case err != nil:
		res = releases.CommandResult{Status: releases.StatusFailed, Message: "could not read the release: " + err.Error()}
	case rel.Status != releases.StatusSucceeded:
		res = releases.CommandResult{Status: releases.StatusFailed, Message: "release ended " + string(rel.Status) + suffix(rel.FailureReason)}
	}
	if err := c.CompleteCommand(rctx, cmd.ID, res); err != nil {
		log.Error("report the command's result", "err", err)
		return
	}
	log.Info("command done", "status", res.Status, "message", res.Message, "took", time.Since(start).Round(time.Millisecond))
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// safeExecute turns an executor's panic into an error, so that one bad command does not take the
// agent (and every other environment it serves) down.
func safeExecute(ctx context.Context, ex Executor, c *releases.Client, cmd releases.Command) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("executor panicked: %v", p)
		}
	}()
	return ex.Execute(ctx, c, cmd)
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
