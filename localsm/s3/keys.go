package s3

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/johannesboyne/gofakes3"
)

// literalKeys stores every key literally, escaped on disk, inside its own bucket. gofakes3's
// afero backend joins bucket and key as a file path, so "a/../../x/y" lands in bucket x and
// "..%2Fvictim%2Fdata.txt" in bucket victim, and keys such as "a" and "a/b" cannot coexist. Here
// a key is cut after each "/" and each piece percent-escaped (see diskPath): "." and ".." cannot
// occur, directories always end in %2F and so never clash with a file.
type literalKeys struct {
	gofakes3.Backend
	pending *pendingETags
}

// diskPath is where key lives under its bucket's directory.
func diskPath(key string) string {
	chunks := strings.SplitAfter(key, "/")
	for i, c := range chunks {
		chunks[i] = escapeChunk(c)
	}
	return strings.Join(chunks, "/")
}

// escapeChunk percent-escapes all but unreserved characters, and a leading dot so that no
// file is hidden, "." or "..". The empty last piece of a key ending in "/" is "%", which no
// escaped text can be.
func escapeChunk(c string) string {
	if c == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '~' || ch == '.' && i > 0 {
			b.WriteByte(ch)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

// keyOf reverses diskPath; ok is false for a path diskPath cannot have made (the layout
// before keys were escaped).
func keyOf(p string) (string, bool) {
	parts := strings.Split(p, "/")
	var b strings.Builder
	for i, part := range parts {
		last := i == len(parts)-1
		if last && part == "%" && i > 0 {
			break // the key ends with "/"
		}
		chunk, ok := unescape(part)
		if !ok || chunk == "" || escapeChunk(chunk) != part {
			return "", false
		}
		slash := strings.IndexByte(chunk, '/')
		if last && slash >= 0 || !last && slash != len(chunk)-1 {
			return "", false
		}
		b.WriteString(chunk)
	}
	return b.String(), true
}

func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 > len(s) {
			return "", false
		}
		ch, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(ch))
		i += 2
	}
	return b.String(), true
}

// bucketOK refuses names no bucket can have (such as ".."), which would reach outside the
// buckets' directory.
func bucketOK(bucket string) error {
	if gofakes3.ValidateBucketName(bucket) != nil {
		return gofakes3.BucketNotFound(bucket)
	}
	return nil
}

func (b literalKeys) BucketExists(bucket string) (bool, error) {
	if bucketOK(bucket) != nil {
		return false, nil
	}
	return b.Backend.BucketExists(bucket)
}

func (b literalKeys) DeleteBucket(bucket string) error {
	if err := bucketOK(bucket); err != nil {
		return err
	}
	return b.Backend.DeleteBucket(bucket)
}

func (b literalKeys) ForceDeleteBucket(bucket string) error {
	if err := bucketOK(bucket); err != nil {
		return err
	}
	return b.Backend.ForceDeleteBucket(bucket)
}

func (b literalKeys) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	if err := bucketOK(bucket); err != nil {
		return nil, err
	}
	obj, err := b.Backend.HeadObject(bucket, diskPath(key))
	if obj != nil {
		obj.Name = key
	}
	return obj, keyError(err, key)
}

func (b literalKeys) GetObject(bucket, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	if err := bucketOK(bucket); err != nil {
		return nil, err
	}
	obj, err := b.Backend.GetObject(bucket, diskPath(key), rng)
	if obj != nil {
		obj.Name = key
	}
	return obj, keyError(err, key)
}

// keyError names the key the client asked for, not its escaped form.
func keyError(err error, key string) error {
	if gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
		return gofakes3.KeyNotFound(key)
	}
	return err
}

// maxDiskPath bounds an escaped key: its metadata lives in one file named after it (with "/"
// replaced and a 33-byte hash suffix), and file names have at most 255 bytes.
const maxDiskPath = 255 - 33

func (b literalKeys) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if err := bucketOK(bucket); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	if p := diskPath(key); len(p) > maxDiskPath {
		return gofakes3.PutObjectResult{}, gofakes3.ErrorMessagef(gofakes3.ErrKeyTooLong,
			"Key %q is %d bytes once escaped for the local S3 store, over its %d-byte limit (S3 allows 1024); use a shorter key.", key, len(p), maxDiskPath)
	}
	if meta == nil {
		meta = map[string]string{}
	}
	// Always set, so that the multipart ETag of an object this one replaces is not carried
	// over (gofakes3 merges the previous object's metadata into the new one's).
	meta[multipartETagMeta] = b.pending.take(bucket, key)
	return b.Backend.PutObject(bucket, diskPath(key), meta, input, size, cond)
}

func (b literalKeys) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	if err := bucketOK(bucket); err != nil {
		return gofakes3.ObjectDeleteResult{}, err
	}
	return b.Backend.DeleteObject(bucket, diskPath(key))
}

func (b literalKeys) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	if err := bucketOK(bucket); err != nil {
		return gofakes3.MultiDeleteResult{}, err
	}
	paths := make([]string, len(keys))
	byPath := map[string]string{}
	for i, k := range keys {
		paths[i] = diskPath(k)
		byPath[paths[i]] = k
	}
	res, err := b.Backend.DeleteMulti(bucket, paths...)
	for i := range res.Deleted {
		res.Deleted[i].Key = byPath[res.Deleted[i].Key]
	}
	for i := range res.Error {
		res.Error[i].Key = byPath[res.Error[i].Key]
	}
	return res, err
}

func (b literalKeys) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	if err := errors.Join(bucketOK(srcBucket), bucketOK(dstBucket)); err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// ListBucket walks the whole bucket and filters by prefix and delimiter on the keys themselves
// (the afero backend's directory-based listing would see escaped names).
func (b literalKeys) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if err := bucketOK(bucket); err != nil {
		return nil, err
	}
	if !page.IsEmpty() {
		return nil, gofakes3.ErrInternalPageNotImplemented
	}
	all, err := b.Backend.ListBucket(bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	out := gofakes3.NewObjectList()
	for _, c := range all.Contents {
		key, ok := keyOf(c.Key)
		if !ok {
			continue
		}
		common, ok := match(prefix, key)
		if !ok {
			continue
		}
		if common != "" {
			out.AddPrefix(common)
			continue
		}
		if obj, err := b.Backend.HeadObject(bucket, c.Key); err == nil {
			c.ETag = etagOf(obj)
		}
		c.Key = key
		out.Add(c)
	}
	slices.SortFunc(out.Contents, func(a, b *gofakes3.Content) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(out.CommonPrefixes, func(a, b gofakes3.CommonPrefix) int { return strings.Compare(a.Prefix, b.Prefix) })
	return out, nil
}

// match applies S3's prefix and delimiter to key: ok when the key starts with the prefix, and
// common is the common prefix it rolls up into (up to the first delimiter after the prefix),
// or "" when it is listed itself.
func match(p *gofakes3.Prefix, key string) (common string, ok bool) {
	pre := ""
	if p.HasPrefix {
		pre = p.Prefix
	}
	if !strings.HasPrefix(key, pre) {
		return "", false
	}
	if p.HasDelimiter && p.Delimiter != "" {
		if i := strings.Index(key[len(pre):], p.Delimiter); i >= 0 {
			return key[:len(pre)+i+len(p.Delimiter)], true
		}
	}
	return "", true
}
