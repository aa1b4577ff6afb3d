// Package pipeline reads the pipeline file, sagedeploy.yaml: the ordered environments a model moves
// through and, for each, where and how it is deployed. It finds, loads and validates the file
// (every error names its line) and embeds the file's JSON Schema for editors. It knows nothing of
// AWS or of the release server: the deployer and the server read the File it returns.
package pipeline

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileName is the pipeline file's name in a repository.
const FileName = "sagedeploy.yaml"

// Strategy types a pipeline file may name.
const (
	AllAtOnce = "all-at-once"
	Canary    = "canary"
	Linear    = "linear"
	Rolling   = "rolling"
)

// File is a loaded pipeline file.
type File struct {
	// Path is where the file was read from (empty when parsed from bytes).
	Path string `yaml:"-"`
	// Version is the file format's version; 1, the only one, when omitted.
	Version int `yaml:"version"`
	// Model is the model package group deployed when no --model / MODEL_NAME is given.
	Model string `yaml:"model"`
	// Environments in pipeline order: a version goes to each after the one before it.
	Environments []Environment `yaml:"environments"`
}

// Environment is one stage of the pipeline and how its endpoints are deployed.
type Environment struct {
	Name string `yaml:"name"`
	// Region is the AWS region of the environment's endpoints.
	Region string `yaml:"region"`
	// Account is the AWS account id, shown on the dashboard and checked against the assumed role.
	Account string `yaml:"account"`
	// Role is the IAM role the deployer assumes for this environment (cross-account deploys).
	Role string `yaml:"role"`
	// EndpointURL points the environment at a local SageMaker (`sagedeploy local`) instead of AWS.
	EndpointURL string `yaml:"endpoint_url"`
	// EndpointName is the endpoint's name pattern; {model} and {environment} are replaced.
	EndpointName  string       `yaml:"endpoint_name"`
	InstanceType  string       `yaml:"instance_type"`
	InstanceCount int          `yaml:"instance_count"`
	Strategy      *Strategy    `yaml:"strategy"`
	Verify        *Verify      `yaml:"verify"`
	Approval      *Approval    `yaml:"approval"`
	DataCapture   *DataCapture `yaml:"data_capture"`
	Serverless    *Serverless  `yaml:"serverless"`
	Async         *Async       `yaml:"async"`
	// Tags are added to everything the deployer creates in this environment.
	Tags map[string]string `yaml:"tags"`

	// Line is where the environment starts in the file.
	Line int `yaml:"-"`
}

// Strategy is how an update shifts traffic.
type Strategy struct {
	// Type is all-at-once (default), canary, linear or rolling.
	Type string `yaml:"type"`
	// Percent is the canary's share, a linear step's or a rolling batch's size.
	Percent int `yaml:"percent"`
	// Bake is how long each step serves before the next, e.g. 5m.
	Bake Duration `yaml:"bake"`
	// Alarms are CloudWatch alarms that roll the update back when they fire.
	Alarms []string `yaml:"alarms"`
}

// Verify invokes the endpoint once it serves the new version.
type Verify struct {
	// Body is a file, relative to the pipeline file, holding the request.
	Body              string `yaml:"body"`
	ContentType       string `yaml:"content_type"`
	Expect            string `yaml:"expect"`
	RollbackOnFailure bool   `yaml:"rollback_on_failure"`
}

// Approval is the environment's gate.
type Approval struct {
	// Required makes deploys and promotions into the environment wait for an approval.
	Required bool `yaml:"required"`
	// AllowRequester lets the person who asked for the release approve it too.
	AllowRequester bool `yaml:"allow_requester"`
}

// DataCapture records requests and answers of the endpoint to S3.
type DataCapture struct {
	Enabled         bool   `yaml:"enabled"`
	SamplingPercent int    `yaml:"sampling_percent"`
	Destination     string `yaml:"destination"`
}

// Serverless serves the environment from a serverless endpoint instead of instances.
type Serverless struct {
	MemoryMB       int `yaml:"memory_mb"`
	MaxConcurrency int `yaml:"max_concurrency"`
}

// Async makes the endpoint an asynchronous one, writing answers to S3.
type Async struct {
	OutputPath               string `yaml:"output_path"`
	MaxConcurrentInvocations int    `yaml:"max_concurrent_invocations"`
}

// Duration is a duration written as Go writes them (90s, 5m, 1h30m).
type Duration struct{ time.Duration }

// UnmarshalYAML reads a duration; a bare number is seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if secs, err := strconv.Atoi(s); err == nil {
		d.Duration = time.Duration(secs) * time.Second
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 90s, 5m, 1h)", n.Line, s)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration back as Go writes it.
func (d Duration) MarshalYAML() (any, error) { return d.Duration.String(), nil }

// Names lists the environments in pipeline order.
func (f *File) Names() []string {
	out := make([]string, len(f.Environments))
	for i, e := range f.Environments {
		out[i] = e.Name
	}
	return out
}

// Environment finds an environment by name.
func (f *File) Environment(name string) (Environment, bool) {
	i := slices.IndexFunc(f.Environments, func(e Environment) bool { return e.Name == name })
	if i < 0 {
		return Environment{}, false
	}
	return f.Environments[i], true
}

// Lookup finds an environment by name or says, in the user's words, which ones exist.
func (f *File) Lookup(name string) (Environment, error) {
	if e, ok := f.Environment(name); ok {
		return e, nil
	}
	return Environment{}, fmt.Errorf("environment %q is not in the pipeline file %s; its environments are %s (fix --env / DEPLOY_ENVIRONMENT, or add the environment to the file)",
		name, f.where(), strings.Join(f.Names(), ", "))
}

func (f *File) where() string {
	if f.Path == "" {
		return FileName
	}
	return f.Path
}

// Gated reports whether the environment's gate needs an approval.
func (e Environment) Gated() bool { return e.Approval != nil && e.Approval.Required }

// Endpoint is the environment's endpoint name for model: its pattern, or {model}-{environment}.
func (e Environment) Endpoint(model string) string {
	if e.EndpointName == "" {
		return ""
	}
	r := strings.NewReplacer("{model}", model, "{environment}", e.Name)
	return r.Replace(e.EndpointName)
}
