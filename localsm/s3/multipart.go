package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/johannesboyne/gofakes3"
)

// multipartETagMeta is the metadata entry that keeps a multipart object's ETag. gofakes3 keeps
// only an object's MD5 and reports it everywhere but in CompleteMultipartUpload; S3 reports
// "MD5-OF-PART-MD5S-N" for such an object in HeadObject, GetObject and listings too. Every
// PutObject sets the entry (empty for a plain upload or a copy), so it always describes the
// current content; responses never show it.
const multipartETagMeta = "X-Sagedeploy-Multipart-Etag"

// etagOf is the ETag S3 reports for obj: its multipart ETag when it was assembled from parts
// (and not replaced since), else its MD5.
func etagOf(obj *gofakes3.Object) string {
	if tag := obj.Metadata[multipartETagMeta]; tag != "" {
		return tag
	}
	return gofakes3.FormatETag(obj.Hash)
}

// pendingETags hands the ETag of a multipart upload being completed to the PutObject call
// gofakes3 makes for it. Writes to one key are serialised (see Store.lockKey), so the entry
// cannot be taken by another upload of the same key.
type pendingETags struct {
	mu   sync.Mutex
	tags map[string]string
}

func (p *pendingETags) set(bucket, key, tag string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tags == nil {
		p.tags = map[string]string{}
	}
	p.tags[bucket+"/"+key] = tag
}

// take returns and forgets the pending ETag of bucket/key, "" when there is none.
func (p *pendingETags) take(bucket, key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	tag := p.tags[bucket+"/"+key]
	delete(p.tags, bucket+"/"+key)
	return tag
}

// completeRequest is the body of CompleteMultipartUpload.
type completeRequest struct {
	Parts []struct {
		PartNumber int
		ETag       string
	} `xml:"Part"`
}

// multipartETag computes S3's ETag of the upload a CompleteMultipartUpload request assembles
// (the MD5 of the parts' binary MD5s, a dash, the number of parts) and returns the request
// with its body restored. ok is false when the body does not parse: gofakes3 then answers.
func multipartETag(r *http.Request) (string, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	if err != nil {
		return "", false
	}
	var req completeRequest
	if xml.Unmarshal(body, &req) != nil || len(req.Parts) == 0 {
		return "", false
	}
	h := md5.New()
	for _, p := range req.Parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil {
			return "", false
		}
		h.Write(sum)
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(h.Sum(nil)), len(req.Parts)), true
}

type readCloser struct {
	io.Reader
	io.Closer
}

// keyLocks serialise the requests that write one object (PUT, copy, completing an upload).
type keyLocks [64]sync.Mutex

func (l *keyLocks) lock(bucket, key string) func() {
	h := fnv.New32a()
	io.WriteString(h, bucket+"/"+key)
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}
