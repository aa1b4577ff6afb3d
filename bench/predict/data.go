package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// readModel reads a model file, or the model inside a SageMaker model.tar.gz (the first regular
// file, normally xgboost-model).
func readModel(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s holds no model file", path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}

// loadRows returns n rows of stride values from the named source, cycling through a data set
// shorter than n.
func loadRows(source string, n, stride int) ([]float32, error) {
	var set [][]float32
	switch source {
	case "random":
		return randomRows(n, stride), nil
	case "abalone":
		rows, err := abalone.Rows()
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			set = append(set, r.Features)
		}
	default:
		var err error
		if set, err = csvRows(source); err != nil {
			return nil, err
		}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("%s has no rows", source)
	}
	out := make([]float32, 0, n*stride)
	for i := range n {
		row := set[i%len(set)]
		for f := range stride {
			v := float32(math.NaN()) // a short row has its tail missing, as in a CSV payload
			if f < len(row) {
				v = row[f]
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// randomRows are normal values with 5 % missing, like make_big_model.py's training data.
func randomRows(n, stride int) []float32 {
	rng := rand.New(rand.NewPCG(16, 17))
	out := make([]float32, n*stride)
	for i := range out {
		if rng.IntN(20) == 0 {
			out[i] = float32(math.NaN())
		} else {
			out[i] = float32(rng.NormFloat64())
		}
	}
	return out
}

func csvRows(path string) ([][]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read rows from %s: %w", path, err)
	}
	var rows [][]float32
	for i, rec := range records {
		row := make([]float32, len(rec))
		for j, field := range rec {
			field = strings.TrimSpace(field)
			if field == "" {
				row[j] = float32(math.NaN())
				continue
			}
			v, err := strconv.ParseFloat(field, 64)
			if err != nil {
				return nil, fmt.Errorf("%s line %d field %d: %q is not a number (the file must hold numeric features only, no header)", path, i+1, j+1, field)
			}
			row[j] = float32(v)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown CPU"
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
