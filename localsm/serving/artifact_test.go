package serving

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreExtractsAndShares(t *testing.T) {
	dir := t.TempDir()
	store, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	archive := makeTar(t, true,
		tarEntry{name: "./", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "./model.json", body: `{"v":1}`},
		tarEntry{name: "code/inference.py", body: "print(1)", mode: 0o755},
		tarEntry{name: "link", typ: tar.TypeSymlink, link: "/etc/passwd"},
	)
	ctx := context.Background()
	d1, rel1, err := store.Extract(ctx, "s3://b/m.tar.gz", bytes.NewReader(archive), 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(d1, "model.json")); err != nil || string(b) != `{"v":1}` {
		t.Fatalf("model.json = %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(d1, "code", "inference.py")); err != nil || st.Mode().Perm()&0o100 == 0 {
		t.Fatalf("code/inference.py: %v, %v (executable bit kept)", st, err)
	}
	if _, err := os.Lstat(filepath.Join(d1, "link")); !os.IsNotExist(err) {
		t.Errorf("a symlink was extracted (err %v); links are skipped", err)
	}

	// The same content is extracted once, whoever asks, and survives until the last release.
	d2, rel2, err := store.Extract(ctx, "s3://other/copy.tar.gz", bytes.NewReader(archive), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("same artifact extracted to %s and %s", d1, d2)
	}
	rel1()
	rel1() // releasing twice is harmless
	if _, err := os.Stat(d1); err != nil {
		t.Fatalf("directory removed while still in use: %v", err)
	}
	rel2()
	if _, err := os.Stat(d1); !os.IsNotExist(err) {
		t.Fatalf("directory kept after the last release: %v", err)
	}

	// After a restart (a new Store over the same directory) an existing extraction is reused.
	d3, rel3, _ := store.Extract(ctx, "s3://b/m.tar.gz", bytes.NewReader(archive), 0)
	os.WriteFile(filepath.Join(dir, ".tmp-leftover"), nil, 0o644)
	store2, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-leftover")); !os.IsNotExist(err) {
		t.Errorf("NewStore left an interrupted extraction behind")
	}
	d4, rel4, err := store2.Extract(ctx, "s3://b/m.tar.gz", bytes.NewReader(archive), 0)
	if err != nil || d4 != d3 {
		t.Fatalf("after restart: %s, %v; want reuse of %s", d4, err, d3)
	}
	rel3()
	rel4()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("store not empty after releases: %v", entries)
	}
}

func TestStoreExtractsPlainTar(t *testing.T) {
	store, _ := NewStore(t.TempDir())
	d, rel, err := store.Extract(context.Background(), "s3://b/m.tar", bytes.NewReader(makeTar(t, false, tarEntry{name: "xgboost-model", body: "m"})), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	if b, _ := os.ReadFile(filepath.Join(d, "xgboost-model")); string(b) != "m" {
		t.Errorf("xgboost-model = %q", b)
	}
}

func TestBadArchivesFailClearly(t *testing.T) {
	good := makeTar(t, true, tarEntry{name: "xgboost-model", body: strings.Repeat("x", 5000)})
	var noise strings.Builder
	for i := range 20000 {
		noise.WriteByte(byte(i * 7919 % 251))
	}
	big := makeTar(t, true, tarEntry{name: "xgboost-model", body: noise.String()})
	tests := []struct {
		name  string
		data  []byte
		words string
	}{
		{"traversal", makeTar(t, true, tarEntry{name: "../../etc/cron.d/evil", body: "x"}), `entry "../../etc/cron.d/evil" points outside the archive`},
		{"absolute", makeTar(t, false, tarEntry{name: "/etc/evil", body: "x"}), `entry "/etc/evil" points outside the archive`},
		{"truncated", good[:len(good)/2], "is truncated"},
		{"truncated later", big[:len(big)-100], "is truncated"},
		{"not an archive", []byte(`{"learner": {}}`), "is neither a gzip-compressed nor a plain tar archive"},
		{"empty object", nil, "is empty"},
		{"corrupt gzip", append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{7}, 64)...), "is corrupt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			store, _ := NewStore(dir)
			_, _, err := store.Extract(context.Background(), "s3://bucket/model.tar.gz", bytes.NewReader(tc.data), 0)
			if err == nil || !strings.Contains(err.Error(), tc.words) || !strings.Contains(err.Error(), "s3://bucket/model.tar.gz") {
				t.Fatalf("Extract: %v; want an error naming the artifact and saying %q", err, tc.words)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a failed extraction left %v behind", entries)
			}
			_, err = scanModelFiles("s3://bucket/model.tar.gz", bytes.NewReader(tc.data), 0)
			if err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Errorf("scanModelFiles: %v; want %q", err, tc.words)
			}
		})
	}
	if _, err := os.Stat("/etc/cron.d/evil"); err == nil {
		t.Fatal("path traversal wrote outside the store")
	}
}

func TestPickModelFile(t *testing.T) {
	names := func(files []modelFile) string {
		var s []string
		for _, f := range files {
			s = append(s, f.name)
		}
		return strings.Join(s, ",")
	}
	read := func(entries ...tarEntry) []modelFile {
		files, err := scanModelFiles("s3://b/k", bytes.NewReader(makeTar(t, true, entries...)), 0)
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	tests := []struct {
		entries []tarEntry
		want    string
	}{
		{[]tarEntry{{name: "a.json", body: "1"}, {name: "xgboost-model", body: "2"}}, "xgboost-model"},
		{[]tarEntry{{name: "./._xgboost-model", body: "mac"}, {name: "./model.ubj", body: "2"}}, "model.ubj"},
		{[]tarEntry{{name: "output/model/booster.json", body: "1"}}, "output/model/booster.json"},
		{[]tarEntry{{name: "b.json", body: "1"}, {name: "a.json", body: "2"}, {name: "sub/c", body: "3"}}, "a.json,b.json"},
		{[]tarEntry{{name: ".hidden", body: "1"}}, ""},
	}
	for _, tc := range tests {
		if got := names(pickModelFile(read(tc.entries...))); got != tc.want {
			t.Errorf("pickModelFile(%v) = %s, want %s", tc.entries, got, tc.want)
		}
	}
}

// TestArtifactCap: nothing past the cap is unpacked or inflated, whether the size is declared
// in a member's header, spread over several members, or hidden after the end of the archive;
// the error names the artifact and the cap. Both the built-in server's reader and the
// extraction for process containers keep to it.
func TestArtifactCap(t *testing.T) {
	const limit = 1 << 20
	withTail := func() []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(makeTar(t, false, tarEntry{name: "xgboost-model", body: "small"}))
		zw.Write(make([]byte, 32<<20)) // zeros after the end of the archive
		zw.Close()
		return buf.Bytes()
	}
	half := strings.Repeat("z", limit/2+1)
	tests := map[string][]byte{
		"one big member":          makeTar(t, true, tarEntry{name: "xgboost-model", body: strings.Repeat("z", limit+1)}),
		"members adding up":       makeTar(t, true, tarEntry{name: "a.json", body: half}, tarEntry{name: "b.json", body: half}),
		"zeros after the archive": withTail(),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			const want = "model artifact s3://b/bomb.tar.gz unpacks to more than 1 MiB, the local SageMaker's --max-model-size"
			_, err := scanModelFiles("s3://b/bomb.tar.gz", bytes.NewReader(data), limit)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("scanModelFiles: %v; want %q", err, want)
			}
			dir := t.TempDir()
			store, _ := NewStore(dir)
			if _, _, err := store.Extract(context.Background(), "s3://b/bomb.tar.gz", bytes.NewReader(data), limit); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Extract: %v; want %q", err, want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused artifact left %v behind", entries)
			}
		})
	}
	ok := makeTar(t, true, tarEntry{name: "xgboost-model", body: strings.Repeat("z", limit-1000)})
	if _, err := scanModelFiles("s3://b/ok.tar.gz", bytes.NewReader(ok), limit); err != nil {
		t.Errorf("an artifact under the cap: %v", err)
	}
}

// TestModelFilesReadOneAtATime: candidates other than xgboost-model are read only when asked
// for, each from the artifact again, so memory holds one model file at a time.
func TestModelFilesReadOneAtATime(t *testing.T) {
	url := "s3://b/two.tar.gz"
	arts := memArtifacts{url: makeTar(t, true, tarEntry{name: "b.json", body: "B"}, tarEntry{name: "a.json", body: "A"})}
	files, err := modelFiles(context.Background(), arts, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].name != "a.json" || files[0].data != nil || files[1].data != nil {
		t.Fatalf("candidates %+v; want a.json and b.json, not read yet", files)
	}
	for i, want := range []string{"A", "B"} {
		if got, err := files[i].read(context.Background()); err != nil || string(got) != want {
			t.Errorf("%s reads %q, %v", files[i].name, got, err)
		}
	}
	delete(arts, url)
	if _, err := files[0].read(context.Background()); err == nil {
		t.Error("reading a candidate of an artifact that is gone succeeded")
	}
}
