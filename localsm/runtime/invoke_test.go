package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

func invokeInput(endpoint string, body []byte, contentType, accept string) *sagemakerruntime.InvokeEndpointInput {
	in := &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(endpoint), Body: body}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if accept != "" {
		in.Accept = aws.String(accept)
	}
	return in
}

func TestInvokeAbaloneThroughTheSDK(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, v := range abalone.Versions() {
		endpoint := fmt.Sprintf("abalone-v%d", v)
		e.deploy(t, xgbDeployment(endpoint, v, 1))
		want := expected(t, v)

		out, err := e.client.InvokeEndpoint(ctx, invokeInput(endpoint, abalone.SampleCSV(), "text/csv", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := parseFloats(t, out.Body); !equal(got, want) {
			t.Errorf("v%d text/csv: %v, python's xgboost says %v", v, got, want)
		}
		if aws.ToString(out.InvokedProductionVariant) != "AllTraffic" || aws.ToString(out.ContentType) != "text/csv; charset=utf-8" {
			t.Errorf("variant %q, content type %q", aws.ToString(out.InvokedProductionVariant), aws.ToString(out.ContentType))
		}

		out, err = e.client.InvokeEndpoint(ctx, invokeInput(endpoint, abalone.SampleCSV(), "text/csv", "application/json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Predictions []struct{ Score float64 } `json:"predictions"`
		}
		if err := json.Unmarshal(out.Body, &doc); err != nil {
			t.Fatalf("application/json %s: %v", out.Body, err)
		}
		var got []float32
		for _, p := range doc.Predictions {
			got = append(got, float32(p.Score))
		}
		if !equal(got, want) || aws.ToString(out.ContentType) != "application/json" {
			t.Errorf("v%d application/json (%s): %v, want %v", v, aws.ToString(out.ContentType), got, want)
		}

		var svm strings.Builder
		for line := range strings.SplitSeq(strings.TrimSpace(string(abalone.SampleCSV())), "\n") {
			svm.WriteString("1")
			for i, f := range strings.Split(line, ",") {
				fmt.Fprintf(&svm, " %d:%s", i+1, f)
			}
			svm.WriteString("\n")
		}
		out, err = e.client.InvokeEndpoint(ctx, invokeInput(endpoint, []byte(svm.String()), "text/libsvm", "text/csv"))
		if err != nil {
			t.Fatal(err)
		}
		if got := parseFloats(t, out.Body); !equal(got, want) {
			t.Errorf("v%d text/libsvm: %v, want %v", v, got, want)
		}

		// Every abalone row, 100 per request.
		rows, err := abalone.Rows()
		if err != nil {
			t.Fatal(err)
		}
		out, err = e.client.InvokeEndpoint(ctx, invokeInput(endpoint, abalone.FeaturesCSV(rows[:100]), "text/csv", ""))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(parseFloats(t, out.Body)); n != 100 {
			t.Errorf("100 rows gave %d predictions", n)
		}
	}
}

func TestRuntimeErrorsAsTheSDKTypesThem(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 4096 })
	ctx := context.Background()
	e.deploy(t, xgbDeployment("abalone", 1, 1))

	_, err := e.client.InvokeEndpoint(ctx, invokeInput("nope", abalone.SampleCSV(), "text/csv", ""))
	var ve *types.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), "Endpoint nope of account 000000000000 not found.") || status(err) != 400 {
		t.Errorf("unknown endpoint: %v (status %d), want ValidationError 400", err, status(err))
	}

	_, err = e.client.InvokeEndpoint(ctx, invokeInput("abalone", []byte("Sex,Length\nM,0.4"), "text/csv", ""))
	var me *types.ModelError
	if !errors.As(err, &me) || status(err) != 424 {
		t.Fatalf("bad payload: %v (status %d), want ModelError 424", err, status(err))
	}
	if aws.ToInt32(me.OriginalStatusCode) != 415 || !strings.Contains(aws.ToString(me.OriginalMessage), `"Sex" is not a number`) ||
		!strings.Contains(me.ErrorMessage(), "Received client error (415)") {
		t.Errorf("ModelError: status %d, original %q, message %q", aws.ToInt32(me.OriginalStatusCode), aws.ToString(me.OriginalMessage), me.ErrorMessage())
	}

	// The SDK's default content type for a body is application/octet-stream, which the XGBoost
	// container refuses too.
	_, err = e.client.InvokeEndpoint(ctx, invokeInput("abalone", abalone.SampleCSV(), "", ""))
	if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 415 {
		t.Errorf("no content type: %v", err)
	}

	big := []byte(strings.Repeat(strings.SplitN(string(abalone.SampleCSV()), "\n", 2)[0]+"\n", 200))
	_, err = e.client.InvokeEndpoint(ctx, invokeInput("abalone", big, "text/csv", ""))
	if !errors.As(err, &ve) || status(err) != 413 || !strings.Contains(ve.ErrorMessage(), "4096-byte limit") {
		t.Errorf("body over MaxBodyBytes: %v (status %d), want ValidationError 413", err, status(err))
	}

	in := invokeInput("abalone", abalone.SampleCSV(), "text/csv", "")
	in.TargetVariant = aws.String("Canary")
	_, err = e.client.InvokeEndpoint(ctx, in)
	if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), "Variant Canary not found on endpoint abalone; its variants are AllTraffic") {
		t.Errorf("unknown target variant: %v", err)
	}
}

func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// TestAWSCLIPrintsRuntimeErrors runs the real AWS CLI v2 against the runtime.
func TestAWSCLIPrintsRuntimeErrors(t *testing.T) {
	const cli = "/usr/bin/aws"
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("this test needs the AWS CLI v2 at %s: %v", cli, err)
	}
	e := newEnv(t, nil)
	e.deploy(t, xgbDeployment("abalone", 2, 1))
	dir := t.TempDir()
	good := filepath.Join(dir, "sample.csv")
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(good, abalone.SampleCSV(), 0o644)
	os.WriteFile(bad, []byte("Sex,Length\n"), 0o644)
	run := func(endpoint, body, outFile string) (string, error) {
		cmd := exec.Command(cli, "--endpoint-url", e.url, "--region", "us-east-1", "--no-cli-pager",
			"sagemaker-runtime", "invoke-endpoint", "--endpoint-name", endpoint,
			"--content-type", "text/csv", "--body", "fileb://"+body, outFile)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=SECRETTEST",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The CLI takes a second or two to start: run the three cases at once.
	type result struct {
		out string
		err error
	}
	var results [3]result
	var wg sync.WaitGroup
	for i, c := range [][2]string{{"abalone", good}, {"abalone", bad}, {"missing", good}} {
		wg.Go(func() {
			out, err := run(c[0], c[1], filepath.Join(dir, fmt.Sprint("out", i)))
			results[i] = result{out, err}
		})
	}
	wg.Wait()
	if r := results[0]; r.err != nil || !strings.Contains(r.out, `"InvokedProductionVariant": "AllTraffic"`) {
		t.Fatalf("aws sagemaker-runtime invoke-endpoint: %v\n%s", r.err, r.out)
	}
	body, _ := os.ReadFile(filepath.Join(dir, "out0"))
	if got := parseFloats(t, body); !equal(got, expected(t, 2)) {
		t.Errorf("CLI got %v", got)
	}
	if r := results[1]; r.err == nil || !strings.Contains(r.out, "An error occurred (ModelError) when calling the InvokeEndpoint operation") ||
		!strings.Contains(r.out, `Received client error (415) from primary (variant AllTraffic) with message "Loading csv data failed`) {
		t.Errorf("bad payload through the CLI: %v\n%s", r.err, r.out)
	}
	if r := results[2]; r.err == nil || !strings.Contains(r.out, "An error occurred (ValidationError) when calling the InvokeEndpoint operation") ||
		!strings.Contains(r.out, "Endpoint missing of account 000000000000 not found.") {
		t.Errorf("unknown endpoint through the CLI: %v\n%s", r.err, r.out)
	}
}

func TestProcessContainerBehindTheRuntime(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.deploy(t, e.processDeployment(t, "scorer", "scorer-v1", 2, map[string]string{"MODEL_GREETING": "hi"}))

	pids := map[float64]bool{}
	for range 6 {
		in := invokeInput("scorer", []byte("1,2"), "text/csv", "application/json")
		in.CustomAttributes = aws.String("trace-id=42")
		out, err := e.client.InvokeEndpoint(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(out.Body, &got); err != nil {
			t.Fatalf("answer %s: %v", out.Body, err)
		}
		if got["model"] != "scorer-v1" || got["content_type"] != "text/csv" || got["accept"] != "application/json" || got["env"] != "hi" {
			t.Errorf("the process saw %v", got)
		}
		if aws.ToString(out.CustomAttributes) != "echo:trace-id=42" || aws.ToString(out.ContentType) != "application/json" {
			t.Errorf("custom attributes %q, content type %q", aws.ToString(out.CustomAttributes), aws.ToString(out.ContentType))
		}
		pids[got["pid"].(float64)] = true
	}
	if len(pids) != 2 {
		t.Errorf("requests reached %d processes, want both instances", len(pids))
	}

	_, err := e.client.InvokeEndpoint(ctx, invokeInput("scorer", []byte("fail"), "text/csv", ""))
	var me *types.ModelError
	if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 400 || !strings.Contains(aws.ToString(me.OriginalMessage), "bad input: fail") {
		t.Fatalf("a model's 400: %v", err)
	}
	if !strings.Contains(me.ErrorMessage(), filepath.Join(e.workDir, "logs", "scorer")) {
		t.Errorf("ModelError message %q does not point at the log", me.ErrorMessage())
	}
	logs, _ := filepath.Glob(filepath.Join(e.workDir, "logs", "scorer", "*", "AllTraffic-*.log"))
	if len(logs) != 2 {
		t.Errorf("per-instance logs: %v", logs)
	}
}

func TestInferencePipeline(t *testing.T) {
	e := newEnv(t, nil)
	dep := e.processDeployment(t, "pipeline", "first", 1, nil)
	second := e.processDeployment(t, "pipeline", "second", 1, nil).Variants[0].Containers[0]
	dep.Variants[0].Containers = append(dep.Variants[0].Containers, second)
	e.deploy(t, dep)
	out, err := e.client.InvokeEndpoint(context.Background(), invokeInput("pipeline", []byte("raw"), "text/plain", "application/json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(out.Body, &got)
	var inner map[string]any
	json.Unmarshal([]byte(got["body"].(string)), &inner)
	if got["model"] != "second" || got["content_type"] != "application/json" || got["accept"] != "application/json" ||
		inner["model"] != "first" || inner["body"] != "raw" || inner["accept"] != "" {
		t.Errorf("pipeline: last container saw %v; first saw %v", got, inner)
	}
}

func TestRawHTTPEdges(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 1000 })
	e.deploy(t, xgbDeployment("abalone", 1, 1))
	do := func(method, path string, body io.Reader, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.url+path, body)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, _ := do(http.MethodGet, "/endpoints/abalone/invocations", nil, nil)
	if resp.StatusCode != 405 || resp.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Errorf("GET: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	resp, _ = do(http.MethodPost, "/endpoints/abalone", nil, nil)
	if resp.StatusCode != 404 {
		t.Errorf("POST without /invocations: %d", resp.StatusCode)
	}
	// A chunked body (no Content-Length) over the limit is cut off at the limit.
	chunked := struct{ io.Reader }{strings.NewReader(strings.Repeat("1,2,3\n", 400))}
	resp, body := do(http.MethodPost, "/endpoints/abalone/invocations", chunked, map[string]string{"Content-Type": "text/csv"})
	if resp.StatusCode != 413 || resp.Header.Get("X-Amzn-ErrorType") != "ValidationError" || !strings.Contains(body, "1000-byte limit") ||
		resp.Header.Get("X-Amzn-RequestId") == "" {
		t.Errorf("chunked body over the limit: %d %q %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
	lines := strings.SplitAfter(string(abalone.SampleCSV()), "\n")
	small := struct{ io.Reader }{strings.NewReader(strings.Join(lines[:3], ""))}
	if resp, body := do(http.MethodPost, "/endpoints/abalone/invocations", small, map[string]string{"Content-Type": "text/csv"}); resp.StatusCode != 200 {
		t.Errorf("chunked body under the limit: %d %s", resp.StatusCode, body)
	}
	resp, body = do(http.MethodPost, "/endpoints/abalone/invocations", strings.NewReader("1"),
		map[string]string{"X-Amzn-SageMaker-Target-Model": "m.tar.gz"})
	if resp.StatusCode != 400 || !strings.Contains(body, "not a multi-model endpoint") {
		t.Errorf("TargetModel: %d %s", resp.StatusCode, body)
	}
}

func TestEmptyBodyAnswersNoContent(t *testing.T) {
	e := newEnv(t, nil)
	e.deploy(t, xgbDeployment("abalone", 1, 1))
	out, err := e.client.InvokeEndpoint(context.Background(), invokeInput("abalone", []byte{}, "text/csv", ""))
	if err != nil || len(out.Body) != 0 || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" {
		t.Errorf("empty body: %v, %q", err, out.Body)
	}
}
