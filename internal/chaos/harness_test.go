//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/releases"
)

// sagedeployBin is the binary under test: SAGEDEPLOY_BIN, or one TestMain builds.
var sagedeployBin string

const region = "us-east-1"

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	bin := os.Getenv("SAGEDEPLOY_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "sagedeploy-chaos-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: temporary directory for the binary: %v\n", err)
			return 2
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "sagedeploy")
		build := exec.Command("go", "build", "-o", bin, "github.com/sagedeploy/sagedeploy/cmd/sagedeploy")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: cannot build the sagedeploy binary the suite drives (go build ./cmd/sagedeploy): %v\n", err)
			return 2
		}
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		fmt.Fprintf(os.Stderr, "chaos: SAGEDEPLOY_BIN=%s is not an executable sagedeploy binary (%v); unset it to build one\n", bin, err)
		return 2
	}
	sagedeployBin = bin
	return m.Run()
}

// ---- processes ----

// proc is one sagedeploy process. Its output is kept and shown when the test fails.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	onLine func(stream, line string)

	mu     sync.Mutex
	stdout bytes.Buffer
	all    bytes.Buffer
}

// launch starts `sagedeploy args...` with env (the whole environment of the process). onLine,
// when set, sees each line of stdout and stderr as it comes.
func launch(t testing.TB, name string, env []string, onLine func(stream, line string), args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, done: make(chan struct{}), onLine: onLine}
	p.cmd = exec.Command(sagedeployBin, args...)
	p.cmd.Env = env
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s (%s %s): %v", name, sagedeployBin, strings.Join(args, " "), err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go p.read(&readers, "stdout", stdout)
	go p.read(&readers, "stderr", stderr)
	go func() {
		readers.Wait()
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			p.kill9()
		}
		// Show what failed processes and servers said; a command that succeeded is noise.
		if t.Failed() && (p.cmd.ProcessState == nil || !p.cmd.ProcessState.Success() || len(args) > 0 && (args[0] == "local" || args[0] == "server")) {
			n := 60
			if len(args) > 0 && args[0] == "server" {
				n = 15 // a log line per request: the last ones tell
			}
			t.Logf("---- output of %s (%s) ----\n%s", p.name, strings.Join(args, " "), tail(p.output(), n))
		}
	})
	return p
}

func (p *proc) read(wg *sync.WaitGroup, stream string, r io.Reader) {
	defer wg.Done()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			p.mu.Lock()
			if stream == "stdout" {
				p.stdout.WriteString(line)
			}
			p.all.WriteString(line)
			p.mu.Unlock()
			if p.onLine != nil {
				p.onLine(stream, strings.TrimRight(line, "\n"))
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill9 kills the process with SIGKILL — no chance to clean up — and waits for it to be gone.
func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s (pid %d) did not die within 30s of SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// stop asks the process to stop (SIGTERM), as a user's Ctrl-C would, and kills it if it lingers.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s did not stop within 30s of SIGTERM; killing it", p.name)
		p.kill9()
	}
}

// wait waits for the process to end and returns its exit code (-1 when a signal ended it).
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s still runs after %s:\n%s", p.name, timeout, tail(p.output(), 40))
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all.String()
}

func (p *proc) stdoutText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// baseEnv is a clean environment for sagedeploy processes: the developer's AWS configuration,
// CI variables and sagedeploy settings stay out; HOME is a fresh directory.
func baseEnv(t testing.TB) []string {
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"AWS_CONFIG_FILE=" + filepath.Join(home, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	return env
}

type cliResult struct {
	code           int
	stdout, output string
}

// run runs a sagedeploy command to its end.
func run(t testing.TB, env []string, args ...string) cliResult {
	t.Helper()
	p := launch(t, "sagedeploy "+args[0], env, nil, args...)
	code := p.wait(3 * time.Minute)
	return cliResult{code: code, stdout: p.stdoutText(), output: p.output()}
}

// mustRun runs a command that must succeed.
func mustRun(t testing.TB, env []string, args ...string) cliResult {
	t.Helper()
	r := run(t, env, args...)
	if r.code != 0 {
		t.Fatalf("sagedeploy %s exited %d:\n%s", strings.Join(args, " "), r.code, tail(r.output, 40))
	}
	return r
}

// ---- the local SageMaker ----

// localSM is a running `sagedeploy local`.
type localSM struct {
	*proc
	url     string
	dataDir string
}

// startLocal runs `sagedeploy local` on a free port over dataDir and waits for its ready line.
func startLocal(t testing.TB, dataDir string, extra ...string) *localSM {
	t.Helper()
	ready := make(chan string, 1)
	// The suite runs many endpoints on one local SageMaker: a quota of 10 instances per type (the
	// default, as in a new AWS account) would refuse deploys that the tests are not about.
	args := append([]string{"local", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--output", "json", "--log-level", "warn",
		"--default-endpoint-quota", "1000"}, extra...)
	p := launch(t, "sagedeploy local", baseEnv(t), func(stream, line string) {
		if stream != "stdout" || !strings.HasPrefix(line, "{") {
			return
		}
		var r struct {
			URL string `json:"url"`
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.URL != "" {
			select {
			case ready <- r.URL:
			default:
			}
		}
	}, args...)
	select {
	case url := <-ready:
		return &localSM{proc: p, url: url, dataDir: dataDir}
	case <-p.done:
		t.Fatalf("sagedeploy local exited at start (code %d):\n%s", p.cmd.ProcessState.ExitCode(), tail(p.output(), 40))
	case <-time.After(90 * time.Second):
		t.Fatalf("sagedeploy local printed no ready line within 90s:\n%s", tail(p.output(), 40))
	}
	return nil
}

// env is the environment of a deployer command talking to this local SageMaker.
func (l *localSM) env(t testing.TB, extra ...string) []string {
	return append(append(baseEnv(t),
		"AWS_ENDPOINT_URL="+l.url,
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_REGION="+region,
	), extra...)
}

var creds = credentials.NewStaticCredentialsProvider("AKIACHAOS", "chaos", "")

// sm is a SageMaker client for assertions. It never retries: every failure counts.
func (l *localSM) sm() *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{Region: region, BaseEndpoint: aws.String(l.url), Credentials: creds, Retryer: aws.NopRetryer{}})
}

// runtime is a SageMaker runtime client that retries nothing the server could cause: every
// error answer, reset or cut connection counts as a failed request. It retries only the SDK's own
// race (aws/aws-sdk-go-v2#2737, net.ErrClosed: the client closes its connection when net/http's
// write loop reads the request body after smithy closed it), as the SDK's default retryer does.
func (l *localSM) runtime() *sagemakerruntime.Client {
	return sagemakerruntime.New(sagemakerruntime.Options{Region: region, BaseEndpoint: aws.String(l.url), Credentials: creds, Retryer: clientRaceRetryer()})
}

func clientRaceRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, net.ErrClosed) {
				return aws.TrueTernary
			}
			return aws.FalseTernary
		})}
	})
}

// deployer is the deployer library pointed at this local SageMaker, for set-up and reads.
func (l *localSM) deployer(t testing.TB) *deploy.Deployer {
	t.Helper()
	d, err := deploy.New(context.Background(), deploy.Options{Region: region, EndpointURL: l.url, Credentials: creds,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("deploy.New: %v", err)
	}
	return d
}

// register adds the abalone versions to group, approved.
func (l *localSM) register(t testing.TB, group string, versions ...int) {
	t.Helper()
	d := l.deployer(t)
	for _, v := range versions {
		data, err := abalone.Artifact(v)
		if err != nil {
			t.Fatal(err)
		}
		l.registerData(t, d, group, fmt.Sprintf("model-v%d.tar.gz", v), data)
	}
}

func (l *localSM) registerData(t testing.TB, d *deploy.Deployer, group, name string, data []byte) deploy.RegisterResult {
	t.Helper()
	res, err := d.Register(context.Background(), deploy.RegisterRequest{Model: group, Artifact: name, ArtifactData: data, Bucket: "models", Approve: true})
	if err != nil {
		t.Fatalf("register %s of %s: %v", name, group, err)
	}
	return res
}

// served invokes the endpoint with the abalone sample and says which version's reference
// predictions the answer equals.
func (l *localSM) served(ctx context.Context, endpoint string) (int, error) {
	out, err := l.runtime().InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
	if err != nil {
		return 0, err
	}
	return versionOf(out.Body)
}

// waitServing polls until the endpoint answers with version want's predictions.
func (l *localSM) waitServing(t testing.TB, endpoint string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := l.served(ctx, endpoint)
		cancel()
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s does not serve version %d after %s: last answer: version %d, %v", endpoint, want, within, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// versionOf says which abalone version's reference predictions body holds.
func versionOf(body []byte) (int, error) {
	got, err := parseFloats(body)
	if err != nil {
		return 0, err
	}
	for _, v := range abalone.Versions() {
		exp, _ := abalone.ExpectedCSV(v)
		want, err := parseFloats(exp)
		if err != nil {
			return 0, err
		}
		if samePredictions(got, want) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("answer %q matches no abalone version's reference predictions", truncate(string(body), 200))
}

func parseFloats(b []byte) ([]float64, error) {
	var out []float64
	for _, f := range strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("answer %q is not a list of numbers", truncate(string(b), 200))
		}
		out = append(out, x)
	}
	return out, nil
}

// samePredictions compares with float32 precision, the precision XGBoost predicts in.
func samePredictions(got, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ---- the release server ----

// releaseServer is a running `sagedeploy server`.
type releaseServer struct {
	*proc
	url     string
	dataDir string
}

// initServer creates the dev environment and an integration token for it in dataDir, through
// the CLI, and returns the token.
func initServer(t testing.TB, dataDir string) string {
	t.Helper()
	env := baseEnv(t)
	mustRun(t, env, "server", "env", "add", "dev", "--kind", "local", "--data-dir", dataDir)
	r := mustRun(t, env, "server", "token", "create", "--env", "dev", "--name", "chaos", "--output", "json", "--data-dir", dataDir)
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &tok); err != nil || tok.Token == "" {
		t.Fatalf("token create printed no token: %v\n%s", err, r.output)
	}
	return tok.Token
}

// startServer runs `sagedeploy server` on a free port over dataDir and waits until it answers.
func startServer(t testing.TB, dataDir string, extra ...string) *releaseServer {
	t.Helper()
	ready := make(chan string, 1)
	args := append([]string{"server", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"}, extra...)
	p := launch(t, "sagedeploy server", baseEnv(t), func(stream, line string) {
		if stream != "stderr" || !strings.Contains(line, "release server listening") {
			return
		}
		var r struct {
			URL string `json:"url"`
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.URL != "" {
			select {
			case ready <- r.URL:
			default:
			}
		}
	}, args...)
	select {
	case url := <-ready:
		s := &releaseServer{proc: p, url: url, dataDir: dataDir}
		s.waitHealthy(t)
		return s
	case <-p.done:
		t.Fatalf("sagedeploy server exited at start (code %d):\n%s", p.cmd.ProcessState.ExitCode(), tail(p.output(), 40))
	case <-time.After(90 * time.Second):
		t.Fatalf("sagedeploy server logged no listening address within 90s:\n%s", tail(p.output(), 40))
	}
	return nil
}

func (s *releaseServer) waitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("release server at %s is not healthy after 60s: %v", s.url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is the release client with the environment's token.
func (s *releaseServer) client(token string) *releases.Client {
	return releases.NewClient(s.url, token, &http.Client{Timeout: 30 * time.Second})
}

// releasesOf lists the releases of a model (newest first), through the API with token.
func (s *releaseServer) releasesOf(t testing.TB, token, model string) []releases.Release {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/releases?limit=200&model="+model, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("list releases of %s: %v", model, err)
	}
	defer resp.Body.Close()
	var page struct {
		Releases []releases.Release `json:"releases"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("list releases of %s: HTTP %d: %s", model, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatalf("list releases of %s: %v", model, err)
	}
	return page.Releases
}

// component reads what the release server shows for a model in an environment.
func (s *releaseServer) component(t testing.TB, token, env, model string) releases.Component {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/components/"+env+"/"+model, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("read component %s/%s: %v", env, model, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("read component %s/%s: HTTP %d: %s", env, model, resp.StatusCode, b)
	}
	var d struct {
		Component releases.Component `json:"component"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("read component %s/%s: %v: %s", env, model, err, b)
	}
	return d.Component
}

// endpointTags reads the tags of a resource.
func endpointTags(t testing.TB, l *localSM, arn string) map[string]string {
	t.Helper()
	out, err := l.sm().ListTags(context.Background(), &sagemaker.ListTagsInput{ResourceArn: aws.String(arn), MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatalf("list tags of %s: %v", arn, err)
	}
	tags := map[string]string{}
	for _, tg := range out.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}
