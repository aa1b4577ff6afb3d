package xgboost

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// oddValues are inputs where a branchless comparison could go another way than leaf's.
var oddValues = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
	0, float32(math.Copysign(0, -1)), math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}

// testRows mixes rows in the range of the abalone features with rows of odd values. Every
// third row misses nothing (no NaN), so that the walker's dense steps are checked too.
func testRows(n, width int) [][]float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]float32, n)
	for i := range rows {
		row := make([]float32, width)
		for f := range row {
			switch rng.IntN(6) {
			case 0:
				row[f] = oddValues[rng.IntN(len(oddValues))]
			case 1:
				row[f] = float32(math.NaN())
			default:
				row[f] = rng.Float32() * 1.5
			}
			if i%3 == 0 && row[f] != row[f] {
				row[f] = oddValues[1+rng.IntN(len(oddValues)-1)]
			}
		}
		rows[i] = row
	}
	return rows
}

// walkerAgrees checks that the walker gives leafMargin's sums to the bit on rows.
func walkerAgrees(t *testing.T, name string, m *Model, rows [][]float32) {
	t.Helper()
	if m.walk == nil {
		t.Fatalf("%s: no walker for a model of numerical splits", name)
	}
	complete := 0
	for i, row := range rows {
		if m.walk.complete(row) {
			complete++
		}
		for g := range m.numGroup {
			var weights []float32
			if m.weights != nil {
				weights = m.weights[g]
			}
			got := m.walk.margin(g, m.base[g], row, weights)
			want := m.leafMargin(g, m.base[g], row)
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s: row %d %v group %d: walker %.9g, leaf %.9g", name, i, row, g, got, want)
			}
		}
	}
	// Both kinds of walk must have been compared: rows with a missing value and rows without.
	if complete == 0 || complete == len(rows) {
		t.Fatalf("%s: %d of %d rows miss no value; the test wants both kinds", name, complete, len(rows))
	}
}

// Every fixture of numerical splits: the walker sums what leaf sums, odd values included.
func TestWalkerMatchesLeaf(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	walked := 0
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(b)
		if err != nil {
			continue // fixtures.json, config.json and models Load refuses on purpose
		}
		if m.isLinear || len(m.catSets) > 0 {
			if m.walk != nil {
				t.Errorf("%s: a walker for a linear or categorical model", path)
			}
			continue
		}
		walkerAgrees(t, path, m, testRows(3000, m.walk.width))
		walked++
	}
	if walked < 10 {
		t.Fatalf("only %d fixture models were walked; the test proves little", walked)
	}
}

// Trees of shapes the fixtures lack: a lone leaf, a chain deeper than its neighbours, nodes
// numbered in no particular order, a missing-value default to each side, blocks that are not
// full (12 trees), and NaN thresholds.
func TestWalkerOddTrees(t *testing.T) {
	b, err := os.ReadFile("testdata/squarederror.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	model := doc["learner"].(map[string]any)["gradient_booster"].(map[string]any)["model"].(map[string]any)
	trees := model["trees"].([]any)
	template := trees[0].(map[string]any)
	tree := func(left, right, feature []int, cond []float64, defaultLeft []int) map[string]any {
		t := map[string]any{}
		for k, v := range template {
			t[k] = v
		}
		n := len(left)
		t["left_children"], t["right_children"], t["split_indices"] = left, right, feature
		t["split_conditions"], t["default_left"] = cond, defaultLeft
		t["split_type"], t["base_weights"], t["loss_changes"], t["sum_hessian"] = make([]int, n), make([]float64, n), make([]float64, n), make([]float64, n)
		parents := make([]int, n)
		t["parents"] = parents
		t["tree_param"] = map[string]any{"num_deleted": "0", "num_feature": "10", "num_nodes": strconv.Itoa(n), "size_leaf_vector": "0"}
		return t
	}
	// A chain of 12 splits, each with a leaf on the right, its nodes numbered at random (the
	// root must stay node 0).
	const chain = 12
	n := 2*chain + 1
	perm := append([]int{0}, rand.New(rand.NewPCG(3, 4)).Perm(n-1)...)
	for i := 1; i < n; i++ {
		perm[i]++
	}
	left, right, feature := make([]int, n), make([]int, n), make([]int, n)
	cond, defLeft := make([]float64, n), make([]int, n)
	for i := range n {
		left[perm[i]], right[perm[i]] = -1, -1
		cond[perm[i]] = float64(i) * 0.37 // leaf values
	}
	for k := range chain {
		at := perm[2*k]
		next := 2 * (k + 1) // the next split, or the last leaf
		left[at], right[at] = perm[next], perm[2*k+1]
		feature[at] = k % 10
		cond[at] = 0.1 * float64(k%7)
		defLeft[at] = k % 2
	}
	// The chain goes in the second block of eight: marginDense walks blocks in pairs, as deep
	// as the deeper of the two.
	var list []any
	list = append(list, tree([]int{-1}, []int{-1}, []int{0}, []float64{0.5}, []int{0})) // a lone leaf
	for _, tr := range trees[1:] {
		list = append(list, tr)
	}
	list = append(list, tree(left, right, feature, cond, defLeft))
	list = append(list, trees[0])
	model["trees"] = list
	info := make([]int, len(list))
	model["tree_info"] = info
	model["gbtree_model_param"].(map[string]any)["num_trees"] = strconv.Itoa(len(list))
	b, err = json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	// A NaN threshold sends every value right in leaf; JSON cannot hold NaN, so set it after.
	m, err := Load(b)
	if err != nil {
		t.Fatalf("load the odd trees: %v", err)
	}
	if len(list)%walkBlock == 0 {
		t.Fatalf("%d trees fill every block; the test wants a partial one", len(list))
	}
	if got := m.walk.steps[0]; len(got) != 2 || got[0] >= chain || got[1] != chain {
		t.Errorf("the blocks take %v steps, want the second %d (the chain's depth) and the first fewer", got, chain)
	}
	walkerAgrees(t, "odd trees", m, testRows(5000, 10))

	for i := range m.nodes {
		if m.nodes[i].left >= 0 && i%3 == 0 {
			m.nodes[i].value = float32(math.NaN())
		}
	}
	m.walk = newWalker(m)
	walkerAgrees(t, "NaN thresholds", m, testRows(2000, 10))
}

// Many blocks of trees (as many as the abalone model's 80 and more), ending in a partial
// block, with dart weights: the leaves still add up in model order, each with its weight.
func TestWalkerManyTrees(t *testing.T) {
	for _, name := range []string{"squarederror.json", "dart.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(b)
		if err != nil {
			t.Fatal(err)
		}
		grow := func(n int) { // the first n trees again, after the others
			m.groups[0] = append(m.groups[0], m.groups[0][:n]...)
			if m.weights != nil {
				// Other weights than the repeated trees', so that a tree weighed by
				// its neighbour's weight shows.
				for _, w := range m.weights[0][:n] {
					m.weights[0] = append(m.weights[0], w*1.5)
				}
			}
		}
		for len(m.groups[0]) < 100 {
			grow(len(m.groups[0]))
		}
		grow(3)
		m.walk = newWalker(m)
		if n := len(m.groups[0]); n%walkBlock == 0 {
			t.Fatalf("%s: %d trees end in a full block; the test wants a partial one", name, n)
		}
		walkerAgrees(t, name+" repeated", m, testRows(1000, m.walk.width))
	}
}
