package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/quickstart"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// freePorts are the flags that put a stack on free ports.
var freePorts = []string{"--addr", "127.0.0.1:0", "--local-addr", "127.0.0.1:0", "--log-level", "warn"}

// TestQuickstartCommand runs `sagedeploy quickstart --yes --exit` twice on one data directory: the
// story on stderr, the result as JSON on stdout, the registry and the releases as they should be.
func TestQuickstartCommand(t *testing.T) {
	dir := t.TempDir()
	var login struct {
		Login *allinone.Login `json:"login"`
	}
	run := func() (quickstart.Result, string) {
		t.Helper()
		var out, errb bytes.Buffer
		args := append([]string{"quickstart", "--yes", "--exit", "--data-dir", dir, "-o", "json"}, freePorts...)
		code := Run(context.Background(), args, Process{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: EnvMap(nil)})
		if code != 0 {
			t.Fatalf("quickstart exited with %d:\n%s", code, errb.String())
		}
		var res quickstart.Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("quickstart -o json printed %q: %v", out.String(), err)
		}
		login.Login = nil
		json.Unmarshal(out.Bytes(), &login)
		return res, errb.String()
	}
	res, story := run()
	for _, want := range []string{"Sign in          user admin, with the new password in the JSON result on stdout", "[1/7]", "[7/7]", "Done in", "prod serves v1, dev serves v1", "RMSE"} {
		if !strings.Contains(story, want) {
			t.Errorf("the story lacks %q:\n%s", want, story)
		}
	}
	// The admin's password is in the result the user asked for, never in the story CI logs keep.
	if login.Login == nil || login.Login.User != "admin" || len(login.Login.Password) < 10 {
		t.Fatalf("the first run's JSON result has no admin login: %+v", login.Login)
	}
	if strings.Contains(story, login.Login.Password) {
		t.Fatal("quickstart -o json printed the admin password on stderr")
	}
	if res.Serving["prod"] != 1 || res.Serving["dev"] != 1 || len(res.Releases) != 4 || len(res.Versions) != 2 {
		t.Fatalf("result: %+v", res)
	}
	kinds := []string{}
	for _, r := range res.Releases {
		kinds = append(kinds, r.Environment+"/"+string(r.Kind)+"/v"+itoa(r.Version))
	}
	if got := strings.Join(kinds, " "); got != "dev/deploy/v1 prod/promote/v1 dev/deploy/v2 dev/rollback/v1" {
		t.Fatalf("releases: %s", got)
	}

	res2, story2 := run()
	if !strings.Contains(story2, "already registered") || !strings.Contains(story2, "password printed at the first start") {
		t.Fatalf("second run's story:\n%s", story2)
	}
	if login.Login != nil {
		t.Fatalf("the second run printed a login again: %+v", login.Login)
	}
	if res2.Versions[0].ARN != res.Versions[0].ARN || res2.Versions[1].ARN != res.Versions[1].ARN {
		t.Fatalf("the second run registered other versions: %+v", res2.Versions)
	}
	st, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	page, err := st.ListReleases(context.Background(), store.ReleaseFilter{Model: "abalone", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Releases) != 8 {
		t.Fatalf("after two runs the dashboard has %d releases, want 8", len(page.Releases))
	}
	for _, r := range page.Releases {
		if r.Status != releases.StatusSucceeded {
			t.Errorf("release %s (%s %s) is %s", r.ID, r.Kind, r.Environment, r.Status)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// startUp runs `sagedeploy up` until ctx ends and returns its startup message.
func startUp(t *testing.T, ctx context.Context, output string, args ...string) (string, *syncBuffer, chan int) {
	t.Helper()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append(append([]string{"up", "-o", output}, freePorts...), args...), Process{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, LookupEnv: EnvMap(nil)})
	}()
	allinonetest.WaitFor(t, 30*time.Second, "the startup message of sagedeploy up", func() bool {
		select {
		case code := <-done:
			t.Fatalf("sagedeploy up exited with %d: %s", code, stderr.String())
		default:
		}
		s := stdout.String()
		return (output == "json" && strings.HasSuffix(s, "\n")) || strings.Contains(s, "Press Ctrl-C")
	})
	return stdout.String(), &stderr, done
}

func waitExit(t *testing.T, done chan int, stderr *syncBuffer) {
	t.Helper()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("sagedeploy up exited with %d after Ctrl-C: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sagedeploy up did not stop within 30s of Ctrl-C")
	}
}

// TestUpCommand starts `sagedeploy up`, deploys from "another shell" with exactly the environment
// it says to export, sees the release on its release server, stops it with Ctrl-C, and starts it
// again: the second start tells how to get a password instead of printing one.
func TestUpCommand(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, stderr, done := startUp(t, ctx, "json", "--data-dir", dir)
	var info upInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("up -o json printed %q: %v", out, err)
	}
	if info.Login.User != "admin" || info.Login.Password == "" || info.DataDir != dir || strings.Join(info.Environments, ",") != "dev,prod" ||
		info.Env["AWS_ENDPOINT_URL"] != info.LocalURL || info.Env["SAGEDEPLOY_RELEASES_URL"] != info.DashboardURL || info.Env["SAGEDEPLOY_RELEASES_TOKEN"] == "" {
		t.Fatalf("startup message: %+v", info)
	}

	// A second up on the same data directory is refused, saying what to do.
	var o2, e2 bytes.Buffer
	if code := Run(context.Background(), append([]string{"up", "--data-dir", dir}, freePorts...), Process{Stdin: strings.NewReader(""), Stdout: &o2, Stderr: &e2, LookupEnv: EnvMap(nil)}); code == 0 ||
		!strings.Contains(e2.String(), "in use") || !strings.Contains(e2.String(), "already running") {
		t.Fatalf("a second up on the same data directory: exit %d\n%s", code, e2.String())
	}

	// Another shell exports what up printed and deploys.
	model := filepath.Join(t.TempDir(), "model.tar.gz")
	data, _ := abalone.Artifact(2)
	if err := os.WriteFile(model, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"register", "--model", "abalone", "--artifact", model, "--bucket", "models", "--approve"},
		{"deploy", "--model", "abalone", "--env", "dev"},
	} {
		var o, e bytes.Buffer
		if code := Run(context.Background(), args, Process{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, LookupEnv: EnvMap(info.Env)}); code != 0 {
			t.Fatalf("sagedeploy %s with up's environment: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), e.String())
		}
	}
	var comp server.ComponentDetail
	req, _ := http.NewRequest(http.MethodGet, info.DashboardURL+"/api/v1/components/dev/abalone", nil)
	req.SetBasicAuth(info.Login.User, info.Login.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&comp)
	resp.Body.Close()
	if resp.StatusCode != 200 || comp.Component.CurrentVersion == nil || comp.Component.CurrentVersion.Number != 1 || len(comp.Releases) != 1 ||
		comp.Releases[0].Status != releases.StatusSucceeded {
		t.Fatalf("dev/abalone on up's release server: HTTP %d %+v", resp.StatusCode, comp)
	}
	cancel()
	waitExit(t, done, stderr)

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	text, stderr2, done2 := startUp(t, ctx2, "text", "--data-dir", dir)
	for _, want := range []string{"sagedeploy is up (data in " + dir + ")", "with the password printed at the first start", "--reset-admin-password",
		"export AWS_ENDPOINT_URL=http://127.0.0.1:", "SAGEDEPLOY_RELEASES_URL=", "SAGEDEPLOY_RELEASES_TOKEN: the dev token printed when it was made", "tokens.json", "dev → prod (approval gate)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the second start's message lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, info.Login.Password) {
		t.Error("the second start printed the password again")
	}
	if strings.Contains(text, info.Env["SAGEDEPLOY_RELEASES_TOKEN"]) {
		t.Error("the second start printed the dev token again")
	}
	cancel2()
	waitExit(t, done2, stderr2)
}

// TestAgentCommandExecutesDashboardCommands runs `sagedeploy agent` against a stack whose own
// agent is off: a rollback and a scale asked on the release server's API are carried out on the
// local SageMaker and reported into their releases.
func TestAgentCommandExecutesDashboardCommands(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{NoAgent: true})
	login := s.AdminLogin()
	d, err := s.Deployer(context.Background(), "dev", deploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range abalone.Versions() {
		data, _ := abalone.Artifact(v)
		if _, err := d.Register(context.Background(), deploy.RegisterRequest{Model: "abalone", Artifact: "m.tar.gz", ArtifactData: data, Bucket: "models", Approve: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Deploy(context.Background(), deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := s.Token(context.Background(), "dev")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"agent", "--server", s.ListenURL(), "--token", tok, "--region", "us-east-1", "--poll-wait", "2s"},
			Process{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, LookupEnv: EnvMap(map[string]string{"AWS_ENDPOINT_URL": s.LocalURL()})})
	}()

	command := func(kind string, body any) releases.Release {
		t.Helper()
		var created struct {
			Release server.ReleaseView `json:"release"`
		}
		if code := allinonetest.API(t, s, login.User, login.Password, http.MethodPost, "/api/v1/components/dev/abalone/"+kind, body, &created); code >= 300 || created.Release.ID == "" {
			t.Fatalf("%s command: HTTP %d", kind, code)
		}
		v := created.Release
		var got server.ReleaseView
		deadline := time.Now().Add(60 * time.Second)
		for allinonetest.API(t, s, login.User, login.Password, http.MethodGet, "/api/v1/releases/"+v.ID, nil, &got); !got.Status.Final(); {
			if time.Now().After(deadline) {
				t.Fatalf("the agent did not finish the %s within 60s: release %s is %s; agent logs:\n%s", kind, v.ID, got.Status, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
			allinonetest.API(t, s, login.User, login.Password, http.MethodGet, "/api/v1/releases/"+v.ID, nil, &got)
		}
		if got.Status != releases.StatusSucceeded || len(got.Events) < 2 {
			t.Fatalf("%s: release %s is %s (%s) with %d events; agent logs:\n%s", kind, got.ID, got.Status, got.FailureReason, len(got.Events), stderr.String())
		}
		return got.Release
	}
	r := command("rollback", nil)
	if r.Kind != releases.KindRollback || r.Version.Number != 1 || r.Trigger.User != "admin" {
		t.Fatalf("rollback release: %+v", r)
	}
	allinonetest.ExpectServes(t, s, "abalone-dev", 1)
	command("scale", server.CommandRequest{Instances: 3})
	if got := allinonetest.Describe(t, s, "abalone-dev"); got.Instances != 3 || got.Version != 1 {
		t.Fatalf("after scaling: %+v", got)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("agent exited with %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop within 30s of Ctrl-C")
	}
}

// TestAgentCommandRejectsBadEndpointURL fails before polling, naming the variable.
func TestAgentCommandRejectsBadEndpointURL(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"agent", "--server", "http://127.0.0.1:1", "--token", "sdt_x"},
		Process{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: EnvMap(map[string]string{"AWS_ENDPOINT_URL": "localhost:4570"})})
	if code == 0 || !strings.Contains(errb.String(), "AWS_ENDPOINT_URL") || !strings.Contains(errb.String(), "not an http(s) URL") {
		t.Fatalf("agent with a bad endpoint URL: exit %d: %s", code, errb.String())
	}
}

func TestUpAndQuickstartHelp(t *testing.T) {
	for _, c := range []string{"up", "quickstart"} {
		out, _, code := runCLI(t, "", c, "--help")
		if code != 0 || !strings.Contains(out, "--data-dir") || !strings.Contains(out, "--reset-admin-password") {
			t.Fatalf("%s --help: %s", c, out)
		}
	}
	_, errOut, code := runCLI(t, "", "quickstart", "--output", "yaml")
	if code != 2 || !strings.Contains(errOut, "use text or json") {
		t.Fatalf("quickstart --output yaml: exit %d %s", code, errOut)
	}
}
