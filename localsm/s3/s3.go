// Package s3 is the local SageMaker's artifact store: the S3 API (path-style requests) over a
// directory on disk, served by gofakes3 with its afero backend, and the spec.Artifacts reader the
// serving layer fetches model.tar.gz files through. Keys are literal and escaped on disk (no key
// leaves its bucket), multipart objects keep S3's "-N" ETags, and web pages get nothing unless
// one origin is allowed (Options.CORSOrigin).
package s3

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Store is an S3 endpoint and artifact reader over one directory: objects live in
// DIR/buckets/BUCKET/ under their escaped keys (see diskPath), their metadata in DIR/metadata,
// uploads in progress in DIR/tmp.
type Store struct {
	dir        string
	backend    gofakes3.Backend
	handler    http.Handler
	corsOrigin string
	pending    *pendingETags
	writes     *keyLocks
}

// Options configure a Store.
type Options struct {
	Logger *slog.Logger
	// CORSOrigin is the one browser origin allowed to call the API (e.g. http://localhost:3000);
	// empty refuses every cross-origin browser request.
	CORSOrigin string
}

var _ spec.Artifacts = (*Store)(nil)

// Open serves the S3 store in dir, creating it if needed. Objects stored by the layout before
// keys were escaped (BUCKET/KEY as a plain path) are moved to their escaped names on the way.
func Open(dir string, opts Options) (*Store, error) {
	logger := cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open S3 store %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open S3 store %s: %w", dir, err)
	}
	// A base-path filesystem, so that nothing can reach outside the store's directory; writes
	// land whole or not at all.
	fs, err := newAtomicFs(afero.NewBasePathFs(afero.NewOsFs(), abs))
	if err != nil {
		return nil, fmt.Errorf("open S3 store %s: %w", dir, err)
	}
	afs, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, fmt.Errorf("open S3 store %s: %w", dir, err)
	}
	if err := migrateKeys(afs, logger); err != nil {
		return nil, fmt.Errorf("open S3 store %s: move objects to escaped keys: %w", dir, err)
	}
	st := &Store{dir: abs, corsOrigin: opts.CORSOrigin, pending: &pendingETags{}, writes: &keyLocks{}}
	st.backend = literalKeys{Backend: afs, pending: st.pending}
	faker := gofakes3.New(completeBodies{Backend: st.backend, fs: fs},
		gofakes3.WithLogger(slogAdapter{logger}),
		// Clients on the same machine; a skewed clock must not break uploads.
		gofakes3.WithTimeSkewLimit(0),
		gofakes3.WithIntegrityCheck(true),
	)
	st.handler = faker.Server()
	return st, nil
}

// ServeHTTP answers S3 API requests (path-style: /BUCKET/KEY).
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.allowOrigin(w, r) {
		return
	}
	if err := decodeAWSChunked(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	writes := key != "" && (r.Method == http.MethodPut && !q.Has("uploadId") || r.Method == http.MethodPost && q.Has("uploadId"))
	if writes {
		defer s.writes.lock(bucket, key)()
	}
	if r.Method == http.MethodPost && q.Has("uploadId") {
		if tag, ok := multipartETag(r); ok {
			s.pending.set(bucket, key, tag)
			defer s.pending.take(bucket, key) // when the upload failed
		}
	}
	fw := &fixHeaders{ResponseWriter: w, origin: r.Header.Get("Origin")}
	s.handler.ServeHTTP(fw, r)
	fw.fix()
}

// ParseURL splits an s3://bucket/key URL.
func ParseURL(raw string) (bucket, key string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("model data URL %q is not an s3://BUCKET/KEY URL", raw)
	}
	key = strings.TrimPrefix(u.Path, "/")
	if key == "" {
		return "", "", fmt.Errorf("model data URL %q names a bucket but no object key", raw)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == ".." {
			return "", "", fmt.Errorf("model data URL %q has a '..' segment in its key", raw)
		}
	}
	return u.Host, key, nil
}

// Open implements spec.Artifacts: it returns the object at an s3://bucket/key URL from the same
// store the S3 API writes to. Its errors say which bucket or key is missing and how to fix it.
func (s *Store) Open(ctx context.Context, raw string) (io.ReadCloser, error) {
	bucket, key, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := bucketOK(bucket); err != nil {
		return nil, fmt.Errorf("could not download model data from %s: %q is not a bucket name", raw, bucket)
	}
	obj, err := s.backend.GetObject(bucket, key, nil)
	switch {
	case gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchBucket):
		return nil, fmt.Errorf("could not download model data from %s: bucket %q does not exist in the local S3 store (create it with: aws s3 mb s3://%s)", raw, bucket, bucket)
	case gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey):
		return nil, fmt.Errorf("could not download model data from %s: bucket %q has no object %q (upload it with: aws s3 cp model.tar.gz %s)", raw, bucket, key, raw)
	case err != nil:
		return nil, fmt.Errorf("could not download model data from %s: %w", raw, err)
	}
	return obj.Contents, nil
}

// CreateBucket makes a bucket, for callers that prepare the store directly. An existing bucket
// is not an error.
func (s *Store) CreateBucket(name string) error {
	err := s.backend.CreateBucket(name)
	if err != nil && !gofakes3.IsAlreadyExists(err) {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// slogAdapter sends gofakes3's log lines to slog at debug level: the edge logs each request.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Print(level gofakes3.LogLevel, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintln(v...))
	switch level {
	case gofakes3.LogErr:
		a.log.Error("s3", "message", msg)
	case gofakes3.LogWarn:
		a.log.Warn("s3", "message", msg)
	default:
		a.log.Debug("s3", "message", msg)
	}
}

// decodeAWSChunked turns an aws-chunked upload with an unsigned trailing checksum (what newer
// SDKs send over TLS, and some over plain HTTP) into a plain body, which gofakes3 understands.
// Signed chunked uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) are left to gofakes3.
func decodeAWSChunked(r *http.Request) error {
	sha := r.Header.Get("X-Amz-Content-Sha256")
	if sha != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" && sha != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" {
		return nil
	}
	length := r.Header.Get("X-Amz-Decoded-Content-Length")
	var n int64
	if _, err := fmt.Sscan(length, &n); err != nil || n < 0 {
		return errors.New("aws-chunked upload without a valid X-Amz-Decoded-Content-Length")
	}
	r.Body = io.NopCloser(&chunkReader{r: newLineReader(r.Body)})
	r.ContentLength = n
	r.Header.Set("Content-Length", length)
	r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	r.Header.Del("X-Amz-Decoded-Content-Length")
	enc := strings.TrimSpace(strings.ReplaceAll(r.Header.Get("Content-Encoding"), "aws-chunked", ""))
	enc = strings.Trim(enc, ", ")
	if enc == "" {
		r.Header.Del("Content-Encoding")
	} else {
		r.Header.Set("Content-Encoding", enc)
	}
	return nil
}
