package localsm

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// objects is the runtime's spec.Objects: it reads and writes through the local S3's own API
// handler, in process, so that capture files and async results are stored exactly as an S3
// client's upload is, and read back the same way.
type objects struct{ s3 http.Handler }

var _ spec.Objects = objects{}

func (o objects) Put(ctx context.Context, raw string, body []byte, contentType string) error {
	if _, err := o.call(ctx, http.MethodPut, raw, bytes.NewReader(body), contentType); err != nil {
		return fmt.Errorf("write %s: %w", raw, err)
	}
	return nil
}

func (o objects) Get(ctx context.Context, raw string) ([]byte, error) {
	res, err := o.call(ctx, http.MethodGet, raw, nil, "")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", raw, err)
	}
	return res.body.Bytes(), nil
}

// call makes one S3 API request for the object at an s3://bucket/key URL; an answer that is not
// 2xx is an error with S3's code and message.
func (o objects) call(ctx context.Context, method, raw string, body io.Reader, contentType string) (*memResponse, error) {
	rest, ok := strings.CutPrefix(raw, "s3://")
	bucket, key, _ := strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" {
		return nil, fmt.Errorf("%q is not an s3://BUCKET/KEY URL", raw)
	}
	u := &url.URL{Path: "/" + bucket + "/" + key}
	req, err := http.NewRequestWithContext(ctx, method, u.EscapedPath(), body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if body != nil {
		// gofakes3 reads the size from the header, as a client sends it.
		req.Header.Set("Content-Length", strconv.FormatInt(req.ContentLength, 10))
	}
	res := &memResponse{header: http.Header{}}
	o.s3.ServeHTTP(res, req)
	if res.status/100 == 2 {
		return res, nil
	}
	var e struct{ Code, Message string }
	xml.Unmarshal(res.body.Bytes(), &e)
	switch e.Code {
	case "NoSuchBucket":
		return nil, fmt.Errorf("bucket %q does not exist in the local S3 store (create it with: aws s3 mb s3://%s)", bucket, bucket)
	case "NoSuchKey":
		return nil, fmt.Errorf("bucket %q has no object %q", bucket, key)
	}
	return nil, fmt.Errorf("the local S3 store answered %d %s: %s", res.status, e.Code, e.Message)
}

// memResponse keeps an in-process S3 answer.
type memResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (m *memResponse) Header() http.Header { return m.header }

func (m *memResponse) WriteHeader(code int) {
	if m.status == 0 {
		m.status = code
	}
}

func (m *memResponse) Write(p []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	return m.body.Write(p)
}
