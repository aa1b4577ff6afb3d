package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"testing"
)

func osWriteFile(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }

func tarNames(t *testing.T, tgz []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	return names
}
