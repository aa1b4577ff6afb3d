package serving

import (
	"archive/tar"
	"bufio"
	"bytes"
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
)

// maxArtifactBytes bounds what one archive may unpack to, so that a corrupt or hostile archive
// cannot fill the disk or memory.
const maxArtifactBytes = 16 << 30

// archive reads a SageMaker model artifact: a tar archive, gzip-compressed (model.tar.gz) or not.
type archive struct {
	url  string
	raw  io.Reader // the bytes as stored, through the hasher when there is one
	gz   *gzip.Reader
	tr   *tar.Reader
	left int64
}

func openArchive(url string, r io.Reader) (*archive, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	a := &archive{url: url, raw: br, left: maxArtifactBytes}
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
				return entry{}, fmt.Errorf("model artifact %s unpacks to more than %d GiB; refusing to unpack it", a.url, maxArtifactBytes>>30)
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
	if a.gz != nil {
		if _, err := io.Copy(io.Discard, a.gz); err != nil {
			return a.corrupt(err)
		}
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

// modelFile is a candidate model file read from an archive.
type modelFile struct {
	name string
	data []byte
}

// readModelFiles returns the archive's regular files, skipping dotfiles (such as the ._ files
// macOS tar adds), which SageMaker's XGBoost container ignores too.
func readModelFiles(url string, r io.Reader) ([]modelFile, error) {
	a, err := openArchive(url, r)
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
		data := make([]byte, 0, e.hdr.Size)
		buf := bytes.NewBuffer(data)
		if _, err := io.Copy(buf, a.tr); err != nil {
			return nil, a.corrupt(err)
		}
		files = append(files, modelFile{name: e.name, data: buf.Bytes()})
	}
	if err := a.finish(); err != nil {
		return nil, err
	}
	return files, nil
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
func (s *Store) Extract(ctx context.Context, url string, r io.Reader) (string, func(), error) {
	tmp, err := os.MkdirTemp(s.dir, ".tmp-")
	if err != nil {
		return "", nil, fmt.Errorf("extract model artifact %s: %w", url, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place
	h := sha256.New()
	if err := extractTo(ctx, tmp, url, io.TeeReader(r, h)); err != nil {
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

func extractTo(ctx context.Context, dir, url string, r io.Reader) error {
	a, err := openArchive(url, r)
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
		name := filepath.FromSlash(e.name)
		if e.hdr.Typeflag == tar.TypeDir {
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("extract %s from model artifact %s: %w", e.name, url, err)
			}
			continue
		}
		if d := filepath.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("extract %s from model artifact %s: %w", e.name, url, err)
			}
		}
		// Files are read-only: several endpoints may share one extracted artifact.
		mode := fs.FileMode(0o444)
		if e.hdr.Mode&0o111 != 0 {
			mode = 0o555
		}
		root.Remove(name) // a later member of the same name wins, as with tar -x
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
		if err != nil {
			return fmt.Errorf("extract %s from model artifact %s: %w", e.name, url, err)
		}
		_, err = io.Copy(f, a.tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return a.corrupt(err)
			}
			return fmt.Errorf("extract %s from model artifact %s: %w", e.name, url, err)
		}
	}
	return a.finish()
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
