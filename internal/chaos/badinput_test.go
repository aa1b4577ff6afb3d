//go:build chaos

package chaos

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/releases"
)

const xgbImage = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"

// TestBadInput: corrupt and truncated model artifacts, wrong content types, bodies over the limit
// set with `sagedeploy local --max-body-size`, and malformed requests to every API — the control
// plane's JSON, the runtime, STS, S3 and the release server — get clear errors: a client error
// status (4xx, never 5xx) with a message naming what is wrong, and deploys that exit non-zero
// naming the model. Nothing crashes: afterwards both servers are alive, the good endpoint still
// serves its version, and nothing half-made is left behind.
func TestBadInput(t *testing.T) {
	const maxBody = 64 << 10
	l := startLocal(t, t.TempDir(), "--max-body-size", "64KiB")
	srvDir := t.TempDir()
	token := initServer(t, srvDir)
	srv := startServer(t, srvDir)
	l.register(t, "abalone", 1)
	env := l.env(t)
	mustRun(t, env, "deploy", "--model", "abalone", "--env", "dev", "--version", "1")
	l.waitServing(t, "abalone-dev", 1, time.Minute)

	t.Run("corrupt-artifacts", func(t *testing.T) { corruptArtifacts(t, l, env) })
	t.Run("invocations", func(t *testing.T) { badInvocations(t, l, maxBody) })
	t.Run("control-plane", func(t *testing.T) { badControlPlane(t, l) })
	t.Run("sts", func(t *testing.T) { badSTS(t, l) })
	t.Run("s3", func(t *testing.T) { badS3(t, l) })
	t.Run("release-server", func(t *testing.T) { badReleaseServer(t, srv, token) })
	t.Run("not-http", func(t *testing.T) {
		for _, addr := range []string{l.url, srv.url} {
			garbage(t, strings.TrimPrefix(addr, "http://"))
		}
	})

	if !l.running() || !srv.running() {
		t.Fatalf("a server died on bad input: local running=%v, release server running=%v", l.running(), srv.running())
	}
	l.waitServing(t, "abalone-dev", 1, time.Minute)
	srv.waitHealthy(t)
}

// corruptArtifacts registers versions whose model.tar.gz is broken (uploaded to S3 as they are,
// as `aws s3 cp` would) and deploys them: to a new endpoint, which must fail and leave no endpoint,
// and over the serving endpoint, which must keep serving version 1.
func corruptArtifacts(t *testing.T, l *localSM, env []string) {
	good, _ := abalone.Artifact(1)
	flipped := append([]byte(nil), good...)
	for i := len(flipped) / 3; i < len(flipped)/3+40 && i < len(flipped); i++ {
		flipped[i] ^= 0x5a
	}
	cases := map[string][]byte{
		"truncated":   good[:len(good)/2],
		"not-gzip":    []byte("this is not a model.tar.gz at all\n"),
		"empty":       {},
		"flipped":     flipped,
		"bad-json":    tarGz(t, "xgboost-model", []byte(`{"learner": {"gradient_booster": `)),
		"no-model":    tarGz(t, "README.txt", []byte("the model file is missing")),
		"binary-junk": tarGz(t, "xgboost-model", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 300)),
	}
	ctx := context.Background()
	s3c := s3.New(s3.Options{Region: region, BaseEndpoint: aws.String(l.url), UsePathStyle: true, Credentials: creds})
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("corrupt")}); err != nil {
		t.Fatal(err)
	}
	sm := l.sm()
	// The serving endpoint gets a corrupt version too: abalone version 2.
	cases["missing"] = nil
	for name, data := range cases {
		url := fmt.Sprintf("s3://corrupt/%s/model.tar.gz", name)
		if data != nil {
			if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("corrupt"), Key: aws.String(name + "/model.tar.gz"), Body: bytes.NewReader(data)}); err != nil {
				t.Fatalf("upload %s: %v", name, err)
			}
		}
		group := "bad-" + name
		if _, err := sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String(group)}); err != nil {
			t.Fatal(err)
		}
		if _, err := sm.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageGroupName: aws.String(group),
			ModelApprovalStatus: smtypes.ModelApprovalStatusApproved,
			InferenceSpecification: &smtypes.InferenceSpecification{
				Containers:                 []smtypes.ModelPackageContainerDefinition{{Image: aws.String(xgbImage), ModelDataUrl: aws.String(url)}},
				SupportedContentTypes:      []string{"text/csv"},
				SupportedResponseMIMETypes: []string{"text/csv"},
			}}); err != nil {
			t.Fatal(err)
		}
		r := run(t, env, "deploy", "--model", group, "--env", "dev")
		if r.code == 0 {
			t.Errorf("%s: deploying a corrupt artifact succeeded:\n%s", name, tail(r.output, 10))
			continue
		}
		if strings.Contains(r.output, "panic") || !strings.Contains(r.output, "error:") || !strings.Contains(r.output, group) || !strings.Contains(r.output, url) {
			t.Errorf("%s: the deploy failed without a clear error naming %s and %s:\n%s", name, group, url, tail(r.output, 10))
		}
		eps, err := sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{NameContains: aws.String(group)})
		if err != nil {
			t.Fatal(err)
		}
		if len(eps.Endpoints) != 0 {
			t.Errorf("%s: the failed deploy left endpoint %s (%s) behind", name, aws.ToString(eps.Endpoints[0].EndpointName), eps.Endpoints[0].EndpointStatus)
		}
	}

	// A corrupt version deployed over the serving endpoint: refused, version 1 keeps serving.
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("corrupt"), Key: aws.String("abalone-v2/model.tar.gz"), Body: bytes.NewReader(good[:len(good)/2])}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateModelPackage(ctx, &sagemaker.CreateModelPackageInput{ModelPackageGroupName: aws.String("abalone"),
		ModelApprovalStatus: smtypes.ModelApprovalStatusApproved,
		InferenceSpecification: &smtypes.InferenceSpecification{
			Containers:                 []smtypes.ModelPackageContainerDefinition{{Image: aws.String(xgbImage), ModelDataUrl: aws.String("s3://corrupt/abalone-v2/model.tar.gz")}},
			SupportedContentTypes:      []string{"text/csv"},
			SupportedResponseMIMETypes: []string{"text/csv"},
		}}); err != nil {
		t.Fatal(err)
	}
	r := run(t, env, "deploy", "--model", "abalone", "--env", "dev", "--version", "2")
	if r.code == 0 {
		t.Fatalf("deploying a truncated version over a serving endpoint succeeded:\n%s", tail(r.output, 10))
	}
	if !strings.Contains(r.output, "version 1") || !strings.Contains(r.output, "truncated") {
		t.Errorf("the failed update does not say the artifact is truncated and version 1 still serves:\n%s", tail(r.output, 10))
	}
	assertEndpoint(t, l, "abalone-dev", 1, 1, "after a corrupt version was refused")
}

func tarGz(t *testing.T, name string, data []byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// badRequest is a raw HTTP request that a server must refuse with a 4xx and a message containing
// want.
type badRequest struct {
	name    string
	method  string
	path    string
	header  map[string]string
	body    []byte
	status  int // 0: any 4xx
	want    string
	allowed []int // other acceptable statuses (e.g. 204 for an empty invocation, as SageMaker's XGBoost container)
}

func send(t *testing.T, base string, reqs []badRequest) {
	t.Helper()
	client := &http.Client{Timeout: 60 * time.Second}
	for _, br := range reqs {
		method := br.method
		if method == "" {
			method = http.MethodPost
		}
		req, err := http.NewRequest(method, base+br.path, bytes.NewReader(br.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range br.header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s: %v", br.name, err)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		ok := resp.StatusCode >= 400 && resp.StatusCode < 500 && (br.status == 0 || resp.StatusCode == br.status)
		for _, s := range br.allowed {
			ok = ok || resp.StatusCode == s
		}
		if !ok {
			t.Errorf("%s: HTTP %d %s; want a client error (4xx%s)", br.name, resp.StatusCode, truncate(string(body), 300), statusHint(br.status))
			continue
		}
		if resp.StatusCode >= 400 && !strings.Contains(string(body), br.want) {
			t.Errorf("%s: HTTP %d %s; want the message to say %q", br.name, resp.StatusCode, truncate(string(body), 300), br.want)
		}
	}
}

func statusHint(s int) string {
	if s == 0 {
		return ""
	}
	return fmt.Sprintf(": %d", s)
}

func badInvocations(t *testing.T, l *localSM, maxBody int) {
	inv := "/endpoints/abalone-dev/invocations"
	csv := map[string]string{"Content-Type": "text/csv"}
	sample := abalone.SampleCSV()
	// Just under and over the limit, in valid rows.
	var under []byte
	for len(under)+len(sample) <= maxBody {
		under = append(under, sample...)
	}
	over := append(append([]byte(nil), under...), sample...)
	send(t, l.url, []badRequest{
		{name: "unsupported content type", path: inv, header: map[string]string{"Content-Type": "application/x-foo"}, body: sample, want: "application/x-foo"},
		{name: "JSON to a CSV model", path: inv, header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{"instances": [[1, 2]]}`), want: "text/csv"},
		{name: "unsupported accept", path: inv, header: map[string]string{"Content-Type": "text/csv", "Accept": "image/png"}, body: sample, want: "image/png"},
		{name: "non-numeric CSV", path: inv, header: csv, body: []byte("a,b,c,d,e,f,g,h,i,j\n"), want: "not a number"},
		{name: "binary body as CSV", path: inv, header: csv, body: bytes.Repeat([]byte{0, 0xff, 0x13}, 100), want: "csv"},
		{name: "over --max-body-size", path: inv, header: csv, body: over, status: http.StatusRequestEntityTooLarge, want: fmt.Sprint(maxBody)},
		{name: "empty body", path: inv, header: csv, body: nil, allowed: []int{http.StatusNoContent}},
		{name: "missing endpoint", path: "/endpoints/no-such-endpoint/invocations", header: csv, body: sample, want: "no-such-endpoint"},
		{name: "missing variant", path: inv, header: map[string]string{"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Variant": "nope"}, body: sample, want: "nope"},
	})
	// Under the limit, every row is predicted; through the SDK, over the limit is a clear error.
	ctx := context.Background()
	out, err := l.runtime().InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("abalone-dev"), ContentType: aws.String("text/csv"), Body: under})
	if err != nil {
		t.Errorf("a body of %d bytes, under --max-body-size %d, was refused: %v", len(under), maxBody, err)
	} else if got, want := len(strings.Fields(string(out.Body))), bytes.Count(under, []byte("\n")); got != want {
		t.Errorf("a body of %d rows got %d predictions", want, got)
	}
	_, err = l.runtime().InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("abalone-dev"), ContentType: aws.String("text/csv"), Body: over})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || !strings.Contains(apiErr.ErrorMessage(), "limit") {
		t.Errorf("over the limit through the SDK: %v; want an API error saying the limit", err)
	}
}

func badControlPlane(t *testing.T, l *localSM) {
	op := func(target string) map[string]string {
		return map[string]string{"X-Amz-Target": "SageMaker." + target, "Content-Type": "application/x-amz-json-1.1"}
	}
	huge := bytes.Repeat([]byte("a"), 3<<20)
	send(t, l.url, []badRequest{
		{name: "truncated JSON", path: "/", header: op("CreateModel"), body: []byte(`{"ModelName": "x"`), want: "SerializationException"},
		{name: "not JSON", path: "/", header: op("CreateModel"), body: []byte("\x00\x01garbage"), want: "SerializationException"},
		{name: "a list", path: "/", header: op("DescribeEndpoint"), body: []byte(`[1, 2]`), want: "JSON object"},
		{name: "wrong type", path: "/", header: op("CreateModel"), body: []byte(`{"ModelName": 5, "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r"}`), want: "string"},
		{name: "missing required", path: "/", header: op("CreateEndpointConfig"), body: []byte(`{}`), want: "ValidationException"},
		{name: "invalid value", path: "/", header: op("CreateEndpointConfig"), body: []byte(`{"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "a", "ModelName": "m", "InitialInstanceCount": -1}]}`), want: "greater than or equal to 1"},
		{name: "invalid name", path: "/", header: op("CreateEndpoint"), body: []byte(`{"EndpointName": "bad name!", "EndpointConfigName": "c"}`), want: "ValidationException"},
		{name: "unknown model", path: "/", header: op("CreateEndpointConfig"), body: []byte(`{"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "a", "ModelName": "no-such-model", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]}`), want: "no-such-model"},
		{name: "unknown operation", path: "/", header: op("LaunchRockets"), body: []byte(`{}`), want: "UnknownOperationException"},
		{name: "GET", method: http.MethodGet, path: "/", header: op("ListEndpoints"), want: "POST"},
		{name: "huge body", path: "/", header: op("DescribeEndpoint"), body: huge, want: "larger"},
		{name: "deeply nested", path: "/", header: op("DescribeEndpoint"), body: []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)), want: "SerializationException"},
	})
}

func badSTS(t *testing.T, l *localSM) {
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	send(t, l.url, []badRequest{
		{name: "missing parameters", path: "/", header: form, body: []byte("Action=AssumeRoleWithWebIdentity&Version=2011-06-15"), want: "ValidationError"},
		{name: "token not a JWT", path: "/", header: form, body: []byte("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn:aws:iam::000000000000:role/r&RoleSessionName=session&WebIdentityToken=not-a-jwt"), want: "InvalidIdentityToken"},
		{name: "bad role ARN", path: "/", header: form, body: []byte("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=role&RoleSessionName=session&WebIdentityToken=a.b.c"), want: "Error"},
		{name: "unknown action", path: "/", header: form, body: []byte("Action=LaunchRockets&Version=2011-06-15"), want: "InvalidAction"},
		{name: "malformed form", path: "/", header: form, body: []byte("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&%zz"), want: "MalformedInput"},
	})
}

func badS3(t *testing.T, l *localSM) {
	ctx := context.Background()
	s3c := s3.New(s3.Options{Region: region, BaseEndpoint: aws.String(l.url), UsePathStyle: true, Credentials: creds})
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fragile")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("fragile"), Key: aws.String("keep.txt"), Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}
	chunked := map[string]string{"X-Amz-Content-Sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "X-Amz-Decoded-Content-Length": "10"}
	send(t, l.url, []badRequest{
		{name: "missing bucket", method: http.MethodGet, path: "/no-such-bucket/key", want: "NoSuchBucket"},
		{name: "missing key", method: http.MethodGet, path: "/fragile/nothing", want: "NoSuchKey"},
		{name: "invalid bucket name", method: http.MethodPut, path: "/Invalid_Bucket!", want: "InvalidBucketName"},
		{name: "malformed chunked body", method: http.MethodPut, path: "/fragile/keep.txt", header: chunked, body: []byte("zzzz;chunk-signature=bad\r\nxx"), want: "IncompleteBody"},
		{name: "truncated chunked body", method: http.MethodPut, path: "/fragile/keep.txt", header: chunked, body: []byte("a;chunk-signature=x\r\n01234"), want: "IncompleteBody"},
		{name: "bad Content-MD5", method: http.MethodPut, path: "/fragile/keep.txt", header: map[string]string{"Content-MD5": "bm90IHRoZSBkaWdlc3Q="}, body: []byte("other"), want: "Digest"},
		{name: "malformed multipart completion", path: "/fragile/k?uploadId=nope", body: []byte("<CompleteMultipartUpload><Part>"), want: "Malformed"},
		{name: "part of unknown upload", method: http.MethodPut, path: "/fragile/k?partNumber=1&uploadId=nope", body: []byte("abc"), want: "NoSuchUpload"},
		{name: "malformed multi-delete", path: "/fragile?delete", body: []byte("<Delete><Object><Key>"), want: "Malformed"},
		{name: "delete non-empty bucket", method: http.MethodDelete, path: "/fragile", want: "BucketNotEmpty"},
	})
	// None of it changed the bucket: it lists, and the object is intact.
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("fragile")})
	if err != nil {
		t.Fatalf("the bucket does not list after bad requests: %v", err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "keep.txt" {
		t.Errorf("bucket after bad requests holds %d objects, want only keep.txt", len(list.Contents))
	}
	got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("fragile"), Key: aws.String("keep.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "kept" {
		t.Errorf("keep.txt after failed uploads over it: %q, want %q", b, "kept")
	}
}

func badReleaseServer(t *testing.T, srv *releaseServer, token string) {
	auth := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
	start := `{"environment": "dev", "model": "m", "kind": "deploy", "version": {"number": 1}}`
	send(t, srv.url, []badRequest{
		{name: "truncated JSON", path: "/api/v1/releases", header: auth, body: []byte(`{"environment": "dev"`), status: 400, want: "not valid JSON"},
		{name: "a list", path: "/api/v1/releases", header: auth, body: []byte(`[]`), status: 400, want: "object"},
		{name: "missing fields", path: "/api/v1/releases", header: auth, body: []byte(`{"environment": "dev"}`), status: 400, want: "missing"},
		{name: "bad kind", path: "/api/v1/releases", header: auth, body: []byte(`{"environment": "dev", "model": "m", "kind": "explode", "version": {"number": 1}}`), status: 400, want: "explode"},
		{name: "wrong type", path: "/api/v1/releases", header: auth, body: []byte(`{"environment": "dev", "model": "m", "kind": "deploy", "instance_count": "two"}`), status: 400, want: "instance_count"},
		{name: "no token", path: "/api/v1/releases", body: []byte(start), status: 401, want: "token"},
		{name: "unknown token", path: "/api/v1/releases", header: map[string]string{"Authorization": "Bearer sdt_nonsense"}, body: []byte(start), status: 401, want: "token"},
		{name: "token of another environment", path: "/api/v1/releases", header: auth, body: []byte(`{"environment": "prod", "model": "m", "kind": "deploy", "version": {"number": 1}}`), status: 403, want: "prod"},
		{name: "event of a missing release", path: "/api/v1/releases/nope/events", header: auth, body: []byte(`{"phase": "wait", "message": "x"}`), status: 404, want: "nope"},
		{name: "finish with a bad status", path: "/api/v1/releases/nope/finish", header: auth, body: []byte(`{"status": "exploded"}`), want: ""},
		{name: "bad limit", method: http.MethodGet, path: "/api/v1/releases?limit=abc", header: auth, status: 400, want: "limit"},
		{name: "bad cursor", method: http.MethodGet, path: "/api/v1/releases?before=garbage", header: auth, status: 400, want: "cursor"},
		{name: "bad wait", method: http.MethodGet, path: "/api/v1/agent/commands/next?wait=forever", header: auth, status: 400, want: "duration"},
		{name: "unknown command", path: "/api/v1/components/dev/m/explode", header: auth, want: "explode"},
		{name: "unknown route", method: http.MethodGet, path: "/api/v1/rockets", header: auth, status: 404, want: "no API route"},
		{name: "wrong method", method: http.MethodDelete, path: "/api/v1/releases", header: auth, status: 405, want: "GET"},
		{name: "huge body", path: "/api/v1/releases", header: auth, body: bytes.Repeat([]byte(" "), 4<<20), status: 413, want: "larger"},
	})
	// The API still works for a well-formed report.
	c := srv.client(token)
	ctx := context.Background()
	if _, err := c.StartRelease(ctx, releasesStart("m")); err != nil {
		t.Errorf("a well-formed release start after bad ones: %v", err)
	}
}

// garbage writes bytes that are not HTTP to a server's port: it must answer (or close) and stay up.
func garbage(t *testing.T, addr string) {
	for _, junk := range [][]byte{
		[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), // a TLS client hello on a plain HTTP port
		bytes.Repeat([]byte{0xff}, 70000),
		[]byte("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
		[]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
	} {
		conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connect to %s: %v", addr, err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write(junk)
		conn.(*net.TCPConn).CloseWrite() // the server sees the end of the junk and answers or closes
		buf := make([]byte, 512)
		n, _ := conn.Read(buf)
		conn.Close()
		if n > 0 && bytes.HasPrefix(buf, []byte("HTTP/1.1 5")) {
			t.Errorf("%s answered %q to junk with a server error", addr, bytes.SplitN(buf[:n], []byte("\r\n"), 2)[0])
		}
	}
}

func releasesStart(model string) releases.ReleaseStart {
	return releases.ReleaseStart{Environment: "dev", Model: model, Kind: releases.KindDeploy, Version: releases.Version{Number: 1}, Trigger: releases.Trigger{Type: "cli"}}
}
