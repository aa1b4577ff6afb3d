package xgboost

import "math"

// walkBlock is how many trees walkMargin walks side by side.
const walkBlock = 8

// walker is a second layout of the trees of numerical splits, built for speed: each split's
// children are adjacent, so a step is left + (0 or 1) computed without a branch, and a leaf
// steps to itself, so a tree can be walked a fixed number of steps. The trees are walked
// walkBlock at a time: the walks are independent, so the processor overlaps their loads
// instead of waiting on one tree's chain of nodes after another, and no step depends on
// predicting a branch (rows of real data send the branch predictor the wrong way about a
// third of the time).
type walker struct {
	nodes  []walkNode
	leaves []float32 // leaf value by node index
	roots  [][]int32 // per group, in model order
	steps  [][]int32 // per group, per block of walkBlock trees: the depth of its deepest tree
	depths [][]int32 // per group, per tree in model order: its depth
	width  int       // rows must hold this many values: 1 + the largest feature a split reads
}

// walkNode is one node of the walker's layout. A leaf has threshold NaN (nothing is >= NaN),
// feature 0, defaultRight 0 and left pointing at itself.
type walkNode struct {
	threshold    float32
	feature      uint32
	left         int32 // the right child is left+1
	defaultRight int32 // 1 when a missing value goes right
}

// newWalker lays out the model's trees for walkMargin, or returns nil when they have
// categorical splits (which leaf evaluates).
func newWalker(m *Model) *walker {
	if len(m.catSets) > 0 || m.isLinear {
		return nil
	}
	w := &walker{
		nodes:  make([]walkNode, 0, len(m.nodes)),
		leaves: make([]float32, 0, len(m.nodes)),
		roots:  make([][]int32, len(m.groups)),
		steps:  make([][]int32, len(m.groups)),
		depths: make([][]int32, len(m.groups)),
		width:  1,
	}
	var queue []int32
	for g, roots := range m.groups {
		var depths []int32
		for _, root := range roots {
			w.roots[g] = append(w.roots[g], int32(len(w.nodes)))
			// Breadth first: the children of a split are queued, and so placed, side by side.
			queue = append(queue[:0], root)
			depth, levelEnd := int32(0), 1
			for k := 0; k < len(queue); k++ {
				if k == levelEnd {
					depth++
					levelEnd = len(queue)
				}
				n := m.nodes[queue[k]]
				self := int32(len(w.nodes))
				if n.left < 0 {
					w.nodes = append(w.nodes, walkNode{threshold: float32(math.NaN()), left: self})
					w.leaves = append(w.leaves, n.value)
					continue
				}
				f := n.feat & featMask
				w.width = max(w.width, int(f)+1)
				t := n.value
				if t != t {
					t = float32(math.Inf(-1)) // x < NaN is false: every value goes right
				}
				wn := walkNode{threshold: t, feature: f, left: self + int32(len(queue)-k)}
				if n.feat&flagDefaultLeft == 0 {
					wn.defaultRight = 1
				}
				w.nodes = append(w.nodes, wn)
				w.leaves = append(w.leaves, 0)
				queue = append(queue, n.left, n.right)
			}
			depths = append(depths, depth)
		}
		w.depths[g] = depths
		for start := 0; start < len(depths); start += walkBlock {
			deepest := int32(0)
			for _, d := range depths[start:min(start+walkBlock, len(depths))] {
				deepest = max(deepest, d)
			}
			w.steps[g] = append(w.steps[g], deepest)
		}
	}
	return w
}

// margin adds the leaves of group g's trees for row to sum, in model order as margin does, so
// the result is the same to the bit. The row must hold at least width values.
func (w *walker) margin(g int, sum float32, row []float32, weights []float32) float32 {
	if w.complete(row) {
		return w.marginDense(g, sum, row, weights)
	}
	leaves, roots := w.leaves, w.roots[g]
	const dense = false
	for b, steps := range w.steps[g] {
		start := b * walkBlock
		block := roots[start:min(start+walkBlock, len(roots))]
		var first [walkBlock]int32 // unused slots walk node 0 and are not added
		copy(first[:], block)
		at := w.walk8(first, steps, row, dense)
		if weights != nil {
			for k := range block {
				sum += float32(leaves[at[k]] * weights[start+k])
			}
			continue
		}
		for k := range block {
			sum += leaves[at[k]]
		}
	}
	return sum
}

// marginDense is margin for a row that misses no value (see complete). It walks the trees
// 2*walkBlock at a time with dense steps, their positions kept in an array rather than in
// registers: sixteen independent walks keep twice as many of the processor's loads in flight
// as walk8's eight, which pays most when the model's nodes are not in the cache, as for a
// one-row request between others (BenchmarkColdWalk: ~1.4 → ~1.0 µs on abalone v2; warm,
// BenchmarkPredict/v2/rows=1: ~0.75 → ~0.6 µs).
func (w *walker) marginDense(g int, sum float32, row []float32, weights []float32) float32 {
	leaves, roots, steps, nodes := w.leaves, w.roots[g], w.steps[g], w.nodes
	for b := 0; b < len(steps); b += 2 {
		start := b * walkBlock
		trees := roots[start:min(start+2*walkBlock, len(roots))]
		deepest := steps[b]
		if b+1 < len(steps) {
			deepest = max(deepest, steps[b+1])
		}
		var a [2 * walkBlock]int32 // unused slots walk node 0 and are not added
		copy(a[:], trees)
		for range deepest {
			a[0] = stepDense(nodes, a[0], row)
			a[1] = stepDense(nodes, a[1], row)
			a[2] = stepDense(nodes, a[2], row)
			a[3] = stepDense(nodes, a[3], row)
			a[4] = stepDense(nodes, a[4], row)
			a[5] = stepDense(nodes, a[5], row)
			a[6] = stepDense(nodes, a[6], row)
			a[7] = stepDense(nodes, a[7], row)
			a[8] = stepDense(nodes, a[8], row)
			a[9] = stepDense(nodes, a[9], row)
			a[10] = stepDense(nodes, a[10], row)
			a[11] = stepDense(nodes, a[11], row)
			a[12] = stepDense(nodes, a[12], row)
			a[13] = stepDense(nodes, a[13], row)
			a[14] = stepDense(nodes, a[14], row)
			a[15] = stepDense(nodes, a[15], row)
		}
		if weights != nil {
			for k := range trees {
				sum += float32(leaves[a[k]] * weights[start+k])
			}
			continue
		}
		for k := range trees {
			sum += leaves[a[k]]
		}
	}
	return sum
}

// complete reports whether row has a value for every feature a split reads: no NaN in its
// first width values. Such a row can take walk8's dense steps.
func (w *walker) complete(row []float32) bool {
	for _, x := range row[:w.width] {
		if x != x {
			return false
		}
	}
	return true
}

// walk8 walks the trees from the roots in at (walkBlock of them) steps times for row and
// returns the nodes they reached: their leaves when steps is the depth of the deepest. A dense
// row (see complete) is walked without the missing-value test, a third of a step's work.
func (w *walker) walk8(at [walkBlock]int32, steps int32, row []float32, dense bool) [walkBlock]int32 {
	nodes := w.nodes
	if dense {
		return walk8Dense(nodes, at, steps, row)
	}
	a0, a1, a2, a3, a4, a5, a6, a7 := at[0], at[1], at[2], at[3], at[4], at[5], at[6], at[7]
	for range steps {
		a0 = step(nodes, a0, row)
		a1 = step(nodes, a1, row)
		a2 = step(nodes, a2, row)
		a3 = step(nodes, a3, row)
		a4 = step(nodes, a4, row)
		a5 = step(nodes, a5, row)
		a6 = step(nodes, a6, row)
		a7 = step(nodes, a7, row)
	}
	return [walkBlock]int32{a0, a1, a2, a3, a4, a5, a6, a7}
}

// step goes from node i to the child the row goes to (a leaf to itself): right when the value
// is at least the threshold, or is missing and the default is right.
func step(nodes []walkNode, i int32, row []float32) int32 {
	n := &nodes[i]
	x := row[n.feature]
	return n.left + (b2i(x >= n.threshold) | b2i(x != x)&n.defaultRight)
}

// walk8Dense is walk8 for a row with no missing value, where x != x is always false and a
// step is only the comparison.
func walk8Dense(nodes []walkNode, at [walkBlock]int32, steps int32, row []float32) [walkBlock]int32 {
	a0, a1, a2, a3, a4, a5, a6, a7 := at[0], at[1], at[2], at[3], at[4], at[5], at[6], at[7]
	for range steps {
		a0 = stepDense(nodes, a0, row)
		a1 = stepDense(nodes, a1, row)
		a2 = stepDense(nodes, a2, row)
		a3 = stepDense(nodes, a3, row)
		a4 = stepDense(nodes, a4, row)
		a5 = stepDense(nodes, a5, row)
		a6 = stepDense(nodes, a6, row)
		a7 = stepDense(nodes, a7, row)
	}
	return [walkBlock]int32{a0, a1, a2, a3, a4, a5, a6, a7}
}

// stepDense is step for a value that is not missing. A leaf still steps to itself: nothing is
// at least its NaN threshold.
func stepDense(nodes []walkNode, i int32, row []float32) int32 {
	n := &nodes[i]
	return n.left + b2i(row[n.feature] >= n.threshold)
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}
