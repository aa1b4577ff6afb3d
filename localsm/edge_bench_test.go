package localsm_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// BenchmarkEdgeInvoke measures a one-row text/csv invocation of the abalone model (version 2)
// through the whole edge — routing, runtime lookup, model server, response — beside a bare
// handler that reads the body and answers the same bytes, the ceiling bench/serving compares
// against. Their ns/op ratio is the one-row target's (bare/ours ≥ 0.9) without the network and
// the load generator; allocs/op shows what the edge allocates per request.
//
//	go test -run '^$' -bench EdgeInvoke -benchmem ./localsm
//
// in-process calls ServeHTTP with a reused ResponseWriter ("unsigned" is wrk's request in
// bench/serving; "signed" carries a SigV4 Authorization header as the SDK sends it, whose
// region picks the endpoint); loopback goes through net/http on 127.0.0.1 with one keep-alive
// client.
func BenchmarkEdgeInvoke(b *testing.B) {
	srv, name := benchEndpoint(b, nil)
	rows, err := abalone.Rows()
	if err != nil {
		b.Fatal(err)
	}
	body := abalone.FeaturesCSV(rows[:1])
	path := "/endpoints/" + name + "/invocations"
	answer := invokeOnce(b, srv.Handler(), path, body)
	bare := bareHandler(answer)
	signed := "AWS4-HMAC-SHA256 Credential=AKIALOCALTEST/20261130/us-east-1/sagemaker/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

	b.Run("in-process/ours/unsigned", func(b *testing.B) { benchServeHTTP(b, srv.Handler(), path, "", body, answer) })
	b.Run("in-process/ours/signed", func(b *testing.B) { benchServeHTTP(b, srv.Handler(), path, signed, body, answer) })
	b.Run("in-process/bare", func(b *testing.B) { benchServeHTTP(b, bare, path, "", body, answer) })
	// `sagedeploy local` logs at info by default (failed invocations only); debug logs a line
	// per invocation. Both log to a text handler that discards its output.
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))
		b.Run("in-process/ours/log-"+strings.ToLower(level.String()), func(b *testing.B) {
			srv, _ := benchEndpoint(b, log)
			benchServeHTTP(b, srv.Handler(), path, "", body, answer)
		})
	}
	b.Run("loopback/ours", func(b *testing.B) { benchLoopback(b, srv.Handler(), path, body, answer) })
	b.Run("loopback/bare", func(b *testing.B) { benchLoopback(b, bare, path, body, answer) })
}

// bareHandler is bench/serving's bare server: it reads the body and answers a fixed one, with
// the headers ours answers with.
func bareHandler(answer []byte) http.Handler {
	length := []string{strconv.Itoa(len(answer))}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"text/csv; charset=utf-8"}
		w.Header()["Content-Length"] = length
		w.Header()["X-Amzn-Invoked-Production-Variant"] = []string{"AllTraffic"}
		w.Write(answer)
	})
}

// benchServeHTTP calls h with one request, reused as a server reuses its buffers, and checks
// every answer.
func benchServeHTTP(b *testing.B, h http.Handler, path, auth string, body, answer []byte) {
	w := &recordingWriter{h: http.Header{}}
	req := httptest.NewRequest(http.MethodPost, path, nil)
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Accept", "text/csv")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	r := bytes.NewReader(body)
	rc := io.NopCloser(r)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		req.Body = rc
		req.ContentLength = int64(len(body))
		clear(w.h)
		w.status, w.out = 0, w.out[:0]
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK || !bytes.Equal(w.out, answer) {
			b.Fatalf("status %d, answer %q; want 200 and %q", w.status, w.out, answer)
		}
	}
}

// benchLoopback posts body to h served on loopback, one request at a time on one connection.
func benchLoopback(b *testing.B, h http.Handler, path string, body, answer []byte) {
	ts := httptest.NewServer(h)
	defer ts.Close()
	client := ts.Client()
	out := make([]byte, 0, 256)
	r := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		req, err := http.NewRequest(http.MethodPost, ts.URL+path, r)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Accept", "text/csv")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf := bytes.NewBuffer(out[:0])
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(buf.Bytes(), answer) {
			b.Fatalf("status %d, answer %q; want 200 and %q", resp.StatusCode, buf.Bytes(), answer)
		}
	}
}

// recordingWriter keeps the status and the body of the last answer.
type recordingWriter struct {
	h      http.Header
	status int
	out    []byte
}

func (w *recordingWriter) Header() http.Header { return w.h }
func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *recordingWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.out = append(w.out, p...)
	return len(p), nil
}

// invokeOnce returns the answer of one successful invocation.
func invokeOnce(b *testing.B, h http.Handler, path string, body []byte) []byte {
	b.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/csv")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("invoke %s: status %d: %s", path, rec.Code, rec.Body.Bytes())
	}
	return rec.Body.Bytes()
}

// benchEndpoint starts a local SageMaker and deploys the abalone model (version 2) through the
// SDK as a user would, in the default region; it returns the server and the endpoint's name.
// A nil log discards the server's logs.
func benchEndpoint(b *testing.B, log *slog.Logger) (*localsm.Server, string) {
	b.Helper()
	srv := localsmtest.Start(b, localsm.Options{Logger: log})
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIALOCALTEST", "local-secret", "")),
		config.WithBaseEndpoint(srv.URL()), config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil))
	if err != nil {
		b.Fatal(err)
	}
	artifact, err := abalone.Artifact(2)
	if err != nil {
		b.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		b.Fatalf("create bucket: %v", err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("abalone/v2/model.tar.gz"),
		Body: bytes.NewReader(artifact)}); err != nil {
		b.Fatalf("upload artifact: %v", err)
	}
	sm := sagemaker.NewFromConfig(cfg)
	const name = "abalone-bench"
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(name), ExecutionRoleArn: aws.String(roleArn),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(xgbImage), ModelDataUrl: aws.String("s3://" + bucket + "/abalone/v2/model.tar.gz")},
	}); err != nil {
		b.Fatalf("create model: %v", err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(name),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}},
	}); err != nil {
		b.Fatalf("create endpoint config: %v", err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
		b.Fatalf("create endpoint: %v", err)
	}
	w := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, time.Minute); err != nil {
		b.Fatalf("wait for endpoint %s: %v", name, err)
	}
	return srv, name
}
