package xgboost

import "fmt"

// rowBlock is how many rows PredictRows walks through one block of trees before it moves on to
// the next block. A block of walkBlock trees of depth 8 is ~40 KB of nodes: walking a few dozen
// rows through it while it sits in the L1/L2 cache, instead of streaming every tree of a large
// model through the cache once per row, is what makes big models fast (xgboost's own CPU
// predictor blocks rows for the same reason). The rows of a block, 64 × a few hundred bytes,
// stay in cache too.
const rowBlock = 64

// blockedFrom is the model size, in walker nodes, from which PredictRows walks blocks of rows:
// below it the whole model stays in the L2 cache and walking row by row is as fast and simpler.
// Measured with BenchmarkPredictRows: the abalone v2 model (80 trees, ~7k nodes) gains nothing
// from blocking, the 1000-tree model (~340k nodes, 5 MB) gains ~2× at 100 rows and more.
const blockedFrom = 16 << 10

// PredictRows appends the predictions for the rows packed one after another in rows, each of
// stride values (a dense row-major matrix, as parsed from a CSV payload), and returns dst. The
// results are those of PredictTo on each row, to the bit; only the order of the work differs.
// It panics when len(rows) is not a multiple of stride, as a slice index out of range would.
func (m *Model) PredictRows(dst, rows []float32, stride int) []float32 {
	if stride <= 0 || len(rows)%stride != 0 {
		panic(fmt.Sprintf("xgboost: PredictRows of %d values with stride %d: not a whole number of rows", len(rows), stride))
	}
	n := len(rows) / stride
	return m.predictRows(dst, rows, stride, n >= 2 && m.walk != nil && len(m.walk.nodes) >= blockedFrom)
}

// predictRows is PredictRows walking blocks of rows when blocked (and the walker can: every
// row holds the features it reads), else row by row.
func (m *Model) predictRows(dst, rows []float32, stride int, blocked bool) []float32 {
	n := len(rows) / stride
	w := m.walk
	if !blocked || w == nil || stride < w.width {
		for r := range n {
			dst = m.PredictTo(dst, rows[r*stride:(r+1)*stride])
		}
		return dst
	}
	// Margins go straight into dst, row-major, then become predictions in place.
	start := len(dst)
	k := m.numGroup
	dst = grow(dst, n*k)
	out := dst[start:]
	var sums [rowBlock]float32
	for r0 := 0; r0 < n; r0 += rowBlock {
		r1 := min(r0+rowBlock, n)
		block := rows[r0*stride : r1*stride]
		for g := range k {
			var weights []float32
			if m.weights != nil {
				weights = m.weights[g]
			}
			s := sums[:r1-r0]
			w.marginRows(g, m.base[g], block, stride, s, weights)
			for i, v := range s {
				out[(r0+i)*k+g] = v
			}
		}
	}
	return m.finish(dst, start, n)
}

// finish turns the n rows of margins at dst[start:] into predictions, as PredictTo does row by
// row, and returns dst cut to the predictions.
func (m *Model) finish(dst []float32, start, n int) []float32 {
	k := m.numGroup
	out := dst[start:]
	if m.transform == transformSoftmaxClass {
		// Row r's class goes to out[r], never past its own margins (r ≤ r*k), so the
		// margins of the rows after it are still there to read.
		for r := range n {
			margins := out[r*k : (r+1)*k]
			best, bestMargin := 0, float32(0)
			for g, v := range margins {
				if g == 0 || v > bestMargin {
					best, bestMargin = g, v
				}
			}
			out[r] = float32(best)
		}
		return dst[:start+n]
	}
	for r := range n {
		m.transform.apply(out[r*k : (r+1)*k])
	}
	return dst
}

// grow extends dst by n values, reusing its capacity when it has room.
func grow(dst []float32, n int) []float32 {
	if cap(dst)-len(dst) < n {
		bigger := make([]float32, len(dst), len(dst)+n)
		copy(bigger, dst)
		dst = bigger
	}
	return dst[:len(dst)+n]
}

// marginRows sets sums[i] to group g's margin of row i of rows (each of stride values): base
// plus the leaves of the group's trees in model order, as margin adds them, so each sum is the
// same to the bit. It walks each block of walkBlock trees for every row before the next block,
// so that block's nodes are read from the cache by all the rows.
func (w *walker) marginRows(g int, base float32, rows []float32, stride int, sums, weights []float32) {
	for i := range sums {
		sums[i] = base
	}
	leaves, roots := w.leaves, w.roots[g]
	for b, steps := range w.steps[g] {
		start := b * walkBlock
		block := roots[start:min(start+walkBlock, len(roots))]
		var first [walkBlock]int32 // unused slots walk node 0 and are not added
		copy(first[:], block)
		for i := range sums {
			at := w.walk8(first, steps, rows[i*stride:(i+1)*stride])
			sum := sums[i]
			if weights != nil {
				for k := range block {
					sum += float32(leaves[at[k]] * weights[start+k])
				}
			} else {
				for k := range block {
					sum += leaves[at[k]]
				}
			}
			sums[i] = sum
		}
	}
}
