package xgboost

import "fmt"

// rowBlock is how many rows predictRows takes through the trees before it moves on to the
// next rows: their sums stay in registers or L1, and the rows themselves (64 × a few hundred
// bytes) stay in cache while every tree of the model goes past them once.
const rowBlock = 64

// byTreeFrom is the model size, in walker nodes, from which PredictRows walks one tree at a
// time for many rows. Measured with BenchmarkWalkOrder (thread CPU time per row, on a busy
// 2-core AMD EPYC): on the 1000-tree depth-8 model (400k nodes, 6 MB, far larger than the
// caches) by tree costs 48 µs/row at 100 rows and 21-26 µs at 1,000-10,000, against 67-91
// row by row and 49-52 by blocks of trees; on the abalone v2 model (80 trees, ~7k nodes,
// 110 KB: in L2 anyway) blocks of trees cost 0.74-0.78 µs/row, by tree 0.84-0.91 and row by
// row 0.90-0.94, at every batch size from 8 rows.
const byTreeFrom = 16 << 10

// PredictRows appends the predictions for the rows packed one after another in rows, each of
// stride values (a dense row-major matrix, as parsed from a CSV payload), and returns dst. The
// results are those of PredictTo on each row, to the bit; only the order of the work differs.
// It panics when len(rows) is not a multiple of stride, as a slice index out of range would.
func (m *Model) PredictRows(dst, rows []float32, stride int) []float32 {
	if stride <= 0 || len(rows)%stride != 0 {
		panic(fmt.Sprintf("xgboost: PredictRows of %d values with stride %d: not a whole number of rows", len(rows), stride))
	}
	n := len(rows) / stride
	return m.predictRows(dst, rows, stride, m.order(n))
}

// walkOrder is the order in which predictRows visits rows and trees.
type walkOrder uint8

const (
	byRow        walkOrder = iota // each row through every tree (PredictTo)
	byTreeBlocks                  // each block of walkBlock trees for every row of a row block
	byTree                        // each tree for every row of a row block, walkBlock rows at a time
)

// order picks how to walk n rows: row by row for one (nothing to share), one tree at a time for
// enough rows of a model too large for the caches, else blocks of trees (see byTreeFrom).
func (m *Model) order(n int) walkOrder {
	switch {
	case n < 2 || m.walk == nil:
		return byRow
	case len(m.walk.nodes) >= byTreeFrom && n >= 4*walkBlock:
		return byTree
	}
	return byTreeBlocks
}

// predictRows is PredictRows walking in the given order (by row when the walker cannot: a
// model with categorical splits, or rows narrower than the features its splits read).
func (m *Model) predictRows(dst, rows []float32, stride int, order walkOrder) []float32 {
	n := len(rows) / stride
	w := m.walk
	if order == byRow || w == nil || stride < w.width {
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
			if order == byTree {
				w.marginRowsByTree(g, m.base[g], block, stride, s, weights)
			} else {
				w.marginRows(g, m.base[g], block, stride, s, weights)
			}
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
	var dense [rowBlock]bool
	for i := range sums {
		dense[i] = w.complete(rows[i*stride : (i+1)*stride])
	}
	leaves, roots := w.leaves, w.roots[g]
	for b, steps := range w.steps[g] {
		start := b * walkBlock
		block := roots[start:min(start+walkBlock, len(roots))]
		var first [walkBlock]int32 // unused slots walk node 0 and are not added
		copy(first[:], block)
		for i := range sums {
			at := w.walk8(first, steps, rows[i*stride:(i+1)*stride], dense[i])
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

// marginRowsByTree is marginRows walking one tree at a time for walkBlock rows side by side:
// a tree of depth 8 (≤ 511 nodes, 8 KB) sits in the L1 cache while every row of the block goes
// through it, and the rows' walks are independent chains the processor overlaps.
func (w *walker) marginRowsByTree(g int, base float32, rows []float32, stride int, sums, weights []float32) {
	for i := range sums {
		sums[i] = base
	}
	nodes, leaves := w.nodes, w.leaves
	n := len(sums)
	full := n - n%walkBlock
	for t, root := range w.roots[g] {
		steps := w.depths[g][t]
		var weight float32 = 1
		if weights != nil {
			weight = weights[t]
		}
		for i := 0; i < full; i += walkBlock {
			at := walk8Rows(nodes, root, steps, rows[i*stride:(i+walkBlock)*stride], stride)
			addLeaves(sums[i:i+walkBlock], leaves, at[:], weight, weights != nil)
		}
		for i := full; i < n; i++ {
			at := root
			row := rows[i*stride : (i+1)*stride]
			for range steps {
				at = step(nodes, at, row)
			}
			addLeaves(sums[i:i+1], leaves, []int32{at}, weight, weights != nil)
		}
	}
}

// addLeaves adds each row's leaf to its sum, times the tree's weight for dart, rounding as
// margin does.
func addLeaves(sums, leaves []float32, at []int32, weight float32, weighted bool) {
	if weighted {
		for k, a := range at {
			sums[k] += float32(leaves[a] * weight)
		}
		return
	}
	for k, a := range at {
		sums[k] += leaves[a]
	}
}

// walk8Rows walks walkBlock rows (of stride values each, packed in rows) steps times from root
// and returns the nodes they reached.
func walk8Rows(nodes []walkNode, root, steps int32, rows []float32, stride int) [walkBlock]int32 {
	r0, r1, r2, r3 := rows[0*stride:1*stride], rows[1*stride:2*stride], rows[2*stride:3*stride], rows[3*stride:4*stride]
	r4, r5, r6, r7 := rows[4*stride:5*stride], rows[5*stride:6*stride], rows[6*stride:7*stride], rows[7*stride:8*stride]
	a0, a1, a2, a3, a4, a5, a6, a7 := root, root, root, root, root, root, root, root
	for range steps {
		a0 = step(nodes, a0, r0)
		a1 = step(nodes, a1, r1)
		a2 = step(nodes, a2, r2)
		a3 = step(nodes, a3, r3)
		a4 = step(nodes, a4, r4)
		a5 = step(nodes, a5, r5)
		a6 = step(nodes, a6, r6)
		a7 = step(nodes, a7, r7)
	}
	return [walkBlock]int32{a0, a1, a2, a3, a4, a5, a6, a7}
}
