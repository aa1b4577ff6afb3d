package xgboost_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sagedeploy/sagedeploy/xgboost"
)

// FuzzLoad checks that Load never panics or hangs on arbitrary bytes, and that whatever it
// accepts can predict without panicking. Seeds: every fixture and truncations of it.
func FuzzLoad(f *testing.F) {
	paths, err := filepath.Glob("testdata/*")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		ext := filepath.Ext(p)
		if ext != ".json" && ext != ".ubj" && ext != ".bin" && ext != ".pkl" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for _, n := range []int{1, 2, 10, len(b) / 3, len(b) / 2, len(b) - 1} {
			f.Add(b[:n])
		}
	}
	f.Add([]byte("{}"))
	f.Add([]byte("{L"))
	f.Add([]byte{0x80, 0x04})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := xgboost.Load(data)
		if err != nil {
			if m != nil {
				t.Fatal("Load returned a model and an error")
			}
			return
		}
		n := min(m.NumFeatures(), 4096)
		for _, fill := range []float32{float32(math.NaN()), 0, 1, -1e30, 3} {
			row := make([]float32, n)
			for i := range row {
				row[i] = fill
			}
			if got := m.Predict(row); len(got) != m.OutputSize() {
				t.Fatalf("Predict returned %d values, OutputSize is %d", len(got), m.OutputSize())
			}
		}
		m.Predict(nil)
	})
}
