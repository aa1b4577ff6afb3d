package serving

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// stopGrace is how long a process gets between SIGTERM and SIGKILL.
	stopGrace = 5 * time.Second
	// maxResponseBytes bounds what a model server may answer with.
	maxResponseBytes = 64 << 20
	// invokeTimeout is SageMaker's: a model must answer an invocation within 60 seconds.
	invokeTimeout = 60 * time.Second
	// defaultHealthTimeout is SageMaker's: a container has to answer /ping soon after start.
	defaultHealthTimeout = 60 * time.Second
	// DefaultPingInterval is how often a serving process container is pinged.
	DefaultPingInterval = 5 * time.Second
	// pingTimeout is SageMaker's: a container must answer GET /ping within two seconds.
	pingTimeout = 2 * time.Second
	// maxPingFailures is how many pings in a row a serving container may fail before it is
	// replaced; one slow answer under load is not a dead server.
	maxPingFailures = 3
)

// Ports hands out loopback ports to model server processes, never the same one twice at a time.
type Ports struct {
	mu    sync.Mutex
	inUse map[int]bool
	next  []int // handed out first, in order (tests)
}

// Acquire returns a free port on 127.0.0.1.
func (p *Ports) Acquire() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inUse == nil {
		p.inUse = map[int]bool{}
	}
	if len(p.next) > 0 {
		port := p.next[0]
		p.next = p.next[1:]
		p.inUse[port] = true
		return port, nil
	}
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port for a model server: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !p.inUse[port] {
			p.inUse[port] = true
			return port, nil
		}
	}
	return 0, errors.New("find a free port for a model server: every port offered is in use")
}

// Release gives a port back.
func (p *Ports) Release(port int) {
	p.mu.Lock()
	delete(p.inUse, port)
	p.mu.Unlock()
}

// process is a model server running as a local command (a "bring your own container").
type process struct {
	model     *Model
	opts      StartOptions
	ports     *Ports
	port      int
	cmd       *exec.Cmd
	invokeURL string
	pingURL   string
	transport *http.Transport
	client    *http.Client
	done      chan struct{}
	exitErr   error // set before done closes
	stopping  atomic.Bool
	stopOnce  sync.Once
}

// portAttempts is how many ports a process container gets to bind: the port is free when it is
// handed out, but on a shared loopback another program (or an outgoing connection's local port)
// can take it before the container binds it. SageMaker's containers own their port; here a lost
// port is picked again rather than failing the endpoint.
const portAttempts = 3

// errPortTaken: the container exited before answering because its port was taken meanwhile.
var errPortTaken = errors.New("the model server's port was taken before it could bind it")

func startProcess(ctx context.Context, m *Model, o StartOptions) (Instance, error) {
	for attempt := 1; ; attempt++ {
		inst, err := startProcessOnce(ctx, m, o)
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			return inst, err
		}
		if o.Logger != nil {
			o.Logger.Info("model server's port was taken before it bound it; starting it on another", "endpoint", o.Endpoint,
				"variant", o.Variant, "instance", o.InstanceID, "attempt", attempt)
		}
	}
}

func startProcessOnce(ctx context.Context, m *Model, o StartOptions) (Instance, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.HealthTimeout = cmp.Or(max(o.HealthTimeout, 0), defaultHealthTimeout)
	o.PingInterval = cmp.Or(o.PingInterval, DefaultPingInterval)
	ports := cmp.Or(o.Ports, &Ports{})
	port, err := ports.Acquire()
	if err != nil {
		return nil, err
	}
	logFile, err := openLog(o.LogPath)
	if err != nil {
		ports.Release(port)
		return nil, err
	}
	fmt.Fprintf(logFile, "%s sagedeploy: starting instance %s of variant %s of endpoint %s: /bin/sh -c %q on port %d, model in %s\n",
		time.Now().Format(time.RFC3339), o.InstanceID, o.Variant, o.Endpoint, m.command, port, m.dir)

	cmd := exec.Command("/bin/sh", "-c", shellCommand(m.command))
	cmd.Env = processEnv(m, o, port)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		ports.Release(port)
		return nil, fmt.Errorf("start process container %q: %w", m.command, err)
	}
	transport := newTransport()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	p := &process{
		model: m, opts: o, ports: ports, port: port, cmd: cmd,
		invokeURL: base + "/invocations", pingURL: base + "/ping",
		transport: transport, client: &http.Client{Transport: transport},
		done: make(chan struct{}),
	}
	go func() {
		err := cmd.Wait()
		p.exitErr = err
		fmt.Fprintf(logFile, "%s sagedeploy: instance %s %s\n", time.Now().Format(time.RFC3339), o.InstanceID, exitText(err))
		logFile.Close()
		close(p.done)
		if !p.stopping.Load() {
			o.Logger.Warn("model server process exited", "endpoint", o.Endpoint, "variant", o.Variant,
				"instance", o.InstanceID, "status", exitText(err), "log", o.LogPath)
			if o.OnExit != nil {
				o.OnExit()
			}
		}
	}()
	if err := p.waitHealthy(ctx); err != nil {
		p.Stop(context.Background())
		return nil, err
	}
	if o.PingInterval > 0 {
		go p.watch(o.PingInterval)
	}
	return p, nil
}

// watch keeps pinging a healthy process, as SageMaker keeps checking an InService instance.
// After maxPingFailures failed pings in a row it kills the process group: the process then
// exits like one that died by itself, and its owner (OnExit) replaces it, as SageMaker replaces
// an unhealthy instance. It ends when the process does.
func (p *process) watch(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		err := p.ping(pctx)
		cancel()
		if err == nil || p.stopping.Load() {
			failures = 0
			continue
		}
		failures++
		p.opts.Logger.Warn("model server failed a health check", "endpoint", p.opts.Endpoint, "variant", p.opts.Variant,
			"instance", p.opts.InstanceID, "failures", failures, "error", err)
		if failures >= maxPingFailures && !p.stopping.Load() {
			p.opts.Logger.Error("model server is unhealthy; killing it to be replaced", "endpoint", p.opts.Endpoint,
				"variant", p.opts.Variant, "instance", p.opts.InstanceID, "failed pings", failures, "log", p.opts.LogPath)
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			return
		}
	}
}

// ping asks the process for GET /ping once; an error says what went wrong.
func (p *process) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.pingURL, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return errors.New("GET /ping: connection failed")
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("GET /ping answered " + resp.Status)
	}
	return nil
}

// openLog opens a process's log for appending, creating its directory.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open model server log: %w", err)
	}
	return f, nil
}

// newTransport is a process's own connection pool: loopback only, no proxy, many idle
// connections so that concurrent invocations reuse them.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// shellCommand runs a simple command with exec, so that the model server is the process we
// started (signals and the parent-death signal reach it directly). Anything more (lists,
// pipes, subshells, variable assignments, builtins) runs as written.
func shellCommand(command string) string {
	c := strings.TrimSpace(command)
	if strings.ContainsAny(c, ";&|\n(){}`") {
		return command
	}
	first, _, _ := strings.Cut(c, " ")
	if strings.Contains(first, "=") {
		return command
	}
	switch first {
	case "exec", "cd", "export", "set", "source", ".", "if", "for", "while", "until", "case", "eval", "ulimit", "umask", "trap":
		return command
	}
	return "exec " + c
}

func processEnv(m *Model, o StartOptions, port int) []string {
	env := os.Environ()
	for _, k := range slices.Sorted(maps.Keys(m.env)) {
		env = append(env, k+"="+m.env[k])
	}
	p := strconv.Itoa(port)
	return append(env,
		"SAGEMAKER_BIND_TO_PORT="+p,
		"PORT="+p,
		"SM_MODEL_DIR="+m.dir,
		"SAGEMAKER_ENDPOINT_NAME="+o.Endpoint,
		"SAGEMAKER_VARIANT_NAME="+o.Variant,
		"SAGEMAKER_INSTANCE_ID="+o.InstanceID,
	)
}

func exitText(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "was killed by signal " + ws.Signal().String()
		}
		return "exited with status " + strconv.Itoa(ee.ExitCode())
	}
	return "stopped: " + err.Error()
}

// waitHealthy polls GET /ping until it answers 200, the process exits, or time runs out.
func (p *process) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(p.opts.HealthTimeout)
	interval := 10 * time.Millisecond
	var last string
	for {
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err := p.ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		last = err.Error()
		timer := time.NewTimer(interval)
		select {
		case <-p.done:
			timer.Stop()
			tail := logTail(p.opts.LogPath)
			err := fmt.Errorf("%s of variant %s %s before answering GET /ping on port %d (SAGEMAKER_BIND_TO_PORT).%s",
				p.describe(), p.opts.Variant, exitText(p.exitErr), p.port, tail)
			if strings.Contains(strings.ToLower(tail), "address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("start %s of variant %s: %w", p.describe(), p.opts.Variant, ctx.Err())
		case <-timer.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s of variant %s did not pass its health check: no 200 from GET /ping on port %d "+
				"(SAGEMAKER_BIND_TO_PORT) within %s (last: %s).%s",
				p.describe(), p.opts.Variant, p.port, p.opts.HealthTimeout, last, logTail(p.opts.LogPath))
		}
		interval = min(interval*2, 200*time.Millisecond)
	}
}

func (p *process) describe() string {
	return fmt.Sprintf("process container %q (image %s)", p.model.command, p.model.image)
}

// logTail returns the last lines of a log for an error message.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 2048
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-window, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	var lines []string
	for l := range strings.SplitSeq(string(buf), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, " sagedeploy: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	if len(lines) == 0 {
		return " Its log is " + path + "."
	}
	return " Last lines of its log (" + path + "): " + strings.Join(lines, " | ")
}

func (p *process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) LogPath() string { return p.opts.LogPath }

func (p *process) Invoke(ctx context.Context, inv *Invocation) error {
	if !p.Alive() {
		// Answer at once while the process is being replaced, rather than dialling a dead port.
		return fmt.Errorf("the model server process %s", exitText(p.exitErr))
	}
	ctx, cancel := context.WithTimeout(ctx, invokeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.invokeURL, bytes.NewReader(inv.Body))
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(inv.Body))
	h := req.Header
	if inv.ContentType != "" {
		h["Content-Type"] = []string{inv.ContentType}
	}
	if inv.Accept != "" {
		h["Accept"] = []string{inv.Accept}
	}
	if inv.CustomAttributes != "" {
		h["X-Amzn-Sagemaker-Custom-Attributes"] = []string{inv.CustomAttributes}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if !p.Alive() {
			return fmt.Errorf("the model server process %s", exitText(p.exitErr))
		}
		return err
	}
	defer resp.Body.Close()
	inv.Out, err = readInto(inv.Out[:0], resp.Body, resp.ContentLength)
	if err != nil {
		return fmt.Errorf("read the model server's answer: %w", err)
	}
	inv.Status = resp.StatusCode
	inv.RespContentType = resp.Header.Get("Content-Type")
	inv.RespCustomAttributes = resp.Header.Get("X-Amzn-Sagemaker-Custom-Attributes")
	return nil
}

// readInto appends r to dst, reusing dst's storage.
func readInto(dst []byte, r io.Reader, size int64) ([]byte, error) {
	if size > maxResponseBytes {
		return dst, fmt.Errorf("answer of %d bytes is larger than %d MiB", size, maxResponseBytes>>20)
	}
	if size > 0 {
		dst = slices.Grow(dst, int(size)+1)
	}
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, 4096)
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		if len(dst) > maxResponseBytes {
			return dst, fmt.Errorf("answer is larger than %d MiB", maxResponseBytes>>20)
		}
	}
}

// Stop sends SIGTERM to the process group, SIGKILL after a grace period (or when ctx ends), and
// reaps the process. Whatever else the command left in its group is killed too.
func (p *process) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.stopping.Store(true)
		pgid := p.cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		grace, cancel := context.WithTimeout(ctx, stopGrace)
		defer cancel()
		select {
		case <-p.done:
		case <-grace.Done():
		}
		// The command may have left processes of its own that are still shutting down.
		for grace.Err() == nil && groupAlive(pgid) {
			sleep(grace, 20*time.Millisecond)
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
		p.transport.CloseIdleConnections()
		p.ports.Release(p.port)
	})
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Pid is the process id of the model server, for tests and diagnostics.
func (p *process) Pid() int { return p.cmd.Process.Pid }
