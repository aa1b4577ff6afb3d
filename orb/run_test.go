package orb

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/internal/cli"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// TestMain lets this test binary stand in for the sagedeploy binary the orb's setup step installs:
// run under the name sagedeploy (see sagedeployOnPath), it is the CLI.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "sagedeploy" {
		os.Exit(cli.Execute(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// sagedeployOnPath returns a directory holding this test binary under the name sagedeploy.
func sagedeployOnPath(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "sagedeploy")); err != nil {
		t.Fatal(err)
	}
	return dir
}

var pipelineRef = regexp.MustCompile(`<<\s*pipeline\.id\s*>>`)

// circleci runs workflows of our orb the way CircleCI does, for what the orb uses: parameters with
// their defaults (a missing required one or an unknown one is an error), << parameters.x >> and
// << pipeline.id >> substitution, jobs calling commands, and run steps in bash -eo pipefail with
// the step's environment over the project's and context's.
type circleci struct {
	t        *testing.T
	jobs     map[string]map[string]any
	commands map[string]map[string]any
	bin      string            // where sagedeploy is
	context  map[string]string // the project's and context's variables
	pipeline string            // << pipeline.id >>
}

// workflow runs every workflow of cfg, each job after the ones it requires.
func (c *circleci) workflow(cfg map[string]any) {
	c.t.Helper()
	aliases := orbAliases(cfg)
	wfs, _ := cfg["workflows"].(map[string]any)
	for _, wf := range wfs {
		entries, _ := wf.(map[string]any)["jobs"].([]any)
		done := map[string]bool{}
		for _, e := range entries {
			em, ok := e.(map[string]any)
			if !ok {
				c.t.Fatalf("workflow job %v: this runner knows only orb jobs given arguments", e)
			}
			for ref, a := range em {
				args, _ := a.(map[string]any)
				alias, job, _ := strings.Cut(ref, "/")
				if !aliases[alias] {
					c.t.Fatalf("workflow job %s is not one of the orb's", ref)
				}
				reqs, _ := args["requires"].([]any)
				for _, r := range reqs {
					if !done[fmt.Sprint(r)] {
						c.t.Fatalf("job %s requires %v, which has not run", ref, r)
					}
				}
				c.job(job, args)
				named, _ := args["name"].(string)
				done[cmp.Or(named, ref)] = true
			}
		}
	}
}

// job runs one orb job with the arguments a workflow gives it.
func (c *circleci) job(name string, args map[string]any) {
	c.t.Helper()
	j, ok := c.jobs[name]
	if !ok {
		c.t.Fatalf("the orb has no job %s", name)
	}
	vals, err := bind(params(j), args, c.pipeline)
	if err != nil {
		c.t.Fatalf("job %s: %v", name, err)
	}
	for _, s := range stepCalls(c.t, j) {
		if s.name == "setup" {
			// It installs a release from GitHub (TestInstallScriptVerifiesChecksum covers it);
			// here sagedeploy is already on PATH.
			continue
		}
		cargs := map[string]any{}
		for k, v := range s.args {
			cargs[k] = substitute(fmt.Sprint(v), vals)
		}
		c.command(name, s.name, cargs)
	}
}

// command runs one orb command's run steps.
func (c *circleci) command(job, name string, args map[string]any) {
	c.t.Helper()
	cmd, ok := c.commands[name]
	if !ok {
		c.t.Fatalf("job %s calls command %s, which the orb does not have", job, name)
	}
	vals, err := bind(params(cmd), args, c.pipeline)
	if err != nil {
		c.t.Fatalf("job %s, command %s: %v", job, name, err)
	}
	for _, s := range stepCalls(c.t, cmd) {
		if s.name != "run" {
			c.t.Fatalf("command %s has a %s step, which this runner does not know", name, s.name)
		}
		env := map[string]string{"PATH": c.bin + ":/usr/bin:/bin", "HOME": c.t.TempDir()}
		maps.Copy(env, c.context)
		stepEnv, _ := s.args["environment"].(map[string]any)
		for k, v := range stepEnv {
			env[k] = substitute(fmt.Sprint(v), vals)
		}
		script := substitute(fmt.Sprint(s.args["command"]), vals)
		run := exec.CommandContext(c.t.Context(), "bash", "-eo", "pipefail", "-c", script)
		for k, v := range env {
			run.Env = append(run.Env, k+"="+v)
		}
		var out bytes.Buffer
		run.Stdout, run.Stderr = &out, &out
		if err := run.Run(); err != nil {
			c.t.Fatalf("job %s, step %q: %v\n%s", job, substitute(fmt.Sprint(s.args["name"]), vals), err, out.String())
		}
		c.t.Logf("job %s, step %q:\n%s", job, substitute(fmt.Sprint(s.args["name"]), vals), out.String())
	}
}

// bind gives each declared parameter its argument or default, as CircleCI does when it compiles a
// configuration, and refuses what CircleCI refuses.
func bind(decl map[string]map[string]any, args map[string]any, pipelineID string) (map[string]string, error) {
	vals := map[string]string{}
	for k, v := range args {
		if workflowKeys[k] {
			continue
		}
		if _, ok := decl[k]; !ok {
			return nil, fmt.Errorf("unexpected argument %s", k)
		}
		vals[k] = pipelineRef.ReplaceAllString(fmt.Sprint(v), pipelineID)
	}
	for k, d := range decl {
		if _, ok := vals[k]; ok {
			continue
		}
		def, has := d["default"]
		if !has {
			return nil, fmt.Errorf("missing required argument %s", k)
		}
		vals[k] = fmt.Sprint(def)
	}
	return vals, nil
}

func substitute(s string, vals map[string]string) string {
	return paramRef.ReplaceAllStringFunc(s, func(m string) string {
		return vals[paramRef.FindStringSubmatch(m)[1]]
	})
}

// fill replaces the placeholders of an example workflow (whole values) with real ones.
func fill(v any, with map[string]string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = fill(e, with)
		}
	case []any:
		for i, e := range t {
			t[i] = fill(e, with)
		}
	case string:
		if r, ok := with[t]; ok {
			return r
		}
	}
	return v
}

// The example workflows of circleci/aws-sagemaker 1.0.5 and 1.0.0, with only their placeholders
// filled in, run on our orb against a local SageMaker and a release server: 1.0.5's, which name
// no environment, deploy to the environment of the context's release token; 1.0.0's to the
// deploy_environment it names; the endpoint_config_name example deploys an existing configuration
// to an endpoint of the user's naming.
func TestAwsSagemakerExamplesRunOnOurOrb(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("CircleCI runs orb steps with bash, which is not installed here")
	}
	o := packed(t)
	sm := localsmtest.Start(t, localsm.Options{})
	rel := servertest.Start(t, servertest.Options{Environments: []releases.Environment{
		{Name: "dev", Kind: "local", Position: 0}, {Name: "prod", Kind: "local", Position: 1},
	}})
	awsEnv := map[string]string{"AWS_ENDPOINT_URL": sm.URL(), "AWS_ACCESS_KEY_ID": "AKIAORBTEST", "AWS_SECRET_ACCESS_KEY": "secret"}
	registerAbalone(t, awsEnv)
	ci := &circleci{t: t, jobs: section(t, o, "jobs"), commands: section(t, o, "commands"), bin: sagedeployOnPath(t)}
	placeholders := map[string]string{
		"replace_with_model_name": "abalone", "replace_with_s3_bucket_name": "models", "replace_with_region_name": "us-east-1",
		"replace_with_description": "Abalone age regression", "replace_with_project_id": "proj-1",
		"model-name": "abalone", "s3_bucket_name": "models", "< us-east-1 >": "us-east-1", "< xxx >": "proj-1", "< environment >": "prod",
	}
	sdk := sagemakerClient(sm.URL())

	// 1.0.5 in the dev context: no deploy_environment anywhere.
	ci.context = withVars(awsEnv, "SAGEDEPLOY_RELEASES_URL", rel.URL, "CCI_RELEASE_INTEGRATION_TOKEN", rel.Token("dev"))
	ci.pipeline = "3f0c9a52-1d7e-4b8a-9c61-2e5f7d8a0b14"
	ci.workflow(fill(upstreamExample(t, "v1.0.5", "deploy_model"), placeholders).(map[string]any))
	dev := describeEndpoint(t, sdk, "abalone-dev")
	if dev.EndpointStatus != types.EndpointStatusInService {
		t.Fatalf("abalone-dev is %s after the 1.0.5 example", dev.EndpointStatus)
	}
	if n := countConfigs(t, sdk); n != 1 {
		t.Errorf("the 1.0.5 example left %d endpoint configurations; its deploy step should use the one its create_endpoint_configuration step made", n)
	}
	assertComponent(t, rel, "dev", 1)

	// 1.0.5's endpoint_config_name example: that configuration on an endpoint of the user's naming.
	ci.pipeline = "8b2e6f10-4c3d-4a9e-b7f5-6d1a0c9e8f23"
	ci.workflow(fill(upstreamExample(t, "v1.0.5", "deploy_model_with_endpoint_config_name"), withVars(placeholders,
		"replace_with_existing_endpoint_config_name", aws2s(dev.EndpointConfigName), "replace_with_endpoint_name", "abalone-blue")).(map[string]any))
	if blue := describeEndpoint(t, sdk, "abalone-blue"); aws2s(blue.EndpointConfigName) != aws2s(dev.EndpointConfigName) || blue.EndpointStatus != types.EndpointStatusInService {
		t.Errorf("abalone-blue serves %s (%s), want %s InService", aws2s(blue.EndpointConfigName), blue.EndpointStatus, aws2s(dev.EndpointConfigName))
	}

	// 1.0.0 in the prod context: its deploy_environment names the environment.
	ci.context = withVars(awsEnv, "SAGEDEPLOY_RELEASES_URL", rel.URL, "CCI_RELEASE_INTEGRATION_TOKEN", rel.Token("prod"))
	ci.pipeline = "c47d1e09-5b2a-4f6c-8e3d-9a0b1c2d3e4f"
	ci.workflow(fill(upstreamExample(t, "v1.0.0", "create_endpoint"), placeholders).(map[string]any))
	if prod := describeEndpoint(t, sdk, "abalone-prod"); prod.EndpointStatus != types.EndpointStatusInService {
		t.Errorf("abalone-prod is %s after the 1.0.0 example", prod.EndpointStatus)
	}
	assertComponent(t, rel, "prod", 1)
}

func withVars(base map[string]string, kv ...string) map[string]string {
	out := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func aws2s(p *string) string { return aws.ToString(p) }

// registerAbalone registers version 1 of the abalone model, approved, as a training job would.
func registerAbalone(t *testing.T, env map[string]string) {
	t.Helper()
	art, err := abalone.Artifact(1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.tar.gz")
	if err := os.WriteFile(path, art, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	p := cli.Process{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		LookupEnv: cli.EnvMap(withVars(env, "MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models"))}
	if code := cli.Run(context.Background(), []string{"register", "--artifact", path, "--approve"}, p); code != 0 {
		t.Fatalf("register abalone v1: exit %d: %s", code, errb.String())
	}
}

func sagemakerClient(url string) *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAORBTEST", "secret", "")})
}

func describeEndpoint(t *testing.T, c *sagemaker.Client, name string) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	out, err := c.DescribeEndpoint(t.Context(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if err != nil {
		t.Fatalf("describe endpoint %s: %v", name, err)
	}
	return out
}

func countConfigs(t *testing.T, c *sagemaker.Client) int {
	t.Helper()
	out, err := c.ListEndpointConfigs(t.Context(), &sagemaker.ListEndpointConfigsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.EndpointConfigs)
}

// assertComponent checks that the release server shows version v of abalone in env.
func assertComponent(t *testing.T, rel *servertest.Env, env string, v int) {
	t.Helper()
	comp, err := rel.Store.Component(t.Context(), env, "abalone")
	if err != nil || comp.CurrentVersion == nil || comp.CurrentVersion.Number != v {
		t.Errorf("release server, %s: component %+v (%v), want version %d", env, comp, err, v)
	}
}
