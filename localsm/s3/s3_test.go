package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sagedeploy/sagedeploy/localsm/s3"
)

func newStore(t *testing.T, dir string) (*s3.Store, *awss3.Client, *httptest.Server) {
	t.Helper()
	st, err := s3.Open(dir, s3.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(st)
	t.Cleanup(srv.Close)
	client := awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})
	return st, client, srv
}

// TestArtifactsFromS3API: what the S3 API stores, Open reads back by s3:// URL, also after the
// store is reopened; missing buckets and keys are named in the error with the fix.
func TestArtifactsFromS3API(t *testing.T) {
	dir := t.TempDir()
	st, client, _ := newStore(t, dir)
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("xgboost-model "), 10000)
	if _, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("abalone/v1/model.tar.gz"),
		Body: bytes.NewReader(payload)}); err != nil {
		t.Fatal(err)
	}
	read := func(st *s3.Store, url string) ([]byte, error) {
		rc, err := st.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	got, err := read(st, "s3://models/abalone/v1/model.tar.gz")
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("Open: %v (%d bytes, want %d)", err, len(got), len(payload))
	}
	reopened, err := s3.Open(dir, s3.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := read(reopened, "s3://models/abalone/v1/model.tar.gz"); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("after reopening: %v", err)
	}
	for _, tc := range []struct{ url, want string }{
		{"s3://nobucket/k.tar.gz", `bucket "nobucket" does not exist in the local S3 store (create it with: aws s3 mb s3://nobucket)`},
		{"s3://models/abalone/v9/model.tar.gz", `bucket "models" has no object "abalone/v9/model.tar.gz" (upload it with: aws s3 cp model.tar.gz s3://models/abalone/v9/model.tar.gz)`},
		{"https://models.s3.amazonaws.com/k", "is not an s3://BUCKET/KEY URL"},
		{"s3://models/", "names a bucket but no object key"},
		{"s3://models/../etc/passwd", "'..'"},
	} {
		if _, err := read(st, tc.url); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s) = %v, want an error containing %q", tc.url, err, tc.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Open(cancelled, "s3://models/abalone/v1/model.tar.gz"); err == nil {
		t.Error("Open with a cancelled context succeeded")
	}
}

// TestAWSChunkedUpload: an aws-chunked body with a trailing checksum (what newer SDKs send when
// they stream) is stored as its payload.
func TestAWSChunkedUpload(t *testing.T) {
	_, client, srv := newStore(t, t.TempDir())
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	payload := "hello, chunked world"
	body := fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", 5, payload[:5], len(payload)-5, payload[5:])
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bkt/chunked.txt", strings.NewReader(body))
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(payload)))
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chunked PUT: %d %s", resp.StatusCode, b)
	}
	out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("chunked.txt")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != payload {
		t.Fatalf("stored %q, want %q", got, payload)
	}

	// A truncated chunked body is refused, not stored half.
	req, _ = http.NewRequest(http.MethodPut, srv.URL+"/bkt/broken.txt", strings.NewReader("14\r\nhello"))
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", "20")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatal("a truncated aws-chunked upload was accepted")
	}
}
