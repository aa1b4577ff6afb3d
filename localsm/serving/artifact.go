package serving

import (
	"archive/tar"
	"bufio"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// DefaultMaxModelBytes caps what one model artifact may unpack to unless the runtime is told
// otherwise (--max-model-size): a corrupt or hostile archive (a few MB of gzip can hold GBs of
// zeros) must fail the endpoint, not fill the disk or the memory of the process that may also
// serve the dashboard.
const DefaultMaxModelBytes int64 = 4 << 30

// tarSlack is what a tar stream may hold beyond its files' contents: headers and padding.
const tarSlack = 16 << 20

// archive reads a SageMaker model artifact: a tar archive, gzip-compressed (model.tar.gz) or not.
type archive struct {
	url   string
	raw   io.Reader // the bytes as stored, through the hasher when there is one
	gz    *gzip.Reader
	body  io.Reader // the tar stream: gz or raw, capped
	tr    *tar.Reader
	limit int64 // the cap on the files' total size
	left  int64 // of limit, what the files seen so far leave
}

func openArchive(url string, r io.Reader, limit int64) (*archive, error) {
	limit = cmp.Or(limit, DefaultMaxModelBytes)
	br := bufio.NewReaderSize(r, 64<<10)
	a := &archive{url: url, raw: br, limit: limit, left: limit}
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read model artifact %s: %w", url, err)
	}
	if len(magic) == 0 {
		return nil, fmt.Errorf("model artifact %s is empty; SageMaker expects a model.tar.gz holding the model file", url)
	}
	var body io.Reader = br
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		a.gz, err = gzip.NewReader(br)
		if err != nil {
			return nil, a.corrupt(err)
		}
		body = a.gz
	}
	// The decompressed stream is capped too: data after the end of the tar archive (or a bomb
	// hidden in its padding) would otherwise be inflated in full by finish.
	body = &cappedReader{r: body, left: limit + tarSlack, err: a.tooLarge}
	a.body = body
	tb := bufio.NewReaderSize(body, 4096)
	head, err := tb.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, a.corrupt(err)
	}
	if !looksLikeTar(head) {
		if a.gz != nil {
			return nil, fmt.Errorf("model artifact %s is gzip-compressed but holds no tar archive (made with `gzip` instead of `tar czf`?); "+
				"SageMaker expects a model.tar.gz holding the model file, made with e.g. `tar czf model.tar.gz xgboost-model`", url)
		}
		return nil, fmt.Errorf("model artifact %s is neither a gzip-compressed nor a plain tar archive; "+
			"SageMaker expects ModelDataUrl to point at a model.tar.gz holding the model file, "+
			"made with e.g. `tar czf model.tar.gz xgboost-model`", url)
	}
	a.tr = tar.NewReader(tb)
	return a, nil
}

// tooLarge is the error for an artifact over the cap, in words fit for a FailureReason.
func (a *archive) tooLarge() error {
	return &TooLargeError{URL: a.url, Limit: a.limit}
}

// TooLargeError says an artifact unpacks to more than the runtime's cap.
type TooLargeError struct {
	URL   string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("model artifact %s unpacks to more than %s, the local SageMaker's --max-model-size; "+
		"check that the archive holds only the model (a tiny model.tar.gz that inflates to gigabytes is a decompression bomb), "+
		"or restart sagedeploy local with a larger --max-model-size", e.URL, formatBytes(e.Limit))
}

// formatBytes writes a size the way --max-model-size takes it: 64MiB, 4GiB, or a byte count.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// cappedReader fails with err() once more than left bytes were asked of it.
type cappedReader struct {
	r    io.Reader
	left int64
	err  func() error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err()
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// looksLikeTar checks the first header block: its checksum must match, as every tar format
// (v7, ustar, pax, GNU) has one. An empty archive is one zero block or more.
func looksLikeTar(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	zero := true
	for _, b := range block {
		if b != 0 {
			zero = false
			break
		}
	}
	if zero {
		return true
	}
	var sum int64
	for i, b := range block {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += int64(b)
	}
	field := strings.Trim(string(block[148:156]), " \x00")
	want, err := strconv.ParseInt(field, 8, 64)
	return err == nil && want == sum
}

func (a *archive) corrupt(err error) error {
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("model artifact %s is truncated (%v); upload the complete model.tar.gz again", a.url, err)
	}
	return fmt.Errorf("model artifact %s is corrupt: %v; SageMaker expects a model.tar.gz made with e.g. `tar czf model.tar.gz xgboost-model`", a.url, err)
}

// entry is one archive member worth looking at, with its name checked.
type entry struct {
	name string // cleaned, slash-separated, relative
	hdr  *tar.Header
}

// next returns the next regular file or directory; io.EOF at the end. Links and special files
// are skipped: a model server needs none, and they are how archives escape their directory.
func (a *archive) next() (entry, error) {
	for {
		hdr, err := a.tr.Next()
		if errors.Is(err, io.EOF) {
			return entry{}, io.EOF
		}
		if err != nil {
			return entry{}, a.corrupt(err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeDir:
		default:
			continue
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return entry{}, fmt.Errorf("model artifact %s: %w", a.url, err)
		}
		if name == "" {
			continue
		}
		if hdr.Typeflag == tar.TypeReg {
			if hdr.Size > a.left {
				return entry{}, a.tooLarge()
			}
			a.left -= hdr.Size
		}
		return entry{name: name, hdr: hdr}, nil
	}
}

// finish reads the archive to its end so that gzip verifies its checksum and the hash covers
// every stored byte.
func (a *archive) finish() error {
	if _, err := io.Copy(io.Discard, a.tr); err != nil {
		return a.corrupt(err)
	}
	if _, err := io.Copy(io.Discard, a.body); err != nil {
		return a.corrupt(err)
	}
	if _, err := io.Copy(io.Discard, a.raw); err != nil {
		return fmt.Errorf("read model artifact %s: %w", a.url, err)
	}
	return nil
}

// entryName cleans a member name and refuses names that leave the archive's directory.
func entryName(name string) (string, error) {
	clean := path.Clean(strings.ReplaceAll(name, `\`, "/"))
	if clean == "." {
		return "", nil
	}
	if !filepath.IsLocal(filepath.FromSlash(clean)) || strings.ContainsRune(clean, 0) {
		return "", fmt.Errorf("entry %q points outside the archive; refusing to unpack it", name)
	}
	return clean, nil
}

// modelFile is a candidate model file of an archive. Its content is read on demand, one
// candidate at a time, so that memory never holds more than one model file.
type modelFile struct {
	name  string
	size  int64
	data  []byte // already read: the usual single xgboost-model
	fetch func(ctx context.Context) ([]byte, error)
}

// read returns the file's content.
func (f *modelFile) read(ctx context.Context) ([]byte, error) {
	if f.data != nil || f.fetch == nil {
		return f.data, nil
	}
	return f.fetch(ctx)
}

// modelFiles returns the candidate model files of the artifact at url (see pickModelFile). The
// archive is streamed: a top-level xgboost-model is read on the way, other candidates are read
// by opening the artifact again when asked for; nothing over limit is read at all.
func modelFiles(ctx context.Context, artifacts spec.Artifacts, url string, limit int64) ([]modelFile, error) {
	rc, err := artifacts.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("fetch model artifact: %w", err)
	}
	defer rc.Close()
	files, err := scanModelFiles(url, rc, limit)
	if err != nil {
		return nil, err
	}
	files = pickModelFile(files)
	for i := range files {
		if files[i].data == nil {
			name := files[i].name
			files[i].fetch = func(ctx context.Context) ([]byte, error) { return fetchModelFile(ctx, artifacts, url, name, limit) }
		}
	}
	return files, nil
}

// scanModelFiles lists the archive's regular files, skipping dotfiles (such as the ._ files
// macOS tar adds), which SageMaker's XGBoost container ignores too. A top-level xgboost-model
// is read and returned alone.
func scanModelFiles(url string, r io.Reader, limit int64) ([]modelFile, error) {
	a, err := openArchive(url, r, limit)
	if err != nil {
		return nil, err
	}
	var files []modelFile
	for {
		e, err := a.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if e.hdr.Typeflag != tar.TypeReg || strings.HasPrefix(path.Base(e.name), ".") {
			continue
		}
		f := modelFile{name: e.name, size: e.hdr.Size}
		if e.name == "xgboost-model" {
			if f.data, err = a.readEntry(e); err != nil {
				return nil, err
			}
			files = []modelFile{f}
			break
		}
		files = append(files, f)
	}
	if err := a.finish(); err != nil {
		return nil, err
	}
	return files, nil
}

// fetchModelFile opens the artifact again and reads the one member called name.
func fetchModelFile(ctx context.Context, artifacts spec.Artifacts, url, name string, limit int64) ([]byte, error) {
	rc, err := artifacts.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("fetch model artifact: %w", err)
	}
	defer rc.Close()
	a, err := openArchive(url, rc, limit)
	if err != nil {
		return nil, err
	}
	var data []byte
	for {
		e, err := a.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if e.hdr.Typeflag == tar.TypeReg && e.name == name {
			if data, err = a.readEntry(e); err != nil { // a later member of the same name wins
				return nil, err
			}
		}
	}
	if data == nil {
		return nil, fmt.Errorf("model artifact %s changed while it was read: %s is gone; upload it again", url, name)
	}
	return data, nil
}

// readEntry reads the current member whole, into a buffer of exactly its size.
func (a *archive) readEntry(e entry) ([]byte, error) {
	data := make([]byte, e.hdr.Size)
	if _, err := io.ReadFull(a.tr, data); err != nil {
		return nil, a.corrupt(err)
	}
	return data, nil
}

// pickModelFile chooses the model among an archive's files as SageMaker's XGBoost container
// would, and a little more forgivingly: xgboost-model at the top; else the only top-level file;
// else the only file at all (an archive of a directory). With several candidates it returns
// them all in name order for the caller to try.
func pickModelFile(files []modelFile) []modelFile {
	var top []modelFile
	for _, f := range files {
		if f.name == "xgboost-model" {
			return []modelFile{f}
		}
		if !strings.Contains(f.name, "/") {
			top = append(top, f)
		}
	}
	if len(top) == 0 && len(files) == 1 {
		return files
	}
	slices.SortFunc(top, func(a, b modelFile) int { return strings.Compare(a.name, b.name) })
	return top
}

// Store holds extracted model artifacts under one directory, one subdirectory per distinct
// artifact content, shared by every instance that serves it. Extraction goes to a temporary
// directory renamed into place, so a directory that exists is complete, survives restarts and
// is reused.
type Store struct {
	dir  string
	mu   sync.Mutex
	refs map[string]int
}

// NewStore opens (creating) a store in dir and removes what an interrupted extraction left.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create model store %s: %w", dir, err)
	}
	if leftovers, err := filepath.Glob(filepath.Join(dir, ".tmp-*")); err == nil {
		for _, l := range leftovers {
			os.RemoveAll(l)
		}
	}
	return &Store{dir: dir, refs: map[string]int{}}, nil
}

// Empty returns a directory with no model in it, for containers created without ModelDataUrl.
func (s *Store) Empty() (string, func(), error) {
	dir := filepath.Join(s.dir, "empty")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("create empty model directory: %w", err)
	}
	return dir, func() {}, nil
}

// Extract unpacks the archive read from r (the artifact at url) and returns its directory and a
// release function; the directory is removed when the last user releases it.
// Nothing is unpacked beyond limit bytes (0 means DefaultMaxModelBytes).
func (s *Store) Extract(ctx context.Context, url string, r io.Reader, limit int64) (string, func(), error) {
	tmp, err := os.MkdirTemp(s.dir, ".tmp-")
	if err != nil {
		return "", nil, fmt.Errorf("extract model artifact %s: %w", url, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place
	h := sha256.New()
	if err := extractTo(ctx, tmp, url, io.TeeReader(r, h), limit); err != nil {
		return "", nil, err
	}
	final := filepath.Join(s.dir, hex.EncodeToString(h.Sum(nil))[:32])

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp, final); err != nil {
		if st, serr := os.Stat(final); serr != nil || !st.IsDir() {
			return "", nil, fmt.Errorf("extract model artifact %s: %w", url, err)
		}
		// Same content extracted before (another endpoint, or before a restart): reuse it.
	}
	s.refs[final]++
	var once sync.Once
	return final, func() { once.Do(func() { s.release(final) }) }, nil
}

func (s *Store) release(dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[dir]--
	if s.refs[dir] > 0 {
		return
	}
	delete(s.refs, dir)
	makeWritable(dir)
	os.RemoveAll(dir)
}

func extractTo(ctx context.Context, dir, url string, r io.Reader, limit int64) error {
	a, err := openArchive(url, r, limit)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extract model artifact %s: %w", url, err)
	}
	defer root.Close()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("extract model artifact %s: %w", url, err)
		}
		e, err := a.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := a.extractEntry(root, e); err != nil {
			return err
		}
	}
	return a.finish()
}

// extractEntry writes the current member (a directory or a regular file) under root.
func (a *archive) extractEntry(root *os.Root, e entry) error {
	name := filepath.FromSlash(e.name)
	dir := filepath.Dir(name)
	if e.hdr.Typeflag == tar.TypeDir {
		dir = name
	}
	if dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("extract %s from model artifact %s: %w", e.name, a.url, err)
		}
	}
	if e.hdr.Typeflag == tar.TypeDir {
		return nil
	}
	// Files are read-only: several endpoints may share one extracted artifact.
	mode := fs.FileMode(0o444)
	if e.hdr.Mode&0o111 != 0 {
		mode = 0o555
	}
	root.Remove(name) // a later member of the same name wins, as with tar -x
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return fmt.Errorf("extract %s from model artifact %s: %w", e.name, a.url, err)
	}
	_, err = io.Copy(f, a.tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var tl *TooLargeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tl):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return a.corrupt(err)
	}
	return fmt.Errorf("extract %s from model artifact %s: %w", e.name, a.url, err)
}

// makeWritable lets RemoveAll delete a tree whose directories a model server may have made
// read-only.
func makeWritable(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}
