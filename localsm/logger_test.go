package localsm_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// testLogger sends the server's logs to the test log, shown when a test fails or with -v. Lines
// logged after the test ended are dropped.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// At the default level a user sees every control-plane call and every failed invocation, but
// not a line per successful prediction.
func TestCallLogAtInfo(t *testing.T) {
	e, logged := servedLogged(t, slog.LevelInfo)
	rt := sagemakerruntime.NewFromConfig(e.cfg)
	if _, err := rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("no-such-endpoint"), ContentType: aws.String("text/csv"), Body: []byte("1,2")}); err == nil {
		t.Fatal("invoking a missing endpoint succeeded")
	}
	out := logged()
	if !strings.Contains(out, "op=CreateEndpoint") {
		t.Errorf("control-plane call CreateEndpoint not logged at info:\n%s", out)
	}
	if !strings.Contains(out, "/endpoints/no-such-endpoint/invocations") {
		t.Errorf("failed invocation not logged at info:\n%s", out)
	}
	if strings.Contains(out, "/endpoints/logged/invocations") {
		t.Errorf("successful invocation logged at info (a line per prediction):\n%s", out)
	}
}

// At debug every invocation is logged, with its outcome and how long it took from its arrival.
func TestInvocationLogAtDebug(t *testing.T) {
	_, logged := servedLogged(t, slog.LevelDebug)
	out := logged()
	var line string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.Contains(l, "resource=/endpoints/logged/invocations") {
			line = l
		}
	}
	for _, want := range []string{"level=DEBUG", `msg="invocation call"`, "method=POST", "outcome=200", "duration="} {
		if !strings.Contains(line, want) {
			t.Errorf("the invocation's log line %q lacks %s; the log:\n%s", line, want, out)
		}
	}
}

// servedLogged starts a local SageMaker logging at level, serves endpoint "logged" and predicts
// once; logged returns what was logged so far.
func servedLogged(t *testing.T, level slog.Level) (e *env, logged func() string) {
	t.Helper()
	isolateAWSConfig(t)
	var mu sync.Mutex
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: level}))
	e = startEnvLogging(t, "", log)
	e.deployable("m1", "c1", e.uploadArtifact(1), 1)
	if _, err := e.sm.CreateEndpoint(context.Background(), &sagemaker.CreateEndpointInput{
		EndpointName: aws.String("logged"), EndpointConfigName: aws.String("c1")}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("logged", smtypes.EndpointStatusInService)
	e.predict("logged", 1)
	return e, func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
