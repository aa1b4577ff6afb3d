package xgboost_test

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/xgboost"
)

// tolerance is how far a prediction may be from Python's: xgboost computes in float32, and
// exp/log may differ from the C library's in the last bit.
const tolerance = 1e-5

// fixture is one entry of testdata/fixtures.json, written by testdata/make_fixtures.py.
type fixture struct {
	Name        string `json:"name"`
	Objective   string `json:"objective"`
	Booster     string `json:"booster"`
	Features    string `json:"features"`
	Input       string `json:"input"`
	NumFeatures int    `json:"num_features"`
	OutputSize  int    `json:"output_size"`
}

func fixtures(t testing.TB) []fixture {
	t.Helper()
	b, err := os.ReadFile("testdata/fixtures.json")
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 xgboost/testdata/make_fixtures.py)", err)
	}
	var fs []fixture
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 {
		t.Fatal("testdata/fixtures.json lists no fixtures")
	}
	return fs
}

// inputs builds the prediction input of a fixture from the abalone rows exactly as
// make_fixtures.py does.
func inputs(t testing.TB, features, input string) [][]float32 {
	t.Helper()
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(rows))
	for i, r := range rows {
		f := r.Features
		switch features {
		case "all10":
			out[i] = append([]float32(nil), f...)
		case "measure8":
			out[i] = append(append([]float32(nil), f[3:]...), r.Rings)
		case "sexcat8":
			var code float32
			for k := range 3 {
				if f[k] == 1 {
					code = float32(k)
				}
			}
			out[i] = append([]float32{code}, f[3:]...)
		default:
			t.Fatalf("unknown feature set %q", features)
		}
	}
	switch input {
	case "full":
	case "missing":
		cells := readCSV(t, "testdata/missing-cells.csv")
		if len(cells) < 1000 {
			t.Fatalf("missing-cells.csv lists only %d cells", len(cells))
		}
		for _, c := range cells {
			out[int(c[0])][int(c[1])] = float32(math.NaN())
		}
	default:
		t.Fatalf("unknown input %q", input)
	}
	return out
}

func readCSV(t testing.TB, path string) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var row []float64
		for _, s := range strings.Split(sc.Text(), ",") {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s line %d: %v", path, len(out)+1, err)
			}
			row = append(row, v)
		}
		out = append(out, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func loadFile(t testing.TB, path string) *xgboost.Model {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := xgboost.Load(b)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return m
}

// TestPredictionsMatchPython compares every fixture model, in both formats, with the
// predictions of Python's xgboost 1.7.4 on all 4177 abalone rows.
func TestPredictionsMatchPython(t *testing.T) {
	var worst float64
	var worstAt string
	var total, exact int
	for _, fx := range fixtures(t) {
		in := inputs(t, fx.Features, fx.Input)
		want := readCSV(t, filepath.Join("testdata", fx.Name+".expected.txt"))
		if len(want) != len(in) {
			t.Fatalf("%s: %d expected rows for %d inputs", fx.Name, len(want), len(in))
		}
		for _, ext := range []string{"json", "ubj"} {
			name := fx.Name + "." + ext
			t.Run(name, func(t *testing.T) {
				m := loadFile(t, filepath.Join("testdata", name))
				if m.Objective() != fx.Objective || m.Booster() != fx.Booster {
					t.Errorf("objective %q booster %q, want %q %q", m.Objective(), m.Booster(), fx.Objective, fx.Booster)
				}
				if m.NumFeatures() != fx.NumFeatures || m.OutputSize() != fx.OutputSize {
					t.Errorf("NumFeatures %d OutputSize %d, want %d %d", m.NumFeatures(), m.OutputSize(), fx.NumFeatures, fx.OutputSize)
				}
				var maxDiff float64
				bad := 0
				for i, row := range in {
					got := m.Predict(row)
					if len(got) != len(want[i]) {
						t.Fatalf("row %d: %d outputs, want %d", i+1, len(got), len(want[i]))
					}
					for k := range got {
						// The file holds float32 values with 9 digits, which read back as float32 exactly.
						d := math.Abs(float64(got[k]) - float64(float32(want[i][k])))
						if !(d <= tolerance) {
							if bad++; bad <= 5 {
								t.Errorf("row %d output %d = %.9g, python says %.9g", i+1, k, got[k], want[i][k])
							}
						}
						total++
						if d == 0 {
							exact++
						}
						if d > maxDiff || d != d {
							maxDiff = d
						}
					}
				}
				if bad > 0 {
					t.Errorf("%d of %d predictions differ from python by more than %g", bad, len(in)*fx.OutputSize, tolerance)
				}
				if maxDiff > worst {
					worst, worstAt = maxDiff, name
				}
			})
		}
	}
	t.Logf("largest difference from python over all fixtures: %.3g (%s); %d of %d predictions bit-identical", worst, worstAt, exact, total)
}

// Category codes that are negative, fractional, unseen or huge go where xgboost sends them.
func TestCategoricalEdgeCases(t *testing.T) {
	rows := readCSV(t, "testdata/categorical-edges.csv")
	if len(rows) < 10 {
		t.Fatalf("categorical-edges.csv has %d rows", len(rows))
	}
	for _, ext := range []string{"json", "ubj"} {
		m := loadFile(t, "testdata/categorical."+ext)
		for _, r := range rows {
			in := make([]float32, len(r)-1)
			for i := range in {
				in[i] = float32(r[i])
			}
			want := float32(r[len(r)-1])
			if got := m.Predict(in)[0]; math.Abs(float64(got-want)) > tolerance {
				t.Errorf("%s: category code %v predicts %.9g, python says %.9g", ext, in[0], got, want)
			}
		}
	}
}
