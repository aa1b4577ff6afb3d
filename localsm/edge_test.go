package localsm_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// fakeJWT builds an unsigned-looking OIDC token such as CircleCI or GitHub Actions issue.
func fakeJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte("signature"))
}

// TestEndpointURLFromEnvironment: one AWS_ENDPOINT_URL makes SageMaker, S3 and STS clients of
// aws-sdk-go-v2 work, with dummy credentials from the environment.
func TestEndpointURLFromEnvironment(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	t.Setenv("AWS_ENDPOINT_URL", e.srv.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "ap-southeast-2")
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := sagemaker.NewFromConfig(cfg)
	out, err := sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{ModelPackageGroupName: aws.String("from-env")})
	if err != nil {
		t.Fatalf("SageMaker via AWS_ENDPOINT_URL: %v", err)
	}
	// The ARN carries the region the request was signed for.
	if want := "arn:aws:sagemaker:ap-southeast-2:000000000000:model-package-group/from-env"; aws.ToString(out.ModelPackageGroupArn) != want {
		t.Fatalf("ARN = %s, want %s", aws.ToString(out.ModelPackageGroupArn), want)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("env-bucket")}); err != nil {
		t.Fatalf("S3 via AWS_ENDPOINT_URL: %v", err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("env-bucket"), Key: aws.String("a/b.txt"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("env-bucket"), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(body) != "hello" {
		t.Fatalf("object body = %q", body)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("STS via AWS_ENDPOINT_URL: %v", err)
	}
	if aws.ToString(id.Account) != "000000000000" {
		t.Fatalf("account = %s", aws.ToString(id.Account))
	}
}

// TestWebIdentityCredentials runs the deployer's OIDC path: the SDK's default chain sees
// AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, calls AssumeRoleWithWebIdentity (unsigned) and
// signs later calls with the temporary credentials, which GetCallerIdentity then names.
//
// aws-sdk-go-v2's config builds that STS client before it reads AWS_ENDPOINT_URL, so the
// service-specific AWS_ENDPOINT_URL_STS is what points it here.
func TestWebIdentityCredentials(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	token := fakeJWT(t, map[string]any{"sub": "org/123/project/456", "aud": "sagedeploy", "iss": "https://oidc.circleci.com/org/123",
		"exp": time.Now().Add(time.Hour).Unix()})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL", e.srv.URL())
	t.Setenv("AWS_ENDPOINT_URL_STS", e.srv.URL())
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/deployer")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ROLE_SESSION_NAME", "circleci-build-42")
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("web identity credentials: %v", err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || !creds.CanExpire || time.Until(creds.Expires) < 50*time.Minute {
		t.Fatalf("temporary credentials look wrong: key %s, token %t, expires %v", creds.AccessKeyID, creds.SessionToken != "", creds.Expires)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:sts::123456789012:assumed-role/deployer/circleci-build-42"; aws.ToString(id.Arn) != want {
		t.Fatalf("caller = %s, want %s", aws.ToString(id.Arn), want)
	}
	if aws.ToString(id.Account) != "123456789012" {
		t.Fatalf("account = %s", aws.ToString(id.Account))
	}
	// And the control plane accepts calls signed with them.
	if _, err := sagemaker.NewFromConfig(cfg).ListEndpoints(ctx, &sagemaker.ListEndpointsInput{}); err != nil {
		t.Fatalf("SageMaker with web identity credentials: %v", err)
	}

	// Direct calls: the answer echoes the token's subject and audience; bad tokens and inputs are
	// refused with STS's error codes.
	client := sts.NewFromConfig(cfg)
	out, err := client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/deployer"),
		RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(token), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.SubjectFromWebIdentityToken) != "org/123/project/456" || aws.ToString(out.Audience) != "sagedeploy" ||
		aws.ToString(out.Provider) != "oidc.circleci.com/org/123" {
		t.Fatalf("subject %q audience %q provider %q", aws.ToString(out.SubjectFromWebIdentityToken), aws.ToString(out.Audience), aws.ToString(out.Provider))
	}
	if d := time.Until(*out.Credentials.Expiration); d > 15*time.Minute || d < 14*time.Minute {
		t.Fatalf("DurationSeconds 900 gave credentials for %v", d)
	}
	_, err = client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/deployer"),
		RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String("not-a-jwt")})
	apiError(t, err, "InvalidIdentityToken", "not a JWT")
	expired := fakeJWT(t, map[string]any{"sub": "x", "exp": time.Now().Add(-time.Minute).Unix()})
	_, err = client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/deployer"),
		RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(expired)})
	apiError(t, err, "ExpiredTokenException", "Token expired")
	_, err = client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/deployer"),
		RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(token), DurationSeconds: aws.Int32(60)})
	apiError(t, err, "ValidationError", "greater than or equal to 900")
	_, err = client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("deployer"),
		RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(token)})
	apiError(t, err, "ValidationError", "not a valid role ARN")
}

// TestRouting: requests reach the part that speaks their protocol, and the STS query protocol
// answers unknown actions the way STS does.
func TestRouting(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	post := func(path, contentType, body string, header map[string]string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/", "application/x-www-form-urlencoded", "Action=GetSessionToken&Version=2011-06-15", nil)
	if code != 400 || !strings.Contains(body, "<Code>InvalidAction</Code>") || !strings.Contains(body, "Could not find operation GetSessionToken for version 2011-06-15") {
		t.Fatalf("unknown STS action: %d %s", code, body)
	}
	code, body = post("/", "application/x-www-form-urlencoded", "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&%zz", nil)
	if code != 400 || !strings.Contains(body, "<Code>MalformedInput</Code>") {
		t.Fatalf("STS form with a malformed escape: %d %s; want STS's 400 MalformedInput", code, body)
	}
	code, body = post("/", "application/x-amz-json-1.1", "{}", map[string]string{"X-Amz-Target": "DynamoDB_20120810.ListTables"})
	if code != 400 || !strings.Contains(body, `"__type":"UnknownOperationException"`) {
		t.Fatalf("unknown JSON target: %d %s", code, body)
	}
	// An S3 bucket named "endpoints" still works: uploads are PUTs, not invocations.
	s3c := e.s3
	ctx := context.Background()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("endpoints")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("endpoints"), Key: aws.String("x/invocations"), Body: bytes.NewReader([]byte("data"))}); err != nil {
		t.Fatalf("put to a bucket named endpoints: %v", err)
	}
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("endpoints")})
	if err != nil || len(list.Contents) != 1 {
		t.Fatalf("list bucket endpoints: %v %+v", err, list)
	}
	// Invoking a missing endpoint is the runtime's answer, not S3's.
	code, body = post("/endpoints/nothing-here/invocations", "text/csv", "1,2,3", nil)
	if code < 400 || strings.Contains(body, "NoSuchBucket") {
		t.Fatalf("invocation of a missing endpoint: %d %s", code, body)
	}
	fmt.Fprint(io.Discard, body)
}
