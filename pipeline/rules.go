package pipeline

import (
	"net/url"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	envName   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	roleARN   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$`)
	accountRe = regexp.MustCompile(`^\d{12}$`)
	// endpointRe is SageMaker's rule for endpoint names.
	endpointRe = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9])*$`)
)

// at finds the node at a path of keys (strings) and list indexes (ints) below n; nil when absent.
func at(n *yaml.Node, path ...any) *yaml.Node {
	for _, p := range path {
		if n == nil {
			return nil
		}
		switch p := p.(type) {
		case string:
			var next *yaml.Node
			for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
				}
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || p >= len(n.Content) {
				return nil
			}
			n = n.Content[p]
		}
	}
	return n
}

// lineAt is the line of the key (or item) at path, or of the closest ancestor present: a
// problem with a block is reported where its key is written, not where its content starts.
func lineAt(n *yaml.Node, path ...any) int {
	for len(path) > 0 {
		if m := at(n, path...); m != nil {
			if k, ok := path[len(path)-1].(string); ok {
				return keyLine(at(n, path[:len(path)-1]...), k, m.Line)
			}
			return m.Line
		}
		path = path[:len(path)-1]
	}
	return n.Line
}

// keyLine is the line of key in mapping m, def when absent.
func keyLine(m *yaml.Node, key string, def int) int {
	for i := 0; m != nil && m.Kind == yaml.MappingNode && i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return def
}

// rules checks the values of a decoded file against what SageMaker and sagedeploy accept.
func (c *checker) rules(root *yaml.Node, f *File) {
	if f.Version != 0 && f.Version != 1 {
		c.add(lineAt(root, "version"), "version %d is not one this sagedeploy reads: use version: 1", f.Version)
	}
	if len(f.Environments) == 0 {
		c.add(lineAt(root, "environments"), "no environments: list them in pipeline order under environments:, e.g. - name: dev")
		return
	}
	seen := map[string]int{}
	for i := range f.Environments {
		e := &f.Environments[i]
		e.Line = lineAt(root, "environments", i)
		node := at(root, "environments", i)
		line := func(path ...any) int { return lineAt(node, path...) }
		if first, dup := seen[e.Name]; dup && e.Name != "" {
			c.add(line("name"), "environment %s is defined twice (first at line %d): each environment appears once", e.Name, first)
		}
		seen[e.Name] = line("name")
		c.environment(e, node, line)
	}
}

func (c *checker) environment(e *Environment, node *yaml.Node, line func(...any) int) {
	switch {
	case e.Name == "":
		c.add(line(), "an environment has no name: add name: dev (or staging, prod, ...)")
		return
	case !envName.MatchString(e.Name):
		c.add(line("name"), "environment name %q is not valid: use lower-case letters, digits and dashes (it becomes part of endpoint names)", e.Name)
	}
	c.where(e, line)
	c.instances(e, line, at(node, "instance_count") != nil)
	if e.Strategy != nil {
		c.strategy(e, line)
	}
	c.settings(e, line)
}

func (c *checker) where(e *Environment, line func(...any) int) {
	if e.Region != "" && !regionRe.MatchString(e.Region) {
		c.add(line("region"), "region %q of environment %s is not an AWS region (e.g. us-east-1, eu-west-1)", e.Region, e.Name)
	}
	if e.Account != "" && !accountRe.MatchString(e.Account) {
		c.add(line("account"), "account %q of environment %s is not a 12-digit AWS account id", e.Account, e.Name)
	}
	if e.Role != "" {
		m := roleARN.FindStringSubmatch(e.Role)
		switch {
		case m == nil:
			c.add(line("role"), "role %q of environment %s is not an IAM role ARN (arn:aws:iam::123456789012:role/deployer)", e.Role, e.Name)
		case e.Account != "" && m[1] != e.Account:
			c.add(line("role"), "role %s of environment %s is in account %s, but the environment's account is %s", e.Role, e.Name, m[1], e.Account)
		}
	}
	if e.EndpointURL != "" {
		if u, err := url.Parse(e.EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.add(line("endpoint_url"), "endpoint_url %q of environment %s is not an http(s) URL of a local SageMaker", e.EndpointURL, e.Name)
		}
	}
	if p := e.EndpointName; p != "" {
		probe := strings.NewReplacer("{model}", "m", "{environment}", "e").Replace(p)
		if strings.ContainsAny(probe, "{}") || !endpointRe.MatchString(probe) {
			c.add(line("endpoint_name"), "endpoint_name %q of environment %s is not a valid pattern: letters, digits, dashes, {model} and {environment}", p, e.Name)
		}
	}
}

func (c *checker) instances(e *Environment, line func(...any) int, countGiven bool) {
	if e.InstanceType != "" && !strings.HasPrefix(e.InstanceType, "ml.") {
		c.add(line("instance_type"), "instance_type %q of environment %s is not a SageMaker instance type (e.g. ml.m5.large)", e.InstanceType, e.Name)
	}
	if e.InstanceCount < 0 || (countGiven && e.InstanceCount == 0) {
		c.add(line("instance_count"), "instance_count %d of environment %s is not valid: use 1 or more", e.InstanceCount, e.Name)
	}
	if e.Serverless != nil && (e.InstanceType != "" || e.InstanceCount != 0) {
		c.add(line("serverless"), "environment %s sets both serverless and instance_type/instance_count: a serverless endpoint has no instances; keep one", e.Name)
	}
	if e.Serverless != nil && e.Async != nil {
		c.add(line("async"), "environment %s sets both serverless and async: SageMaker serves asynchronous inference from instances only", e.Name)
	}
}

func (c *checker) strategy(e *Environment, line func(...any) int) {
	s := e.Strategy
	switch s.Type {
	case "", AllAtOnce:
		if s.Percent != 0 {
			c.add(line("strategy", "percent"), "strategy of environment %s shifts all traffic at once: percent applies to canary, linear or rolling", e.Name)
		}
	case Canary, Linear, Rolling:
		if s.Percent < 1 || s.Percent > 100 {
			c.add(line("strategy", "percent"), "a %s strategy needs percent between 1 and 100 in environment %s (got %d)", s.Type, e.Name, s.Percent)
		}
	default:
		c.add(line("strategy", "type"), "strategy type %q of environment %s is not one of all-at-once, canary, linear, rolling", s.Type, e.Name)
	}
	if s.Bake.Duration < 0 {
		c.add(line("strategy", "bake"), "bake of environment %s is negative", e.Name)
	}
	if len(s.Alarms) > 0 && e.Serverless != nil {
		c.add(line("strategy", "alarms"), "environment %s is serverless: SageMaker rolls serverless endpoints back on alarms only with blue/green on instances", e.Name)
	}
}

func (c *checker) settings(e *Environment, line func(...any) int) {
	if v := e.Verify; v != nil && v.Body == "" {
		c.add(line("verify"), "verify of environment %s needs body: the file holding the request to send", e.Name)
	}
	if d := e.DataCapture; d != nil {
		if d.SamplingPercent < 0 || d.SamplingPercent > 100 {
			c.add(line("data_capture", "sampling_percent"), "sampling_percent %d of environment %s is not between 0 and 100", d.SamplingPercent, e.Name)
		}
		if d.Enabled && !strings.HasPrefix(d.Destination, "s3://") {
			c.add(line("data_capture", "destination"), "data_capture of environment %s needs destination: an s3:// URI", e.Name)
		}
	}
	if a := e.Async; a != nil && !strings.HasPrefix(a.OutputPath, "s3://") {
		c.add(line("async", "output_path"), "async of environment %s needs output_path: an s3:// URI for the answers", e.Name)
	}
	if s := e.Serverless; s != nil {
		if s.MemoryMB < 1024 || s.MemoryMB > 6144 || s.MemoryMB%1024 != 0 {
			c.add(line("serverless", "memory_mb"), "memory_mb %d of environment %s is not one of 1024, 2048, ..., 6144", s.MemoryMB, e.Name)
		}
		if s.MaxConcurrency < 1 || s.MaxConcurrency > 200 {
			c.add(line("serverless", "max_concurrency"), "max_concurrency %d of environment %s is not between 1 and 200", s.MaxConcurrency, e.Name)
		}
	}
}
