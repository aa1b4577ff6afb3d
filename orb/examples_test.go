package orb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The workflows we tell users to copy must run against the orb as it is: every orb job they use
// exists, every argument they pass is one of its parameters, and no required parameter is missing.
func TestExampleWorkflowsUseTheOrbCorrectly(t *testing.T) {
	o := packed(t)
	jobs := section(t, o, "jobs")
	examples := []string{filepath.Join("..", "examples", "abalone", "circleci", "config.yml")}
	for name, ex := range section(t, o, "examples") {
		usage, _ := ex["usage"].(map[string]any)
		if usage == nil {
			t.Errorf("orb example %s has no usage", name)
			continue
		}
		checkWorkflows(t, "orb example "+name, usage, jobs)
	}
	for _, path := range examples {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		var cfg map[string]any
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		checkWorkflows(t, path, cfg, jobs)
	}
}

// Keys of a workflow job entry that CircleCI itself interprets, not the job's parameters.
var workflowKeys = map[string]bool{"name": true, "requires": true, "context": true, "filters": true, "type": true, "matrix": true, "pre-steps": true, "post-steps": true}

func checkWorkflows(t *testing.T, where string, cfg map[string]any, orbJobs map[string]map[string]any) {
	t.Helper()
	wfs, _ := cfg["workflows"].(map[string]any)
	if len(wfs) == 0 {
		t.Errorf("%s: no workflows", where)
	}
	localJobs, _ := cfg["jobs"].(map[string]any)
	aliases := orbAliases(cfg)
	if len(aliases) == 0 {
		t.Errorf("%s: no orbs entry names sagedeploy/sagedeploy or circleci/aws-sagemaker", where)
	}
	used := 0
	for wfName, wf := range wfs {
		wm, _ := wf.(map[string]any)
		entries, _ := wm["jobs"].([]any)
		for _, e := range entries {
			em, ok := e.(map[string]any)
			if !ok {
				continue
			}
			for jobRef, a := range em {
				args, _ := a.(map[string]any)
				alias, orbJob, _ := strings.Cut(jobRef, "/")
				if !aliases[alias] {
					if _, ok := localJobs[jobRef]; !ok && args["type"] != "approval" {
						t.Errorf("%s: workflow %s uses job %s, defined nowhere", where, wfName, jobRef)
					}
					continue
				}
				used++
				j, ok := orbJobs[orbJob]
				if !ok {
					t.Errorf("%s: workflow %s uses orb job %s, which the orb does not have", where, wfName, orbJob)
					continue
				}
				p := params(j)
				for k, v := range args {
					d, ok := p[k]
					if !ok && !workflowKeys[k] {
						t.Errorf("%s: %s is given %s, which is not one of its parameters", where, jobRef, k)
					}
					if ok && !fitsType(v, d["type"]) {
						t.Errorf("%s: %s is given %s: %#v, not a value of type %v", where, jobRef, k, v, d["type"])
					}
				}
				for k, d := range p {
					if _, has := d["default"]; !has {
						if _, given := args[k]; !given {
							t.Errorf("%s: %s lacks its required parameter %s", where, jobRef, k)
						}
					}
				}
			}
		}
	}
	if used == 0 {
		t.Errorf("%s: uses no orb job", where)
	}
}

// orbAliases are the names a configuration gives our orb: its own, or the one it gave
// circleci/aws-sagemaker before switching the reference.
func orbAliases(cfg map[string]any) map[string]bool {
	out := map[string]bool{}
	orbs, _ := cfg["orbs"].(map[string]any)
	for alias, ref := range orbs {
		r, _ := ref.(string)
		if strings.HasPrefix(r, "sagedeploy/sagedeploy@") || strings.HasPrefix(r, "circleci/aws-sagemaker@") {
			out[alias] = true
		}
	}
	return out
}

// fitsType reports whether a workflow passes a value CircleCI accepts for a parameter type; a
// pipeline value (<< pipeline.x >>) is taken on trust.
func fitsType(v any, typ any) bool {
	if s, ok := v.(string); ok && strings.Contains(s, "<<") {
		return true
	}
	switch typ {
	case "integer":
		_, ok := v.(int)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string", "enum":
		_, ok := v.(string)
		return ok
	}
	return true
}
