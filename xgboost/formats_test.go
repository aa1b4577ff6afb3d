package xgboost_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/xgboost"
)

// formatFixture is one entry of testdata/formats/manifest.json, written by
// testdata/formats/make.py.
type formatFixture struct {
	File        string `json:"file"`
	Task        string `json:"task"`
	Features    string `json:"features"`
	Objective   string `json:"objective"`
	Booster     string `json:"booster"`
	NumFeatures int    `json:"num_features"`
	OutputSize  int    `json:"output_size"`
}

func formatFixtures(t *testing.T, dir string) []formatFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 xgboost/testdata/formats/make.py)", err)
	}
	var fs []formatFixture
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) < 20 {
		t.Fatalf("manifest.json lists only %d files", len(fs))
	}
	return fs
}

// TestFormatsMatchPython loads every committed legacy binary, pickle and joblib file and
// compares its predictions with python xgboost 1.7.4's on all 4177 abalone rows.
func TestFormatsMatchPython(t *testing.T) {
	checkFormats(t, "testdata/formats")
}

// TestFormatsFromFreshPython writes the fixtures again with the python xgboost installed here
// and checks the loader against those files, so that the committed ones cannot hide a
// difference.
func TestFormatsFromFreshPython(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: training the fixture models with python takes seconds")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import xgboost, joblib, numpy").Run(); err != nil {
		t.Skipf("%s with xgboost, joblib and numpy is not available (%v); install python3-xgboost and python3-joblib to run this test", python, err)
	}
	dir := t.TempDir()
	out, err := exec.CommandContext(t.Context(), python, "testdata/formats/make.py", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("make.py: %v\n%s", err, out)
	}
	checkFormats(t, dir)
}

func checkFormats(t *testing.T, dir string) {
	var worst float64
	for _, fx := range formatFixtures(t, dir) {
		t.Run(fx.File, func(t *testing.T) {
			in := inputs(t, fx.Features, "full")
			want := readCSV(t, filepath.Join(dir, fx.Task+".expected.txt"))
			if len(want) != len(in) || len(in) != 4177 {
				t.Fatalf("%d expected rows for %d inputs, want 4177", len(want), len(in))
			}
			m := loadFile(t, filepath.Join(dir, fx.File))
			if m.Objective() != fx.Objective || m.Booster() != fx.Booster || m.NumFeatures() != fx.NumFeatures || m.OutputSize() != fx.OutputSize {
				t.Errorf("objective %q booster %q features %d outputs %d, python says %q %q %d %d",
					m.Objective(), m.Booster(), m.NumFeatures(), m.OutputSize(), fx.Objective, fx.Booster, fx.NumFeatures, fx.OutputSize)
			}
			maxDiff := 0.0
			for i, row := range in {
				got := m.Predict(row)
				if len(got) != len(want[i]) {
					t.Fatalf("row %d: %d outputs, want %d", i+1, len(got), len(want[i]))
				}
				for k := range got {
					d := math.Abs(float64(got[k]) - float64(float32(want[i][k])))
					if !(d <= maxDiff) {
						maxDiff = d
					}
				}
			}
			if !(maxDiff <= tolerance) {
				t.Errorf("largest difference from python %g, want ≤ %g", maxDiff, tolerance)
			}
			worst = max(worst, maxDiff)
		})
	}
	t.Logf("largest difference from python over all formats: %.3g", worst)
}

func formatFile(t *testing.T, name string) []byte {
	t.Helper()
	return readFile(t, filepath.Join("testdata/formats", name))
}

// Every cut of a legacy binary or pickle file is refused as truncated, naming the format.
func TestTruncatedFormatsAreRefused(t *testing.T) {
	for _, c := range []struct {
		file   string
		format string
	}{
		{"multi.legacy.bin", "XGBoost legacy binary model"},
		{"dart.legacy.bin", "XGBoost legacy binary model"},
		{"reg.booster-p5.pkl", "Python pickle"},
		{"binary.booster-p2.pkl", "Python pickle"},
		{"multi.sklearn.joblib", "Python pickle"},
	} {
		data := formatFile(t, c.file)
		// Every cut through the headers, then a few hundred through the rest.
		for n := 1; n < len(data); n += max(1, min(n/200, len(data)/300)) {
			_, err := xgboost.Load(data[:n])
			if err == nil {
				t.Fatalf("%s cut to %d of %d bytes loaded", c.file, n, len(data))
			}
			if n > 200 && (!strings.Contains(err.Error(), c.format) || !strings.Contains(err.Error(), "truncated")) {
				t.Fatalf("%s cut to %d bytes: error %q does not say it is a truncated %s", c.file, n, err, c.format)
			}
		}
	}
}

func TestBrokenFormatsAreRefused(t *testing.T) {
	legacy := formatFile(t, "reg.legacy.bin")
	garble := func(b []byte, at int, with ...byte) []byte {
		b = append([]byte(nil), b...)
		copy(b[at:], with)
		return b
	}
	// Offsets in the legacy file: magic 4 + learner parameters 136, then the objective name.
	const objLen = 4 + 136
	treeStart := objLen + 8 + len("reg:squarederror") + 8 + len("gbtree") + 160
	firstNode := treeStart + 148
	cases := []struct {
		name string
		data []byte
		want []string
	}{
		{"objective length garbled", garble(legacy, objLen, 0xff, 0xff, 0xff, 0x7f), []string{"legacy binary", "objective name", "truncated"}},
		{"unknown booster", garble(legacy, objLen+8+16+8, 'x'), []string{"legacy binary", `booster "xbtree"`, "garbled"}},
		{"node count garbled", garble(legacy, treeStart+4, 0xff, 0xff, 0xff, 0x0f), []string{"tree 0 claims 268435455 nodes"}},
		{"child garbled", garble(legacy, firstNode+4, 9, 9, 0, 0), []string{"tree 0", "node 0 has children 2313"}},
		{"parent garbled", garble(legacy, firstNode+legacyNode(1), 5), []string{"tree 0", "do not name it as their parent"}},
		{"os.system", []byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."),
			[]string{"os.system", "never runs code from a pickle", "save_model"}},
		{"builtins.eval by STACK_GLOBAL", []byte("\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94."),
			[]string{"builtins.eval", "refuses"}},
		{"pickle of a dict", []byte("\x80\x04}\x94\x8c\x01a\x94K\x01s."), []string{"Python pickle (protocol 4) of a dict", "holds no XGBoost Booster"}},
		{"unfitted estimator", []byte("\x80\x04\x8c\x0fxgboost.sklearn\x8c\x0cXGBRegressor\x93)\x81}b."),
			[]string{"xgboost.sklearn.XGBRegressor", "no trained booster", "fit"}},
		{"booster with garbage inside", []byte("\x80\x05\x8c\x0cxgboost.core\x8c\x07Booster\x93)\x81}\x8c\x06handle\x96\x04\x00\x00\x00\x00\x00\x00\x00junks\x62."),
			[]string{"Python pickle (protocol 5) of xgboost.core.Booster", "booster inside it is unreadable", "starts with \"junk\""}},
		{"persistent id", []byte("\x80\x04\x8c\x01x\x94Q."), []string{"opcode 'Q'", "refusing"}},
		{"garbled opcode", []byte("\x80\x04\xffK\x01."), []string{"Python pickle", "garbled", "opcode 0xff"}},
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

// legacyNode is the offset of node i's parent field from the first node.
func legacyNode(i int) int { return 20 * i }

// Layouts python xgboost 1.7 no longer writes, built from a 1.7 file the way older versions
// laid them out: the pickled state of xgboost 1.0 to 1.5 ("CONFIG-offset:", the legacy model,
// then the JSON configuration), and a legacy file of xgboost < 1.0, which saved base_score in
// margin space. Both must predict as the 1.7 file does.
func TestOlderLayouts(t *testing.T) {
	legacy := formatFile(t, "binary.legacy.bin")
	want := loadBytes(t, legacy)
	rows := inputs(t, "all10", "full")

	snapshot := binary.LittleEndian.AppendUint64([]byte("CONFIG-offset:"), uint64(len(legacy)))
	snapshot = append(append(snapshot, legacy...), `{"learner":{"objective":{"name":"binary:logistic"}}}`...)

	old := append([]byte(nil), legacy...)
	p := math.Float32frombits(binary.LittleEndian.Uint32(old[4:]))
	margin := float32(-math.Log(1/float64(p) - 1))
	binary.LittleEndian.PutUint32(old[4:], math.Float32bits(margin))
	binary.LittleEndian.PutUint32(old[4+20:], 0)  // major_version
	binary.LittleEndian.PutUint32(old[4+24:], 90) // minor_version

	for name, data := range map[string][]byte{"1.0-1.5 snapshot": snapshot, "0.90 legacy": old} {
		m := loadBytes(t, data)
		for i, row := range rows {
			if got, w := m.Predict(row)[0], want.Predict(row)[0]; math.Abs(float64(got-w)) > 1e-6 {
				t.Fatalf("%s: row %d predicts %v, the 1.7 file %v", name, i+1, got, w)
			}
		}
	}
}

func loadBytes(t *testing.T, data []byte) *xgboost.Model {
	t.Helper()
	m, err := xgboost.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
