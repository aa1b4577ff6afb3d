package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrkScript makes wrk POST the body in $BENCH_BODY as text/csv and print its figures as one
// JSON line, so nothing depends on wrk's human-readable output.
const wrkScript = `
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Accept"] = "text/csv"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`

// loadResult is one wrk run against one server with one body.
type loadResult struct {
	Server   string  `json:"server"`
	Rows     int     `json:"rows"`
	Requests int64   `json:"requests"`
	RPS      float64 `json:"requests_per_second"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	Errors   int64   `json:"errors"` // non-2xx answers, timeouts, read/write/connect errors
	// ServerCPU and LoadCPU are cores busy on average (CPU seconds per second of load).
	ServerCPU float64 `json:"server_cpu_cores"`
	LoadCPU   float64 `json:"loadgen_cpu_cores"`
}

type wrkFigures struct {
	Requests      int64 `json:"requests"`
	DurationUS    int64 `json:"duration_us"`
	ConnectErrors int64 `json:"connect_errors"`
	ReadErrors    int64 `json:"read_errors"`
	WriteErrors   int64 `json:"write_errors"`
	StatusErrors  int64 `json:"status_errors"`
	Timeouts      int64 `json:"timeouts"`
	P50US         int64 `json:"p50_us"`
	P99US         int64 `json:"p99_us"`
	MaxUS         int64 `json:"max_us"`
}

// loader runs wrk.
type loader struct {
	o      options
	script string
	dir    string
}

func newLoader(o options, dir string) (*loader, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, fmt.Errorf("wrk is not installed: apt-get install wrk")
	}
	script := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return nil, err
	}
	return &loader{o: o, script: script, dir: dir}, nil
}

func wrkVersion() string {
	out, _ := exec.Command("wrk", "--version").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	if f := strings.Fields(line); len(f) >= 2 {
		return "wrk " + f[1]
	}
	return "wrk"
}

// run warms srv up, then loads it for the configured duration with body.
func (l *loader) run(ctx context.Context, srv *server, rows int, body []byte) (loadResult, error) {
	bodyPath := filepath.Join(l.dir, fmt.Sprintf("body-%d.csv", rows))
	if err := os.WriteFile(bodyPath, body, 0o644); err != nil {
		return loadResult{}, err
	}
	if l.o.warmup > 0 {
		if _, _, err := l.wrk(ctx, srv.url, bodyPath, l.o.warmup); err != nil {
			return loadResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	cpu0, err := srv.cpuSeconds()
	if err != nil {
		return loadResult{}, err
	}
	f, loadCPU, err := l.wrk(ctx, srv.url, bodyPath, l.o.duration)
	if err != nil {
		return loadResult{}, err
	}
	cpu1, err := srv.cpuSeconds()
	if err != nil {
		return loadResult{}, err
	}
	secs := float64(f.DurationUS) / 1e6
	return loadResult{
		Server: srv.name, Rows: rows, Requests: f.Requests,
		RPS: float64(f.Requests) / secs,
		P50: float64(f.P50US) / 1e3, P99: float64(f.P99US) / 1e3, Max: float64(f.MaxUS) / 1e3,
		Errors:    f.ConnectErrors + f.ReadErrors + f.WriteErrors + f.StatusErrors + f.Timeouts,
		ServerCPU: (cpu1 - cpu0) / secs,
		LoadCPU:   loadCPU / secs,
	}, nil
}

// wrk runs one load and returns its figures and the CPU seconds wrk itself used.
func (l *loader) wrk(ctx context.Context, url, bodyPath string, d time.Duration) (wrkFigures, float64, error) {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(l.o.threads), "-c", strconv.Itoa(l.o.connections),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "-s", l.script, url)
	cmd.Env = append(os.Environ(), "BENCH_BODY="+bodyPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return wrkFigures{}, 0, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var f wrkFigures
	found := false
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if js, ok := strings.CutPrefix(sc.Text(), "BENCH_RESULT "); ok {
			if err := json.Unmarshal([]byte(js), &f); err != nil {
				return f, 0, fmt.Errorf("wrk result %q: %w", js, err)
			}
			found = true
		}
	}
	if !found || f.DurationUS <= 0 {
		return f, 0, fmt.Errorf("wrk printed no result:\n%s%s", stdout.String(), stderr.String())
	}
	var cpu float64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = tv(ru.Utime) + tv(ru.Stime)
	}
	return f, cpu, nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds is the CPU time of the server's processes.
func (s *server) cpuSeconds() (float64, error) {
	var total float64
	for _, pid := range append([]int{s.pid}, s.more...) {
		cpu, err := cpuSeconds(pid, s.children)
		if err != nil {
			return 0, err
		}
		total += cpu
	}
	return total, nil
}

// cpuSeconds is the user+system CPU time of pid, plus that of its direct children when asked
// (gunicorn's workers are children of its arbiter).
func cpuSeconds(pid int, children bool) (float64, error) {
	total, _, err := procCPU(pid)
	if err != nil {
		return 0, fmt.Errorf("CPU time of server process %d: %w", pid, err)
	}
	if !children {
		return total, nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		cpu, ppid, err := procCPU(p)
		if err == nil && ppid == pid {
			total += cpu
		}
	}
	return total, nil
}

// procCPU reads utime+stime and the parent of a process from /proc/PID/stat.
func procCPU(pid int) (float64, int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks, ppid, nil
}
