package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/internal/cli"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// upEnv is what `sagedeploy up` tells a shell to export, with the dev token, and no pipeline file.
func upEnv(t *testing.T, s *allinone.Stack, kv ...string) map[string]string {
	t.Helper()
	tok, err := s.Token(context.Background(), "dev")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{
		"AWS_ENDPOINT_URL": s.LocalURL(), "AWS_ACCESS_KEY_ID": allinone.AccessKeyID, "AWS_SECRET_ACCESS_KEY": allinone.SecretAccessKey,
		"SAGEDEPLOY_RELEASES_URL": s.ServerURL(), "SAGEDEPLOY_RELEASES_TOKEN": tok, "SAGEDEPLOY_PIPELINE": "none",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// smState is everything a deployer could have changed on a SageMaker, read through the SDK:
// endpoints (configuration, status, instances, last change), configurations and models.
func smState(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	sm := sagemaker.New(sagemaker.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: credentials.NewStaticCredentialsProvider("A", "B", "")})
	var lines []string
	eps, err := sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range eps.Endpoints {
		d, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: e.EndpointName})
		if err != nil {
			t.Fatal(err)
		}
		n := int32(0)
		if len(d.ProductionVariants) > 0 {
			n = aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount)
		}
		lines = append(lines, fmt.Sprintf("endpoint %s %s %s ×%d %s", aws.ToString(d.EndpointName), aws.ToString(d.EndpointConfigName), d.EndpointStatus, n, aws.ToTime(d.LastModifiedTime)))
	}
	cfgs, err := sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs.EndpointConfigs {
		lines = append(lines, "config "+aws.ToString(c.EndpointConfigName))
	}
	models, err := sm.ListModels(ctx, &sagemaker.ListModelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range models.Models {
		lines = append(lines, "model "+aws.ToString(m.ModelName))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Against `sagedeploy up`: a mistyped environment and the dev token changing prod are refused,
// and SageMaker is exactly as before.
func TestTypoAndSkippedGateAreRefusedAgainstUp(t *testing.T) {
	t.Parallel()
	s := allinonetest.Start(t, allinone.Options{})
	env := upEnv(t, s, "MODEL_NAME", "abalone")
	art := filepath.Join(t.TempDir(), "model.tar.gz")
	data, _ := abalone.Artifact(1)
	if err := os.WriteFile(art, data, 0o600); err != nil {
		t.Fatal(err)
	}
	dpOK(t, env, "register", "--artifact", art, "--bucket", "models", "--approve")
	dpOK(t, env, "deploy", "--env", "dev")
	before := smState(t, s.LocalURL())
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"deploy", "--env", "dvo"}, []string{"is for environment dev, not dvo", "--env dev if dvo is mistyped", "Nothing was changed"}},
		{[]string{"deploy", "--env", "prod", "--version", "1"}, []string{"is for environment dev, not prod", "Nothing was changed"}},
		{[]string{"scale", "--env", "prod", "--instances", "3"}, []string{"is for environment dev, not prod"}},
		{[]string{"rollback", "--env", "prod"}, []string{"is for environment dev, not prod"}},
		{[]string{"promote", "--from", "dev", "--to", "prod"}, []string{"is for environment dev, not prod"}},
		{[]string{"plan", "--env", "prod"}, []string{"is for environment dev, not prod"}},
	}
	for _, tc := range cases {
		r := dpRun(t, env, "", tc.args...)
		if r.code == 0 {
			t.Errorf("sagedeploy %s exited 0; want a refusal\n%s", strings.Join(tc.args, " "), r.stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("sagedeploy %s: stderr lacks %q:\n%s", strings.Join(tc.args, " "), w, r.stderr)
			}
		}
	}
	if after := smState(t, s.LocalURL()); after != before {
		t.Fatalf("SageMaker changed after refused commands:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// A pipeline file with dev on `sagedeploy up`'s SageMaker and prod on a second local SageMaker
// in another account, reached through the role the file names: the seed's flow (register, deploy
// dev, plan prod, deploy prod after approval) runs from the file alone.
func TestPipelineFileRunsTheSeedFlowAcrossAccounts(t *testing.T) {
	t.Parallel()
	s := allinonetest.Start(t, allinone.Options{})
	prodSM := localsmtest.Start(t, localsm.Options{Account: "222222222222"})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sample.csv"), abalone.SampleCSV(), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writePipeline(t, dir, fmt.Sprintf(`version: 1
model: abalone
environments:
  - name: dev
    endpoint_url: %s
    instance_count: 1
    verify:
      body: sample.csv
      expect: "1..30"
  - name: prod
    endpoint_url: %s
    account: "222222222222"
    role: arn:aws:iam::222222222222:role/sagedeploy-deployer
    endpoint_name: "{model}-live"
    instance_type: ml.m5.large
    instance_count: 2
    approval:
      required: true
`, s.LocalURL(), prodSM.URL()))
	env := upEnv(t, s, "SAGEDEPLOY_PIPELINE", file)
	delete(env, "AWS_ENDPOINT_URL") // the file says where each environment lives
	for _, e := range []string{"dev", "prod"} {
		art := filepath.Join(dir, "model.tar.gz")
		data, _ := abalone.Artifact(1)
		if err := os.WriteFile(art, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// Each account has its own registry: register version 1 in both.
		dpOK(t, env, "register", "--artifact", art, "--bucket", "models", "--approve", "--endpoint-url", map[string]string{"dev": s.LocalURL(), "prod": prodSM.URL()}[e])
	}
	dev := dpOK(t, env, "deploy", "--env", "dev")
	if !strings.Contains(dev.stdout, "abalone-dev (dev) serves version 1") || !strings.Contains(dev.stdout, "verification passed") {
		t.Fatalf("deploy to dev from the pipeline file:\n%s%s", dev.stdout, dev.stderr)
	}
	prodTok, err := s.Token(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	prodEnv := upEnvWith(env, "SAGEDEPLOY_RELEASES_TOKEN", prodTok)
	plan := dpOK(t, prodEnv, "plan", "--env", "prod", "-o", "json")
	var p struct {
		Action   string `json:"action"`
		Endpoint string `json:"endpoint"`
		Changes  []struct{ Field, From, To string }
	}
	if err := json.Unmarshal([]byte(plan.stdout), &p); err != nil || p.Action != "create" || p.Endpoint != "abalone-live" {
		t.Fatalf("plan of prod = %s (%v)", plan.stdout, err)
	}
	if got := smState(t, prodSM.URL()); strings.Contains(got, "endpoint") || strings.Contains(got, "model ") {
		t.Fatalf("plan changed prod's SageMaker:\n%s", got)
	}
	// Prod's token deploys prod, after an approval.
	done := make(chan dpResult, 1)
	go func() {
		done <- dpRun(t, prodEnv, "", "deploy", "--env", "prod")
	}()
	approvePending(t, s, "prod")
	if r := <-done; r.code != 0 || !strings.Contains(r.stdout, "abalone-live (prod) serves version 1 of abalone on ml.m5.large × 2") {
		t.Fatalf("deploy to prod: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	prod := sagemaker.New(sagemaker.Options{Region: "us-east-1", BaseEndpoint: aws.String(prodSM.URL()), Credentials: credentials.NewStaticCredentialsProvider("A", "B", "")})
	ep, err := prod.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String("abalone-live")})
	if err != nil || ep.EndpointStatus != "InService" {
		t.Fatalf("prod's SageMaker: abalone-live %v %v", ep, err)
	}
	cfg, _ := prod.DescribeEndpointConfig(context.Background(), &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: ep.EndpointConfigName})
	m, err := prod.DescribeModel(context.Background(), &sagemaker.DescribeModelInput{ModelName: cfg.ProductionVariants[0].ModelName})
	if err != nil || !strings.HasPrefix(aws.ToString(m.ExecutionRoleArn), "arn:aws:iam::222222222222:") {
		t.Fatalf("prod's model runs as %s (%v); want a role of account 222222222222, the assumed role's", aws.ToString(m.ExecutionRoleArn), err)
	}
	if strings.Contains(smState(t, s.LocalURL()), "abalone-live") {
		t.Fatal("prod's endpoint was created on dev's SageMaker")
	}
	// scale finds prod's endpoint by the file's pattern, in prod's account.
	if r := dpOK(t, prodEnv, "scale", "--env", "prod", "--instances", "3"); !strings.Contains(r.stdout, "abalone-live (prod) runs 3 instances") {
		t.Fatalf("scale prod: %s", r.stdout)
	}
	planShowsTheDiff(t, env, prodEnv, prodSM.URL(), dir)
}

// planShowsTheDiff registers version 2 in prod's registry: deploy --dry-run shows the diff to
// what prod serves and leaves prod as it is.
func planShowsTheDiff(t *testing.T, env, prodEnv map[string]string, prodURL, dir string) {
	t.Helper()
	data, _ := abalone.Artifact(2)
	art := filepath.Join(dir, "model-v2.tar.gz")
	if err := os.WriteFile(art, data, 0o600); err != nil {
		t.Fatal(err)
	}
	dpOK(t, env, "register", "--artifact", art, "--bucket", "models", "--approve", "--endpoint-url", prodURL)
	before := smState(t, prodURL)
	txt := dpOK(t, prodEnv, "deploy", "--env", "prod", "--dry-run", "--instance-count", "4").stdout
	for _, w := range []string{"Plan for abalone in prod (endpoint abalone-live, us-east-1): update the endpoint", "~ version", "version 1", "→ version 2",
		"~ instance_count   3", "→ 4", "instance_type", "(unchanged)", "Nothing was changed."} {
		if !strings.Contains(txt, w) {
			t.Errorf("deploy --dry-run lacks %q:\n%s", w, txt)
		}
	}
	if after := smState(t, prodURL); after != before {
		t.Fatalf("deploy --dry-run changed prod:\n%s\n%s", before, after)
	}
	t.Log(txt)
}

func upEnvWith(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// approvePending approves, as the stack's admin, the release that comes to wait at env's gate.
func approvePending(t *testing.T, s *allinone.Stack, env string) {
	t.Helper()
	login := s.AdminLogin()
	var id string
	allinonetest.WaitFor(t, 30*time.Second, "a release pending at the "+env+" gate", func() bool {
		var out struct {
			Releases []struct{ ID, Environment string } `json:"releases"`
		}
		allinonetest.API(t, s, login.User, login.Password, http.MethodGet, "/api/v1/approvals", nil, &out)
		for _, r := range out.Releases {
			if r.Environment == env {
				id = r.ID
				return true
			}
		}
		return false
	})
	if code := allinonetest.API(t, s, login.User, login.Password, http.MethodPost, "/api/v1/releases/"+id+"/approve", map[string]string{}, nil); code != http.StatusOK {
		t.Fatalf("approve release %s: HTTP %d", id, code)
	}
}

// `pipeline validate` names the line of each problem; `pipeline apply` gives the release server
// the file's environments and gates.
func TestPipelineValidateAndApply(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writePipeline(t, dir, "environments:\n  - name: dev\n  - name: prod\n    instnace_type: ml.m5.large\n  - name: dev\n")
	r := dpRun(t, map[string]string{}, "", "pipeline", "validate", "--pipeline", bad)
	if r.code != 2 || !strings.Contains(r.stdout, bad+`:4: unknown key "instnace_type" in environment prod (did you mean instance_type?)`) ||
		!strings.Contains(r.stdout, bad+":5: environment dev is defined twice") {
		t.Fatalf("validate of a bad file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = dpRun(t, map[string]string{}, "", "pipeline", "validate", "--pipeline", bad, "-o", "json")
	var v struct {
		Valid    bool
		Problems []struct{ Line int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Valid || len(v.Problems) != 2 || v.Problems[0].Line != 4 {
		t.Fatalf("validate -o json: %s (%v)", r.stdout, err)
	}
	// A deploy with a broken file stops before anything, pointing at validate.
	r = dpRun(t, map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "", "deploy", "--pipeline", bad, "--model", "abalone", "--env", "dev")
	if r.code != 2 || !strings.Contains(r.stderr, "pipeline validate") {
		t.Fatalf("deploy with a broken pipeline file: exit %d %s", r.code, r.stderr)
	}
	good := writePipeline(t, dir, "environments:\n  - name: dev\n    endpoint_url: http://127.0.0.1:4570\n  - name: prod\n    region: eu-west-1\n    approval: {required: true}\n")
	ok := dpOK(t, map[string]string{}, "pipeline", "validate", "--pipeline", good)
	if !strings.Contains(ok.stdout, "is valid: dev → prod (approval)") {
		t.Fatalf("validate of a good file: %s", ok.stdout)
	}
	data := t.TempDir()
	dpOK(t, map[string]string{}, "pipeline", "apply", "--pipeline", good, "--data-dir", data)
	list := dpOK(t, map[string]string{}, "server", "env", "list", "--data-dir", data, "-o", "json")
	type env struct {
		Name              string `json:"name"`
		Kind              string `json:"kind"`
		RequiresApproval  bool   `json:"requires_approval"`
		AllowSelfApproval bool   `json:"allow_self_approval"`
		Position          int    `json:"position"`
	}
	var envs []env
	if err := json.Unmarshal([]byte(list.stdout), &envs); err != nil || len(envs) != 2 || envs[0].Name != "dev" || envs[0].Kind != "local" ||
		envs[1].Name != "prod" || !envs[1].RequiresApproval || envs[1].AllowSelfApproval || envs[1].Position != 1 {
		t.Fatalf("environments after apply: %s (%v)", list.stdout, err)
	}
	// allow_requester in the file turns the four-eyes rule off for that gate on the server.
	selfOK := writePipeline(t, t.TempDir(), "environments:\n  - name: dev\n  - name: prod\n    approval: {required: true, allow_requester: true}\n")
	dpOK(t, map[string]string{}, "pipeline", "apply", "--pipeline", selfOK, "--data-dir", data)
	list = dpOK(t, map[string]string{}, "server", "env", "list", "--data-dir", data, "-o", "json")
	envs = nil
	if err := json.Unmarshal([]byte(list.stdout), &envs); err != nil || len(envs) != 2 || !envs[1].AllowSelfApproval {
		t.Fatalf("environments after applying allow_requester: %s (%v)", list.stdout, err)
	}
}

func writePipeline(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "sagedeploy.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// `sagedeploy server --pipeline FILE` takes the file's environments and gates at start.
func TestServerTakesThePipelineFileAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writePipeline(t, dir, "environments:\n  - name: dev\n    endpoint_url: http://127.0.0.1:4570\n  - name: staging\n    region: eu-west-1\n  - name: prod\n    region: eu-west-1\n    approval: {required: true}\n")
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		code := cli.Run(ctx, []string{"server", "--addr", "127.0.0.1:0", "--pipeline", file, "--data-dir", data},
			cli.Process{Stdin: strings.NewReader(""), Stdout: pw, Stderr: io.Discard, LookupEnv: cli.EnvMap(nil)})
		pw.Close()
		exit <- code
	}()
	sc := bufio.NewScanner(pr)
	saved := false
	for sc.Scan() && !strings.Contains(sc.Text(), "First start") {
		saved = saved || strings.Contains(sc.Text(), "dev → staging → prod")
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if code := <-exit; code != 0 || !saved {
		t.Fatalf("server --pipeline: exit %d, environments saved message seen: %t", code, saved)
	}
	list := dpOK(t, map[string]string{}, "server", "env", "list", "--data-dir", data, "-o", "json")
	var envs []struct {
		Name             string `json:"name"`
		RequiresApproval bool   `json:"requires_approval"`
		Position         int    `json:"position"`
	}
	if err := json.Unmarshal([]byte(list.stdout), &envs); err != nil || len(envs) != 3 || envs[1].Name != "staging" || envs[2].Position != 2 || !envs[2].RequiresApproval {
		t.Fatalf("environments after server --pipeline: %s (%v)", list.stdout, err)
	}
}
