package s3

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
)

// TestAtomicWrites: a file being written is invisible under its name until closed, an
// interrupted write leaves the previous content, and leftovers are cleared on the next open.
func TestAtomicWrites(t *testing.T) {
	dir := t.TempDir()
	base := afero.NewBasePathFs(afero.NewOsFs(), dir)
	fs, err := newAtomicFs(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fs, "obj", []byte("version 1"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := fs.Create("obj")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("version 2, half writ")); err != nil {
		t.Fatal(err)
	}
	// A crash here: the object still holds version 1.
	if got, _ := os.ReadFile(filepath.Join(dir, "obj")); string(got) != "version 1" {
		t.Fatalf("during a write the object reads %q", got)
	}
	left, _ := os.ReadDir(filepath.Join(dir, tmpDir))
	if len(left) != 1 {
		t.Fatalf("%d files in tmp during a write", len(left))
	}
	if _, err := newAtomicFs(base); err != nil { // the restart
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(left) != 0 {
		t.Fatalf("an interrupted write was not cleared on open: %v", left)
	}
	f2, _ := fs.Create("obj")
	f2.Write([]byte("version 3"))
	if err := f2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f2.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "obj")); string(got) != "version 3" {
		t.Fatalf("after Close the object reads %q", got)
	}
	f.Close()
}
