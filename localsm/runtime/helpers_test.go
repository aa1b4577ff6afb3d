package runtime

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

const (
	xgbImage = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
	byoImage = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scorer:1"
)

// modelServerBin is the serving package's test model server, built once by TestMain.
var modelServerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	modelServerBin = filepath.Join(dir, "modelserver")
	build := exec.Command("go", "build", "-o", modelServerBin, "../serving/testdata/modelserver")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the test model server (go build ../serving/testdata/modelserver):", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// memArtifacts is a spec.Artifacts over a map of s3:// URLs, safe for concurrent use.
type memArtifacts struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (m *memArtifacts) put(url string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		m.objs = map[string][]byte{}
	}
	m.objs[url] = b
}

func (m *memArtifacts) Open(ctx context.Context, url string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[url]
	if !ok {
		return nil, fmt.Errorf("no such key: %s", url)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// env is one runtime under test behind a loopback HTTP server, with an SDK client for it.
type env struct {
	rt      *Runtime
	arts    *memArtifacts
	url     string
	client  *sagemakerruntime.Client
	workDir string
	events  chan spec.Event
}

func newEnv(t testing.TB, configure func(*Options)) *env {
	t.Helper()
	arts := &memArtifacts{}
	for _, v := range abalone.Versions() {
		b, err := abalone.Artifact(v)
		if err != nil {
			t.Fatal(err)
		}
		arts.put(abaloneURL(v), b)
	}
	opts := Options{Artifacts: arts, WorkDir: t.TempDir(), HealthTimeout: 30 * time.Second,
		ImageMap: map[string]string{byoImage: modelServerBin}}
	if configure != nil {
		configure(&opts)
	}
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rt.Close(ctx)
	})
	client := sagemakerruntime.New(sagemakerruntime.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
		Retryer:      aws.NopRetryer{}, // every failure counts
		HTTPClient:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	})
	return &env{rt: rt, arts: arts, url: srv.URL, client: client, workDir: opts.WorkDir, events: make(chan spec.Event, 1000)}
}

func abaloneURL(version int) string {
	return fmt.Sprintf("s3://sagedeploy-models/abalone/v%d/model.tar.gz", version)
}

// xgbDeployment deploys abalone model version v with the built-in server.
func xgbDeployment(endpoint string, v, instances int) spec.Deployment {
	return spec.Deployment{Endpoint: endpoint, Config: fmt.Sprintf("%s-config-v%d", endpoint, v), Variants: []spec.Variant{{
		Name: "AllTraffic", ModelName: fmt.Sprintf("abalone-v%d", v), InstanceType: "ml.m5.large", InstanceCount: instances, Weight: 1,
		Containers: []spec.Container{{Image: xgbImage, ModelDataURL: abaloneURL(v)}},
	}}}
}

// processDeployment deploys the test model server with a model file saying which model it is.
func (e *env) processDeployment(t testing.TB, endpoint, model string, instances int, environment map[string]string) spec.Deployment {
	url := "s3://sagedeploy-models/" + model + "/model.tar.gz"
	e.arts.put(url, tarGz(t, map[string]string{"model.txt": model}))
	return spec.Deployment{Endpoint: endpoint, Config: endpoint + "-" + model, Variants: []spec.Variant{{
		Name: "AllTraffic", ModelName: model, InstanceType: "ml.m5.large", InstanceCount: instances, Weight: 1,
		Containers: []spec.Container{{Image: byoImage, ModelDataURL: url, Environment: environment}},
	}}}
}

func (e *env) deploy(t testing.TB, dep spec.Deployment) {
	t.Helper()
	if err := e.rt.Deploy(context.Background(), dep, e.progress); err != nil {
		t.Fatalf("deploy %s to %s: %v", dep.Config, dep.Endpoint, err)
	}
}

func (e *env) progress(ev spec.Event) {
	select {
	case e.events <- ev:
	default:
	}
}

// drainEvents returns the progress messages so far.
func (e *env) drainEvents() []string {
	var out []string
	for {
		select {
		case ev := <-e.events:
			out = append(out, ev.Message)
		default:
			return out
		}
	}
}

// expected is python's xgboost prediction for abalone.SampleCSV with model version v.
func expected(t testing.TB, v int) []float32 {
	t.Helper()
	b, err := abalone.ExpectedCSV(v)
	if err != nil {
		t.Fatal(err)
	}
	return parseFloats(t, b)
}

func parseFloats(t testing.TB, b []byte) []float32 {
	t.Helper()
	var out []float32
	for _, f := range strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' || r == ',' }) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("prediction %q: %v", f, err)
		}
		out = append(out, float32(v))
	}
	return out
}

// version says which abalone version answered a SampleCSV request (0: neither).
func version(t testing.TB, body []byte, want1, want2 []float32) int {
	got := parseFloats(t, body)
	for v, want := range map[int][]float32{1: want1, 2: want2} {
		if equal(got, want) {
			return v
		}
	}
	return 0
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tarGz builds a model.tar.gz of files.
func tarGz(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// id names an endpoint in the default region.
func id(name string) spec.EndpointID { return spec.EndpointID{Name: name} }
