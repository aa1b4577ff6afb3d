package xgboost

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// XGBoost's legacy binary format is what booster.save_model writes for a name without a .json
// or .ubj extension (xgboost < 2.0), and so what SageMaker training jobs with the built-in
// XGBoost algorithm (containers 1.3-1 to 1.7-1) store as xgboost-model. It is the learner's C
// structs written as they lie in memory (little-endian), in this order:
//
//	"binf"                      magic, absent in files written before xgboost 0.82
//	learner parameters          136 bytes: base_score f32, num_feature u32, num_class i32,
//	                            contain_extra_attrs i32, contain_eval_metrics i32,
//	                            major_version u32, minor_version u32, reserved
//	objective, booster          strings: u64 length, then the bytes
//	gbtree / dart:  model parameters (160 bytes: num_trees i32 first), the trees, tree_info
//	                (i32 per tree); dart then its weights as a vector (u64 count, f32 each)
//	gblinear:       model parameters (136 bytes), the weights as a vector
//	attributes                  when contain_extra_attrs: u64 count, then key/value strings
//
// A tree is its parameters (148 bytes: num_nodes i32 at offset 4, num_deleted at 8,
// size_leaf_vector at 20), its nodes (20 bytes each: parent i32 whose top bit marks a left
// child, cleft i32, cright i32, split index u32 whose top bit is default-left, and the split
// condition or leaf value f32) and their statistics (16 bytes each, unused for prediction).
// The reader turns it into the same document the JSON reader produces, so that one builder
// checks and lays out every format.

const (
	legacyMagic           = "binf"
	legacyLearnerParams   = 136
	legacyGBTreeParams    = 160
	legacyGBLinearParams  = 136
	legacyTreeParams      = 148
	legacyNodeSize        = 20
	legacyStatSize        = 16
	legacyMaxNameLength   = 256
	legacyFormatName      = "XGBoost legacy binary model"
	legacyDefaultLeftFlag = 1 << 31
)

// binReader reads the little-endian structs of the legacy format; every read says what it was
// reading so that a truncated or garbled file gets an error naming the broken part.
type binReader struct {
	data []byte
	pos  int
	base int // offset of data in the file, for messages
}

func (r *binReader) errorf(format string, args ...any) error {
	return &syntaxError{offset: r.base + r.pos, msg: fmt.Sprintf(format, args...)}
}

func (r *binReader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > len(r.data)-r.pos {
		at := r.base + r.pos
		r.pos = len(r.data)
		return nil, &syntaxError{offset: at, eof: true, msg: fmt.Sprintf("the file ends while reading %s (%d bytes needed, %d left)", what, n, len(r.data)-min(len(r.data), at-r.base))}
	}
	b := r.data[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

func (r *binReader) u64(what string) (uint64, error) {
	b, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a u64 element count and checks that that many elements of size bytes can
// follow, so that a garbled count cannot make the reader allocate gigabytes.
func (r *binReader) count(size int, what string) (int, error) {
	n, err := r.u64("the length of " + what)
	if err != nil {
		return 0, err
	}
	if left := uint64(len(r.data) - r.pos); n > left/uint64(max(size, 1)) {
		return 0, &syntaxError{offset: r.base + r.pos - 8, eof: true, msg: fmt.Sprintf("%s claims %d elements but only %d bytes follow", what, n, left)}
	}
	return int(n), nil
}

func (r *binReader) str(what string, limit int) (string, error) {
	n, err := r.count(1, what)
	if err != nil {
		return "", err
	}
	if limit > 0 && n > limit {
		return "", r.errorf("%s is %d bytes long, more than %d: the file is garbled", what, n, limit)
	}
	b, err := r.take(n, what)
	return string(b), err
}

func (r *binReader) floats(what string) ([]float64, error) {
	n, err := r.count(4, what)
	if err != nil {
		return nil, err
	}
	b, _ := r.take(4*n, what)
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return out, nil
}

func i32(b []byte, off int) int32  { return int32(binary.LittleEndian.Uint32(b[off:])) }
func u32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func f32(b []byte, off int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
}

// Document builders for the JSON-shaped tree the legacy reader produces.
func vObject(members ...member) value { return value{kind: kindObject, obj: members} }
func vString(s string) value          { return value{kind: kindString, str: s} }
func vNumber(n float64) value         { return value{kind: kindNumber, num: n} }
func vNumbers(n []float64) value      { return value{kind: kindNumbers, nums: n} }

// looksLegacy reports whether data is a legacy binary model: the magic, or (for files older
// than the magic) a parameter block followed by a plausible objective name.
func looksLegacy(data []byte) bool {
	if bytes.HasPrefix(data, []byte(legacyMagic)) {
		return true
	}
	_, ok := legacyObjective(data)
	return ok
}

// parseLegacy reads a legacy binary model into a document shaped like a JSON model.
func parseLegacy(data []byte, base int) (value, error) {
	body, _ := bytes.CutPrefix(data, []byte(legacyMagic))
	r := &binReader{data: body, base: base + len(data) - len(body)}
	params, err := r.take(legacyLearnerParams, "the learner parameters")
	if err != nil {
		return value{}, err
	}
	objective, err := r.str("the objective name", legacyMaxNameLength)
	if err != nil {
		return value{}, err
	}
	if !isText([]byte(objective)) {
		return value{}, r.errorf("the objective name %q is not text: the file is garbled", objective)
	}
	booster, err := r.str("the booster name", legacyMaxNameLength)
	if err != nil {
		return value{}, err
	}
	numFeature, numClass := u32(params, 4), i32(params, 8)
	if numClass < 0 || numClass > maxGroups || numFeature > math.MaxInt32 {
		return value{}, &syntaxError{offset: r.base, msg: fmt.Sprintf("the learner parameters say %d features and %d classes: the file is garbled", numFeature, numClass)}
	}
	groups := max(int(numClass), 1)
	var gb value
	switch booster {
	case "gbtree", "dart":
		gb, err = r.gbtree(booster, groups)
	case "gblinear":
		gb, err = r.gblinear()
	default:
		return value{}, r.errorf("booster %q is not one of gbtree, dart, gblinear: the file is garbled", booster)
	}
	if err != nil {
		return value{}, err
	}
	if i32(params, 12) != 0 {
		// The attributes (best_iteration, the objective's configuration, ...) do not change
		// predictions; reading them checks that the file is whole.
		if err := r.attributes(); err != nil {
			return value{}, err
		}
	}
	learner := vObject(
		member{"objective", vObject(member{"name", vString(objective)})},
		member{"learner_model_param", vObject(
			member{"num_feature", vNumber(float64(numFeature))},
			member{"num_class", vNumber(float64(numClass))},
			member{"base_score", vNumber(float64(legacyBaseScore(params, objective)))},
		)},
		member{"gradient_booster", gb},
	)
	return vObject(member{"learner", learner}), nil
}

// legacyBaseScore is base_score as xgboost ≥ 1.0 keeps it. Before 1.0 (major_version 0) it was
// saved already in margin space, except for multi-class objectives; xgboost maps it back
// through the objective's transform on load, and so does this.
func legacyBaseScore(params []byte, objective string) float32 {
	score := f32(params, 0)
	if u32(params, 20) >= 1 || strings.HasPrefix(objective, "multi:") {
		return score
	}
	if spec, ok := objectives[objective]; ok {
		out := []float32{score}
		spec.transform.apply(out)
		return out[0]
	}
	return score
}

func (r *binReader) gbtree(name string, groups int) (value, error) {
	params, err := r.take(legacyGBTreeParams, "the tree booster parameters")
	if err != nil {
		return value{}, err
	}
	numTrees := int(i32(params, 0))
	if numTrees < 0 || numTrees > (len(r.data)-r.pos)/(legacyTreeParams+legacyNodeSize+legacyStatSize) {
		return value{}, &syntaxError{offset: r.base + r.pos - legacyGBTreeParams, eof: numTrees > 0,
			msg: fmt.Sprintf("the booster claims %d trees, which cannot fit in the %d bytes that follow", numTrees, len(r.data)-r.pos)}
	}
	trees := make([]value, numTrees)
	for i := range trees {
		if trees[i], err = r.tree(i); err != nil {
			return value{}, err
		}
	}
	raw, err := r.take(4*numTrees, "tree_info (the output group of each tree)")
	if err != nil {
		return value{}, err
	}
	info := make([]float64, numTrees)
	for i := range info {
		g := i32(raw, 4*i)
		if g < 0 || int(g) >= groups {
			return value{}, &syntaxError{offset: r.base + r.pos - len(raw) + 4*i, msg: fmt.Sprintf("tree %d adds to output group %d, but the model has %d: the file is garbled", i, g, groups)}
		}
		info[i] = float64(g)
	}
	model := vObject(member{"trees", value{kind: kindArray, arr: trees}}, member{"tree_info", vNumbers(info)})
	if name == "gbtree" {
		return vObject(member{"name", vString("gbtree")}, member{"model", model}), nil
	}
	weights := []float64{}
	if numTrees > 0 {
		if weights, err = r.floats("the dart tree weights"); err != nil {
			return value{}, err
		}
	}
	return vObject(
		member{"name", vString("dart")},
		member{"gbtree", vObject(member{"model", model})},
		member{"weight_drop", vNumbers(weights)},
	), nil
}

func (r *binReader) tree(i int) (value, error) {
	what := fmt.Sprintf("tree %d", i)
	params, err := r.take(legacyTreeParams, "the parameters of "+what)
	if err != nil {
		return value{}, err
	}
	n := int(i32(params, 4))
	if leafVector := i32(params, 20); leafVector > 1 {
		return value{}, r.errorf("%s has vector leaves (size_leaf_vector %d), which are not supported", what, leafVector)
	}
	if n <= 0 || n > (len(r.data)-r.pos)/(legacyNodeSize+legacyStatSize) {
		return value{}, &syntaxError{offset: r.base + r.pos - legacyTreeParams, eof: n > 0,
			msg: fmt.Sprintf("%s claims %d nodes, which cannot fit in the %d bytes that follow", what, n, len(r.data)-r.pos)}
	}
	nodes, _ := r.take(n*legacyNodeSize, "the nodes of "+what)
	r.take(n*legacyStatSize, "the node statistics of "+what)
	left, right := make([]float64, n), make([]float64, n)
	feature, cond, defaultLeft := make([]float64, n), make([]float64, n), make([]float64, n)
	for k := range n {
		nd := nodes[k*legacyNodeSize:]
		cleft, cright, sindex := i32(nd, 4), i32(nd, 8), u32(nd, 12)
		left[k], right[k], cond[k] = float64(cleft), float64(cright), float64(f32(nd, 16))
		if cleft == -1 {
			continue // a leaf (or a deleted node, which nothing points at)
		}
		feature[k] = float64(sindex &^ legacyDefaultLeftFlag)
		if sindex&legacyDefaultLeftFlag != 0 {
			defaultLeft[k] = 1
		}
		if err := checkParents(nodes, k, cleft, cright, n); err != nil {
			return value{}, r.errorf("%s: %v", what, err)
		}
	}
	return vObject(
		member{"left_children", vNumbers(left)},
		member{"right_children", vNumbers(right)},
		member{"split_indices", vNumbers(feature)},
		member{"split_conditions", vNumbers(cond)},
		member{"default_left", vNumbers(defaultLeft)},
	), nil
}

// checkParents checks that the children of split k point back at it, the left one with the
// left-child bit: a cheap test that catches garbled node arrays before the builder would.
func checkParents(nodes []byte, k int, cleft, cright int32, n int) error {
	if cleft < 0 || int(cleft) >= n || cright < 0 || int(cright) >= n {
		return fmt.Errorf("node %d has children %d and %d outside its %d nodes", k, cleft, cright, n)
	}
	const leftBit = uint32(1) << 31
	pl, pr := u32(nodes, int(cleft)*legacyNodeSize), u32(nodes, int(cright)*legacyNodeSize)
	if pl != uint32(k)|leftBit || pr != uint32(k) {
		return fmt.Errorf("node %d's children %d and %d do not name it as their parent", k, cleft, cright)
	}
	return nil
}

func (r *binReader) gblinear() (value, error) {
	if _, err := r.take(legacyGBLinearParams, "the linear booster parameters"); err != nil {
		return value{}, err
	}
	weights, err := r.floats("the linear weights")
	if err != nil {
		return value{}, err
	}
	return vObject(member{"name", vString("gblinear")}, member{"model", vObject(member{"weights", vNumbers(weights)})}), nil
}

func (r *binReader) attributes() error {
	n, err := r.count(16, "the attributes")
	if err != nil {
		return err
	}
	for i := range n {
		key, err := r.str(fmt.Sprintf("the name of attribute %d", i), 0)
		if err != nil {
			return err
		}
		if _, err := r.str(fmt.Sprintf("attribute %q", key), 0); err != nil {
			return err
		}
	}
	return nil
}
