package deploy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/sagedeploy/sagedeploy/releases"
)

// ErrRefused: the release server refused the release (bad or revoked token, a token of another
// environment, a gate), or could not be asked about a gated environment. Nothing was changed.
var ErrRefused = errors.New("release refused")

// Environments is what a deployer knows of the environments it may change, from the pipeline
// file. It is checked before any AWS call, so a mistyped or skipped environment never reaches
// SageMaker.
type Environments struct {
	// Source names where the list comes from, for messages, e.g. "the pipeline file ./sagedeploy.yaml".
	Source string
	// Known are the environments in pipeline order. Empty: the release server, when one is
	// configured, says which environments exist.
	Known []KnownEnvironment
	// AllowUnreported lets a gated environment change while the release server cannot be
	// reached (its gate is then skipped, knowingly).
	AllowUnreported bool
}

// KnownEnvironment is one environment of the pipeline file.
type KnownEnvironment struct {
	Name string
	// Gated: a release into it waits for an approval on the release server.
	Gated bool
}

func (e *Environments) lookup(name string) (KnownEnvironment, bool) {
	if e == nil {
		return KnownEnvironment{}, false
	}
	i := slices.IndexFunc(e.Known, func(k KnownEnvironment) bool { return k.Name == name })
	if i < 0 {
		return KnownEnvironment{}, false
	}
	return e.Known[i], true
}

func (e *Environments) names() string {
	out := make([]string, len(e.Known))
	for i, k := range e.Known {
		out[i] = k.Name
	}
	return strings.Join(out, ", ")
}

// checkedKey marks a context whose environment was checked already, so that Promote and
// Rollback, which end in Deploy, ask the release server once.
type checkedKey struct{}

// gateState is what the check learned about an environment, for the release's start.
type gateState struct {
	env   string
	gated bool
}

// checkEnvironment refuses, before any AWS call, an environment that is not in the pipeline file
// or not known to the release server, and a release the server refuses (bad or revoked token, a
// token of another environment). An unreachable server is a warning, except for a gated
// environment: its gate cannot be skipped that way unless AllowUnreported.
func (d *Deployer) checkEnvironment(ctx context.Context, model, env string) (context.Context, error) {
	if env == "" {
		return ctx, nil // checkTarget says what is missing
	}
	if st, ok := ctx.Value(checkedKey{}).(gateState); ok && st.env == env {
		return ctx, nil
	}
	if err := d.inPipeline(env, "--env / DEPLOY_ENVIRONMENT"); err != nil {
		return ctx, err
	}
	known, inFile := d.opts.Environments.lookup(env)
	st := gateState{env: env, gated: known.Gated}
	if c := d.opts.Releases; c != nil {
		gated, err := d.askReleaseServer(ctx, c, model, env, inFile)
		if err != nil {
			return ctx, err
		}
		st.gated = st.gated || gated
	}
	return context.WithValue(ctx, checkedKey{}, st), nil
}

// inPipeline refuses an environment the pipeline file does not list (any, without a file);
// flag names where the user gave it.
func (d *Deployer) inPipeline(env, flag string) error {
	pol := d.opts.Environments
	if _, ok := pol.lookup(env); ok || pol == nil || len(pol.Known) == 0 {
		return nil
	}
	return errorf(ErrInvalid, "environment %q is not in %s; its environments are %s. Nothing was changed: fix %s, or add the environment to the file",
		env, pol.Source, pol.names(), flag)
}

// askReleaseServer checks that the server takes the credentials for env and, when the pipeline
// file did not list the environments, that it knows env. It says whether the server gates env.
func (d *Deployer) askReleaseServer(ctx context.Context, c *releases.Client, model, env string, inFile bool) (bool, error) {
	me, err := c.Me(ctx)
	if err != nil {
		return false, d.serverTrouble(ctx, err, model, env)
	}
	if me.Kind == "token" && me.Environment != env {
		return false, errorf(ErrRefused, "the release token %q is for environment %s, not %s: a release of %s into %s needs a token of %s (`sagedeploy server token create --env %s`), or --env %s if %s is mistyped. Nothing was changed",
			me.Name, me.Environment, env, model, env, env, env, me.Environment, env)
	}
	envs := me.Environments
	if envs == nil { // a server that does not list them with whom it takes the credentials for
		if envs, err = c.Environments(ctx); err != nil {
			return false, d.serverTrouble(ctx, err, model, env)
		}
	}
	i := slices.IndexFunc(envs, func(e releases.Environment) bool { return e.Name == env })
	switch {
	case i >= 0:
		return envs[i].RequiresApproval, nil
	case inFile:
		return false, nil
	}
	names := make([]string, len(envs))
	for j, e := range envs {
		names[j] = e.Name
	}
	return false, errorf(ErrInvalid, "environment %q is not known to the release server at %s; its environments are %s. Nothing was changed: fix --env / DEPLOY_ENVIRONMENT, or add the environment (`sagedeploy server env add %s`)",
		env, c.BaseURL(), strings.Join(names, ", "), env)
}

// serverTrouble turns a failed question to the release server into the deployer's answer: a
// refusal stops; no answer is a warning, or a refusal for a gated environment.
func (d *Deployer) serverTrouble(ctx context.Context, err error, model, env string) error {
	c := d.opts.Releases
	if releases.IsRefusal(err) {
		var ae *releases.APIError
		hint := ""
		if errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized {
			hint = " Check SAGEDEPLOY_RELEASES_TOKEN / CCI_RELEASE_INTEGRATION_TOKEN: the token is unknown or was revoked."
		}
		return errorf(ErrRefused, "the release server at %s refused the release of %s into %s: %w. Nothing was changed.%s", c.BaseURL(), model, env, err, hint)
	}
	pol := d.opts.Environments
	known, _ := pol.lookup(env)
	if known.Gated && (pol == nil || !pol.AllowUnreported) {
		return errorf(ErrRefused, "the release server at %s cannot be reached (%w) and environment %s has an approval gate, which would be skipped. Nothing was changed: retry when the server is up, or pass --allow-unreported to deploy without the gate",
			c.BaseURL(), err, env)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d.log.Warn("the release server cannot be reached; the release goes on unreported", "url", c.BaseURL(), "model", model, "environment", env, "error", err)
	return nil
}

// gatedHere reports whether the environment check found env behind an approval gate.
func gatedHere(ctx context.Context, env string) bool {
	st, ok := ctx.Value(checkedKey{}).(gateState)
	return ok && st.env == env && st.gated
}

// startRefused decides what a failed StartRelease means: a refusal (or an unreachable server in
// front of a gated environment) stops the release before SageMaker is touched; otherwise the
// release goes on unreported.
func (d *Deployer) startRefused(ctx context.Context, s releases.ReleaseStart, err error) error {
	if releases.IsRefusal(err) {
		return errorf(ErrRefused, "the release server refused the release of %s into %s: %w. Nothing was changed", s.Model, s.Environment, err)
	}
	st, _ := ctx.Value(checkedKey{}).(gateState)
	known, _ := d.opts.Environments.lookup(s.Environment)
	if (known.Gated || (st.env == s.Environment && st.gated)) && (d.opts.Environments == nil || !d.opts.Environments.AllowUnreported) {
		return errorf(ErrRefused, "the release server cannot be reached to start the release of %s into %s (%w), and the environment has an approval gate. Nothing was changed: retry, or pass --allow-unreported",
			s.Model, s.Environment, err)
	}
	return nil
}
