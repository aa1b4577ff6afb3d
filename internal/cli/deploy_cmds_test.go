package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/internal/cli"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// dpLocal is a local SageMaker for one test, and the environment a CI job would have.
type dpLocal struct {
	t   testing.TB
	url string
	dir string
}

func dpStart(t *testing.T) *dpLocal { return dpStartTB(t) }

func dpStartTB(t testing.TB) *dpLocal {
	t.Helper()
	srv := localsmtest.Start(t, localsm.Options{})
	l := &dpLocal{t: t, url: srv.URL(), dir: t.TempDir()}
	for v := 1; v <= 2; v++ {
		b, err := abalone.Artifact(v)
		if err != nil {
			t.Fatal(err)
		}
		l.file(fmt.Sprintf("model-v%d.tar.gz", v), b)
	}
	l.file("sample.csv", abalone.SampleCSV())
	return l
}

func (l *dpLocal) file(name string, data []byte) string {
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return p
}

// env is what every step of the job sees: the local SageMaker and keys for it.
func (l *dpLocal) env(kv ...string) map[string]string {
	m := map[string]string{
		"AWS_ENDPOINT_URL":      l.url,
		"AWS_ACCESS_KEY_ID":     "AKIACLITEST",
		"AWS_SECRET_ACCESS_KEY": "secret",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

type dpResult struct {
	code           int
	stdout, stderr string
}

// dpRun runs sagedeploy with args, reading environment variables from env only.
func dpRun(t *testing.T, env map[string]string, stdin string, args ...string) dpResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.Process{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, LookupEnv: cli.EnvMap(env)})
	return dpResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// dpOK runs a command that must succeed.
func dpOK(t *testing.T, env map[string]string, args ...string) dpResult {
	t.Helper()
	r := dpRun(t, env, "", args...)
	if r.code != 0 {
		t.Fatalf("sagedeploy %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func dpJSON(t *testing.T, r dpResult) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("--output json printed %q: %v", r.stdout, err)
	}
	return m
}

// dpPredicts checks that an answer is version v's predictions for the sample.
func dpPredicts(t *testing.T, body string, v int) {
	t.Helper()
	want, _ := abalone.ExpectedCSV(v)
	got, exp := strings.Fields(body), strings.Fields(string(want))
	if len(got) != len(exp) {
		t.Fatalf("answer %q has %d predictions, want %d", body, len(got), len(exp))
	}
	for i := range exp {
		g, _ := strconv.ParseFloat(got[i], 64)
		e, _ := strconv.ParseFloat(exp[i], 64)
		if math.Abs(g-e) > 1e-4 {
			t.Fatalf("prediction %d = %s, version %d predicts %s", i, got[i], v, exp[i])
		}
	}
}

func (l *dpLocal) describe(name string) *sagemaker.DescribeEndpointOutput {
	l.t.Helper()
	c := sagemaker.New(sagemaker.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.url), Credentials: credentials.NewStaticCredentialsProvider("A", "B", "")})
	out, err := c.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if err != nil {
		l.t.Fatalf("describe %s: %v", name, err)
	}
	return out
}

// dpReleaseServer is a real release server with a dev environment and its token.
func dpReleaseServer(t *testing.T) (url, token string, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutEnvironment(ctx, releases.Environment{Name: "dev", Kind: "local"}); err != nil {
		t.Fatal(err)
	}
	token, _, err = server.CreateToken(ctx, st, "dev", "ci", "test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return hs.URL, token, st
}

// orbEnv is what the orb's steps set (orb/src/commands/*.yml), parameters not given being empty.
func orbEnv(l *dpLocal, pipeline string, kv ...string) map[string]string {
	base := []string{
		"MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models", "REGION_NAME", "us-east-1",
		"CIRCLE_PIPELINE_ID", pipeline, "CIRCLE_PROJECT_ID", "proj-1", "SAGEDEPLOY_RELEASES_URL", "", "DEPLOY_ENVIRONMENT", "",
	}
	return l.env(append(base, kv...)...)
}

// The seed workflow, driven only by the orb's environment variables through the CLI, as the orb's
// job steps run it: register v1 → create-model → dev config → dev deploy → invoke → prod config →
// prod deploy. Retried steps succeed and create nothing new.
func TestSeedWorkflowWithOrbEnvironment(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	relURL, relToken, st := dpReleaseServer(t)
	const pipeline = "5b0c2a1e-8d4f-4e6a-9b3c-7d2e1f0a9c8b"
	start := time.Now()

	dpOK(t, l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models"), "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve")
	dpOK(t, orbEnv(l, pipeline), "sagemaker", "create-model")
	devCfg := dpOK(t, orbEnv(l, pipeline, "DEPLOY_ENVIRONMENT", "dev", "ENDPOINT_INSTANCE_TYPE", "ml.t2.medium", "ENDPOINT_INSTANCE_COUNT", "1"),
		"sagemaker", "create-endpoint-configuration", "-o", "json")
	deployEnv := func(env string) map[string]string {
		return orbEnv(l, pipeline, "DEPLOY_ENVIRONMENT", env, "MODEL_DESC", "Abalone age regression", "RESTORE_VERSION_ENABLED", "true",
			"SCALE_COMPONENT_ENABLED", "false", "ENDPOINT_CONFIGURATION_NAME", "", "ENDPOINT_NAME", "",
			"SAGEDEPLOY_RELEASES_URL", map[bool]string{true: relURL}[env == "dev"], "CCI_RELEASE_INTEGRATION_TOKEN", relToken)
	}
	dev := dpOK(t, deployEnv("dev"), "sagemaker", "upsert-endpoint", "--timeout", "30m")
	inv := dpOK(t, l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "dev"), "invoke", "--body", "@"+filepath.Join(l.dir, "sample.csv"), "--content-type", "text/csv")
	dpPredicts(t, inv.stdout, 1)
	if !strings.Contains(inv.stderr, "AllTraffic") {
		t.Errorf("invoke does not name the variant that answered: %q", inv.stderr)
	}
	dpOK(t, orbEnv(l, pipeline, "DEPLOY_ENVIRONMENT", "prod", "ENDPOINT_INSTANCE_TYPE", "ml.m5.large", "ENDPOINT_INSTANCE_COUNT", "2"), "sagemaker", "create-endpoint-configuration")
	prod := dpOK(t, deployEnv("prod"), "sagemaker", "upsert-endpoint", "--timeout", "30m")
	t.Logf("seed workflow through the CLI: %s", time.Since(start))

	if !strings.Contains(dev.stdout, "abalone-dev (dev) serves version 1 of abalone") || !strings.Contains(prod.stdout, "abalone-prod (prod) serves version 1 of abalone on ml.m5.large × 2") {
		t.Errorf("deploy output:\n%s\n%s", dev.stdout, prod.stdout)
	}
	if !strings.Contains(dev.stderr, "[wait]") || !strings.Contains(dev.stderr, "InService") {
		t.Errorf("deploy showed no progress on stderr: %q", dev.stderr)
	}
	out := l.describe("abalone-prod")
	if n := aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount); n != 2 {
		t.Errorf("prod runs %d instances, want the 2 of its create-endpoint-configuration step", n)
	}
	if got, want := aws.ToString(l.describe("abalone-dev").EndpointConfigName), dpJSON(t, devCfg)["endpoint_config_name"]; got != want {
		t.Errorf("dev serves %s, not the configuration its step created (%v)", got, want)
	}
	// The dev release went to the release server with the orb's settings.
	comp, err := st.Component(context.Background(), "dev", "abalone")
	if err != nil {
		t.Fatal(err)
	}
	if comp.CurrentVersion == nil || comp.CurrentVersion.Number != 1 || !comp.RestoreEnabled || comp.ScaleEnabled {
		t.Errorf("release server component: %+v", comp)
	}

	// Retried steps (a re-run CI job) succeed and create nothing new.
	m := dpJSON(t, dpOK(t, orbEnv(l, pipeline), "sagemaker", "create-model", "--output", "json"))
	if m["created"] != false {
		t.Errorf("retried create-model created a model: %v", m)
	}
	c := dpJSON(t, dpOK(t, orbEnv(l, pipeline, "DEPLOY_ENVIRONMENT", "dev", "ENDPOINT_INSTANCE_TYPE", "ml.t2.medium", "ENDPOINT_INSTANCE_COUNT", "1"), "sagemaker", "create-endpoint-configuration", "-o", "json"))
	if c["created"] != false || c["model_created"] != false {
		t.Errorf("retried create-endpoint-configuration created something: %v", c)
	}
	d := dpJSON(t, dpOK(t, deployEnv("dev"), "sagemaker", "upsert-endpoint", "--timeout", "30m", "-o", "json"))
	if d["changed"] != false || d["created"] != false {
		t.Errorf("retried upsert-endpoint changed the endpoint: %v", d)
	}
}

// Every command's --output json prints one JSON object with the fields scripts rely on.
func TestDeployerCommandsPrintJSON(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	env := l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models")
	has := func(cmd string, m map[string]any, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s --output json lacks %q: %v", cmd, k, m)
			}
		}
	}
	reg := dpJSON(t, dpOK(t, env, "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve", "-o", "json"))
	has("register", reg, "version", "artifact_url", "created", "approved")
	if v := reg["version"].(map[string]any); v["number"] != 1.0 || v["approval_status"] != "Approved" {
		t.Errorf("register version = %v", v)
	}
	has("create-model", dpJSON(t, dpOK(t, env, "create-model", "-o", "json")), "model_name", "version", "created")
	has("create-endpoint-config", dpJSON(t, dpOK(t, env, "create-endpoint-config", "--env", "dev", "-o", "json")), "endpoint_config_name", "model_name", "version", "instance_type", "instance_count", "created")
	dep := dpJSON(t, dpOK(t, env, "deploy", "--env", "dev", "-o", "json"))
	has("deploy", dep, "endpoint", "endpoint_config_name", "version", "endpoint_status", "changed", "created", "kind", "duration_ns")
	if dep["endpoint_status"] != "InService" || dep["endpoint"] != "abalone-dev" {
		t.Errorf("deploy json = %v", dep)
	}
	dpOK(t, env, "register", "--artifact", filepath.Join(l.dir, "model-v2.tar.gz"), "--approve")
	dpOK(t, env, "deploy", "--env", "dev")
	pro := dpJSON(t, dpOK(t, env, "promote", "--from", "dev", "--to", "prod", "-o", "json"))
	has("promote", pro, "from_environment", "from_endpoint", "endpoint", "version")
	rb := dpJSON(t, dpOK(t, env, "rollback", "--env", "dev", "-o", "json"))
	has("rollback", rb, "endpoint", "version", "previous_version", "kind")
	if rb["kind"] != "rollback" || rb["version"].(map[string]any)["number"] != 1.0 {
		t.Errorf("rollback json = %v", rb)
	}
	sc := dpJSON(t, dpOK(t, env, "scale", "--env", "prod", "--instances", "2", "-o", "json"))
	has("scale", sc, "endpoint", "variant", "instances", "previous_instances", "endpoint_status")
	st := dpJSON(t, dpOK(t, env, "status", "-o", "json"))
	comps, _ := st["components"].([]any)
	if len(comps) != 2 {
		t.Fatalf("status json = %v", st)
	}
	has("status", comps[0].(map[string]any), "model", "environment", "endpoint", "version", "endpoint_status", "instances", "last_change")
	hi := dpJSON(t, dpOK(t, env, "history", "--env", "dev", "-o", "json"))
	has("history", hi, "endpoint", "entries")
	if e, _ := hi["entries"].([]any); len(e) != 3 {
		t.Errorf("dev history = %v, want v1, v2, v1", hi)
	}
	inv := dpJSON(t, dpOK(t, env, "invoke", "--env", "prod", "--body", "-", "-o", "json"))
	_ = inv
	r := dpRun(t, env, string(abalone.SampleCSV()), "invoke", "--env", "prod", "--body", "-", "-o", "json")
	inv = dpJSON(t, r)
	has("invoke", inv, "endpoint", "variant", "body")
	dpPredicts(t, inv["body"].(string), 2)
	has("iam whoami", dpJSON(t, dpOK(t, env, "iam", "whoami", "-o", "json")), "arn", "account")

	// A failure with --output json still prints JSON, with the error.
	r = dpRun(t, env, "", "deploy", "--env", "dev", "--version", "9", "-o", "json")
	if r.code != 1 {
		t.Fatalf("deploy of a missing version: exit %d", r.code)
	}
	if e, _ := dpJSON(t, r)["error"].(string); !strings.Contains(e, "no version 9") {
		t.Errorf("json error = %q", e)
	}
}

func TestDeployerCommandsFailClearly(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		code int
		want []string
	}{
		{l.env(), []string{"deploy", "--env", "dev"}, 2, []string{"MODEL_NAME"}},
		{l.env("MODEL_NAME", "abalone"), []string{"deploy"}, 2, []string{"DEPLOY_ENVIRONMENT"}},
		{l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "dev"), []string{"deploy"}, 1, []string{"model package group abalone does not exist", "sagedeploy register"}},
		{l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "dev", "ENDPOINT_INSTANCE_COUNT", "two"), []string{"deploy"}, 2, []string{"ENDPOINT_INSTANCE_COUNT", "two"}},
		{l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "dev", "ENDPOINT_INSTANCE_TYPE", "ml.huge"), []string{"deploy", "--version", "1"}, 2, []string{"ml.huge", "not a SageMaker hosting instance type"}},
		{l.env("MODEL_NAME", "abalone"), []string{"deploy", "--env", "dev", "--canary", "10", "--linear", "20", "--bake", "1m"}, 2, []string{"--canary and --linear"}},
		{l.env("MODEL_NAME", "abalone"), []string{"deploy", "--env", "dev", "--canary", "10"}, 2, []string{"--bake"}},
		{l.env("MODEL_NAME", "abalone"), []string{"deploy", "--env", "dev", "--verify-expect", "1..3"}, 2, []string{"--verify-body"}},
		{l.env("MODEL_NAME", "abalone"), []string{"scale", "--env", "dev", "--instances", "0"}, 2, []string{"--instances"}},
		{l.env("MODEL_NAME", "abalone"), []string{"rollback", "--env", "prod"}, 1, []string{"no endpoint abalone-prod"}},
		{l.env("MODEL_NAME", "abalone", "AWS_ENDPOINT_URL", "localhost:4570"), []string{"status"}, 2, []string{"AWS_ENDPOINT_URL", "not an http(s) URL"}},
		{l.env("MODEL_NAME", "abalone"), []string{"deploy", "--env", "dev", "--timeout", "soon"}, 2, []string{"soon"}},
	} {
		r := dpRun(t, tc.env, "", tc.args...)
		if r.code != tc.code {
			t.Errorf("sagedeploy %s: exit %d, want %d (%s)", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("sagedeploy %s: stderr %q does not say %q", strings.Join(tc.args, " "), r.stderr, w)
			}
		}
	}
	// No approved version: non-zero, says which versions exist and how to approve; nothing created.
	dpOK(t, l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models"), "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"))
	r := dpRun(t, l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "dev"), "", "deploy")
	if r.code != 1 || !strings.Contains(r.stderr, "no Approved version (1 version: 1 PendingManualApproval)") || !strings.Contains(r.stderr, "--model-approval-status Approved") {
		t.Errorf("deploy without an approved version: exit %d: %s", r.code, r.stderr)
	}
	if st := dpJSON(t, dpOK(t, l.env(), "status", "-o", "json")); len(st["components"].([]any)) != 0 {
		t.Errorf("a refused deploy left endpoints: %v", st)
	}
}

// Every deployer command's --help names the environment variables it reads.
func TestDeployerHelpNamesEnvironmentVariables(t *testing.T) {
	common := []string{"MODEL_NAME", "REGION_NAME", "S3_BUCKET_NAME", "CIRCLE_PIPELINE_ID", "CIRCLE_PROJECT_ID", "SAGEDEPLOY_RELEASES_URL",
		"SAGEMAKER_EXECUTION_ROLE_ARN", "AWS_ENDPOINT_URL", "CIRCLE_OIDC_TOKEN_V2", "CIRCLE_OIDC_TOKEN", "SAGEDEPLOY_RELEASES_TOKEN", "CCI_RELEASE_INTEGRATION_TOKEN"}
	for cmd, extra := range map[string][]string{
		"create-model":                            {"DEPLOY_ENVIRONMENT"},
		"create-endpoint-config":                  {"DEPLOY_ENVIRONMENT", "ENDPOINT_INSTANCE_TYPE", "ENDPOINT_INSTANCE_COUNT"},
		"sagemaker create-endpoint-configuration": {"DEPLOY_ENVIRONMENT", "ENDPOINT_INSTANCE_TYPE", "ENDPOINT_INSTANCE_COUNT"},
		"deploy": {"DEPLOY_ENVIRONMENT", "ENDPOINT_INSTANCE_TYPE", "ENDPOINT_INSTANCE_COUNT", "ENDPOINT_CONFIGURATION_NAME", "ENDPOINT_NAME",
			"MODEL_DESC", "RESTORE_VERSION_ENABLED", "SCALE_COMPONENT_ENABLED"},
		"sagemaker upsert-endpoint": {"DEPLOY_ENVIRONMENT", "ENDPOINT_CONFIGURATION_NAME", "ENDPOINT_NAME", "MODEL_DESC", "RESTORE_VERSION_ENABLED", "SCALE_COMPONENT_ENABLED"},
		"promote":                   {"ENDPOINT_INSTANCE_TYPE", "ENDPOINT_INSTANCE_COUNT"},
		"rollback":                  {"DEPLOY_ENVIRONMENT"},
		"scale":                     {"DEPLOY_ENVIRONMENT"},
		"status":                    nil,
		"history":                   {"DEPLOY_ENVIRONMENT"},
		"register":                  nil,
		"invoke":                    {"DEPLOY_ENVIRONMENT"},
	} {
		r := dpRun(t, map[string]string{}, "", append(strings.Fields(cmd), "--help")...)
		if r.code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, r.code)
		}
		for _, v := range append(append([]string{}, common...), extra...) {
			if !strings.Contains(r.stdout, v) {
				t.Errorf("sagedeploy %s --help does not mention %s", cmd, v)
			}
		}
	}
}

func dpJWT(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"iss":"https://oidc.circleci.com/org/o1","aud":"o1","sub":"`+sub+`"}`)) + "." + enc([]byte("s"))
}

// With CircleCI's OIDC token and SAGEMAKER_EXECUTION_ROLE_ARN, every call runs as the assumed role.
func TestOIDCWebIdentityThroughTheCLI(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	env := map[string]string{
		"AWS_ENDPOINT_URL":             l.url,
		"CIRCLE_OIDC_TOKEN":            dpJWT("org/o1/project/p1/user/u1"),
		"SAGEMAKER_EXECUTION_ROLE_ARN": "arn:aws:iam::210987654321:role/deployer",
		"CIRCLE_PIPELINE_ID":           "pipe-7",
		"MODEL_NAME":                   "abalone",
		"S3_BUCKET_NAME":               "models",
	}
	id := dpJSON(t, dpOK(t, env, "iam", "whoami", "-o", "json"))
	if id["arn"] != "arn:aws:sts::210987654321:assumed-role/deployer/sagedeploy-pipe-7" {
		t.Fatalf("whoami with CIRCLE_OIDC_TOKEN = %v", id)
	}
	// CIRCLE_OIDC_TOKEN_V2 wins over CIRCLE_OIDC_TOKEN; a bad V1 token is then never sent.
	env["CIRCLE_OIDC_TOKEN_V2"], env["CIRCLE_OIDC_TOKEN"] = dpJWT("org/o1/project/p1/user/u2"), "garbage"
	dpOK(t, env, "iam", "whoami")
	// The whole deployment runs on those credentials.
	dpOK(t, env, "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve")
	dpOK(t, env, "deploy", "--env", "dev")
	env["CIRCLE_OIDC_TOKEN_V2"] = "garbage"
	if r := dpRun(t, env, "", "status"); r.code == 0 || !strings.Contains(r.stderr, "JWT") {
		t.Errorf("a malformed OIDC token: exit %d, %q", r.code, r.stderr)
	}
}

func TestIAMPolicyCommands(t *testing.T) {
	r := dpOK(t, map[string]string{"S3_BUCKET_NAME": "my-models"}, "iam", "policy")
	var doc struct {
		Statement []struct {
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Statement) == 0 {
		t.Fatalf("iam policy printed %q: %v", r.stdout, err)
	}
	if !strings.Contains(r.stdout, "arn:aws:s3:::my-models/*") || !strings.Contains(r.stdout, "sagemaker:UpdateEndpoint") || !strings.Contains(r.stdout, "iam:PassRole") {
		t.Errorf("iam policy: %s", r.stdout)
	}
	if r := dpRun(t, map[string]string{}, "", "iam", "policy"); r.code != 2 || !strings.Contains(r.stderr, "bucket") {
		t.Errorf("iam policy without bucket: exit %d %q", r.code, r.stderr)
	}
	r = dpOK(t, map[string]string{}, "iam", "trust", "--account", "123456789012", "--org-id", "org-1", "--project-id", "proj-1")
	for _, want := range []string{"oidc.circleci.com/org/org-1", `"org/org-1/project/proj-1/user/*"`, "sts:AssumeRoleWithWebIdentity", "sagemaker.amazonaws.com"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("iam trust lacks %s: %s", want, r.stdout)
		}
	}
}

func TestInvokeBodySources(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	env := l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models", "DEPLOY_ENVIRONMENT", "dev")
	dpOK(t, env, "register", "--artifact", filepath.Join(l.dir, "model-v2.tar.gz"), "--approve")
	dpOK(t, env, "deploy")
	dpPredicts(t, dpOK(t, env, "invoke", "--body", "@"+filepath.Join(l.dir, "sample.csv")).stdout, 2)
	dpPredicts(t, dpRun(t, env, string(abalone.SampleCSV()), "invoke", "--body", "-").stdout, 2)
	first := strings.SplitN(string(abalone.SampleCSV()), "\n", 2)[0]
	lit := dpOK(t, env, "invoke", "--body", first)
	want, _ := abalone.ExpectedCSV(2)
	g, _ := strconv.ParseFloat(strings.TrimSpace(lit.stdout), 64)
	e, _ := strconv.ParseFloat(strings.Fields(string(want))[0], 64)
	if math.Abs(g-e) > 1e-4 {
		t.Errorf("literal body answered %q, want %v", lit.stdout, e)
	}
	if r := dpRun(t, env, "", "invoke", "--body", "@"+filepath.Join(l.dir, "nope.csv")); r.code != 2 || !strings.Contains(r.stderr, "nope.csv") {
		t.Errorf("missing body file: exit %d %q", r.code, r.stderr)
	}
}

// The orb's promote, rollback and scale steps, as orb/src/commands/*.yml run them.
func TestOrbPromoteRollbackAndScaleSteps(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	const p1, p2 = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-000000000000"
	reg := l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models")
	dpOK(t, reg, "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve")
	dpOK(t, orbEnv(l, p1, "DEPLOY_ENVIRONMENT", "dev"), "sagemaker", "upsert-endpoint", "--timeout", "30m")
	promoteEnv := func(p string) map[string]string {
		return orbEnv(l, p, "ENDPOINT_INSTANCE_TYPE", "ml.t2.medium", "ENDPOINT_INSTANCE_COUNT", "1")
	}
	dpOK(t, promoteEnv(p1), "promote", "--from", "dev", "--to", "prod")
	dpOK(t, reg, "register", "--artifact", filepath.Join(l.dir, "model-v2.tar.gz"), "--approve")
	dpOK(t, orbEnv(l, p2, "DEPLOY_ENVIRONMENT", "dev"), "sagemaker", "upsert-endpoint", "--timeout", "30m")
	pr := dpOK(t, promoteEnv(p2), "promote", "--from", "dev", "--to", "prod")
	if !strings.Contains(pr.stdout, "promoted version 2 of abalone from dev to prod") {
		t.Errorf("promote output: %s", pr.stdout)
	}
	inv := func() string {
		return dpOK(t, l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "prod"), "invoke", "--body", "@"+filepath.Join(l.dir, "sample.csv")).stdout
	}
	dpPredicts(t, inv(), 2)
	dpOK(t, orbEnv(l, p2, "DEPLOY_ENVIRONMENT", "prod"), "rollback", "--env", "prod", "--to-version", "0")
	dpPredicts(t, inv(), 1)
	dpOK(t, orbEnv(l, p2, "DEPLOY_ENVIRONMENT", "prod"), "rollback", "--env", "prod", "--to-version", "2")
	dpPredicts(t, inv(), 2)
	sc := dpOK(t, orbEnv(l, p2, "DEPLOY_ENVIRONMENT", "prod"), "scale", "--env", "prod", "--instances", "3")
	if !strings.Contains(sc.stdout, "runs 3 instances") {
		t.Errorf("scale output: %s", sc.stdout)
	}
	if n := aws.ToInt32(l.describe("abalone-prod").ProductionVariants[0].CurrentInstanceCount); n != 3 {
		t.Errorf("prod runs %d instances after scale --instances 3", n)
	}
	st := dpOK(t, l.env(), "status")
	for _, want := range []string{"MODEL", "abalone  dev", "v2", "abalone  prod", "InService"} {
		if !strings.Contains(st.stdout, want) {
			t.Errorf("status table lacks %q:\n%s", want, st.stdout)
		}
	}
	hist := dpOK(t, l.env("MODEL_NAME", "abalone"), "history", "--env", "prod")
	if lines := strings.Split(strings.TrimSpace(hist.stdout), "\n"); len(lines) != 5 || !strings.HasPrefix(lines[4], "*") {
		t.Errorf("prod history (v1, v2, v1, v2, the last current):\n%s", hist.stdout)
	}
	// Verification through the CLI: a failed check with --rollback-on-failure restores v2.
	dpOK(t, reg, "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve") // version 3
	r := dpRun(t, l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "prod"), "", "deploy",
		"--verify-body", filepath.Join(l.dir, "sample.csv"), "--verify-expect", "20..30", "--rollback-on-failure")
	if r.code != 1 || !strings.Contains(r.stderr, "verification of version 3") || !strings.Contains(r.stderr, "version 2 (endpoint configuration") {
		t.Errorf("failed verification: exit %d %s", r.code, r.stderr)
	}
	dpPredicts(t, inv(), 2)
}

// The orb's deploy step with ENDPOINT_CONFIGURATION_NAME and ENDPOINT_NAME deploys an existing
// configuration to an endpoint of the user's naming.
func TestUpsertEndpointWithGivenConfigAndEndpointName(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	reg := l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models")
	dpOK(t, reg, "register", "--artifact", filepath.Join(l.dir, "model-v2.tar.gz"), "--approve")
	cfg := dpJSON(t, dpOK(t, l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "qa"), "create-endpoint-config", "-o", "json"))["endpoint_config_name"].(string)
	env := orbEnv(l, "", "DEPLOY_ENVIRONMENT", "staging", "ENDPOINT_CONFIGURATION_NAME", cfg, "ENDPOINT_NAME", "abalone-blue")
	d := dpJSON(t, dpOK(t, env, "sagemaker", "upsert-endpoint", "--timeout", "5m", "-o", "json"))
	if d["endpoint"] != "abalone-blue" || d["endpoint_config_name"] != cfg || d["model_created"] != false || d["endpoint_config_created"] != false {
		t.Fatalf("upsert with given names = %v", d)
	}
	dpPredicts(t, dpOK(t, l.env(), "invoke", "--endpoint-name", "abalone-blue", "--body", "@"+filepath.Join(l.dir, "sample.csv")).stdout, 2)
	env["ENDPOINT_CONFIGURATION_NAME"] = "no-such-config"
	if r := dpRun(t, env, "", "sagemaker", "upsert-endpoint"); r.code != 2 || !strings.Contains(r.stderr, "no-such-config does not exist") {
		t.Errorf("a missing ENDPOINT_CONFIGURATION_NAME: exit %d %q", r.code, r.stderr)
	}
}

// BenchmarkSeedWorkflow runs the seed workflow through the CLI (register, create-model, dev
// config, dev deploy, invoke, prod config, prod deploy) on a fresh local SageMaker per iteration;
// the budget is 2 s. The ratio metric compares it with the first step alone (register), the
// floor of one CLI invocation against the local SageMaker.
func BenchmarkSeedWorkflow(b *testing.B) {
	var total, floor time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		l := dpStartTB(b)
		b.StartTimer()
		start := time.Now()
		reg := l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models")
		dpBenchRun(b, reg, "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve")
		floor += time.Since(start)
		p := fmt.Sprintf("pipeline-%d", i)
		dpBenchRun(b, orbEnv(l, p), "sagemaker", "create-model")
		for _, env := range []string{"dev", "prod"} {
			dpBenchRun(b, orbEnv(l, p, "DEPLOY_ENVIRONMENT", env), "sagemaker", "create-endpoint-configuration")
			dpBenchRun(b, orbEnv(l, p, "DEPLOY_ENVIRONMENT", env), "sagemaker", "upsert-endpoint", "--timeout", "1m")
			if env == "dev" {
				dpBenchRun(b, l.env("MODEL_NAME", "abalone", "DEPLOY_ENVIRONMENT", "dev"), "invoke", "--body", "@"+filepath.Join(l.dir, "sample.csv"))
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/workflow")
	b.ReportMetric(float64(total)/float64(floor), "ratio-to-one-step")
}

func dpBenchRun(b *testing.B, env map[string]string, args ...string) {
	b.Helper()
	var out, errb bytes.Buffer
	if code := cli.Run(context.Background(), args, cli.Process{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: cli.EnvMap(env)}); code != 0 {
		b.Fatalf("sagedeploy %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
}
