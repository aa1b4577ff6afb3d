package orb

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The public interface of each release of circleci/aws-sagemaker is recorded under
// testdata/upstream/<tag>/ (interface.yml and the usage of each example workflow), so the drop-in
// tests run without the network. With SAGEDEPLOY_ORB_UPSTREAM naming a clone (a bare git dir is
// enough) of github.com/CircleCI-Public/aws-sagemaker-orb, TestRecordedUpstreamMatchesSource checks
// the recording against it, and with -update-upstream rewrites it.
var updateUpstream = flag.Bool("update-upstream", false, "rewrite testdata/upstream from $SAGEDEPLOY_ORB_UPSTREAM")

const upstreamDir = "testdata/upstream"

// upstreamRelease is what one release of the orb offers its users: facts about its interface.
type upstreamRelease struct {
	Orb      string                     `yaml:"orb"`
	Tag      string                     `yaml:"tag"`
	Commit   string                     `yaml:"commit"`
	Jobs     map[string]upstreamJob     `yaml:"jobs"`
	Commands map[string]upstreamCommand `yaml:"commands"`
	Examples []string                   `yaml:"examples"`
}

// upstreamParam is a parameter's type and, when it has one, its default; a parameter without a
// default is required.
type upstreamParam struct {
	Type    string `yaml:"type"`
	Default any    `yaml:"default,omitempty"`
}

func (p upstreamParam) required() bool { return p.Default == nil }

type upstreamJob struct {
	Parameters map[string]upstreamParam `yaml:"parameters"`
	// Steps are the commands the job runs, in order.
	Steps []string `yaml:"steps"`
}

type upstreamCommand struct {
	Parameters map[string]upstreamParam `yaml:"parameters,omitempty"`
	// Environment maps each variable the command's step exports to the parameter it carries.
	Environment map[string]string `yaml:"environment,omitempty"`
	// Runs is the CLI invocation of the step (empty for the install script).
	Runs string `yaml:"runs,omitempty"`
}

// loadUpstream reads every recorded release, keyed by tag.
func loadUpstream(t *testing.T) map[string]upstreamRelease {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(upstreamDir, "v*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recorded releases of circleci/aws-sagemaker under %s (%v)", upstreamDir, err)
	}
	out := map[string]upstreamRelease{}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "interface.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var r upstreamRelease
		if err := yaml.Unmarshal(b, &r); err != nil {
			t.Fatalf("parse %s: %v", d, err)
		}
		out[r.Tag] = r
	}
	return out
}

// upstreamExample reads the recorded usage of one example workflow of a release.
func upstreamExample(t *testing.T, tag, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(upstreamDir, tag, "examples", name+".yml"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("parse example %s of %s: %v", name, tag, err)
	}
	return m
}

func TestRecordedUpstreamMatchesSource(t *testing.T) {
	gitDir := os.Getenv("SAGEDEPLOY_ORB_UPSTREAM")
	if gitDir == "" {
		t.Skip("SAGEDEPLOY_ORB_UPSTREAM is not set: no clone of CircleCI-Public/aws-sagemaker-orb to check the recording against")
	}
	src := gitSource{dir: gitDir}
	tags, err := src.tags(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		files, err := src.record(t.Context(), tag)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		for name, want := range files {
			path := filepath.Join(upstreamDir, tag, name)
			if *updateUpstream {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s is not recorded (run with -update-upstream): %v", path, err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the source at %s: re-record with -update-upstream", path, tag)
			}
		}
	}
}

// gitSource reads the orb's source at a tag from a git directory.
type gitSource struct{ dir string }

func (g gitSource) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir", g.dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

func (g gitSource) tags(ctx context.Context) ([]string, error) {
	out, err := g.git(ctx, "tag", "--list", "v*")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// record returns the files that record tag: interface.yml and examples/<name>.yml.
func (g gitSource) record(ctx context.Context, tag string) (map[string][]byte, error) {
	commit, err := g.git(ctx, "rev-list", "-n1", tag)
	if err != nil {
		return nil, err
	}
	r := upstreamRelease{Orb: "circleci/aws-sagemaker", Tag: tag, Commit: strings.TrimSpace(commit),
		Jobs: map[string]upstreamJob{}, Commands: map[string]upstreamCommand{}}
	files := map[string][]byte{}
	if err := g.each(ctx, tag, "jobs", func(name string, doc map[string]any, _ []byte) error {
		r.Jobs[name] = upstreamJob{Parameters: paramFacts(doc), Steps: stepNames(doc)}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := g.each(ctx, tag, "commands", func(name string, doc map[string]any, _ []byte) error {
		r.Commands[name] = commandFacts(doc)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := g.each(ctx, tag, "examples", func(name string, _ map[string]any, raw []byte) error {
		usage, err := exampleUsage(raw)
		if err != nil {
			return fmt.Errorf("example %s: %w", name, err)
		}
		r.Examples = append(r.Examples, name)
		files[filepath.Join("examples", name+".yml")] = usage
		return nil
	}); err != nil {
		return nil, err
	}
	b, err := marshalYAML(r)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("# The public interface of circleci/aws-sagemaker %s\n"+
		"# (github.com/CircleCI-Public/aws-sagemaker-orb at %s):\n"+
		"# jobs, commands, parameters (type, default; no default = required) and the variables each\n"+
		"# command exports. Recorded by orb/upstream_test.go; do not edit by hand.\n", tag, r.Commit)
	files["interface.yml"] = append([]byte(header), b...)
	return files, nil
}

// each decodes every file of one orb source section at tag.
func (g gitSource) each(ctx context.Context, tag, section string, fn func(name string, doc map[string]any, raw []byte) error) error {
	list, err := g.git(ctx, "ls-tree", "--name-only", tag+":src/"+section)
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(list) {
		if !strings.HasSuffix(f, ".yml") {
			continue
		}
		raw, err := g.git(ctx, "show", tag+":src/"+section+"/"+f)
		if err != nil {
			return err
		}
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
			return fmt.Errorf("%s %s: %w", section, f, err)
		}
		if err := fn(strings.TrimSuffix(f, ".yml"), doc, []byte(raw)); err != nil {
			return err
		}
	}
	return nil
}

func paramFacts(doc map[string]any) map[string]upstreamParam {
	out := map[string]upstreamParam{}
	for name, d := range params(doc) {
		typ, _ := d["type"].(string)
		out[name] = upstreamParam{Type: typ, Default: d["default"]}
	}
	return out
}

func stepNames(doc map[string]any) []string {
	var out []string
	steps, _ := doc["steps"].([]any)
	for _, s := range steps {
		switch v := s.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			for k := range v {
				out = append(out, k)
			}
		}
	}
	return out
}

var cliLine = regexp.MustCompile(`^\s*(cci-sagemaker\s+[a-z -]+?)\s*$`)

// commandFacts records a command's parameters, what its run steps export and which CLI step they
// run — not the scripts themselves.
func commandFacts(doc map[string]any) upstreamCommand {
	c := upstreamCommand{Parameters: paramFacts(doc)}
	steps, _ := doc["steps"].([]any)
	for _, s := range steps {
		m, _ := s.(map[string]any)
		run, _ := m["run"].(map[string]any)
		if run == nil {
			continue
		}
		env, _ := run["environment"].(map[string]any)
		for k, v := range env {
			if c.Environment == nil {
				c.Environment = map[string]string{}
			}
			var refs []string
			for _, m := range paramRef.FindAllStringSubmatch(fmt.Sprint(v), -1) {
				refs = append(refs, m[1])
			}
			sort.Strings(refs)
			c.Environment[k] = strings.Join(refs, "+")
		}
		cmd, _ := run["command"].(string)
		for _, line := range strings.Split(cmd, "\n") {
			if m := cliLine.FindStringSubmatch(line); m != nil {
				c.Runs = m[1]
			}
		}
	}
	return c
}

// exampleUsage keeps the usage section of an example (the workflow users copy), in its order.
func exampleUsage(raw []byte) ([]byte, error) {
	var doc struct {
		Usage yaml.Node `yaml:"usage"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if doc.Usage.Kind == 0 {
		return nil, fmt.Errorf("no usage")
	}
	return marshalYAML(&doc.Usage)
}

// marshalYAML writes YAML with the two-space indent of CircleCI configurations.
func marshalYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
