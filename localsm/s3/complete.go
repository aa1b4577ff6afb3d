package s3

import (
	"fmt"
	"io"

	"github.com/johannesboyne/gofakes3"
	"github.com/spf13/afero"
)

// completeBodies stores an object only once its whole body arrived. gofakes3's afero backend
// copies the body straight into the object's file and closes it (which atomicFs commits) even
// when reading fails half-way — a client that died mid-upload, a malformed chunked body — and
// then stores no metadata: the torn object would replace the previous one and break every listing
// of the bucket. Spooling the body to tmp/ first makes a failed upload change nothing and answer
// 400 IncompleteBody instead of 500.
type completeBodies struct {
	gofakes3.Backend
	fs afero.Fs
}

func (b completeBodies) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	f, err := afero.TempFile(b.fs, tmpDir, "body-")
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	defer func() {
		f.Close()
		_ = b.fs.Remove(f.Name())
	}()
	n, err := io.Copy(f, input)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("%d bytes arrived of the %d announced", n, size)
	}
	if err != nil {
		if e, ok := err.(gofakes3.Error); ok {
			return gofakes3.PutObjectResult{}, e // e.g. BadDigest: already what S3 answers
		}
		return gofakes3.PutObjectResult{}, gofakes3.ErrorMessagef(gofakes3.ErrIncompleteBody,
			"The body of the upload to s3://%s/%s is incomplete or malformed (%v); nothing was stored.", bucket, key, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	return b.Backend.PutObject(bucket, key, meta, f, n, cond)
}
