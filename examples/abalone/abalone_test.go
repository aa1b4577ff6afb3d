package abalone_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

func TestRowsMatchTheCSV(t *testing.T) {
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4177 {
		t.Fatalf("got %d rows, the UCI abalone data has 4177", len(rows))
	}
	// First data line: M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15
	want := []float32{0, 0, 1, 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15}
	if !equal(rows[0].Features, want) || rows[0].Rings != 15 {
		t.Errorf("row 1 = %v rings %v, want %v rings 15", rows[0].Features, rows[0].Rings, want)
	}
	// Last data line: M,0.71,0.555,0.195,1.9485,0.9455,0.3765,0.495,12
	last := rows[len(rows)-1]
	wantLast := []float32{0, 0, 1, 0.71, 0.555, 0.195, 1.9485, 0.9455, 0.3765, 0.495}
	if !equal(last.Features, wantLast) || last.Rings != 12 {
		t.Errorf("row 4177 = %v rings %v, want %v rings 12", last.Features, last.Rings, wantLast)
	}
	var sexes [3]int
	for i, r := range rows {
		if len(r.Features) != abalone.NumFeatures {
			t.Fatalf("row %d has %d features", i+1, len(r.Features))
		}
		for k := range 3 {
			if r.Features[k] == 1 {
				sexes[k]++
			}
		}
	}
	// UCI's counts: 1307 F, 1342 I, 1528 M.
	if sexes != [3]int{1307, 1342, 1528} {
		t.Errorf("Sex F/I/M counts = %v, want [1307 1342 1528]", sexes)
	}
}

func TestSampleCSVIsTheFirstTenRows(t *testing.T) {
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	sample := string(abalone.SampleCSV())
	lines := strings.Split(strings.TrimSuffix(sample, "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("sample.csv has %d lines, want 10", len(lines))
	}
	for i, line := range lines {
		got := parseLine(t, line)
		if !equal(got, rows[i].Features) {
			t.Errorf("sample line %d = %v, want features of row %d %v", i+1, got, i+1, rows[i].Features)
		}
	}
}

func TestFeaturesCSVRoundTrips(t *testing.T) {
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	body := string(abalone.FeaturesCSV(rows))
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("FeaturesCSV wrote %d lines for %d rows", len(lines), len(rows))
	}
	for i, line := range lines {
		if got := parseLine(t, line); !equal(got, rows[i].Features) {
			t.Fatalf("line %d %q parses to %v, want %v", i+1, line, got, rows[i].Features)
		}
	}
	if first := lines[0]; first != "0,0,1,0.455,0.365,0.095,0.514,0.2245,0.101,0.15" {
		t.Errorf("first line = %q", first)
	}
}

func TestArtifactsAreSageMakerTarballs(t *testing.T) {
	if got := abalone.Versions(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("Versions() = %v, want [1 2]", got)
	}
	// v1 is saved as JSON, v2 as UBJSON ('{' followed by a UBJSON length marker).
	prefixes := map[int]string{1: `{"learner"`, 2: "{L"}
	for _, v := range abalone.Versions() {
		b, err := abalone.Artifact(v)
		if err != nil {
			t.Fatal(err)
		}
		names, model := untar(t, b)
		if len(names) != 1 || names[0] != "xgboost-model" {
			t.Errorf("v%d model.tar.gz holds %v, want exactly [xgboost-model]", v, names)
		}
		if !bytes.HasPrefix(model, []byte(prefixes[v])) {
			t.Errorf("v%d xgboost-model starts %q, want %q", v, model[:min(12, len(model))], prefixes[v])
		}
		exp, err := abalone.ExpectedCSV(v)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(exp), "\n"); n != 10 {
			t.Errorf("v%d expected.csv has %d lines, want one per sample row (10)", v, n)
		}
	}
	a1, _ := abalone.Artifact(1)
	a2, _ := abalone.Artifact(2)
	if bytes.Equal(a1, a2) {
		t.Error("v1 and v2 artifacts are identical")
	}
	if _, err := abalone.Artifact(3); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Errorf("Artifact(3) error = %v, want one naming version 3", err)
	}
	if _, err := abalone.ExpectedCSV(0); err == nil {
		t.Error("ExpectedCSV(0) did not fail")
	}
}

func TestEvaluate(t *testing.T) {
	rows := []abalone.Row{{Rings: 10}, {Rings: 4}}
	m := abalone.Evaluate([]float64{13, 8}, rows) // errors 3 and 4
	if m.N != 2 || math.Abs(m.RMSE-math.Sqrt(12.5)) > 1e-12 || math.Abs(m.MAE-3.5) > 1e-12 {
		t.Errorf("Evaluate = %+v, want N 2, RMSE %v, MAE 3.5", m, math.Sqrt(12.5))
	}
	if m := abalone.Evaluate(nil, rows); m.N != 0 || m.RMSE != 0 {
		t.Errorf("Evaluate with no predictions = %+v, want zero", m)
	}
}

func untar(t *testing.T, b []byte) (names []string, first []byte) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, first
		}
		if err != nil {
			t.Fatalf("bad tar: %v", err)
		}
		names = append(names, h.Name)
		if first == nil {
			if first, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func parseLine(t *testing.T, line string) []float32 {
	t.Helper()
	var out []float32
	for _, s := range strings.Split(line, ",") {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, float32(v))
	}
	return out
}

func equal(a, b []float32) bool {
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
