package serving

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// formatsDir holds the legacy binary, pickle and joblib fixtures of package xgboost, made by
// python xgboost 1.7.4 with xgboost/testdata/formats/make.py, and python's predictions.
const formatsDir = "../../xgboost/testdata/formats"

type formatFixture struct {
	File       string `json:"file"`
	Task       string `json:"task"`
	Features   string `json:"features"`
	OutputSize int    `json:"output_size"`
}

// abaloneCSV is the request body of every abalone row as the fixture's features, one per line.
func abaloneCSV(t *testing.T, features string) []byte {
	t.Helper()
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, r := range rows {
		vals := r.Features
		if features == "measure8" {
			vals = append(append([]float32(nil), r.Features[3:]...), r.Rings)
		}
		for i, v := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
		}
		b = append(b, '\n')
	}
	return b
}

// pythonPredictions reads <task>.expected.txt: one line per row, comma-separated outputs.
func pythonPredictions(t *testing.T, task string) [][]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(formatsDir, task+".expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return csvFloats(t, b)
}

func csvFloats(t *testing.T, body []byte) [][]float64 {
	t.Helper()
	var out [][]float64
	for line := range strings.SplitSeq(strings.TrimSuffix(string(body), "\n"), "\n") {
		var row []float64
		for cell := range strings.SplitSeq(line, ",") {
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil {
				t.Fatalf("line %d %q: %v", len(out)+1, line, err)
			}
			row = append(row, v)
		}
		out = append(out, row)
	}
	return out
}

// Artifacts as SageMaker training jobs and users make them (legacy binary named xgboost-model,
// pickles, joblib dumps, under the names people give them) are served, and answer all 4177
// abalone rows as python xgboost predicts them, in the container's CSV format.
func TestXGBoostServesTrainingArtifacts(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(formatsDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fixtures []formatFixture
	if err := json.Unmarshal(b, &fixtures); err != nil {
		t.Fatal(err)
	}
	bodies := map[string][]byte{"all10": abaloneCSV(t, "all10"), "measure8": abaloneCSV(t, "measure8")}
	for _, fx := range fixtures {
		model, err := os.ReadFile(filepath.Join(formatsDir, fx.File))
		if err != nil {
			t.Fatal(err)
		}
		name := "xgboost-model"
		switch filepath.Ext(fx.File) {
		case ".pkl":
			name = "model.pkl"
		case ".joblib":
			name = "model.joblib"
		}
		if strings.Contains(fx.File, "nomagic") {
			name = "model.bin"
		}
		t.Run(fx.File+" as "+name, func(t *testing.T) {
			inst := startXGB(t, makeTar(t, true, tarEntry{name: name, body: string(model)}), nil)
			inv := invoke(t, inst, bodies[fx.Features], "text/csv", "text/csv")
			if inv.Status != 200 || inv.RespContentType != "text/csv; charset=utf-8" {
				t.Fatalf("status %d %q: %s", inv.Status, inv.RespContentType, inv.Out)
			}
			got, want := csvFloats(t, inv.Out), pythonPredictions(t, fx.Task)
			if len(got) != len(want) || len(got) != 4177 {
				t.Fatalf("%d rows answered, python has %d, want 4177", len(got), len(want))
			}
			for i := range got {
				if len(got[i]) != fx.OutputSize {
					t.Fatalf("row %d has %d values, want %d", i+1, len(got[i]), fx.OutputSize)
				}
				for k := range got[i] {
					if d := math.Abs(got[i][k] - want[i][k]); !(d <= 1e-5) {
						t.Fatalf("row %d output %d = %v, python says %v", i+1, k, got[i][k], want[i][k])
					}
				}
			}
		})
	}
}

// A pickled XGBClassifier answers as the container does: it loads the booster and predicts
// probabilities (class 1 for binary, one per class for multi-class), in JSON too, and reads
// libsvm input.
func TestXGBoostPickledClassifierAnswers(t *testing.T) {
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	binary, err := os.ReadFile(filepath.Join(formatsDir, "binary.sklearn.joblib"))
	if err != nil {
		t.Fatal(err)
	}
	inst := startXGB(t, makeTar(t, true, tarEntry{name: "model.joblib", body: string(binary)}), nil)
	want := pythonPredictions(t, "binary")[0][0]
	var libsvm []string
	// Every feature is written, zeros too: a feature left out of a libsvm row is missing.
	for i, v := range rows[0].Features {
		libsvm = append(libsvm, fmt.Sprintf("%d:%s", i, strconv.FormatFloat(float64(v), 'g', -1, 32)))
	}
	inv := invoke(t, inst, []byte(strings.Join(libsvm, " ")), "text/libsvm", "application/json")
	var doc struct {
		Predictions []struct{ Score float64 } `json:"predictions"`
	}
	if err := json.Unmarshal(inv.Out, &doc); err != nil || inv.Status != 200 || len(doc.Predictions) != 1 {
		t.Fatalf("status %d %s (%v)", inv.Status, inv.Out, err)
	}
	if got := doc.Predictions[0].Score; math.Abs(got-want) > 1e-5 {
		t.Errorf("libsvm row 1 scores %v, python's predict_proba[:, 1] says %v", got, want)
	}
}

// A truncated legacy model or pickle fails the container with a reason naming the artifact,
// the file and what is wrong with it.
func TestXGBoostBrokenTrainingArtifacts(t *testing.T) {
	url := "s3://models/abalone/model.tar.gz"
	for _, c := range []struct {
		file, name string
		words      []string
	}{
		{"reg.legacy.bin", "xgboost-model", []string{"XGBoost legacy binary model", "truncated", "tree"}},
		{"multi.sklearn.joblib", "model.joblib", []string{"Python pickle", "truncated"}},
	} {
		data, err := os.ReadFile(filepath.Join(formatsDir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		archive := makeTar(t, true, tarEntry{name: c.name, body: string(data[:len(data)/2])})
		_, err = Prepare(t.Context(), spec.Container{Image: xgbImage, ModelDataURL: url}, Source{Artifacts: memArtifacts{url: archive}})
		for _, w := range append([]string{url, c.name}, c.words...) {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("half of %s: error %v does not say %q", c.file, err, w)
			}
		}
	}
}
