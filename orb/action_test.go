package orb

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"go.yaml.in/yaml/v3"

	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// action is the GitHub Action at the repository root.
type action struct {
	Inputs map[string]struct {
		Required bool    `yaml:"required"`
		Default  *string `yaml:"default"`
	} `yaml:"inputs"`
	Runs struct {
		Steps []struct {
			Name  string            `yaml:"name"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

func loadAction(t *testing.T) action {
	t.Helper()
	b, err := os.ReadFile("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var a action
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatalf("parse action.yml: %v", err)
	}
	return a
}

// actionInput names the input that carries an orb parameter: the parameter's name in kebab case,
// except where the action had its own name first.
func actionInput(param string) string {
	switch param {
	case "region_name":
		return "region"
	case "deploy_environment", "to_environment":
		return "environment"
	case "endpoint_instance_type":
		return "instance-type"
	case "endpoint_instance_count", "instances":
		return "instance-count"
	case "to_version":
		return "version"
	case "circle_pipeline_id":
		return "pipeline-id"
	case "circle_project_id":
		return "project-id"
	}
	return strings.ReplaceAll(param, "_", "-")
}

// ownDefault are orb parameters whose action input defaults otherwise, on purpose: version and
// environment serve several commands, so their default is the empty "not given"; the binary goes
// to the runner's temporary directory, which GitHub cleans, rather than ~/bin.
var ownDefault = map[string]bool{"to_version": true, "to_environment": true, "instances": true, "sagedeploy_install_dir": true}

// A workflow moved from the orb to GitHub Actions finds every parameter of every orb job (ours and
// every aws-sagemaker release's) as an input, with the same default, and each input and each
// variable the orb's steps export reaches the sagedeploy step.
func TestActionInputsCoverTheOrbParameters(t *testing.T) {
	a := loadAction(t)
	all := map[string]map[string]any{}
	for _, j := range section(t, packed(t), "jobs") {
		maps.Copy(all, params(j))
	}
	for tag, rel := range loadUpstream(t) {
		for job, j := range withoutPreviewOnly(rel).Jobs {
			for p := range j.Parameters {
				if _, ok := all[p]; !ok {
					t.Errorf("aws-sagemaker %s job %s has parameter %s, which no job of our orb has", tag, job, p)
				}
			}
		}
	}
	for p, d := range all {
		in, ok := a.Inputs[actionInput(p)]
		if !ok {
			t.Errorf("orb parameter %s has no action input %s", p, actionInput(p))
			continue
		}
		def, has := d["default"]
		if has && !ownDefault[p] && (in.Default == nil || *in.Default != fmt.Sprint(def)) {
			t.Errorf("orb parameter %s defaults to %v, action input %s to %v", p, def, actionInput(p), in.Default)
		}
	}
	runs := fmt.Sprint(a.Runs.Steps)
	for name := range a.Inputs {
		if !strings.Contains(runs, "inputs."+name+" ") {
			t.Errorf("action input %s reaches no step", name)
		}
	}
	for name, c := range section(t, packed(t), "commands") {
		for v := range stepEnvironment(c) {
			if v != "SAGEDEPLOY_ORB_RELEASES_URL" && !strings.Contains(runs, v) {
				t.Errorf("orb command %s exports %s; the action's step does not", name, v)
			}
		}
	}
}

var exprRe = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// githubRunner runs the action's sagedeploy step as GitHub does: ${{ }} expressions over inputs
// (with their defaults), github and runner, then the script in bash -eo pipefail with the step's
// env over the job's.
type githubRunner struct {
	t      *testing.T
	a      action
	bin    string
	jobEnv map[string]string
	ctx    map[string]string // github.* and runner.*
}

func (g *githubRunner) run(with map[string]string) string {
	g.t.Helper()
	inputs := map[string]string{}
	for name, in := range g.a.Inputs {
		if v, ok := with[name]; ok {
			inputs[name] = v
		} else if in.Default != nil {
			inputs[name] = *in.Default
		} else if in.Required {
			g.t.Fatalf("action input %s is required", name)
		}
	}
	for name := range with {
		if _, ok := g.a.Inputs[name]; !ok {
			g.t.Fatalf("the action has no input %s", name)
		}
	}
	step := g.a.Runs.Steps[len(g.a.Runs.Steps)-1]
	env := map[string]string{"PATH": g.bin + ":/usr/bin:/bin", "HOME": g.t.TempDir()}
	maps.Copy(env, g.jobEnv)
	for k, v := range step.Env {
		env[k] = g.expand(v, inputs)
	}
	cmd := exec.CommandContext(g.t.Context(), "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", g.expand(step.Run, inputs))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("action with %v: %v\n%s", with, err, out.String())
	}
	return out.String()
}

// expand evaluates the expressions the action uses: a.b lookups, ||, and format('...', x, y).
func (g *githubRunner) expand(s string, inputs map[string]string) string {
	return exprRe.ReplaceAllStringFunc(s, func(m string) string {
		return g.eval(exprRe.FindStringSubmatch(m)[1], inputs)
	})
}

func (g *githubRunner) eval(e string, inputs map[string]string) string {
	if l, r, ok := strings.Cut(e, "||"); ok {
		if v := g.eval(strings.TrimSpace(l), inputs); v != "" {
			return v
		}
		return g.eval(strings.TrimSpace(r), inputs)
	}
	if inner, ok := strings.CutPrefix(e, "format("); ok {
		parts := strings.Split(strings.TrimSuffix(inner, ")"), ",")
		out := strings.Trim(strings.TrimSpace(parts[0]), "'")
		for i, p := range parts[1:] {
			out = strings.ReplaceAll(out, fmt.Sprintf("{%d}", i), g.eval(strings.TrimSpace(p), inputs))
		}
		return out
	}
	if name, ok := strings.CutPrefix(e, "inputs."); ok {
		return inputs[name]
	}
	v, ok := g.ctx[e]
	if !ok {
		g.t.Fatalf("the action uses ${{ %s }}, which this runner does not know", e)
	}
	return v
}

// The action runs the orb's flow on GitHub: without an environment input it deploys to the
// release token's environment; endpoint-config-name and endpoint-name are honoured; a re-run of
// the same workflow run reuses what it created; scale reaches the endpoint.
func TestActionDeploysLikeTheOrb(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("the action's step runs in bash, which is not installed here")
	}
	sm := localsmtest.Start(t, localsm.Options{})
	rel := servertest.Start(t, servertest.Options{Environments: []releases.Environment{{Name: "dev", Kind: "local"}}})
	awsEnv := map[string]string{"AWS_ENDPOINT_URL": sm.URL(), "AWS_ACCESS_KEY_ID": "AKIAORBTEST", "AWS_SECRET_ACCESS_KEY": "secret"}
	registerAbalone(t, awsEnv)
	g := &githubRunner{t: t, a: loadAction(t), bin: sagedeployOnPath(t),
		jobEnv: withVars(awsEnv, "SAGEDEPLOY_RELEASES_URL", rel.URL, "SAGEDEPLOY_RELEASES_TOKEN", rel.Token("dev")),
		ctx:    map[string]string{"github.run_id": "4242", "github.run_attempt": "1", "github.repository": "acme/models", "runner.temp": t.TempDir()}}
	sdk := sagemakerClient(sm.URL())

	model := map[string]string{"model-name": "abalone", "bucket": "models"}
	for range 2 { // a re-run of the workflow run creates nothing new
		g.run(withVars(model, "command", "create-model"))
		g.run(withVars(model, "command", "create-endpoint-config"))
		g.run(withVars(model, "command", "deploy", "model-desc", "Abalone age regression", "timeout", "5m"))
	}
	dev := describeEndpoint(t, sdk, "abalone-dev")
	if dev.EndpointStatus != types.EndpointStatusInService || countConfigs(t, sdk) != 1 {
		t.Fatalf("abalone-dev is %s with %d endpoint configurations, want InService with the one the run created", dev.EndpointStatus, countConfigs(t, sdk))
	}
	assertComponent(t, rel, "dev", 1)

	g.run(withVars(model, "command", "deploy", "endpoint-config-name", aws.ToString(dev.EndpointConfigName), "endpoint-name", "abalone-green"))
	if got := aws.ToString(describeEndpoint(t, sdk, "abalone-green").EndpointConfigName); got != aws.ToString(dev.EndpointConfigName) {
		t.Errorf("abalone-green serves %s, want %s", got, aws.ToString(dev.EndpointConfigName))
	}
	g.run(withVars(model, "command", "scale", "environment", "dev", "instance-count", "2"))
	if n := aws.ToInt32(describeEndpoint(t, sdk, "abalone-dev").ProductionVariants[0].CurrentInstanceCount); n != 2 {
		t.Errorf("abalone-dev runs %d instances after the action's scale to 2", n)
	}
}
