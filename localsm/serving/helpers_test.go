package serving

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// modelServerBin is the test model server (testdata/modelserver), built once by TestMain.
var modelServerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "serving-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	modelServerBin = filepath.Join(dir, "modelserver")
	build := exec.Command("go", "build", "-o", modelServerBin, "./testdata/modelserver")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the test model server (go build ./testdata/modelserver):", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// memArtifacts is a spec.Artifacts over a map of s3:// URLs.
type memArtifacts map[string][]byte

func (m memArtifacts) Open(ctx context.Context, url string) (io.ReadCloser, error) {
	b, ok := m[url]
	if !ok {
		return nil, fmt.Errorf("no object at %s", url)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type tarEntry struct {
	name string
	body string
	typ  byte // 0 means a regular file
	link string
	mode int64
}

// makeTar builds a tar archive, gzip-compressed when gz is set.
func makeTar(t testing.TB, gz bool, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
