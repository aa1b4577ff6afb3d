package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// binder defines a command's flags, each with environment variables as fallback (the orb's), and
// fills unset flags from the environment when the command runs.
type binder struct {
	cmd    *cobra.Command
	getenv func(string) string
	envs   map[string][]string
	given  map[string]string // flag → where its value came from ("--flag" or "ENV_VAR")
	// tags come from the pipeline file only (no flag sets them); the binder carries them from
	// the file to the settings of the configuration.
	tags map[string]string
}

func newBinder(cmd *cobra.Command, g *globals) *binder {
	return &binder{cmd: cmd, getenv: g.getenv, envs: map[string][]string{}, given: map[string]string{}}
}

func envUsage(usage string, envs []string) string {
	if len(envs) == 0 {
		return usage
	}
	return fmt.Sprintf("%s (env %s)", usage, strings.Join(envs, ", "))
}

func (b *binder) str(p *string, name, def, usage string, envs ...string) {
	b.cmd.Flags().StringVar(p, name, def, envUsage(usage, envs))
	b.envs[name] = envs
}

func (b *binder) integer(p *int, name string, def int, usage string, envs ...string) {
	b.cmd.Flags().IntVar(p, name, def, envUsage(usage, envs))
	b.envs[name] = envs
}

func (b *binder) boolean(p *bool, name string, def bool, usage string, envs ...string) {
	b.cmd.Flags().BoolVar(p, name, def, envUsage(usage, envs))
	b.envs[name] = envs
}

func (b *binder) duration(p *durationValue, name, usage string, envs ...string) {
	b.cmd.Flags().Var(p, name, envUsage(usage, envs))
	b.envs[name] = envs
}

// apply fills every flag not given on the command line from the first non-empty environment
// variable of its list.
func (b *binder) apply() error {
	names := make([]string, 0, len(b.envs))
	for n := range b.envs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		f := b.cmd.Flags().Lookup(name)
		if f.Changed {
			b.given[name] = "--" + name
			continue
		}
		for _, e := range b.envs[name] {
			v := strings.TrimSpace(b.getenv(e))
			if v == "" {
				continue
			}
			if err := f.Value.Set(v); err != nil {
				return usageErr(fmt.Errorf("environment variable %s=%q is not a valid value for --%s: %v", e, v, name, err))
			}
			b.given[name] = e
			break
		}
	}
	return nil
}

// isGiven reports whether a flag was set on the command line or through its environment variable.
func (b *binder) isGiven(name string) bool { _, ok := b.given[name]; return ok }

// onCommandLine reports whether a flag was typed on the command line (not taken from the environment).
func (b *binder) onCommandLine(name string) bool { return b.given[name] == "--"+name }

// source names where a flag's value came from, for messages.
func (b *binder) source(name string) string {
	if s, ok := b.given[name]; ok {
		return s
	}
	return "--" + name
}

// exitError carries an exit code for cli.Execute.
type exitError struct {
	err  error
	code int
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

// usageErr marks a bad invocation: exit code 2.
func usageErr(err error) error { return &exitError{err: err, code: 2} }

// durationValue is a duration flag that also accepts a bare number of seconds.
type durationValue struct{ d time.Duration }

func (v *durationValue) String() string {
	if v.d == 0 {
		return ""
	}
	return v.d.String()
}
func (v *durationValue) Type() string { return "duration" }
func (v *durationValue) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		v.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 90s, 30m, 1h)", s)
	}
	v.d = d
	return nil
}

// rolloutFlags are what deploy and promote share: instance settings, how long to wait, how
// traffic moves and how the new version is verified.
type rolloutFlags struct {
	itype                string
	count                int
	timeout, lockTimeout durationValue
	strat                *strategyFlags
	ver                  *verifyFlags
	set                  *settingsFlags
	skipPreflight        bool
}

// rollout is rolloutFlags parsed. instanceType and instanceCount are empty unless given: the
// configuration in place (the pipeline's, or what the environment runs) then decides.
type rollout struct {
	instanceType         string
	instanceCount        int
	timeout, lockTimeout time.Duration
	strategy             deploy.Strategy
	verify               *deploy.Verification
	rollbackOnFailure    bool
	settings             deploy.EndpointSettings
	skipPreflight        bool
}

// bindRollout defines the shared flags; where and which say what the instance and lock flags apply
// to in this command's help ("when a configuration is created", "of --to").
func bindRollout(cmd *cobra.Command, b *binder, where, which string) *rolloutFlags {
	r := &rolloutFlags{}
	b.str(&r.itype, "instance-type", deploy.DefaultInstanceType, "instance type, "+where, "ENDPOINT_INSTANCE_TYPE")
	b.integer(&r.count, "instance-count", deploy.DefaultInstanceCount, "number of instances, "+where, "ENDPOINT_INSTANCE_COUNT")
	b.duration(&r.timeout, "timeout", "how long each step may take — provisioning, each traffic shift and bake on top of its --bake (default 30m)")
	b.boolean(&r.skipPreflight, "skip-preflight", false, "deploy without the preflight checks (approved version, artifact, image, quota, variant, alarms)", "SAGEDEPLOY_SKIP_PREFLIGHT")
	b.duration(&r.lockTimeout, "lock-timeout", "how long to wait for another deployment "+which+" to finish first (default: --timeout)")
	r.strat = bindStrategy(cmd, b)
	r.ver = bindVerify(b)
	r.set = bindSettings(b)
	return r
}

// parse reads the flags of a rollout of model into env.
func (r *rolloutFlags) parse(b *binder, stdin io.Reader, model, env string) (rollout, error) {
	st, err := r.strat.strategy()
	if err != nil {
		return rollout{}, err
	}
	vr, err := r.ver.verification(stdin)
	if err != nil {
		return rollout{}, err
	}
	out := rollout{timeout: r.timeout.d, lockTimeout: r.lockTimeout.d, strategy: st, verify: vr, rollbackOnFailure: r.ver.rollbackOnFailure, skipPreflight: r.skipPreflight}
	if b.isGiven("instance-type") {
		out.instanceType = r.itype
	}
	if b.isGiven("instance-count") {
		out.instanceCount = r.count
	}
	if out.settings, err = r.set.parse(b, model, env, instancesChosen(b)); err != nil {
		return rollout{}, err
	}
	if out.settings.Serverless != nil {
		out.instanceType, out.instanceCount = "", 0 // only the defaults, as the orb exports them
	}
	return out, nil
}

// instancesChosen reports whether --instance-type or --instance-count was chosen: typed, or set
// to something other than the default. The orb and the Action export both with their defaults on
// every step, which must not count against a serverless endpoint.
func instancesChosen(b *binder) bool {
	f := b.cmd.Flags()
	return b.onCommandLine("instance-type") || b.onCommandLine("instance-count") ||
		f.Lookup("instance-type").Value.String() != deploy.DefaultInstanceType ||
		f.Lookup("instance-count").Value.String() != strconv.Itoa(deploy.DefaultInstanceCount)
}

// settingsFlags are the endpoint settings a new configuration gets: data capture, serverless
// capacity, asynchronous inference. Unset, an update keeps what the endpoint runs.
type settingsFlags struct {
	captureURI, captureMode             string
	capturePercent                      int
	memory, maxConcurrency, provisioned int
	asyncOutput, asyncFailure           string
	asyncConcurrency                    int
}

func bindSettings(b *binder) *settingsFlags {
	s := &settingsFlags{}
	b.str(&s.captureURI, "data-capture-s3-uri", "", "capture requests and answers to this s3://bucket/prefix", "SAGEDEPLOY_DATA_CAPTURE_S3_URI")
	b.integer(&s.capturePercent, "data-capture-percent", 100, "share of the requests captured (0-100)", "SAGEDEPLOY_DATA_CAPTURE_PERCENT")
	b.str(&s.captureMode, "data-capture-mode", "both", "what is captured: input, output or both", "SAGEDEPLOY_DATA_CAPTURE_MODE")
	b.integer(&s.memory, "serverless-memory", 0, "serve from serverless capacity with this many MB (1024-6144, steps of 1024) instead of instances", "SAGEDEPLOY_SERVERLESS_MEMORY")
	b.integer(&s.maxConcurrency, "serverless-max-concurrency", 0, "concurrent requests a serverless endpoint serves (1-200)", "SAGEDEPLOY_SERVERLESS_MAX_CONCURRENCY")
	b.integer(&s.provisioned, "serverless-provisioned", 0, "serverless capacity kept warm (up to --serverless-max-concurrency)", "SAGEDEPLOY_SERVERLESS_PROVISIONED")
	b.str(&s.asyncOutput, "async-output-s3", "", "make the endpoint asynchronous, writing answers to this s3://bucket/prefix", "SAGEDEPLOY_ASYNC_OUTPUT_S3")
	b.str(&s.asyncFailure, "async-failure-s3", "", "where an asynchronous endpoint writes its errors (s3://bucket/prefix)", "SAGEDEPLOY_ASYNC_FAILURE_S3")
	b.integer(&s.asyncConcurrency, "async-max-concurrency", 0, "concurrent asynchronous requests per instance (1-1000; default: SageMaker's)", "SAGEDEPLOY_ASYNC_MAX_CONCURRENCY")
	return s
}

// parse builds the settings and checks them as SageMaker would, so that a mistake stops here
// (exit 2) rather than after the model was created. A setting's companion flags without it
// (a capture percent without a destination) are refused too: they would silently do nothing.
// Only when typed, though: the orb and the Action export every variable with its default.
func (s *settingsFlags) parse(b *binder, model, env string, instancesGiven bool) (deploy.EndpointSettings, error) {
	var out deploy.EndpointSettings
	if s.captureURI != "" {
		out.DataCapture = &deploy.DataCapture{DestinationS3URI: s.captureURI, SamplingPercent: s.capturePercent, Mode: s.captureMode}
	} else if b.onCommandLine("data-capture-percent") || b.onCommandLine("data-capture-mode") {
		return out, usageErr(errors.New("--data-capture-percent and --data-capture-mode need --data-capture-s3-uri (where the captured data goes)"))
	}
	if s.memory != 0 || s.maxConcurrency != 0 || s.provisioned != 0 {
		out.Serverless = &deploy.Serverless{MemoryMB: s.memory, MaxConcurrency: s.maxConcurrency, ProvisionedConcurrency: s.provisioned}
	}
	if s.asyncOutput != "" {
		out.Async = &deploy.AsyncInference{OutputS3URI: s.asyncOutput, FailureS3URI: s.asyncFailure, MaxConcurrentInvocations: s.asyncConcurrency}
	} else if s.asyncFailure != "" || s.asyncConcurrency != 0 {
		return out, usageErr(errors.New("--async-failure-s3 and --async-max-concurrency need --async-output-s3 (where the answers go)"))
	}
	out.Tags = b.tags
	if err := out.Check(model, env, instancesGiven); err != nil {
		return out, usageErr(err)
	}
	return out, nil
}

// strategyFlags are the deployment strategy flags of deploy and promote.
type strategyFlags struct {
	canary, linear, rolling int
	bake                    durationValue
	alarms                  []string
}

func bindStrategy(cmd *cobra.Command, b *binder) *strategyFlags {
	s := &strategyFlags{}
	b.integer(&s.canary, "canary", 0, "blue/green canary: shift PERCENT of capacity first, the rest after --bake")
	b.integer(&s.linear, "linear", 0, "blue/green linear: shift PERCENT of capacity per step, every --bake")
	b.integer(&s.rolling, "rolling", 0, "rolling update: replace PERCENT of the instances per batch, every --bake (no second fleet needed)")
	b.duration(&s.bake, "bake", "how long each traffic shift serves before the next (with --canary or --linear; e.g. 5m)")
	cmd.Flags().StringArrayVar(&s.alarms, "rollback-alarm", nil, "CloudWatch alarm that rolls the update back when it fires (repeatable)")
	return s
}

// given lists the strategy flags set.
func (s *strategyFlags) given() []string {
	var out []string
	for _, f := range []struct {
		name string
		v    int
	}{{"--canary", s.canary}, {"--linear", s.linear}, {"--rolling", s.rolling}} {
		if f.v != 0 {
			out = append(out, f.name)
		}
	}
	return out
}

func (s *strategyFlags) strategy() (deploy.Strategy, error) {
	st := deploy.Strategy{Bake: s.bake.d, RollbackAlarms: s.alarms}
	switch {
	case len(s.given()) > 1:
		return st, usageErr(fmt.Errorf("%s exclude each other: pick one traffic shift", strings.Join(s.given(), " and ")))
	case s.canary != 0:
		st.Type, st.Percent = deploy.Canary, s.canary
	case s.linear != 0:
		st.Type, st.Percent = deploy.Linear, s.linear
	case s.rolling != 0:
		st.Type, st.Percent = deploy.Rolling, s.rolling
	default:
		st.Type = deploy.AllAtOnce
	}
	parsed, err := deploy.ParseStrategy(st)
	if err != nil {
		return st, usageErr(err)
	}
	return parsed, nil
}

// verifyFlags are the post-deploy verification flags.
type verifyFlags struct {
	body, contentType, accept, expect string
	rollbackOnFailure                 bool
}

func bindVerify(b *binder) *verifyFlags {
	v := &verifyFlags{}
	b.str(&v.body, "verify-body", "", "after InService, invoke the endpoint with this FILE's content (- for stdin)")
	b.str(&v.contentType, "verify-content-type", "text/csv", "content type of the verification request")
	b.str(&v.expect, "verify-expect", "", "what every line of the answer must be: a range like 1..30, or a regular expression")
	b.boolean(&v.rollbackOnFailure, "rollback-on-failure", false, "restore the previous version when verification fails")
	return v
}

func (v *verifyFlags) verification(stdin io.Reader) (*deploy.Verification, error) {
	if v.body == "" {
		if v.expect != "" || v.rollbackOnFailure {
			return nil, usageErr(errors.New("--verify-expect and --rollback-on-failure need --verify-body FILE (the request to send)"))
		}
		return nil, nil
	}
	body, err := readBody(strings.TrimPrefix(v.body, "@"), stdin, true)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--verify-body: %w", err))
	}
	expect, err := deploy.ParseExpectation(v.expect)
	if err != nil {
		return nil, usageErr(err)
	}
	return &deploy.Verification{Body: body, ContentType: v.contentType, Expect: expect}, nil
}

// readBody reads "-" (stdin), a file, or — unless fileOnly — a literal.
func readBody(spec string, stdin io.Reader, fileOnly bool) ([]byte, error) {
	switch {
	case spec == "-":
		return io.ReadAll(stdin)
	case fileOnly || strings.HasPrefix(spec, "@"):
		b, err := os.ReadFile(strings.TrimPrefix(spec, "@"))
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return []byte(spec), nil
}

// targetFlags name the endpoint a command acts on: the environment's, {model}-{environment},
// unless --endpoint-name names another.
type targetFlags struct {
	env, endpointName string
}

// bindTarget defines --env, whose help is envUsage, and --endpoint-name.
func bindTarget(b *binder, envUsage string) *targetFlags {
	t := &targetFlags{}
	b.str(&t.env, "env", "", envUsage, "DEPLOY_ENVIRONMENT")
	b.str(&t.endpointName, "endpoint-name", "", "endpoint instead of {model}-{environment}", "ENDPOINT_NAME")
	return t
}

// needEnv refuses a missing --env, saying which command needs it.
func (t *targetFlags) needEnv(command string) error {
	if t.env == "" {
		return usageErr(fmt.Errorf("%s needs --env (or DEPLOY_ENVIRONMENT)", command))
	}
	return nil
}

// waitFlags say how long a command that changes an endpoint waits: for InService, and first for
// another deployment of the endpoint to finish.
type waitFlags struct {
	timeout, lockTimeout durationValue
}

func bindWait(b *binder) *waitFlags {
	w := &waitFlags{}
	b.duration(&w.timeout, "timeout", "how long to wait for InService (default 30m)")
	b.duration(&w.lockTimeout, "lock-timeout", "how long to wait for another deployment to finish first (default: --timeout)")
	return w
}
