package s3_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"

	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

func s3Client(url string) *awss3.Client {
	return awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})
}

func getObject(t *testing.T, c *awss3.Client, bucket, key string) (string, string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b), aws.ToString(out.ETag)
}

func rawPut(t *testing.T, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestKeysStayInTheirBucket: keys are literal. An escaped "../" cannot write into another
// bucket, a "../.." path cannot create one, and keys that look like paths ("a" and "a/b", a
// trailing "/", "..") are distinct objects that list under their own names.
func TestKeysStayInTheirBucket(t *testing.T) {
	srv := localsmtest.Start(t, localsm.Options{})
	c := s3Client(srv.URL())
	ctx := context.Background()
	for _, b := range []string{"arts", "victim", "models"} {
		if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("victim"), Key: aws.String("data.txt"), Body: strings.NewReader("original")}); err != nil {
		t.Fatal(err)
	}
	if code := rawPut(t, srv.URL()+"/arts/..%2Fvictim%2Fdata.txt", "replaced"); code != 200 {
		t.Fatalf("PUT arts/..%%2Fvictim%%2Fdata.txt: HTTP %d", code)
	}
	if got, _ := getObject(t, c, "victim", "data.txt"); got != "original" {
		t.Fatalf("victim/data.txt reads %q after a PUT into bucket arts; want it untouched", got)
	}
	if got, _ := getObject(t, c, "arts", "../victim/data.txt"); got != "replaced" {
		t.Fatalf("the literal key ../victim/data.txt in arts reads %q", got)
	}

	if code := rawPut(t, srv.URL()+"/models/a/../../x/y", "sneaky"); code != 200 {
		t.Fatalf("PUT /models/a/../../x/y: HTTP %d", code)
	}
	buckets, err := c.ListBuckets(ctx, &awss3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range buckets.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	if !slices.Equal(names, []string{"arts", "models", "victim"}) {
		t.Fatalf("buckets after PUT /models/a/../../x/y: %v; want no bucket x", names)
	}
	if got, _ := getObject(t, c, "models", "a/../../x/y"); got != "sneaky" {
		t.Fatalf("models/a/../../x/y reads %q", got)
	}

	for _, k := range []string{"a", "a/b", "dir/", ".hidden", "sp ace/ü.txt"} {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String(k), Body: strings.NewReader("v:" + k)}); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	for _, k := range []string{"a", "a/b", "dir/", ".hidden", "sp ace/ü.txt"} {
		if got, _ := getObject(t, c, "models", k); got != "v:"+k {
			t.Errorf("key %q reads %q", k, got)
		}
	}
	long := strings.Repeat("ü", 40) // 80 bytes, 240 escaped
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String(long), Body: strings.NewReader("x")}); err == nil ||
		!strings.Contains(err.Error(), "KeyTooLongError") || !strings.Contains(err.Error(), "use a shorter key") {
		t.Errorf("a key too long for the store: %v; want KeyTooLongError saying what to do", err)
	}
	list, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("models"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys, prefixes []string
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	for _, p := range list.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	if !slices.Equal(keys, []string{".hidden", "a"}) || !slices.Equal(prefixes, []string{"a/", "dir/", "sp ace/"}) {
		t.Errorf("list with delimiter /: keys %q, prefixes %q", keys, prefixes)
	}
	list, err = c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("models"), Prefix: aws.String("a/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 2 || aws.ToString(list.Contents[0].Key) != "a/../../x/y" || aws.ToString(list.Contents[1].Key) != "a/b" {
		t.Errorf("list with prefix a/: %v", list.Contents)
	}
}

// TestMultipartETagEverywhere: an object assembled from parts has S3's "MD5-of-part-MD5s-N"
// ETag in CompleteMultipartUpload, HeadObject, GetObject and ListObjectsV2 alike; replacing it
// with a plain upload gives the plain MD5 again.
func TestMultipartETagEverywhere(t *testing.T) {
	srv := localsmtest.Start(t, localsm.Options{})
	c := s3Client(srv.URL())
	ctx := context.Background()
	bucket, key := aws.String("models"), aws.String("abalone/v1/model.tar.gz")
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{bytes.Repeat([]byte("p1"), 5<<19), []byte("the last part")}
	var done []types.CompletedPart
	partMD5s := md5.New()
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: bucket, Key: key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
		sum := md5.Sum(p)
		partMD5s.Write(sum[:])
	}
	want := fmt.Sprintf(`"%s-2"`, hex.EncodeToString(partMD5s.Sum(nil)))
	comp, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: bucket, Key: key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	body, getTag := getObject(t, c, "models", *key)
	list, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: bucket})
	if err != nil || len(list.Contents) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	got := map[string]string{"CompleteMultipartUpload": aws.ToString(comp.ETag), "HeadObject": aws.ToString(head.ETag),
		"GetObject": getTag, "ListObjectsV2": aws.ToString(list.Contents[0].ETag)}
	for op, tag := range got {
		if tag != want {
			t.Errorf("%s ETag %s; want %s", op, tag, want)
		}
	}
	if len(body) != len(parts[0])+len(parts[1]) {
		t.Errorf("object of %d bytes", len(body))
	}
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: bucket, Key: key, Body: strings.NewReader("plain")}); err != nil {
		t.Fatal(err)
	}
	plain := md5.Sum([]byte("plain"))
	if _, tag := getObject(t, c, "models", *key); tag != `"`+hex.EncodeToString(plain[:])+`"` {
		t.Errorf("after a plain PUT over it the ETag is %s; want the MD5", tag)
	}
}

// TestOldLayoutMigrates: objects written by the layout before keys were escaped (the key as a
// plain path) are moved on start, and read back by their keys with their metadata.
func TestOldLayoutMigrates(t *testing.T) {
	dir := t.TempDir()
	s3dir := filepath.Join(dir, "s3")
	old, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), s3dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.CreateBucket("models"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"abalone/v1/model.tar.gz", "top.txt"} {
		if _, err := old.PutObject("models", k, map[string]string{"Content-Type": "application/x-tar"}, strings.NewReader("old:"+k), int64(len("old:"+k)), nil); err != nil {
			t.Fatal(err)
		}
	}
	srv := localsmtest.Start(t, localsm.Options{DataDir: dir})
	c := s3Client(srv.URL())
	for _, k := range []string{"abalone/v1/model.tar.gz", "top.txt"} {
		if got, _ := getObject(t, c, "models", k); got != "old:"+k {
			t.Errorf("after migration %q reads %q", k, got)
		}
	}
	head, err := c.HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("models"), Key: aws.String("abalone/v1/model.tar.gz")})
	if err != nil || aws.ToString(head.ContentType) != "application/x-tar" {
		t.Errorf("metadata after migration: %v, content type %q", err, aws.ToString(head.ContentType))
	}
}
