package xgboost_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/xgboost"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// abaloneModel returns the xgboost-model file inside the abalone example's model.tar.gz.
func abaloneModel(t testing.TB, version int) []byte {
	t.Helper()
	art, err := abalone.Artifact(version)
	if err != nil {
		t.Fatal(err)
	}
	return untar(t, art)
}

func untar(t testing.TB, tgz []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gunzip(t testing.TB, tgz []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadRefusesWhatIsNotAModel(t *testing.T) {
	squared := readFile(t, "testdata/squarederror.json")
	squaredUBJ := readFile(t, "testdata/squarederror.ubj")
	legacy := readFile(t, "testdata/legacy.bin")
	pickled := readFile(t, "testdata/pickle.pkl")
	art, err := abalone.Artifact(1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want []string // substrings of the message, in words a user understands
	}{
		{"empty", nil, []string{"empty"}},
		{"whitespace", []byte(" \n\t "), []string{"only whitespace"}},
		{"truncated python pickle", pickled[:len(pickled)-40], []string{"Python pickle", "truncated"}},
		{"truncated legacy binary", legacy[:len(legacy)-9], []string{"legacy binary model", "truncated", "attribute"}},
		{"truncated legacy binary without magic", legacy[4 : len(legacy)/2], []string{"legacy binary model", "truncated", "tree"}},
		{"compressed joblib dump", []byte("x^\xedX\x00\x00"), []string{"zlib-compressed", "joblib.dump it again without compress"}},
		{"base64 legacy binary", []byte("bs64AAAAAA=="), []string{"base64", "no longer supported"}},
		{"model.tar.gz", art, []string{"gzip archive", "not the model file", "xgboost-model"}},
		{"tar", gunzip(t, art), []string{"tar archive", "not the model file"}},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00"), []string{"zip archive"}},
		{"truncated JSON", squared[:len(squared)/2], []string{"JSON", "truncated"}},
		{"truncated UBJSON", squaredUBJ[:len(squaredUBJ)/2], []string{"UBJSON", "truncated"}},
		{"UBJSON cut inside a typed array", squaredUBJ[:200], []string{"UBJSON", "truncated"}},
		{"corrupt JSON", []byte(`{"learner": {"objective": x}}`), []string{"JSON", "corrupt", "character 'x' at byte 26"}},
		{"JSON with trailing garbage", append(append([]byte(nil), squared...), "}x"...), []string{"JSON", "corrupt", "after the end"}},
		{"corrupt UBJSON", []byte("{L\x00\x00\x00\x00\x00\x00\x00\x07learner\x99"), []string{"UBJSON", "corrupt", "invalid marker 0x99"}},
		{"JSON that is not a model", []byte(`{"name": "abalone"}`), []string{`no "learner" object`}},
		{"save_config output", readFile(t, "testdata/config.json"), []string{"configuration", "save_config", "save_model"}},
		{"CSV", []byte("0,0,1,0.455,0.365\n"), []string{"text that is not XGBoost JSON", `"0,0,1,0.455,0.36"`}},
		{"random bytes", []byte{0x00, 0x01, 0xfe, 0xff, 0x10}, []string{"not an XGBoost JSON or UBJSON model", "00 01 fe ff 10"}},
		{"unknown objective", bytes.Replace(squared, []byte(`"reg:squarederror"`), []byte(`"reg:madeup"`), 1),
			[]string{`objective "reg:madeup" is not supported`, "binary:logistic"}},
		{"unknown booster", bytes.Replace(squared, []byte(`"name":"gbtree"`), []byte(`"name":"gbforest"`), 1),
			[]string{`booster "gbforest" is not supported`}},
		{"missing split conditions", bytes.Replace(squared, []byte(`"split_conditions"`), []byte(`"split_cond"`), 1),
			[]string{"learner.gradient_booster.model.trees[0].split_conditions: missing"}},
		{"child out of range", bytes.Replace(squared, []byte(`"left_children":[1,`), []byte(`"left_children":[99,`), 1),
			[]string{"trees[0]", "node 0 has children 99"}},
		{"cycle", bytes.Replace(squared, []byte(`"left_children":[1,`), []byte(`"left_children":[0,`), 1),
			[]string{"trees[0]", "node 0 has children 0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := xgboost.Load(c.data)
			if err == nil {
				t.Fatalf("Load succeeded (model with %d features), want an error", m.NumFeatures())
			}
			if !errors.Is(err, xgboost.ErrUnsupportedFormat) {
				t.Errorf("error %q does not wrap ErrUnsupportedFormat", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A model from before xgboost 1.0 names its objective reg:linear, an alias of reg:squarederror.
func TestRegLinearAlias(t *testing.T) {
	squared := readFile(t, "testdata/squarederror.json")
	linear := bytes.Replace(squared, []byte(`"reg:squarederror"`), []byte(`"reg:linear"`), 1)
	a, err := xgboost.Load(squared)
	if err != nil {
		t.Fatal(err)
	}
	b, err := xgboost.Load(linear)
	if err != nil {
		t.Fatal(err)
	}
	if b.Objective() != "reg:linear" {
		t.Fatalf("objective %q", b.Objective())
	}
	for _, row := range inputs(t, "all10", "full")[:100] {
		if pa, pb := a.Predict(row)[0], b.Predict(row)[0]; pa != pb {
			t.Fatalf("reg:linear predicts %v, reg:squarederror %v", pb, pa)
		}
	}
}

// A short row has its tail missing: it must predict like the row padded with NaN, which in
// this model is not the same as padding with zeros.
func TestShortRowIsMissingTail(t *testing.T) {
	m := loadFile(t, "testdata/missing.json")
	differsFromZero := 0
	for _, row := range inputs(t, "all10", "full")[:200] {
		short := row[:6]
		nan := append(append([]float32(nil), short...), nanRow(4)...)
		zero := append(append([]float32(nil), short...), 0, 0, 0, 0)
		got, want := m.Predict(short)[0], m.Predict(nan)[0]
		if got != want {
			t.Fatalf("short row predicts %v, NaN-padded row %v", got, want)
		}
		if got != m.Predict(zero)[0] {
			differsFromZero++
		}
	}
	if differsFromZero == 0 {
		t.Fatal("no short row predicted differently from its zero-padded row; the test proves nothing")
	}
	// An empty row takes every default branch; extra features are ignored.
	if got, want := m.Predict(nil)[0], m.Predict(nanRow(10))[0]; got != want {
		t.Errorf("empty row predicts %v, all-NaN row %v", got, want)
	}
	row := inputs(t, "all10", "full")[0]
	if got, want := m.Predict(append(row, 5, 6))[0], m.Predict(row)[0]; got != want {
		t.Errorf("row with two extra values predicts %v, want %v", got, want)
	}
}

func nanRow(n int) []float32 {
	r := make([]float32, n)
	for i := range r {
		r[i] = float32(math.NaN())
	}
	return r
}

func TestPredictToAppendsWithoutAllocating(t *testing.T) {
	rows := inputs(t, "all10", "missing")
	for _, c := range []struct {
		name string
		m    *xgboost.Model
		in   [][]float32
	}{
		{"abalone v2", mustLoad(t, abaloneModel(t, 2)), rows},
		{"multi:softprob", loadFile(t, "testdata/multi_softprob.ubj"), inputs(t, "measure8", "full")},
		{"multi:softmax", loadFile(t, "testdata/multi_softmax.json"), inputs(t, "measure8", "full")},
		{"dart", loadFile(t, "testdata/dart.json"), rows},
		{"gblinear", loadFile(t, "testdata/gblinear.json"), rows},
		{"categorical", loadFile(t, "testdata/categorical.json"), inputs(t, "sexcat8", "full")},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := c.m.OutputSize()
			dst := make([]float32, 1, 1+k)
			dst[0] = -7
			out := c.m.PredictTo(dst, c.in[3])
			if len(out) != 1+k || out[0] != -7 || &out[0] != &dst[0] {
				t.Fatalf("PredictTo returned %v, want [-7] plus %d values in dst's array", out, k)
			}
			if want := c.m.Predict(c.in[3]); !equalFloats(out[1:], want) {
				t.Fatalf("PredictTo appended %v, Predict returns %v", out[1:], want)
			}
			buf := make([]float32, 0, k)
			allocs := testing.AllocsPerRun(200, func() {
				buf = c.m.PredictTo(buf[:0], c.in[7])
			})
			if allocs != 0 {
				t.Errorf("PredictTo allocates %v times per row with room in dst", allocs)
			}
		})
	}
}

func mustLoad(t testing.TB, b []byte) *xgboost.Model {
	t.Helper()
	m, err := xgboost.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The abalone example's versions load, predict what Python predicted for the sample rows, and
// differ from each other.
func TestAbaloneVersions(t *testing.T) {
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	preds := map[int][]float32{}
	for _, v := range abalone.Versions() {
		m := mustLoad(t, abaloneModel(t, v))
		if m.NumFeatures() != abalone.NumFeatures || m.Objective() != "reg:squarederror" {
			t.Fatalf("v%d: %d features, objective %q", v, m.NumFeatures(), m.Objective())
		}
		exp, err := abalone.ExpectedCSV(v)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Fields(string(exp))
		for i, w := range want {
			got := m.Predict(rows[i].Features)[0]
			if s := formatG9(got); s != w {
				t.Errorf("v%d sample row %d: got %s, python says %s", v, i+1, s, w)
			}
			preds[v] = append(preds[v], got)
		}
	}
	if equalFloats(preds[1], preds[2]) {
		t.Error("v1 and v2 predict the same for the sample rows")
	}
	// The README promises that v2 is the better model.
	var metrics [3]abalone.Metrics
	for _, v := range abalone.Versions() {
		m := mustLoad(t, abaloneModel(t, v))
		all := make([]float64, len(rows))
		for i, r := range rows {
			all[i] = float64(m.Predict(r.Features)[0])
		}
		metrics[v] = abalone.Evaluate(all, rows)
	}
	if metrics[1].N != len(rows) || !(metrics[2].RMSE < metrics[1].RMSE) || !(metrics[2].MAE < metrics[1].MAE) {
		t.Errorf("v1 %+v, v2 %+v: want v2 to have the lower errors", metrics[1], metrics[2])
	}
	t.Logf("all rows: v1 RMSE %.3f MAE %.3f, v2 RMSE %.3f MAE %.3f", metrics[1].RMSE, metrics[1].MAE, metrics[2].RMSE, metrics[2].MAE)
}

func formatG9(f float32) string { return strconv.FormatFloat(float64(f), 'g', 9, 32) }

// Concurrent Predict calls on one model give the same answers as sequential ones (run with
// -race to check for data races too).
func TestConcurrentPredict(t *testing.T) {
	m := mustLoad(t, abaloneModel(t, 2))
	rows := inputs(t, "all10", "missing")
	want := make([]float32, len(rows))
	for i, r := range rows {
		want[i] = m.Predict(r)[0]
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := range 8 {
		wg.Go(func() {
			var buf []float32
			for i := w; i < len(rows); i += 3 {
				buf = m.PredictTo(buf[:0], rows[i])
				if buf[0] != want[i] {
					errs <- "row " + strconv.Itoa(i+1)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent prediction differs at %s", e)
	}
}

func TestFeatureNames(t *testing.T) {
	squared := readFile(t, "testdata/squarederror.json")
	if m := mustLoad(t, squared); m.FeatureNames() != nil {
		t.Errorf("model saved without names reports %v", m.FeatureNames())
	}
	names := `"feature_names":["Sex_F","Sex_I","Sex_M","Length","Diameter","Height","Whole_weight","Shucked_weight","Viscera_weight","Shell_weight"]`
	m := mustLoad(t, bytes.Replace(squared, []byte(`"feature_names":[]`), []byte(names), 1))
	got := m.FeatureNames()
	if len(got) != 10 || got[0] != "Sex_F" || got[9] != "Shell_weight" {
		t.Fatalf("FeatureNames() = %v", got)
	}
	got[0] = "changed"
	if m.FeatureNames()[0] != "Sex_F" {
		t.Error("FeatureNames returns the model's own slice")
	}
	if m.NumTrees() != 10 || m.Booster() != "gbtree" {
		t.Errorf("NumTrees %d Booster %q, want 10 gbtree", m.NumTrees(), m.Booster())
	}
}
