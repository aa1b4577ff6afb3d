package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLocalCommand starts `sagedeploy local` on a free port, reads the URL and environment it
// prints, calls it, and stops it by cancelling the context as a signal does.
func TestLocalCommand(t *testing.T) {
	dir := t.TempDir()
	mapFile := filepath.Join(dir, "images")
	if err := os.WriteFile(mapFile, []byte("# my images\nregistry/model:1 = python3 serve.py\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Execute(ctx, []string{"local", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--output", "json",
			"--region", "eu-west-3", "--image-map-file", mapFile, "--image-map", "other:2=./serve", "--max-body-size", "10MiB"},
			strings.NewReader(""), &stdout, &stderr)
	}()
	var ready struct {
		URL     string            `json:"url"`
		DataDir string            `json:"data_dir"`
		Env     map[string]string `json:"env"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if line := stdout.String(); strings.HasSuffix(line, "\n") {
			if err := json.Unmarshal([]byte(line), &ready); err != nil {
				t.Fatalf("startup output is not JSON: %q", line)
			}
			break
		}
		select {
		case code := <-done:
			t.Fatalf("sagedeploy local exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no startup line after 30s; stderr: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ready.Env["AWS_ENDPOINT_URL"] != ready.URL || ready.Env["AWS_REGION"] != "eu-west-3" || ready.Env["AWS_ACCESS_KEY_ID"] == "" ||
		ready.Env["AWS_SECRET_ACCESS_KEY"] == "" || ready.DataDir != filepath.Join(dir, "data") {
		t.Fatalf("startup output: %+v", ready)
	}
	req, _ := http.NewRequest(http.MethodPost, ready.URL+"/", strings.NewReader(`{"ModelPackageGroupName":"g"}`))
	req.Header.Set("X-Amz-Target", "SageMaker.CreateModelPackageGroup")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Unsigned, so the ARN takes the --region default.
	if resp.StatusCode != 200 || !strings.Contains(string(body), "arn:aws:sagemaker:eu-west-3:000000000000:model-package-group/g") {
		t.Fatalf("call to the printed URL: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after the stop signal: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sagedeploy local did not stop within 30s of its context being cancelled")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "op=CreateModelPackageGroup") || !strings.Contains(logs, "outcome=ok") || !strings.Contains(logs, "duration=") {
		t.Fatalf("the call was not logged with operation, outcome and duration:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "state.db")); err != nil {
		t.Fatalf("no state in the data dir: %v", err)
	}
}

func TestLocalCommandTextOutputAndHelp(t *testing.T) {
	var out bytes.Buffer
	g := &globals{stdout: &out}
	if err := printLocalReady(g, "text", "http://127.0.0.1:4570", "/data", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export AWS_ENDPOINT_URL=http://127.0.0.1:4570", "export AWS_ACCESS_KEY_ID=", "export AWS_SECRET_ACCESS_KEY=",
		"export AWS_REGION=us-east-1", "--endpoint-url http://127.0.0.1:4570"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
	var help bytes.Buffer
	if code := Execute(context.Background(), []string{"local", "--help"}, strings.NewReader(""), &help, &help); code != 0 {
		t.Fatalf("--help exit code %d", code)
	}
	for _, want := range []string{"WITHOUT verification", "aws sagemaker create-endpoint ", "aws s3 cp", "--image-map", "wait endpoint-in-service"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestLocalCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "images")
	if err := os.WriteFile(bad, []byte("ok:1=serve\njust-an-image\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"local", "--image-map", "no-command"}, `--image-map: "no-command" is not IMAGE=COMMAND`},
		{[]string{"local", "--image-map-file", bad}, "line 2"},
		{[]string{"local", "--image-map-file", filepath.Join(dir, "absent")}, "--image-map-file"},
		{[]string{"local", "--max-body-size", "lots"}, `--max-body-size: "lots" is not a size`},
		{[]string{"local", "--account", "12", "--addr", "127.0.0.1:0", "--data-dir", dir}, "12 digits"},
		{[]string{"local", "--output", "yaml"}, "--output must be text or json"},
		{[]string{"local", "--period-scale", "0"}, "--period-scale must be more than 0 and at most 1"},
	} {
		var stdout, stderr bytes.Buffer
		code := Execute(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want an error containing %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"6MB": 6_000_000, "10MiB": 10 << 20, "6291456": 6291456, "1.5kb": 1500, "2 GiB": 2 << 30, "512B": 512} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MB", "MB", "6XB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
