// Package abalone holds the abalone example that sagedeploy deploys: the UCI Abalone data, two
// XGBoost model versions trained on it (as SageMaker ships them, model.tar.gz holding
// xgboost-model) and a sample text/csv payload. Quickstarts, tests and benchmarks reach them
// through this package so that nothing reads files outside the module at run time.
//
// Features are in this order (10 features, Sex one-hot encoded as SageMaker's XGBoost abalone
// example does): Sex_F, Sex_I, Sex_M, Length, Diameter, Height, Whole_weight, Shucked_weight,
// Viscera_weight, Shell_weight. The label is Rings. train.py regenerates the artifacts.
package abalone

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
)

// FeatureNames is the order of Row.Features and of the columns of a text/csv payload.
var FeatureNames = [NumFeatures]string{
	"Sex_F", "Sex_I", "Sex_M", "Length", "Diameter", "Height",
	"Whole_weight", "Shucked_weight", "Viscera_weight", "Shell_weight",
}

// NumFeatures is the number of model inputs per row.
const NumFeatures = 10

var (
	//go:embed abalone.csv
	dataCSV []byte
	//go:embed sample.csv
	sampleCSV []byte
	//go:embed model-v1/model.tar.gz
	modelV1 []byte
	//go:embed model-v2/model.tar.gz
	modelV2 []byte
	//go:embed model-v1/expected.csv
	expectedV1 []byte
	//go:embed model-v2/expected.csv
	expectedV2 []byte
)

// Row is one abalone: its features in FeatureNames order and its label.
type Row struct {
	Features []float32
	Rings    float32
}

// Versions lists the model versions that Artifact serves, oldest first.
func Versions() []int { return []int{1, 2} }

// Artifact returns the model.tar.gz of a version (a gzip tar holding one file, xgboost-model):
// version 1 saved as JSON, version 2 (the better one) as UBJSON.
func Artifact(version int) ([]byte, error) {
	switch version {
	case 1:
		return modelV1, nil
	case 2:
		return modelV2, nil
	}
	return nil, fmt.Errorf("abalone model version %d does not exist (versions: %v)", version, Versions())
}

// SampleCSV is a text/csv request body: the features of the first 10 rows of the data, one row
// per line, no header, no label.
func SampleCSV() []byte { return sampleCSV }

// ExpectedCSV is what Python's xgboost 1.7.4 predicts for SampleCSV with a version's model, one
// value per line. It comes from the reference implementation, so tests may compare against it.
func ExpectedCSV(version int) ([]byte, error) {
	switch version {
	case 1:
		return expectedV1, nil
	case 2:
		return expectedV2, nil
	}
	return nil, fmt.Errorf("abalone model version %d does not exist (versions: %v)", version, Versions())
}

// Rows parses the whole data set (4177 rows) in file order.
func Rows() ([]Row, error) {
	r := csv.NewReader(bytes.NewReader(dataCSV))
	r.FieldsPerRecord = 9
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("abalone.csv header: %w", err)
	}
	var rows []Row
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("abalone.csv: %w", err)
		}
		f := make([]float32, NumFeatures)
		switch rec[0] {
		case "F":
			f[0] = 1
		case "I":
			f[1] = 1
		case "M":
			f[2] = 1
		default:
			return nil, fmt.Errorf("abalone.csv line %d: unknown Sex %q", line, rec[0])
		}
		for i := 1; i < 8; i++ {
			if f[i+2], err = parse(rec[i]); err != nil {
				return nil, fmt.Errorf("abalone.csv line %d: %w", line, err)
			}
		}
		rings, err := parse(rec[8])
		if err != nil {
			return nil, fmt.Errorf("abalone.csv line %d: %w", line, err)
		}
		rows = append(rows, Row{Features: f, Rings: rings})
	}
}

// parse reads a decimal as float64 and rounds it to float32, the path numpy and xgboost's
// DMatrix take, so features equal the ones the models were trained and checked with.
func parse(s string) (float32, error) {
	v, err := strconv.ParseFloat(s, 64)
	return float32(v), err
}

// FeaturesCSV renders rows as a text/csv request body: features only, one row per line.
func FeaturesCSV(rows []Row) []byte {
	var b []byte
	for _, row := range rows {
		for i, v := range row.Features {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
		}
		b = append(b, '\n')
	}
	return b
}

// Metrics measures predictions of Rings against the labels.
type Metrics struct {
	N    int     // rows compared
	RMSE float64 // root mean squared error
	MAE  float64 // mean absolute error
}

// Evaluate compares preds[i] with rows[i].Rings over the rows both cover.
func Evaluate(preds []float64, rows []Row) Metrics {
	n := min(len(preds), len(rows))
	if n == 0 {
		return Metrics{}
	}
	var se, ae float64
	for i := range n {
		d := preds[i] - float64(rows[i].Rings)
		se += d * d
		ae += math.Abs(d)
	}
	return Metrics{N: n, RMSE: math.Sqrt(se / float64(n)), MAE: ae / float64(n)}
}
