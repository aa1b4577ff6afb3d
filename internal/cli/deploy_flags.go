package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type envLookupKey struct{}

// WithEnv returns a context under which the deployer commands read environment variables through
// lookup instead of the process environment, so that tests can run commands side by side with
// different environments.
func WithEnv(ctx context.Context, lookup func(string) (string, bool)) context.Context {
	return context.WithValue(ctx, envLookupKey{}, lookup)
}

// EnvMap is a lookup over a fixed set of variables, for WithEnv.
func EnvMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// getenv reads an environment variable through the context's lookup.
func getenv(ctx context.Context, key string) string {
	if ctx != nil {
		if l, ok := ctx.Value(envLookupKey{}).(func(string) (string, bool)); ok {
			v, _ := l(key)
			return v
		}
	}
	return os.Getenv(key)
}

// binder defines a command's flags, each with environment variables as fallback (the orb's), and
// fills unset flags from the environment when the command runs.
type binder struct {
	cmd   *cobra.Command
	envs  map[string][]string
	given map[string]string // flag → where its value came from ("--flag" or "ENV_VAR")
}

func newBinder(cmd *cobra.Command) *binder {
	return &binder{cmd: cmd, envs: map[string][]string{}, given: map[string]string{}}
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
func (b *binder) apply(ctx context.Context) error {
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
			v := strings.TrimSpace(getenv(ctx, e))
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
