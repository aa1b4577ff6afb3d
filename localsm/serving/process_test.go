package serving

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

const byoImage = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-scorer:3"

// prepareProcess prepares the test model server as a process container for byoImage.
func prepareProcess(t *testing.T, env map[string]string) (*Model, *Store) {
	t.Helper()
	store, err := NewStore(filepath.Join(t.TempDir(), "models"))
	if err != nil {
		t.Fatal(err)
	}
	url := "s3://models/scorer/model.tar.gz"
	m, err := Prepare(context.Background(),
		spec.Container{Image: byoImage, ModelDataURL: url, Environment: env},
		Source{Artifacts: memArtifacts{url: makeTar(t, true, tarEntry{name: "model.txt", body: "scorer v7\n"})}, Store: store,
			ImageMap: map[string]string{byoImage: modelServerBin}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	if m.Kind() != KindProcess {
		t.Fatalf("kind %v, want a process container", m.Kind())
	}
	return m, store
}

func startOpts(t *testing.T, timeout time.Duration) StartOptions {
	return StartOptions{
		Endpoint: "scorer-dev", Variant: "AllTraffic", InstanceID: "1",
		LogPath:       filepath.Join(t.TempDir(), "logs", "AllTraffic-1.log"),
		HealthTimeout: timeout,
		Ports:         &Ports{},
	}
}

// gone reports whether a process no longer exists, not even as a zombie.
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// Killed and reparented to init, waiting to be reaped there: not running either.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z" && pid != 0
}

func reaped(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return os.IsNotExist(err)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProcessContainerHonoursTheServingContract(t *testing.T) {
	m, _ := prepareProcess(t, map[string]string{"MODEL_GREETING": "hello"})
	o := startOpts(t, 20*time.Second)
	inst, err := m.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	p := inst.(*process)
	pid := p.Pid()

	inv := &Invocation{Body: []byte("1,2,3"), ContentType: "text/csv", Accept: "application/json", CustomAttributes: "trace=abc"}
	if err := inst.Invoke(context.Background(), inv); err != nil {
		t.Fatal(err)
	}
	if inv.Status != 200 || inv.RespContentType != "application/json" || inv.RespCustomAttributes != "echo:trace=abc" {
		t.Fatalf("status %d, content type %q, custom attributes %q", inv.Status, inv.RespContentType, inv.RespCustomAttributes)
	}
	var got map[string]any
	if err := json.Unmarshal(inv.Out, &got); err != nil {
		t.Fatalf("answer %q: %v", inv.Out, err)
	}
	for k, want := range map[string]any{
		"model": "scorer v7", "body": "1,2,3", "content_type": "text/csv", "accept": "application/json",
		"env": "hello", "endpoint": "scorer-dev", "variant": "AllTraffic", "pid": float64(pid),
	} {
		if got[k] != want {
			t.Errorf("the model server saw %s = %v, want %v", k, got[k], want)
		}
	}

	inv = &Invocation{Body: []byte("fail"), ContentType: "text/csv"}
	if err := inst.Invoke(context.Background(), inv); err != nil || inv.Status != 400 || !strings.Contains(string(inv.Out), "bad input: fail") {
		t.Errorf("a refused request: %v, status %d %q", err, inv.Status, inv.Out)
	}

	logText, _ := os.ReadFile(o.LogPath)
	port := strconv.Itoa(p.port)
	if !strings.Contains(string(logText), "modelserver: port="+port+" PORT="+port+" model dir="+m.dir) {
		t.Errorf("the process did not get its port and model dir in the environment; log:\n%s", logText)
	}

	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !reaped(pid) {
		t.Errorf("process %d still exists after Stop", pid)
	}
	if inst.Alive() {
		t.Error("Alive after Stop")
	}
	logText, _ = os.ReadFile(o.LogPath)
	if !strings.Contains(string(logText), "modelserver: stopped") {
		t.Errorf("the process was not stopped gracefully (SIGTERM first); log:\n%s", logText)
	}
}

func TestProcessContainerThatExitsFailsWithItsLog(t *testing.T) {
	m, _ := prepareProcess(t, map[string]string{"MODEL_SERVER_MODE": "exit"})
	o := startOpts(t, 20*time.Second)
	start := time.Now()
	_, err := m.Start(context.Background(), o)
	if err == nil {
		t.Fatal("Start succeeded for a process that exits")
	}
	for _, w := range []string{"exited with status 3", "before answering GET /ping", "cannot load the model, giving up", o.LogPath, byoImage} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s to notice the process exited", time.Since(start))
	}
}

func TestProcessContainerThatNeverBecomesHealthy(t *testing.T) {
	m, _ := prepareProcess(t, map[string]string{"MODEL_SERVER_MODE": "unhealthy"})
	o := startOpts(t, 1500*time.Millisecond)
	_, err := m.Start(context.Background(), o)
	if err == nil {
		t.Fatal("Start succeeded for a process that never answers /ping with 200")
	}
	for _, w := range []string{"did not pass its health check", "within 1.5s", "503"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	logText, _ := os.ReadFile(o.LogPath)
	pid := regexp.MustCompile(`instance 1 (exited|was killed)`).FindString(string(logText))
	if pid == "" {
		t.Errorf("the unhealthy process was not stopped and reaped; log:\n%s", logText)
	}
}

func TestProcessStopKillsTheWholeProcessGroup(t *testing.T) {
	m, _ := prepareProcess(t, map[string]string{"MODEL_SERVER_MODE": "child"})
	o := startOpts(t, 20*time.Second)
	inst, err := m.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	logText, _ := os.ReadFile(o.LogPath)
	match := regexp.MustCompile(`child pid (\d+)`).FindStringSubmatch(string(logText))
	if match == nil {
		t.Fatalf("no child pid in the log:\n%s", logText)
	}
	child, _ := strconv.Atoi(match[1])
	if gone(child) {
		t.Fatalf("child %d not running before Stop", child)
	}
	pid := inst.(*process).Pid()
	inst.Stop(context.Background())
	if !reaped(pid) {
		t.Errorf("model server %d left behind", pid)
	}
	waitFor(t, "the model server's child to die", func() bool { return gone(child) })
}

func TestProcessThatDiesIsReported(t *testing.T) {
	m, _ := prepareProcess(t, nil)
	o := startOpts(t, 20*time.Second)
	inst, err := m.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop(context.Background())
	syscall.Kill(inst.(*process).Pid(), syscall.SIGKILL)
	waitFor(t, "Alive to turn false", func() bool { return !inst.Alive() })
	err = inst.Invoke(context.Background(), &Invocation{Body: []byte("1")})
	if err == nil || !strings.Contains(err.Error(), "killed by signal killed") {
		t.Errorf("invoking a dead process: %v", err)
	}
}

func TestProcessContainerWithoutArtifactGetsAnEmptyModelDir(t *testing.T) {
	store, _ := NewStore(filepath.Join(t.TempDir(), "models"))
	m, err := Prepare(context.Background(), spec.Container{Image: byoImage},
		Source{Store: store, ImageMap: map[string]string{byoImage: modelServerBin}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	inst, err := m.Start(context.Background(), startOpts(t, 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop(context.Background())
	inv := &Invocation{Body: []byte("x")}
	if err := inst.Invoke(context.Background(), inv); err != nil || !strings.Contains(string(inv.Out), `"model":"none"`) {
		t.Errorf("answer %s, %v", inv.Out, err)
	}
}

func TestShellCommand(t *testing.T) {
	for cmd, want := range map[string]string{
		"python3 serve.py --port 1":          "exec python3 serve.py --port 1",
		`python3 serve.py --name "my model"`: `exec python3 serve.py --name "my model"`,
		`python3 -c "print('hi')"`:           `python3 -c "print('hi')"`, // parentheses: left to the shell
		"cd /srv && python3 serve.py":        "cd /srv && python3 serve.py",
		"FOO=1 ./serve":                      "FOO=1 ./serve",
		"./a | tee log":                      "./a | tee log",
		"exec ./serve":                       "exec ./serve",
	} {
		if got := shellCommand(cmd); got != want {
			t.Errorf("shellCommand(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestCompoundCommandStopsGracefully(t *testing.T) {
	store, _ := NewStore(filepath.Join(t.TempDir(), "models"))
	// A variable assignment keeps the shell as the parent of the model server.
	m, err := Prepare(context.Background(), spec.Container{Image: byoImage},
		Source{Store: store, ImageMap: map[string]string{byoImage: "MODEL_GREETING=from-shell " + modelServerBin}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	o := startOpts(t, 20*time.Second)
	inst, err := m.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	inv := &Invocation{Body: []byte("x")}
	if err := inst.Invoke(context.Background(), inv); err != nil || !strings.Contains(string(inv.Out), `"env":"from-shell"`) {
		t.Fatalf("answer %s, %v", inv.Out, err)
	}
	var seen map[string]any
	json.Unmarshal(inv.Out, &seen)
	server := int(seen["pid"].(float64))
	shell := inst.(*process).Pid()
	if server == shell {
		t.Fatalf("the shell exec'd the server; this test needs it to stay the parent")
	}
	inst.Stop(context.Background())
	waitFor(t, "the model server to stop", func() bool { return gone(server) })
	logText, _ := os.ReadFile(o.LogPath)
	if !strings.Contains(string(logText), "modelserver: stopped") {
		t.Errorf("the model server under a shell was killed before it could shut down; log:\n%s", logText)
	}
}

// logRecorder is a slog handler that hands every message to a channel, so a test can wait for
// a warning or error as an event.
type logRecorder struct{ msgs chan string }

func newLogRecorder() *logRecorder { return &logRecorder{msgs: make(chan string, 1000)} }

func (l *logRecorder) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	select {
	case l.msgs <- r.Message:
	default:
	}
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// wait waits for a message containing want.
func (l *logRecorder) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-l.msgs:
			if strings.Contains(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line %q", want)
		}
	}
}

// TestProcessFailingPingsIsKilledToBeReplaced: a serving process that stops answering GET /ping
// with 200 is killed after a few failed checks and reported through OnExit, so that the runtime
// replaces it, as SageMaker replaces an unhealthy instance; the kill is logged and invocations
// then fail at once instead of hanging.
func TestProcessFailingPingsIsKilledToBeReplaced(t *testing.T) {
	m, _ := prepareProcess(t, nil)
	o := startOpts(t, 20*time.Second)
	o.PingInterval = 20 * time.Millisecond
	exited := make(chan struct{})
	o.OnExit = func() { close(exited) }
	logs := newLogRecorder()
	o.Logger = slog.New(logs)
	inst, err := m.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop(context.Background())
	inv := &Invocation{Body: []byte("sicken")}
	if err := inst.Invoke(context.Background(), inv); err != nil || inv.Status != 200 {
		t.Fatalf("invoke: %v, status %d", err, inv.Status)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("a process failing its pings was never reported as stopped")
	}
	logs.wait(t, "model server is unhealthy; killing it to be replaced")
	if inst.Alive() {
		t.Error("Alive after the process was killed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = inst.Invoke(ctx, &Invocation{Body: []byte("1")})
	if err == nil || !strings.Contains(err.Error(), "killed by signal killed") {
		t.Errorf("invoking the killed process: %v", err)
	}
}

// TestHealthyProcessKeepsServing: periodic pings leave a healthy process alone.
func TestHealthyProcessKeepsServing(t *testing.T) {
	m, _ := prepareProcess(t, nil)
	o := startOpts(t, 20*time.Second)
	o.PingInterval = 5 * time.Millisecond
	logs := newLogRecorder()
	o.Logger = slog.New(logs)
	inst, err := m.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop(context.Background())
	// Enough invocations for many ping rounds to pass in between.
	for range 50 {
		inv := &Invocation{Body: []byte("sleep:2ms")}
		if err := inst.Invoke(context.Background(), inv); err != nil || inv.Status != 200 {
			t.Fatalf("invoke: %v, status %d", err, inv.Status)
		}
	}
	select {
	case msg := <-logs.msgs:
		t.Errorf("a healthy process was reported: %s", msg)
	default:
	}
	if !inst.Alive() {
		t.Error("a healthy process was stopped")
	}
}

// A port handed out free can be taken by another program before the container binds it; the
// container is started again on another port instead of failing the endpoint.
func TestProcessWhosePortWasTakenStartsOnAnother(t *testing.T) {
	m, _ := prepareProcess(t, nil)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	o := startOpts(t, 20*time.Second)
	o.Ports = &Ports{next: []int{port}}
	inst, err := m.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start with the first port taken: %v", err)
	}
	defer inst.Stop(context.Background())
	if got := inst.(*process).port; got == port {
		t.Fatalf("the instance runs on the taken port %d", port)
	}
	logText, _ := os.ReadFile(o.LogPath)
	if !strings.Contains(string(logText), "address already in use") || strings.Count(string(logText), "sagedeploy: starting instance") != 2 {
		t.Errorf("the log does not show a failed bind and a second start:\n%s", logText)
	}
}
