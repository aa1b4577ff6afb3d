// Package allinonetest starts a real all-in-one sagedeploy (local SageMaker, release server,
// agent) for tests, and checks what its endpoints serve through the real AWS SDK and what its
// release server shows through its API. It is test support, not a fake: every part is the
// production one.
package allinonetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// Start runs a stack until the test ends: on o.DataDir (a temp dir when empty), free ports, the
// cheapest bcrypt cost, and logs through t.Log (debug with SAGEDEPLOY_TEST_LOG=1, else warnings).
func Start(t testing.TB, o allinone.Options) *allinone.Stack {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	o.LocalAddr = cmp.Or(o.LocalAddr, "127.0.0.1:0")
	o.ServerAddr = cmp.Or(o.ServerAddr, "127.0.0.1:0")
	o.PasswordCost = cmp.Or(o.PasswordCost, bcrypt.MinCost)
	if o.Logger == nil {
		o.Logger = Logger(t)
	}
	s, err := allinone.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start the all-in-one stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close the all-in-one stack: %v", err)
		}
	})
	return s
}

// Logger logs through t.Log at debug level when SAGEDEPLOY_TEST_LOG=1, else only warnings.
func Logger(t testing.TB) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("SAGEDEPLOY_TEST_LOG") == "1" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: lvl}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func awsConfig(s *allinone.Stack) aws.Config {
	return aws.Config{Region: s.Region(), Credentials: credentials.NewStaticCredentialsProvider(allinone.AccessKeyID, allinone.SecretAccessKey, "")}
}

// SageMaker is an SDK client of the stack's local SageMaker.
func SageMaker(s *allinone.Stack) *sagemaker.Client {
	return sagemaker.NewFromConfig(awsConfig(s), func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(s.LocalURL()) })
}

// Runtime is an SDK client of the stack's endpoint invocations.
func Runtime(s *allinone.Stack) *sagemakerruntime.Client {
	return sagemakerruntime.NewFromConfig(awsConfig(s), func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(s.LocalURL()) })
}

// Served is what an endpoint serves, as SageMaker describes it.
type Served struct {
	Status          string
	ConfigName      string
	ModelName       string
	ModelPackageARN string
	Version         int // the number at the end of the model package ARN
	Instances       int // the current instance count of the first variant
}

// Describe follows DescribeEndpoint → DescribeEndpointConfig → DescribeModel to the model package
// version the endpoint serves.
func Describe(t testing.TB, s *allinone.Stack, endpoint string) Served {
	t.Helper()
	ctx := context.Background()
	sm := SageMaker(s)
	ep, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		t.Fatalf("DescribeEndpoint %s: %v", endpoint, err)
	}
	out := Served{Status: string(ep.EndpointStatus), ConfigName: aws.ToString(ep.EndpointConfigName)}
	if len(ep.ProductionVariants) > 0 {
		out.Instances = int(aws.ToInt32(ep.ProductionVariants[0].CurrentInstanceCount))
	}
	cfg, err := sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: ep.EndpointConfigName})
	if err != nil {
		t.Fatalf("DescribeEndpointConfig %s: %v", out.ConfigName, err)
	}
	if len(cfg.ProductionVariants) != 1 {
		t.Fatalf("endpoint config %s has %d variants, want 1", out.ConfigName, len(cfg.ProductionVariants))
	}
	out.ModelName = aws.ToString(cfg.ProductionVariants[0].ModelName)
	m, err := sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String(out.ModelName)})
	if err != nil {
		t.Fatalf("DescribeModel %s: %v", out.ModelName, err)
	}
	if m.PrimaryContainer != nil {
		out.ModelPackageARN = aws.ToString(m.PrimaryContainer.ModelPackageName)
	} else if len(m.Containers) > 0 {
		out.ModelPackageARN = aws.ToString(m.Containers[0].ModelPackageName)
	}
	i := strings.LastIndex(out.ModelPackageARN, "/")
	n, err := strconv.Atoi(out.ModelPackageARN[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("model %s of endpoint %s names no model package version: %q", out.ModelName, endpoint, out.ModelPackageARN)
	}
	out.Version = n
	return out
}

// Invoke calls an endpoint through the SDK with a text/csv body and returns the answer.
func Invoke(t testing.TB, s *allinone.Stack, endpoint string, body []byte) string {
	t.Helper()
	out, err := Runtime(s).InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: body})
	if err != nil {
		t.Fatalf("InvokeEndpoint %s: %v", endpoint, err)
	}
	return string(out.Body)
}

// ExpectServes checks that endpoint is InService on version v of the abalone example: the model
// package it describes, and its answer to abalone.SampleCSV, which must be v's reference
// predictions (abalone.ExpectedCSV).
func ExpectServes(t testing.TB, s *allinone.Stack, endpoint string, v int) {
	t.Helper()
	d := Describe(t, s, endpoint)
	if d.Status != "InService" || d.Version != v {
		t.Fatalf("endpoint %s is %s on model package %s (version %d), want InService on version %d", endpoint, d.Status, d.ModelPackageARN, d.Version, v)
	}
	if err := SamePredictions(Invoke(t, s, endpoint, abalone.SampleCSV()), v); err != nil {
		t.Fatalf("endpoint %s: %v", endpoint, err)
	}
}

// SamePredictions checks an answer to abalone.SampleCSV against version v's reference
// predictions, to 1e-4.
func SamePredictions(body string, v int) error {
	want, err := abalone.ExpectedCSV(v)
	if err != nil {
		return err
	}
	got, exp := strings.Fields(strings.ReplaceAll(body, ",", " ")), strings.Fields(string(want))
	if len(got) != len(exp) {
		return fmt.Errorf("answered %d predictions, version %d's reference has %d: %q", len(got), v, len(exp), body)
	}
	for i := range exp {
		g, gerr := strconv.ParseFloat(got[i], 64)
		e, _ := strconv.ParseFloat(exp[i], 64)
		if gerr != nil || math.Abs(g-e) > 1e-4 {
			return fmt.Errorf("prediction %d is %s, version %d predicts %s: not version %d's answer", i, got[i], v, exp[i], v)
		}
	}
	return nil
}

// API sends a request to the stack's release server as user (basic auth) and decodes a JSON
// answer into out (when not nil); it returns the status code. body is nil or a value sent as
// JSON.
func API(t testing.TB, s *allinone.Stack, user, password, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.ListenURL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s answered %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// WaitFor polls check every 50ms until it returns true, failing the test with what after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
