// Package xgboost loads XGBoost models saved as JSON or UBJSON and predicts from dense rows, with
// the same results as the xgboost library. It depends on nothing outside the standard library.
package xgboost

import "errors"

// CONTRACT STUB: the xgboost owner replaces this file; the exported API below is fixed.

// ErrUnsupportedFormat is wrapped by Load when the bytes are not a JSON or UBJSON XGBoost model
// (a Python pickle, the legacy binary format, ...); the message says what was found.
var ErrUnsupportedFormat = errors.New("unsupported model format")

// Model is a loaded booster; safe for concurrent Predict calls.
type Model struct{}

// Load reads a model, detecting JSON or UBJSON from the bytes.
func Load(data []byte) (*Model, error) { return nil, ErrUnsupportedFormat }

// NumFeatures is the number of input features the model was trained on.
func (m *Model) NumFeatures() int { return 0 }

// Objective is the model's objective, e.g. "reg:squarederror".
func (m *Model) Objective() string { return "" }

// OutputSize is how many values Predict returns per row: num_class for multi:softprob, else 1.
func (m *Model) OutputSize() int { return 1 }

// Predict returns the prediction for one row (after the objective's transform). NaN marks a
// missing value; a row shorter than NumFeatures has its tail missing.
func (m *Model) Predict(row []float32) []float32 { return m.PredictTo(nil, row) }

// PredictTo appends the prediction for one row to dst and returns it, allocating nothing when
// dst has room.
func (m *Model) PredictTo(dst []float32, row []float32) []float32 { return dst }
