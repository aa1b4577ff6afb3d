package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestServerAdminCommands(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runCLI(t, "", "server", "env", "add", "dev", "--kind", "local", "--endpoint-url", "http://127.0.0.1:4570", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "Environment dev saved") {
		t.Fatalf("env add: %d %s %s", code, out, errOut)
	}
	_, errOut, code = runCLI(t, "", "server", "env", "add", "prod", "--kind", "sagemaker", "--data-dir", dir)
	if code == 0 || !strings.Contains(errOut, "--region") {
		t.Fatalf("sagemaker env without region: %d %s", code, errOut)
	}
	runCLI(t, "", "server", "env", "add", "prod", "--kind", "sagemaker", "--region", "eu-west-1", "--requires-approval", "--position", "1", "--data-dir", dir)
	out, _, _ = runCLI(t, "", "server", "env", "list", "-o", "json", "--data-dir", dir)
	var envs []releases.Environment
	if err := json.Unmarshal([]byte(out), &envs); err != nil || len(envs) != 2 || envs[1].Name != "prod" || !envs[1].RequiresApproval {
		t.Fatalf("env list: %s (%v)", out, err)
	}

	out, errOut, code = runCLI(t, "", "server", "token", "create", "--env", "dev", "--name", "ci", "-o", "json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("token create: %s", errOut)
	}
	var nt server.NewToken
	if err := json.Unmarshal([]byte(out), &nt); err != nil || !strings.HasPrefix(nt.Secret, "sdt_") || nt.Environment != "dev" {
		t.Fatalf("token create output: %s", out)
	}
	_, errOut, code = runCLI(t, "", "server", "token", "create", "--env", "staging", "--data-dir", dir)
	if code == 0 || !strings.Contains(errOut, `"staging"`) || !strings.Contains(errOut, "dev, prod") {
		t.Fatalf("token for unknown env: %d %s", code, errOut)
	}
	out, _, _ = runCLI(t, "", "server", "token", "list", "--data-dir", dir)
	if !strings.Contains(out, nt.ID) || strings.Contains(out, nt.Secret) || !strings.Contains(out, "active") {
		t.Fatalf("token list: %s", out)
	}
	out, _, code = runCLI(t, "", "server", "token", "revoke", nt.ID, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "Revoked") {
		t.Fatalf("revoke: %s", out)
	}

	out, _, code = runCLI(t, "s3cret-password-1\n", "server", "user", "add", "carol", "--role", "deployer", "--password-stdin", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "Added carol (deployer)") {
		t.Fatalf("user add: %s", out)
	}
	out, _, code = runCLI(t, "", "server", "user", "add", "dave", "--role", "viewer", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "shown only this once") {
		t.Fatalf("user add with generated password: %s", out)
	}
	_, errOut, code = runCLI(t, "", "server", "user", "add", "eve", "--role", "root", "--data-dir", dir)
	if code == 0 || !strings.Contains(errOut, "viewer, deployer or admin") {
		t.Fatalf("bad role: %s", errOut)
	}

	// The audit log records what the CLI did.
	st, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, _ := st.Audit(context.Background(), 50, 0)
	actions := map[string]bool{}
	for _, a := range entries {
		actions[a.Action] = true
	}
	for _, a := range []string{"environment.save", "token.create", "token.revoke", "user.add"} {
		if !actions[a] {
			t.Errorf("audit lacks %s", a)
		}
	}
}

func TestStartReleaseServerPrintsFirstAdminOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func() (*ReleaseServer, string) {
		st, err := store.Open(ctx, store.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		rs, err := StartReleaseServer(ctx, slog.New(slog.DiscardHandler), &out, st, ReleaseServerConfig{Addr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Stop(ctx); st.Close() })
		return rs, out.String()
	}
	rs, out := start()
	if !strings.Contains(out, `created dashboard user "admin"`) {
		t.Fatalf("first start printed %q", out)
	}
	resp, err := http.Get(rs.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Without credentials, /healthz says ok and nothing about the database.
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) || strings.Contains(string(body), "sqlite") {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
	rs.Stop(ctx)
	rs.Store.Close()
	_, out = start()
	if strings.Contains(out, "password") {
		t.Fatalf("second start printed a password again: %q", out)
	}
}

func TestAgentCommandExplainsMissingFlags(t *testing.T) {
	for _, k := range []string{"SAGEDEPLOY_SERVER", "SAGEDEPLOY_TOKEN", "SAGEDEPLOY_RELEASES_URL", "SAGEDEPLOY_RELEASES_TOKEN"} {
		t.Setenv(k, "")
	}
	_, errOut, code := runCLI(t, "", "agent")
	if code == 0 || !strings.Contains(errOut, "--server is required") {
		t.Fatalf("agent without --server: %d %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "", "agent", "--server", "http://127.0.0.1:1")
	if code == 0 || !strings.Contains(errOut, "--token is required") || !strings.Contains(errOut, "token create") {
		t.Fatalf("agent without --token: %d %s", code, errOut)
	}
}

// Commands read environment variables only through their Process, so two runs side by side each
// obey their own: here SAGEDEPLOY_DATA_DIR chooses the server's database.
func TestServerCommandsReadTheProcessEnvironment(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := runCLI(t, "", "server", "env", "add", "dev", "--kind", "local", "--data-dir", dir); code != 0 {
		t.Fatalf("env add: %d %s", code, errOut)
	}
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"server", "env", "list", "-o", "json"},
		Process{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: EnvMap(map[string]string{"SAGEDEPLOY_DATA_DIR": dir})})
	var envs []releases.Environment
	if err := json.Unmarshal(out.Bytes(), &envs); code != 0 || err != nil || len(envs) != 1 || envs[0].Name != "dev" {
		t.Fatalf("env list with SAGEDEPLOY_DATA_DIR=%s in the Process: exit %d, %s %s", dir, code, out.String(), errb.String())
	}
}
