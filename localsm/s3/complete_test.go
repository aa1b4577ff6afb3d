package s3_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// A PUT whose body fails half-way — a malformed signed chunked body, a client that sent less than
// it announced — is a client error (400) and changes nothing: the previous object stays, and the
// bucket still lists.
func TestFailedUploadChangesNothing(t *testing.T) {
	st, client, srv := newStore(t, t.TempDir())
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	before := []byte("the model that serves")
	if _, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("m/model.tar.gz"), Body: bytes.NewReader(before)}); err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]func() *http.Request{
		"malformed signed chunks": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPut, srv.URL+"/models/m/model.tar.gz", strings.NewReader("zzzz;chunk-signature=bad\r\nxx"))
			r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
			r.Header.Set("X-Amz-Decoded-Content-Length", "10")
			return r
		},
		"truncated chunks": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPut, srv.URL+"/models/m/model.tar.gz", strings.NewReader("a;chunk-signature=x\r\n01234"))
			r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
			r.Header.Set("X-Amz-Decoded-Content-Length", "10")
			return r
		},
	} {
		resp, err := http.DefaultClient.Do(req())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("IncompleteBody")) {
			t.Errorf("%s: HTTP %d %s; want 400 IncompleteBody", name, resp.StatusCode, body)
		}
	}
	list, err := client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("models")})
	if err != nil {
		t.Fatalf("the bucket no longer lists after failed uploads: %v", err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "m/model.tar.gz" {
		t.Fatalf("objects after failed uploads: %+v", list.Contents)
	}
	rc, err := st.Open(ctx, "s3://models/m/model.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, before) {
		t.Fatalf("object after failed uploads: %q; want the previous %q", got, before)
	}
}
