package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
)

//go:embed reference/app.py
var referenceApp []byte

const (
	modelVersion = 2
	endpointName = "abalone-bench"
	// SageMaker's XGBoost image: the local SageMaker serves it in-process.
	xgbImage    = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
	region      = "us-east-1"
	pythonBin   = "/usr/bin/python3"
	gunicornBin = "/usr/bin/gunicorn"
)

// server is one server under test, running until stop.
type server struct {
	name     string
	url      string // POST here with a text/csv body
	pingURL  string // GET answers 200 when it serves
	pid      int    // process whose CPU time (and its children's) is the server's
	children bool   // count the CPU time of pid's direct children too (gunicorn workers)
	more     []int  // more processes whose CPU time (and their children's, with children) is the server's
	stop     func() error
}

// child is a server process started by this program.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startChild(cmd *exec.Cmd) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	return c, nil
}

// stop sends SIGTERM and waits; a process that does not stop in 30 s is killed.
func (c *child) stop() error {
	select {
	case <-c.done:
		return fmt.Errorf("exited early: %v", c.err)
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
		return errors.New("did not stop within 30s of SIGTERM; killed")
	}
}

// waitReady polls GET url until it answers 200, the process exits or the deadline passes.
func waitReady(ctx context.Context, url string, c *child, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("exited before serving (%v); see %s", c.err, logPath)
		case <-ctx.Done():
			return fmt.Errorf("not serving at %s after 90s; see %s", url, logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// loopbackListener returns a listener on a free loopback port and its file, to hand to a child
// as fd 3: no port is picked and then raced for.
func loopbackListener() (*os.File, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	return f, ln.Addr().String(), err
}

// buildSagedeploy builds the binary from the module this program is part of.
func buildSagedeploy(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root (go env GOMOD): %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if _, err := os.Stat(filepath.Join(root, "cmd", "sagedeploy")); err != nil {
		return "", fmt.Errorf("run from the sagedeploy module (no cmd/sagedeploy under %s), or pass -sagedeploy", root)
	}
	bin := filepath.Join(dir, "sagedeploy")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sagedeploy")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sagedeploy: %w", err)
	}
	return bin, nil
}

// startOursBinary runs `sagedeploy local` on a free loopback port and deploys the model on it.
func startOursBinary(ctx context.Context, o options, bin, dir, dataDir string) (*server, error) {
	logPath := filepath.Join(dir, "ours.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--log-level", o.logLevel, "local", "--addr", "127.0.0.1:0",
		"--data-dir", dataDir, "--output", "json")
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("start sagedeploy local: %w", err)
	}
	ready := make(chan string, 1)
	go func() {
		var msg struct{ URL string }
		line, _ := bufio.NewReader(stdout).ReadBytes('\n')
		json.Unmarshal(line, &msg)
		ready <- msg.URL
		io.Copy(io.Discard, stdout)
	}()
	var base string
	select {
	case base = <-ready:
	case <-time.After(60 * time.Second):
	}
	if base == "" {
		c.stop()
		return nil, fmt.Errorf("sagedeploy local did not print its URL; see %s", logPath)
	}
	srv := &server{name: "ours", pid: cmd.Process.Pid, stop: c.stop}
	if err := deployAbalone(ctx, base, srv); err != nil {
		c.stop()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return srv, nil
}

// startOursInProcess starts the local SageMaker in this process, for profiling.
func startOursInProcess(ctx context.Context, o options, dir, dataDir string) (*server, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "ours.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: level}))
	// As `sagedeploy local` does (internal/cli's localGC), so that the profile is of the same
	// collector's work.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(localGCPercent)
	}
	ls, err := localsm.Start(ctx, localsm.Options{Addr: "127.0.0.1:0", DataDir: dataDir, Logger: log})
	if err != nil {
		logFile.Close()
		return nil, err
	}
	srv := &server{name: "ours", pid: os.Getpid(), stop: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		defer logFile.Close()
		return ls.Close(ctx)
	}}
	if err := deployAbalone(ctx, ls.URL(), srv); err != nil {
		srv.stop()
		return nil, err
	}
	return srv, nil
}

// deployAbalone creates the endpoint through the SageMaker API as a user would: upload the
// artifact to S3, CreateModel, CreateEndpointConfig, CreateEndpoint, wait for InService.
func deployAbalone(ctx context.Context, base string, srv *server) error {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region), config.WithBaseEndpoint(base),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	if err != nil {
		return err
	}
	artifact, err := abalone.Artifact(modelVersion)
	if err != nil {
		return err
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		return fmt.Errorf("create bucket models: %w", err)
	}
	key := fmt.Sprintf("abalone/v%d/model.tar.gz", modelVersion)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String(key), Body: bytes.NewReader(artifact)}); err != nil {
		return fmt.Errorf("upload model artifact: %w", err)
	}
	sm := sagemaker.NewFromConfig(cfg)
	model := fmt.Sprintf("abalone-v%d", modelVersion)
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String(model),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sagemaker-bench"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(xgbImage), ModelDataUrl: aws.String("s3://models/" + key)},
	}); err != nil {
		return fmt.Errorf("create model %s: %w", model, err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(model),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName: aws.String("AllTraffic"), ModelName: aws.String(model),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1),
		}},
	}); err != nil {
		return fmt.Errorf("create endpoint config %s: %w", model, err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(endpointName), EndpointConfigName: aws.String(model)}); err != nil {
		return fmt.Errorf("create endpoint %s: %w", endpointName, err)
	}
	w := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpointName)}, 2*time.Minute); err != nil {
		return fmt.Errorf("wait for endpoint %s to be InService: %w", endpointName, err)
	}
	srv.url = base + "/endpoints/" + endpointName + "/invocations"
	srv.pingURL = ""
	return nil
}

// extractModel writes the xgboost-model file of the model version's model.tar.gz into dir.
func extractModel(dir string) (string, error) {
	artifact, err := abalone.Artifact(modelVersion)
	if err != nil {
		return "", err
	}
	zr, err := gzip.NewReader(bytes.NewReader(artifact))
	if err != nil {
		return "", fmt.Errorf("model.tar.gz: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("model.tar.gz has no xgboost-model: %w", err)
		}
		if filepath.Base(h.Name) != "xgboost-model" {
			continue
		}
		path := filepath.Join(dir, "xgboost-model")
		data, err := io.ReadAll(tr)
		if err != nil {
			return "", fmt.Errorf("model.tar.gz: %w", err)
		}
		return path, os.WriteFile(path, data, 0o644)
	}
}

// checkPython fails with what to install when the reference stack is missing.
func checkPython(ctx context.Context, o options) (string, error) {
	if _, err := os.Stat(gunicornBin); err != nil {
		return "", fmt.Errorf("the reference stack needs Debian's gunicorn at %s: apt-get install gunicorn python3-flask python3-xgboost", gunicornBin)
	}
	imports := "import flask, xgboost, numpy"
	if o.workerClass == "gevent" || o.wants("container") {
		imports += ", gevent"
	}
	out, err := exec.CommandContext(ctx, pythonBin, "-c", imports+
		"; import sys, gunicorn; print('python %d.%d, gunicorn %s, flask %s, xgboost %s' % (sys.version_info[0], sys.version_info[1], gunicorn.__version__, flask.__version__, xgboost.__version__))").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("the reference stack needs Debian's python3-flask, python3-xgboost (and python3-gevent for -python-worker-class gevent) for %s: %v: %s",
			pythonBin, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// startPython runs the reference app under gunicorn on a free loopback port.
func startPython(ctx context.Context, o options, dir, modelPath string) (*server, error) {
	appDir, err := writeReferenceApp(dir)
	if err != nil {
		return nil, err
	}
	f, addr, err := loopbackListener()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	logPath := filepath.Join(dir, "python.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(gunicornBin, "--bind", "fd://3", "--workers", strconv.Itoa(o.workers),
		"--worker-class", o.workerClass, "--chdir", appDir, "--log-level", "warning", "app:app")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "MODEL_PATH="+modelPath, "OMP_NUM_THREADS=1", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	c, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("start gunicorn: %w", err)
	}
	srv := &server{name: "python", url: "http://" + addr + "/invocations", pingURL: "http://" + addr + "/ping",
		pid: cmd.Process.Pid, children: true, stop: c.stop}
	if err := waitReady(ctx, srv.pingURL, c, logPath); err != nil {
		c.stop()
		return nil, fmt.Errorf("gunicorn: %w", err)
	}
	return srv, nil
}

// localGCPercent is the GOGC `sagedeploy local` runs at unless GOGC is set.
const localGCPercent = 400

// bareCommand is the hidden first argument that makes this program the bare server.
const bareCommand = "__bare-server"

// startBare runs this program as the bare handler, answering every POST with answer; with a
// profile path, the child writes a CPU profile of its whole life there.
func startBare(ctx context.Context, dir string, answer []byte, profile string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	answerPath := filepath.Join(dir, "bare-answer.csv")
	if err := os.WriteFile(answerPath, answer, 0o644); err != nil {
		return nil, err
	}
	f, addr, err := loopbackListener()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	logPath := filepath.Join(dir, "bare.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	args := []string{bareCommand, answerPath}
	if profile != "" {
		args = append(args, profile)
	}
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	c, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("start bare server: %w", err)
	}
	srv := &server{name: "bare", url: "http://" + addr + "/invocations", pingURL: "http://" + addr + "/ping", pid: cmd.Process.Pid, stop: c.stop}
	if err := waitReady(ctx, srv.pingURL, c, logPath); err != nil {
		c.stop()
		return nil, fmt.Errorf("bare server: %w", err)
	}
	return srv, nil
}

// serveBare is the bare server's main: a plain net/http server on the listener at fd 3 that
// reads each request body and answers a fixed body with the response headers ours sends, the
// least any model server must do.
func serveBare(args []string) error {
	if len(args) != 1 && len(args) != 2 {
		return errors.New("usage: " + bareCommand + " ANSWER_FILE [CPU_PROFILE] (listener at fd 3)")
	}
	if len(args) == 2 {
		stop, err := startProfile(args[1])
		if err != nil {
			return err
		}
		defer stop()
	}
	answer, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return err
	}
	length := []string{strconv.Itoa(len(answer))}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return // GET /ping
		}
		io.Copy(io.Discard, r.Body)
		// The headers a SageMaker client gets from ours (net/http adds Date to both).
		w.Header()["Content-Type"] = []string{"text/csv; charset=utf-8"}
		w.Header()["Content-Length"] = length
		w.Header()["X-Amzn-Invoked-Production-Variant"] = []string{"AllTraffic"}
		w.Write(answer)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startProfile writes a CPU profile to path until stop.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
