package orb

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The releases pipelines pin today: circleci/aws-sagemaker@1.0 resolves to 1.0.5, 1.0.0 and 1.0.4
// are the ones before and after its breaking change.
var pinnedReleases = []string{"v1.0.0", "v1.0.4", "v1.0.5"}

// previewOnly are parameters that only the 0.1 previews (0.1.9, 0.1.10) had, left out of our orb
// on purpose: CircleCI sets CIRCLE_BUILD_NUM and CIRCLE_WORKFLOW_ID itself, and an orb parameter
// that defaults to empty would hide them from the step.
var previewOnly = map[string]string{"circle_build_num": "CIRCLE_BUILD_NUM", "circle_workflow_id": "CIRCLE_WORKFLOW_ID"}

// withoutPreviewOnly drops previewOnly parameters from a 0.1 release.
func withoutPreviewOnly(rel upstreamRelease) upstreamRelease {
	if !strings.HasPrefix(rel.Tag, "v0.") {
		return rel
	}
	for _, j := range rel.Jobs {
		for p := range previewOnly {
			delete(j.Parameters, p)
		}
	}
	for _, c := range rel.Commands {
		for p, v := range previewOnly {
			delete(c.Parameters, p)
			delete(c.Environment, v)
		}
	}
	return rel
}

// Switching `circleci/aws-sagemaker@X` for our orb must be a one-line change for every release:
// each job and command it had exists in ours, with each of its parameters of the same type and
// default, and ours requires nothing a pipeline written for that release may leave out.
func TestOrbAcceptsEveryAwsSagemakerRelease(t *testing.T) {
	o := packed(t)
	jobs, cmds := section(t, o, "jobs"), section(t, o, "commands")
	ups := loadUpstream(t)
	for _, tag := range pinnedReleases {
		if _, ok := ups[tag]; !ok {
			t.Fatalf("circleci/aws-sagemaker %s is not recorded under %s", tag, upstreamDir)
		}
	}
	for tag, rel := range ups {
		rel := withoutPreviewOnly(rel)
		t.Run(tag, func(t *testing.T) {
			var problems []string
			for name, j := range rel.Jobs {
				ours, ok := jobs[name]
				if !ok {
					problems = append(problems, "no job "+name)
					continue
				}
				problems = append(problems, acceptsParams("job "+name, j.Parameters, params(ours))...)
				problems = append(problems, sameCLISteps(name, rel, ours, cmds)...)
			}
			for name, c := range rel.Commands {
				ours, ok := cmds[name]
				if !ok {
					problems = append(problems, "no command "+name)
					continue
				}
				problems = append(problems, acceptsParams("command "+name, c.Parameters, params(ours))...)
				problems = append(problems, exportsSameVariables(name, c, ours)...)
			}
			sort.Strings(problems)
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// acceptsParams lists how our parameters fail to accept what a release's users pass.
func acceptsParams(where string, up map[string]upstreamParam, ours map[string]map[string]any) []string {
	var out []string
	for name, p := range up {
		d, ok := ours[name]
		if !ok {
			out = append(out, fmt.Sprintf("%s has no parameter %s", where, name))
			continue
		}
		if d["type"] != p.Type {
			out = append(out, fmt.Sprintf("%s: %s is of type %v, the release's of type %s", where, name, d["type"], p.Type))
		}
		def, has := d["default"]
		switch {
		case p.required():
			// Pipelines always pass it; a default of ours changes nothing for them.
		case !has:
			out = append(out, fmt.Sprintf("%s: %s is required, the release defaults it to %#v", where, name, p.Default))
		case !reflect.DeepEqual(def, p.Default):
			out = append(out, fmt.Sprintf("%s: %s defaults to %#v, the release's to %#v", where, name, def, p.Default))
		}
	}
	for name, d := range ours {
		if _, has := d["default"]; has {
			continue
		}
		if p, ok := up[name]; !ok || !p.required() {
			out = append(out, fmt.Sprintf("%s requires %s, which pipelines written for the release need not pass", where, name))
		}
	}
	return out
}

// sameCLISteps checks that our job runs the CLI steps the release's job ran (cci-sagemaker
// sagemaker X becomes sagedeploy sagemaker X).
func sameCLISteps(job string, rel upstreamRelease, ours map[string]any, cmds map[string]map[string]any) []string {
	var want, got []string
	for _, s := range rel.Jobs[job].Steps {
		if r := rel.Commands[s].Runs; r != "" {
			want = append(want, "sagedeploy "+strings.TrimPrefix(r, "cci-sagemaker "))
		}
	}
	for _, s := range stepNames(ours) {
		got = append(got, cliLines(cmds[s])...)
	}
	var out []string
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return g == w || strings.HasPrefix(g, w+" ") }) {
			out = append(out, fmt.Sprintf("job %s does not run %q (it runs %q)", job, w, got))
		}
	}
	return out
}

// exportsSameVariables checks that our command's step sets each variable the release's did, from
// the same parameter.
func exportsSameVariables(name string, up upstreamCommand, ours map[string]any) []string {
	env := stepEnvironment(ours)
	var out []string
	for v, param := range up.Environment {
		val, ok := env[v]
		if !ok {
			out = append(out, fmt.Sprintf("command %s does not export %s", name, v))
			continue
		}
		if !strings.Contains(val, "<< parameters."+param+" >>") {
			out = append(out, fmt.Sprintf("command %s exports %s=%q, not parameter %s", name, v, val, param))
		}
	}
	return out
}

// stepEnvironment is the union of the environments of a command's run steps.
func stepEnvironment(cmd map[string]any) map[string]string {
	out := map[string]string{}
	steps, _ := cmd["steps"].([]any)
	for _, s := range steps {
		m, _ := s.(map[string]any)
		run, _ := m["run"].(map[string]any)
		env, _ := run["environment"].(map[string]any)
		for k, v := range env {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// cliLines are the lines of a command's run steps that call sagedeploy.
func cliLines(cmd map[string]any) []string {
	var out []string
	steps, _ := cmd["steps"].([]any)
	for _, s := range steps {
		m, _ := s.(map[string]any)
		run, _ := m["run"].(map[string]any)
		text, _ := run["command"].(string)
		out = append(out, scriptCLILines(text)...)
	}
	return out
}

// scriptCLILines are the lines of a step's script that call sagedeploy.
func scriptCLILines(script string) []string {
	var out []string
	for _, line := range strings.Split(script, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "sagedeploy ") {
			out = append(out, line)
		}
	}
	return out
}

// The example workflows each release shipped validate against our orb as they are, with only the
// orb reference changed (the alias they give it stays).
func TestAwsSagemakerExampleWorkflowsValidateAgainstOurOrb(t *testing.T) {
	jobs := section(t, packed(t), "jobs")
	n := 0
	for tag, rel := range loadUpstream(t) {
		for _, ex := range rel.Examples {
			checkWorkflows(t, fmt.Sprintf("aws-sagemaker %s example %s", tag, ex), upstreamExample(t, tag, ex), jobs)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no recorded example workflows")
	}
}
