package orb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/internal/cli"
)

var paramRef = regexp.MustCompile(`<<\s*parameters\.([a-zA-Z0-9_]+)\s*>>`)

func packed(t *testing.T) map[string]any {
	t.Helper()
	o, err := Pack("src")
	if err != nil {
		t.Fatalf("pack orb: %v", err)
	}
	return o
}

func section(t *testing.T, o map[string]any, name string) map[string]map[string]any {
	t.Helper()
	raw, ok := o[name].(map[string]any)
	if !ok {
		t.Fatalf("packed orb has no %s section", name)
	}
	out := map[string]map[string]any{}
	for k, v := range raw {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s %s is not a map", name, k)
		}
		out[k] = m
	}
	return out
}

func params(m map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	p, _ := m["parameters"].(map[string]any)
	for k, v := range p {
		d, _ := v.(map[string]any)
		out[k] = d
	}
	return out
}

// stepCalls returns each step of a job or command as (name, arguments).
func stepCalls(t *testing.T, m map[string]any) []struct {
	name string
	args map[string]any
} {
	t.Helper()
	steps, _ := m["steps"].([]any)
	var out []struct {
		name string
		args map[string]any
	}
	for _, s := range steps {
		switch v := s.(type) {
		case string:
			out = append(out, struct {
				name string
				args map[string]any
			}{v, nil})
		case map[string]any:
			for k, a := range v {
				args, _ := a.(map[string]any)
				out = append(out, struct {
					name string
					args map[string]any
				}{k, args})
			}
		}
	}
	return out
}

// Every job parameter is handed to a step, every step it calls exists with the arguments it is
// given, and every command parameter is used; a parameter that goes nowhere is a silent no-op for
// the user.
func TestOrbParametersAreWiredThrough(t *testing.T) {
	o := packed(t)
	jobs := section(t, o, "jobs")
	cmds := section(t, o, "commands")
	execs := section(t, o, "executors")
	for name, j := range jobs {
		if e, _ := j["executor"].(string); e == "" || execs[e] == nil {
			t.Errorf("job %s: executor %q is not defined", name, j["executor"])
		}
		used := map[string]bool{}
		for _, s := range stepCalls(t, j) {
			c, ok := cmds[s.name]
			if !ok {
				t.Errorf("job %s calls undefined command %s", name, s.name)
				continue
			}
			cp := params(c)
			for arg, v := range s.args {
				if _, ok := cp[arg]; !ok {
					t.Errorf("job %s passes %s to command %s, which has no such parameter", name, arg, s.name)
				}
				for _, m := range paramRef.FindAllStringSubmatch(fmt.Sprint(v), -1) {
					used[m[1]] = true
				}
			}
			for p, d := range cp {
				if _, has := d["default"]; !has {
					if _, given := s.args[p]; !given {
						t.Errorf("job %s does not give command %s its required parameter %s", name, s.name, p)
					}
				}
			}
		}
		for p := range params(j) {
			if !used[p] {
				t.Errorf("job %s: parameter %s reaches no step", name, p)
			}
		}
	}
	for name, c := range cmds {
		text := fmt.Sprint(c["steps"])
		refs := map[string]bool{}
		for _, m := range paramRef.FindAllStringSubmatch(text, -1) {
			refs[m[1]] = true
		}
		for p := range params(c) {
			if !refs[p] {
				t.Errorf("command %s: parameter %s is never used", name, p)
			}
		}
		for r := range refs {
			if _, ok := params(c)[r]; !ok {
				t.Errorf("command %s uses undefined parameter %s", name, r)
			}
		}
	}
}

// Every sagedeploy invocation in the orb names a real subcommand and real flags, and every
// environment variable the orb sets is one that command reads (its --help names it) or one the
// step's own script reads.
func TestOrbCommandsReachTheBinary(t *testing.T) {
	o := packed(t)
	cmds := section(t, o, "commands")
	root := cli.NewRootCommand(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	calls := 0
	for name, c := range cmds {
		for _, s := range stepCalls(t, c) {
			if s.name != "run" {
				continue
			}
			script, _ := s.args["command"].(string)
			for _, line := range scriptCLILines(script) {
				calls++
				sub := checkCLILine(t, root, name, line)
				if sub == nil {
					continue
				}
				help := helpText(sub)
				env, _ := s.args["environment"].(map[string]any)
				for k := range env {
					if !strings.Contains(help, k) && !strings.Contains(script, "$"+k) && !strings.Contains(script, "${"+k) {
						t.Errorf("command %s sets %s, but neither %s --help nor the step's script reads it", name, k, sub.CommandPath())
					}
				}
			}
		}
	}
	if calls == 0 {
		t.Fatal("no orb command runs sagedeploy")
	}
}

// checkCLILine finds the subcommand a script line runs and checks its flags.
func checkCLILine(t *testing.T, root *cobra.Command, name, line string) *cobra.Command {
	t.Helper()
	args := strings.Fields(paramRef.ReplaceAllString(line, "X"))[1:]
	sub, rest, err := root.Find(args)
	if err != nil || sub == root {
		t.Errorf("command %s runs %q: no such sagedeploy subcommand (%v)", name, line, err)
		return nil
	}
	for _, a := range rest {
		if f, ok := strings.CutPrefix(a, "--"); ok && sub.Flags().Lookup(f) == nil {
			t.Errorf("command %s runs %q: %s has no flag %s", name, line, sub.CommandPath(), a)
		}
	}
	return sub
}

func helpText(c *cobra.Command) string {
	var b bytes.Buffer
	c.SetOut(&b)
	_ = c.Help()
	return b.String() + c.Long
}

// The install script must put the pinned release on PATH when the checksum matches and refuse it
// when it does not.
func TestInstallScriptVerifiesChecksum(t *testing.T) {
	for _, tool := range []string{"sh", "tar", "sha256sum", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("install script needs %s on PATH: %v", tool, err)
		}
	}
	archive := fakeRelease(t)
	sum := sha256.Sum256(archive)
	good := hex.EncodeToString(sum[:])
	// The fake binary is a shell script, so it runs on any platform; serve it under this one's name.
	name := fmt.Sprintf("sagedeploy_1.2.3_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH)
	checksums := good + "  " + name + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1.2.3/" + name:
			w.Write(archive)
		case "/v1.2.3/checksums.txt":
			w.Write([]byte(checksums))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	install := func(sha, dir, home string) (string, error) {
		cmd := exec.CommandContext(context.Background(), "sh", filepath.Join("src", "scripts", "install.sh"))
		cmd.Env = append(os.Environ(),
			"SAGEDEPLOY_VERSION=v1.2.3", "SAGEDEPLOY_SHA256="+sha,
			"SAGEDEPLOY_INSTALL_DIR="+dir, "SAGEDEPLOY_DOWNLOAD_BASE="+srv.URL,
			"PATH=/usr/bin:/bin", "BASH_ENV=", "HOME="+home)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(sha string) (string, string, error) {
		dir := t.TempDir()
		out, err := install(sha, dir, t.TempDir())
		return out, dir, err
	}
	out, dir, err := run("")
	if err != nil {
		t.Fatalf("install with the release's checksums failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "fake sagedeploy 1.2.3") {
		t.Errorf("installed binary did not run: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "sagedeploy")); err != nil {
		t.Errorf("binary not installed: %v", err)
	}
	// The orb's default install_dir, ~/bin, reaches the script unexpanded.
	home := t.TempDir()
	if out, err := install("", "~/bin", home); err != nil {
		t.Fatalf("install into ~/bin: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "sagedeploy")); err != nil {
		t.Errorf("install into ~/bin did not put the binary in $HOME/bin: %v", err)
	}
	out, dir, err = run(strings.Repeat("0", 64))
	if err == nil {
		t.Fatalf("install with a wrong pinned checksum succeeded:\n%s", out)
	}
	if !strings.Contains(out, "checksum mismatch") {
		t.Errorf("wrong checksum error does not say so: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "sagedeploy")); err == nil {
		t.Errorf("binary was installed despite the checksum mismatch")
	}
}

func fakeRelease(t *testing.T) []byte {
	t.Helper()
	script := "#!/bin/sh\necho fake sagedeploy 1.2.3\n"
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "sagedeploy", Mode: 0o755, Size: int64(len(script))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(script))
	tw.Close()
	gz.Close()
	return buf.Bytes()
}
