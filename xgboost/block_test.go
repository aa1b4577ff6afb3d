package xgboost

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// rowsAgree checks that predictRows, in every walk order, gives what
// PredictTo gives on each row, to the bit, for batches of several sizes (a partial row block
// included).
func rowsAgree(t *testing.T, name string, m *Model, rows []float32, stride int) {
	t.Helper()
	n := len(rows) / stride
	var want []float32
	for r := range n {
		want = m.PredictTo(want, rows[r*stride:(r+1)*stride])
	}
	for _, order := range []walkOrder{byRow, byTreeBlocks, byTree} {
		for _, batch := range []int{1, 2, rowBlock - 1, rowBlock, 3*rowBlock + 5, n} {
			// Predictions are appended after what dst already holds, which must survive.
			dst := []float32{42}
			for r0 := 0; r0 < n; r0 += batch {
				r1 := min(r0+batch, n)
				dst = m.predictRows(dst, rows[r0*stride:r1*stride], stride, order)
			}
			if dst[0] != 42 || len(dst)-1 != len(want) {
				t.Fatalf("%s (order %d, batches of %d): %d values after the kept one (kept %v), want %d",
					name, order, batch, len(dst)-1, dst[0], len(want))
			}
			for i, v := range dst[1:] {
				if math.Float32bits(v) != math.Float32bits(want[i]) {
					k := m.OutputSize()
					t.Fatalf("%s (order %d, batches of %d): row %d %v value %d: %.9g, PredictTo %.9g",
						name, order, batch, i/k, rows[i/k*stride:(i/k+1)*stride], i%k, v, want[i])
				}
			}
		}
	}
}

// Every fixture model (regression, classification with several groups, softmax classes, dart
// weights, categorical and linear ones that fall back to the row walk) on rows with NaN, ±Inf,
// ±0 and extremes, rows wider than the model, and rows shorter than the walker needs.
func TestPredictRowsMatchesPredictTo(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(b)
		if err != nil {
			continue // fixtures.json, config.json and models Load refuses on purpose
		}
		for _, stride := range []int{m.numFeature, m.numFeature + 3, 1} {
			rows := testRows(700, stride)
			var flat []float32
			for _, r := range rows {
				flat = append(flat, r...)
			}
			rowsAgree(t, path, m, flat, stride)
		}
		checked++
	}
	if checked < 15 {
		t.Fatalf("only %d fixture models were checked; the test proves little", checked)
	}
}

// A model large enough that PredictRows walks blocks of rows on its own choice gives what
// PredictTo gives: the fixtures' trees repeated past byTreeFrom nodes, so that it walks by tree.
func TestPredictRowsLargeModel(t *testing.T) {
	b, err := os.ReadFile("testdata/multi_softprob.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	for len(m.walk.nodes) < byTreeFrom {
		for g := range m.groups {
			m.groups[g] = append(m.groups[g], m.groups[g]...)
		}
		m.walk = newWalker(m)
	}
	if m.order(300) != byTree {
		t.Fatalf("%d nodes, 300 rows: walk order %d, want by tree", len(m.walk.nodes), m.order(300))
	}
	rows := testRows(300, m.numFeature)
	var flat []float32
	for _, r := range rows {
		flat = append(flat, r...)
	}
	var want []float32
	for _, r := range rows {
		want = m.PredictTo(want, r)
	}
	got := m.PredictRows(nil, flat, m.numFeature)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("value %d: PredictRows %.9g, PredictTo %.9g", i, got[i], want[i])
		}
	}
}

func TestPredictRowsRefusesPartialRows(t *testing.T) {
	b, err := os.ReadFile("testdata/squarederror.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("PredictRows of 7 values with stride 3 did not panic")
		}
	}()
	m.PredictRows(nil, make([]float32, 7), 3)
}
