package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/pipeline"
	"github.com/sagedeploy/sagedeploy/releases"
)

// pipelineFlags are --pipeline and --allow-unreported of the deployer's commands: the pipeline
// file, when there is one, names the environments and gives each its settings; flags and the
// orb's environment variables override them.
type pipelineFlags struct {
	path            string
	allowUnreported bool
	file            *pipeline.File
}

func bindPipeline(b *binder) *pipelineFlags {
	p := &pipelineFlags{}
	b.str(&p.path, "pipeline", "", "pipeline file (default: "+pipeline.FileName+" in this directory or one above; \"none\" to ignore it)", "SAGEDEPLOY_PIPELINE")
	b.boolean(&p.allowUnreported, "allow-unreported", false, "change a gated environment even when the release server cannot be reached (its approval is skipped)")
	return p
}

// load reads the pipeline file: the one given, else sagedeploy.yaml found upward from the
// working directory. No file keeps today's behaviour.
func (p *pipelineFlags) load() error {
	if p == nil {
		return nil // a command without --pipeline (the agent)
	}
	f, err := loadPipeline(p.path)
	p.file = f
	return err
}

// loadPipeline reads the file at path, or finds one when path is empty; nil without a file.
func loadPipeline(path string) (*pipeline.File, error) {
	switch path {
	case "none":
		return nil, nil
	case "":
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("find the pipeline file: %w", err)
		}
		found, err := pipeline.Find(wd)
		if errors.Is(err, pipeline.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		path = found
	}
	f, err := pipeline.Load(path)
	if err != nil {
		var ps pipeline.Problems
		if errors.As(err, &ps) {
			return nil, usageErr(fmt.Errorf("the pipeline file has problems (`sagedeploy pipeline validate` lists them):\n%w", err))
		}
		return nil, usageErr(err)
	}
	return f, nil
}

// environments is what the deployer checks every environment against.
func (p *pipelineFlags) environments() *deploy.Environments {
	e := &deploy.Environments{AllowUnreported: p.allowUnreported}
	if p.file == nil {
		return e
	}
	e.Source = "the pipeline file " + p.file.Path
	for _, env := range p.file.Environments {
		e.Known = append(e.Known, deploy.KnownEnvironment{Name: env.Name, Gated: env.Gated()})
	}
	return e
}

// configure gives the deployer the pipeline's environments and env's role to assume.
func (p *pipelineFlags) configure(env string, opts *deploy.Options) {
	if p == nil {
		return
	}
	opts.Environments = p.environments()
	if p.file == nil {
		return
	}
	if e, ok := p.file.Environment(env); ok {
		opts.AssumeRoleARN = e.Role
	}
}

// targetEnv is the environment the command acts on, as its flags say.
func targetEnv(cmd *cobra.Command, c *conn) string {
	if c.env != "" {
		return c.env
	}
	for _, name := range []string{"env", "to"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Value.String() != "" {
			return f.Value.String()
		}
	}
	return ""
}

// defaults sets every flag of cmd that neither the command line nor an environment variable
// gave from env's entry in the pipeline file — region, endpoint, instances, strategy,
// verification — so that the commands parse one set of flags whatever their source.
func (p *pipelineFlags) defaults(cmd *cobra.Command, b *binder, model, env string) error {
	if p == nil || p.file == nil {
		return nil
	}
	e, ok := p.file.Environment(env)
	if !ok {
		return nil // the deployer refuses it, listing the known ones
	}
	set := func(name, value string) error {
		f := cmd.Flags().Lookup(name)
		if f == nil || value == "" || value == "0" || b.isGiven(name) {
			return nil
		}
		if err := f.Value.Set(value); err != nil {
			return usageErr(fmt.Errorf("%s: %s of environment %s: %w", p.file.Path, name, env, err))
		}
		b.given[name] = p.file.Path
		return nil
	}
	vals := [][2]string{{"region", e.Region}, {"endpoint-url", e.EndpointURL}, {"endpoint-name", e.Endpoint(model)},
		{"instance-type", e.InstanceType}, {"instance-count", strconv.Itoa(e.InstanceCount)}}
	st, err := p.strategyFlags(b, e)
	if err != nil {
		return err
	}
	vals = append(vals, st...)
	vals = append(vals, p.verifyFlags(e)...)
	vals = append(vals, fileSettings(e)...)
	b.tags = e.Tags
	for _, v := range vals {
		if err := set(v[0], v[1]); err != nil {
			return err
		}
	}
	return nil
}

// strategyFlags are the flags of env's strategy, unless the command line picked a strategy.
func (p *pipelineFlags) strategyFlags(b *binder, e pipeline.Environment) ([][2]string, error) {
	s := e.Strategy
	if s == nil || b.isGiven("canary") || b.isGiven("linear") || b.isGiven("rolling") || b.isGiven("bake") {
		return nil, nil
	}
	var out [][2]string
	switch s.Type {
	case pipeline.Canary:
		out = append(out, [2]string{"canary", strconv.Itoa(s.Percent)})
	case pipeline.Linear:
		out = append(out, [2]string{"linear", strconv.Itoa(s.Percent)})
	case pipeline.Rolling:
		out = append(out, [2]string{"rolling", strconv.Itoa(s.Percent)})
	}
	if s.Bake.Duration > 0 {
		out = append(out, [2]string{"bake", s.Bake.Duration.String()})
	}
	if !b.isGiven("rollback-alarm") {
		for _, a := range s.Alarms {
			out = append(out, [2]string{"rollback-alarm", a})
		}
	}
	return out, nil
}

// verifyFlags are the flags of env's verification; its body is relative to the pipeline file.
func (p *pipelineFlags) verifyFlags(e pipeline.Environment) [][2]string {
	v := e.Verify
	if v == nil {
		return nil
	}
	out := [][2]string{{"verify-body", filepath.Join(filepath.Dir(p.file.Path), v.Body)},
		{"verify-content-type", v.ContentType}, {"verify-expect", v.Expect}}
	if v.RollbackOnFailure {
		out = append(out, [2]string{"rollback-on-failure", "true"})
	}
	return out
}

// fileSettings are the flags of env's endpoint settings: data capture, serverless, async.
func fileSettings(e pipeline.Environment) [][2]string {
	var out [][2]string
	if d := e.DataCapture; d != nil && d.Enabled {
		out = append(out, [2]string{"data-capture-s3-uri", d.Destination}, [2]string{"data-capture-percent", strconv.Itoa(d.SamplingPercent)})
	}
	if s := e.Serverless; s != nil {
		out = append(out, [2]string{"serverless-memory", strconv.Itoa(s.MemoryMB)}, [2]string{"serverless-max-concurrency", strconv.Itoa(s.MaxConcurrency)})
	}
	if a := e.Async; a != nil {
		out = append(out, [2]string{"async-output-s3", a.OutputPath}, [2]string{"async-max-concurrency", strconv.Itoa(a.MaxConcurrentInvocations)})
	}
	return out
}

// serverEnvironments is the pipeline file as the release server's environments, in order.
func serverEnvironments(f *pipeline.File) []releases.Environment {
	out := make([]releases.Environment, len(f.Environments))
	for i, e := range f.Environments {
		kind := releases.EnvironmentSageMaker
		if e.EndpointURL != "" {
			kind = releases.EnvironmentLocal
		}
		out[i] = releases.Environment{Name: e.Name, Kind: kind, Region: e.Region, Account: e.Account, EndpointURL: e.EndpointURL,
			RequiresApproval: e.Gated(), AllowSelfApproval: e.Approval != nil && e.Approval.AllowRequester, Position: i}
	}
	return out
}

// loadPipeline reads the pipeline file and applies it: the model it names when none is given,
// and the settings of the environment the flags name.
func (c *conn) loadPipeline(cmd *cobra.Command) error {
	if err := c.pipe.load(); err != nil {
		return err
	}
	if c.pipe == nil || c.pipe.file == nil {
		return nil
	}
	if c.model == "" {
		c.model = c.pipe.file.Model
	}
	return c.pipe.defaults(cmd, c.b, c.model, targetEnv(cmd, c))
}
