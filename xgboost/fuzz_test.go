package xgboost_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sagedeploy/sagedeploy/xgboost"
)

// FuzzLoad checks that Load never panics or hangs on arbitrary bytes, and that whatever it
// accepts can predict without panicking. Seeds: every fixture (JSON, UBJSON, legacy binary,
// pickles, joblib dumps) and truncations of it, and hand-made pickles that must be refused.
func FuzzLoad(f *testing.F) {
	paths, err := filepath.Glob("testdata/*")
	if err != nil {
		f.Fatal(err)
	}
	formats, err := filepath.Glob("testdata/formats/*")
	if err != nil {
		f.Fatal(err)
	}
	paths = append(paths, formats...)
	for _, p := range paths {
		ext := filepath.Ext(p)
		if ext != ".json" && ext != ".ubj" && ext != ".bin" && ext != ".pkl" && ext != ".joblib" {
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
	f.Add([]byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."))
	f.Add([]byte("\x80\x04\x8c\x0fxgboost.sklearn\x8c\x0cXGBRegressor\x93)\x81}b."))
	f.Add([]byte("\x80\x04]\x94h\x00a.")) // a list that holds itself
	f.Add([]byte("CONFIG-offset:\x10\x00\x00\x00\x00\x00\x00\x00binf"))
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
