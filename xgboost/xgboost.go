// Package xgboost loads XGBoost models and predicts from dense rows, with the same results as
// the xgboost library. It depends on nothing outside the standard library.
//
// It reads what xgboost ≥ 1.0 writes with booster.save_model("model.json") or
// save_model("model.ubj"); the legacy binary format (booster.save_model("xgboost-model"), what
// SageMaker training jobs store), with or without its "binf" magic; and Python pickles and
// joblib dumps of a Booster or a scikit-learn estimator, read without running anything. It
// evaluates gbtree, dart and gblinear boosters, numerical and categorical
// splits, and the objectives of regression, binary and multi-class classification, counts and
// survival (see Objectives). Predictions are computed as xgboost computes them, in float32 and
// in the same order, so they equal the Python library's.
package xgboost

import (
	"errors"
	"math"
	"slices"
)

// ErrUnsupportedFormat is wrapped by every Load error: the bytes are not an XGBoost model this
// package can evaluate (an archive, a truncated or garbled file, a pickle of something else or
// naming a function it would have to run, an unknown objective, ...). The message says what was found and
// what to do, in words meant for the person who uploaded the model.
var ErrUnsupportedFormat = errors.New("unsupported model format")

// Model is a loaded booster. It is immutable, so Predict and PredictTo are safe for concurrent
// use.
type Model struct {
	objective    string
	booster      string
	numFeature   int
	numGroup     int       // margins per row: num_class, or 1
	base         []float32 // margin-space base score per group
	transform    transform
	featureNames []string

	// gbtree and dart. Trees live in one flat node array; groups[g] lists the roots of the
	// trees that add to margin g, in model order (the order xgboost sums them in).
	nodes    []node
	groups   [][]int32
	weights  [][]float32 // dart: each tree's weight_drop, aligned with groups; nil for gbtree
	catSets  [][]uint32  // categorical splits: sorted categories that go right
	numTrees int
	linear   []float32 // gblinear: weight of feature f for group g at f*numGroup+g, then biases
	isLinear bool
	walk     *walker // the trees laid out for speed; nil when they have categorical splits
}

// node is one tree node: 16 bytes, no pointers, so traversal stays in cache.
type node struct {
	value float32 // threshold of a numerical split, or the leaf value; catSets index of a categorical split
	feat  uint32  // split feature | flags
	left  int32   // -1 for a leaf
	right int32
}

const (
	flagDefaultLeft = 1 << 31
	flagCategorical = 1 << 30
	featMask        = flagCategorical - 1
)

// NumFeatures is the number of input features the model was trained on.
func (m *Model) NumFeatures() int { return m.numFeature }

// Objective is the model's objective, e.g. "reg:squarederror".
func (m *Model) Objective() string { return m.objective }

// Booster is the kind of booster: "gbtree", "dart" or "gblinear".
func (m *Model) Booster() string { return m.booster }

// NumTrees is the number of trees (0 for gblinear).
func (m *Model) NumTrees() int { return m.numTrees }

// FeatureNames are the feature names saved with the model, or nil when it has none.
func (m *Model) FeatureNames() []string { return slices.Clone(m.featureNames) }

// OutputSize is how many values Predict returns per row: num_class for multi:softprob, else 1.
func (m *Model) OutputSize() int {
	if m.transform == transformSoftmaxClass {
		return 1
	}
	return m.numGroup
}

// Predict returns the prediction for one row (after the objective's transform). NaN marks a
// missing value; a row shorter than NumFeatures has its tail missing.
func (m *Model) Predict(row []float32) []float32 { return m.PredictTo(nil, row) }

// PredictTo appends the prediction for one row to dst and returns it, allocating nothing when
// dst has room for OutputSize more values.
func (m *Model) PredictTo(dst []float32, row []float32) []float32 {
	if m.transform == transformSoftmaxClass {
		// multi:softmax answers the class with the largest margin (the first on a tie).
		best, bestMargin := 0, float32(0)
		for g := range m.numGroup {
			if v := m.margin(g, row); g == 0 || v > bestMargin {
				best, bestMargin = g, v
			}
		}
		return append(dst, float32(best))
	}
	start := len(dst)
	for g := range m.numGroup {
		dst = append(dst, m.margin(g, row))
	}
	m.transform.apply(dst[start:])
	return dst
}

// margin is the raw score of group g: the base score plus the trees' leaves (or the linear
// terms), summed in float32 in model order as xgboost does.
func (m *Model) margin(g int, row []float32) float32 {
	sum := m.base[g]
	if m.isLinear {
		return m.linearMargin(g, sum, row)
	}
	if m.walk != nil && len(row) >= m.walk.width {
		var weights []float32
		if m.weights != nil {
			weights = m.weights[g]
		}
		return m.walk.margin(g, sum, row, weights)
	}
	return m.leafMargin(g, sum, row)
}

// leafMargin adds the leaves of group g's trees for row to sum, walking one tree after another
// with leaf: the path for categorical splits and for rows shorter than the walker needs.
func (m *Model) leafMargin(g int, sum float32, row []float32) float32 {
	roots := m.groups[g]
	if m.weights != nil {
		w := m.weights[g]
		for i, root := range roots {
			sum += float32(m.nodes[m.leaf(root, row)].value * w[i])
		}
		return sum
	}
	for _, root := range roots {
		sum += m.nodes[m.leaf(root, row)].value
	}
	return sum
}

// leaf walks one tree from its root and returns the index of the leaf the row falls in.
func (m *Model) leaf(i int32, row []float32) int32 {
	nodes := m.nodes
	for {
		n := &nodes[i]
		if n.left < 0 {
			return i
		}
		f := int(n.feat & featMask)
		x := float32(math.NaN())
		if f < len(row) {
			x = row[f]
		}
		switch {
		case x != x: // missing: the side the training data without this feature went
			if n.feat&flagDefaultLeft != 0 {
				i = n.left
			} else {
				i = n.right
			}
		case n.feat&flagCategorical != 0:
			if m.inCategories(math.Float32bits(n.value), x) {
				i = n.right
			} else {
				i = n.left
			}
		case x < n.value:
			i = n.left
		default:
			i = n.right
		}
	}
}

// inCategories reports whether x, read as a category, is in the split's set (which goes right).
// Like xgboost, a negative or huge value matches no category and the fraction is dropped.
func (m *Model) inCategories(set uint32, x float32) bool {
	if !(x >= 0 && x < 1<<31) {
		return false
	}
	_, found := slices.BinarySearch(m.catSets[set], uint32(x))
	return found
}

func (m *Model) linearMargin(g int, sum float32, row []float32) float32 {
	sum += m.linear[m.numFeature*m.numGroup+g] // bias
	n := min(len(row), m.numFeature)
	for f := range n {
		if x := row[f]; x == x {
			// The conversion forbids fusing into an FMA, which xgboost does not use.
			sum += float32(x * m.linear[f*m.numGroup+g])
		}
	}
	return sum
}
