package xgboost

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// maxGroups bounds num_class so that a corrupt header cannot make Load allocate gigabytes.
const maxGroups = 1 << 16

// Load reads a model, detecting its format from the bytes: JSON, UBJSON, XGBoost's legacy
// binary format (with or without its "binf" magic), the serialization snapshot python xgboost
// pickles, or a Python pickle or joblib dump of a Booster or scikit-learn estimator (read
// without running anything). Every error wraps ErrUnsupportedFormat and says what the bytes
// look like instead, or which part of the file is truncated or garbled.
func Load(data []byte) (*Model, error) {
	doc, format, err := decode(data, true)
	if err != nil {
		return nil, err
	}
	m, err := build(&doc)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s is not a usable XGBoost model: %v", ErrUnsupportedFormat, format, err)
	}
	return m, nil
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupportedFormat, fmt.Sprintf(format, args...))
}

// decode detects the format and parses the document, or explains what the bytes are instead.
// Pickles are read only at the top: the model bytes inside one are never a pickle.
func decode(data []byte, pickles bool) (value, string, error) {
	text := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark
	trimmed := bytes.TrimLeft(text, " \t\r\n")
	switch {
	case len(data) == 0:
		return value{}, "", unsupported("the model file is empty (0 bytes)")
	case len(trimmed) == 0:
		return value{}, "", unsupported("the model file holds only whitespace")
	case pickles && isPickle(data):
		return decodePickle(data)
	case bytes.HasPrefix(data, []byte(snapshotHeader)):
		return decodeSnapshot(data, len(data))
	case bytes.HasPrefix(data, []byte(legacyMagic)):
		return decodeLegacy(data, 0, len(data))
	case len(data) >= 2 && data[0] == '{' && isUBJSONKey(data[1]):
		v, err := parseUBJSON(data)
		if err != nil {
			return value{}, "", syntaxProblem("UBJSON (XGBoost's binary JSON)", len(data), err)
		}
		return unwrapSnapshot(v, "UBJSON document")
	case trimmed[0] == '{' || trimmed[0] == '[':
		v, err := parseJSON(text)
		if err != nil {
			return value{}, "", syntaxProblem("JSON", len(data), err)
		}
		return unwrapSnapshot(v, "JSON document")
	case looksLegacy(data):
		return decodeLegacy(data, 0, len(data))
	}
	return value{}, "", unsupported("%s", identify(data))
}

// unwrapSnapshot returns the model of a serialization snapshot ({"Model": ..., "Config": ...},
// what python xgboost ≥ 1.6 pickles as a Booster's state), or the document itself.
func unwrapSnapshot(v value, format string) (value, string, error) {
	if v.get("learner") == nil {
		if model := v.get("Model"); model != nil && model.get("learner") != nil {
			return *model, "XGBoost serialization snapshot (" + format + ")", nil
		}
	}
	return v, format, nil
}

// isUBJSONKey reports whether b can follow '{' in UBJSON: the length marker of the first key,
// a count, a type, or the end of an empty object. JSON has a quote or whitespace there.
func isUBJSONKey(b byte) bool {
	return strings.IndexByte("iUIlL#$N", b) >= 0
}

func syntaxProblem(format string, size int, err error) error {
	var se *syntaxError
	if errors.As(err, &se) && se.eof {
		return unsupported("the model file looks like %s but ends early (%d bytes): it is truncated; upload the complete file", format, size)
	}
	return unsupported("the model file looks like %s but is corrupt: %v", format, err)
}

// identify names the formats people mistake for a model file, and says what to do instead.
func identify(data []byte) string {
	const resave = "load it with xgboost in Python, re-save it with booster.save_model('xgboost-model.json') and package that file as xgboost-model in model.tar.gz"
	switch {
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		return "this is a gzip archive (such as model.tar.gz, or a joblib dump made with compress=), not the model file: extract it and use the xgboost-model file inside, or joblib.dump the model again without compress"
	case len(data) >= 2 && data[0] == 0x78 && (uint(data[0])<<8|uint(data[1]))%31 == 0:
		return "this is zlib-compressed data, such as a joblib dump made with compress=; load it in Python and joblib.dump it again without compress, or save the model with booster.save_model('xgboost-model')"
	case len(data) >= 262 && string(data[257:262]) == "ustar":
		return "this is a tar archive, not the model file: extract it and use the xgboost-model file inside"
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return "this is a zip archive, not the model file: extract it and use the model file inside"
	case bytes.HasPrefix(data, []byte("bs64")):
		return "this is XGBoost's legacy binary format encoded in base64 (written by old R and JVM packages), which is no longer supported; " + resave
	}
	head := data[:min(len(data), 16)]
	if isText(head) {
		return fmt.Sprintf("this is text that is not XGBoost JSON (it starts with %q); save the model with booster.save_model('xgboost-model.json')", head)
	}
	return fmt.Sprintf("this is not an XGBoost JSON or UBJSON model (it starts with bytes % x); save the model with booster.save_model('xgboost-model.json')", head)
}

// legacyObjective recognizes the legacy binary format without relying on its magic (absent
// before xgboost 0.82): an optional "binf", a 136-byte parameter block, then the objective
// name as a little-endian uint64 length and its bytes.
func legacyObjective(data []byte) (string, bool) {
	body, magic := bytes.CutPrefix(data, []byte("binf"))
	const paramSize = 136
	if len(body) >= paramSize+8 {
		n := binary.LittleEndian.Uint64(body[paramSize:])
		if n > 0 && n < 64 && uint64(len(body)) >= paramSize+8+n {
			name := body[paramSize+8 : paramSize+8+int(n)]
			if isText(name) && bytes.IndexByte(name, ':') > 0 {
				return string(name), true
			}
		}
	}
	return "", magic
}

func isText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c >= 0x7f) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// ---- from document to model ----

// field is a path-aware accessor so that errors name the broken part of the model.
type field struct {
	path string
	v    *value
}

func (f field) get(key string) field {
	return field{path: f.path + "." + key, v: f.v.get(key)}
}

func (f field) missing() bool { return f.v == nil }

func (f field) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", f.path, fmt.Sprintf(format, args...))
}

func (f field) want(k kind) error {
	if f.v == nil {
		return f.errorf("missing")
	}
	if f.v.kind != k && !(k == kindArray && f.v.kind == kindNumbers) {
		return f.errorf("is a %s, want a %s", f.v.kind, k)
	}
	return nil
}

func (f field) string() (string, error) {
	if err := f.want(kindString); err != nil {
		return "", err
	}
	return f.v.str, nil
}

// param reads one of xgboost's parameters, which it saves as strings ("10", "5E-1"); numbers
// are accepted too.
func (f field) param() (float64, error) {
	if f.v != nil && f.v.kind == kindNumber {
		return f.v.num, nil
	}
	s, err := f.string()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, f.errorf("%q is not a number", s)
	}
	return n, nil
}

func (f field) intParam(lo, hi int) (int, error) {
	n, err := f.param()
	if err != nil {
		return 0, err
	}
	if n != math.Trunc(n) || n < float64(lo) || n > float64(hi) {
		return 0, f.errorf("%v is not an integer in [%d, %d]", n, lo, hi)
	}
	return int(n), nil
}

// numbers reads an array of numbers (booleans count as 0 and 1, as older xgboost wrote
// default_left).
func (f field) numbers() ([]float64, error) {
	if err := f.want(kindArray); err != nil {
		return nil, err
	}
	if f.v.kind == kindNumbers {
		return f.v.nums, nil
	}
	out := make([]float64, len(f.v.arr))
	for i, el := range f.v.arr {
		if el.kind != kindNumber && el.kind != kindBool {
			return nil, f.errorf("element %d is a %s, want a number", i, el.kind)
		}
		out[i] = el.num
	}
	return out, nil
}

// ints reads an array of integers in [lo, hi].
func (f field) ints(lo, hi int) ([]int, error) {
	nums, err := f.numbers()
	if err != nil {
		return nil, err
	}
	out := make([]int, len(nums))
	for i, n := range nums {
		if n != math.Trunc(n) || n < float64(lo) || n > float64(hi) {
			return nil, f.errorf("element %d is %v, want an integer in [%d, %d]", i, n, lo, hi)
		}
		out[i] = int(n)
	}
	return out, nil
}

func (f field) floats() ([]float32, error) {
	nums, err := f.numbers()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(nums))
	for i, n := range nums {
		out[i] = float32(n)
	}
	return out, nil
}

func build(doc *value) (*Model, error) {
	if doc.kind != kindObject || doc.get("learner") == nil {
		return nil, errors.New(`it has no "learner" object at the top level, so it is not a model saved with booster.save_model`)
	}
	learner := field{path: "learner", v: doc.get("learner")}
	if err := learner.want(kindObject); err != nil {
		return nil, err
	}
	gb := learner.get("gradient_booster")
	if err := gb.want(kindObject); err != nil {
		return nil, err
	}
	if gb.get("model").missing() && gb.get("gbtree").missing() && !gb.get("gbtree_train_param").missing() {
		return nil, errors.New("it holds a training configuration (booster.save_config()), not a model; save the model with booster.save_model('xgboost-model.json')")
	}

	m := &Model{}
	var err error
	if m.objective, err = learner.get("objective").get("name").string(); err != nil {
		return nil, err
	}
	spec, ok := objectives[m.objective]
	if !ok {
		return nil, fmt.Errorf("objective %q is not supported (supported: %s)", m.objective, strings.Join(Objectives(), ", "))
	}
	m.transform = spec.transform

	lmp := learner.get("learner_model_param")
	if m.numFeature, err = lmp.get("num_feature").intParam(0, math.MaxInt32); err != nil {
		return nil, err
	}
	numClass, numTarget := 0, 1
	if f := lmp.get("num_class"); !f.missing() {
		if numClass, err = f.intParam(0, maxGroups); err != nil {
			return nil, err
		}
	}
	if f := lmp.get("num_target"); !f.missing() {
		if numTarget, err = f.intParam(0, maxGroups); err != nil {
			return nil, err
		}
	}
	m.numGroup = max(numClass, numTarget, 1)
	if (spec.transform == transformSoftmax || spec.transform == transformSoftmaxClass) && numClass < 1 {
		return nil, lmp.get("num_class").errorf("is %d, but %s needs the number of classes", numClass, m.objective)
	}
	if m.base, err = baseScores(lmp.get("base_score"), m.numGroup, spec.base); err != nil {
		return nil, err
	}
	if names := learner.get("feature_names"); !names.missing() && names.v.kind == kindArray {
		for _, el := range names.v.arr {
			m.featureNames = append(m.featureNames, el.str)
		}
	}

	if m.booster, err = gb.get("name").string(); err != nil {
		return nil, err
	}
	switch m.booster {
	case "gbtree":
		err = m.buildTrees(gb.get("model"), field{})
	case "dart":
		err = m.buildTrees(gb.get("gbtree").get("model"), gb.get("weight_drop"))
	case "gblinear":
		err = m.buildLinear(gb.get("model").get("weights"))
	default:
		err = gb.get("name").errorf("booster %q is not supported (supported: gbtree, dart, gblinear)", m.booster)
	}
	if err != nil {
		return nil, err
	}
	m.walk = newWalker(m)
	return m, nil
}

// baseScores reads base_score, a string like "5E-1" (or "[5E-1,...]" since xgboost 3), and
// maps it to margin space.
func baseScores(f field, groups int, link baseMargin) ([]float32, error) {
	var parts []string
	if f.v != nil && f.v.kind == kindNumber {
		parts = []string{strconv.FormatFloat(f.v.num, 'g', -1, 64)}
	} else {
		s, err := f.string()
		if err != nil {
			return nil, err
		}
		s = strings.TrimSpace(s)
		if inner, ok := strings.CutPrefix(s, "["); ok {
			s = strings.TrimSuffix(inner, "]")
		}
		parts = strings.Split(s, ",")
	}
	if len(parts) != 1 && len(parts) != groups {
		return nil, f.errorf("has %d values for %d outputs", len(parts), groups)
	}
	base := make([]float32, groups)
	for g := range base {
		p := strings.TrimSpace(parts[min(g, len(parts)-1)])
		v, err := strconv.ParseFloat(p, 32)
		if err != nil && !isRangeError(err) {
			return nil, f.errorf("%q is not a number", p)
		}
		base[g] = link.apply(float32(v))
	}
	return base, nil
}

func (m *Model) buildTrees(model field, weightDrop field) error {
	if err := model.want(kindObject); err != nil {
		return err
	}
	trees := model.get("trees")
	if err := trees.want(kindArray); err != nil {
		return err
	}
	var list []value
	if trees.v.kind == kindArray {
		list = trees.v.arr
	} else if len(trees.v.nums) > 0 {
		return trees.errorf("holds numbers, want tree objects")
	}
	m.numTrees = len(list)
	info := make([]int, len(list))
	if f := model.get("tree_info"); !f.missing() {
		var err error
		if info, err = f.ints(0, m.numGroup-1); err != nil {
			return err
		}
		if len(info) != len(list) {
			return f.errorf("has %d entries for %d trees", len(info), len(list))
		}
	} else if m.numGroup > 1 {
		return f.errorf("missing; it says which class each tree adds to")
	}
	var drops []float32
	if weightDrop.v != nil {
		var err error
		if drops, err = weightDrop.floats(); err != nil {
			return err
		}
		if len(drops) != len(list) {
			return weightDrop.errorf("has %d weights for %d trees", len(drops), len(list))
		}
		m.weights = make([][]float32, m.numGroup)
	}
	m.groups = make([][]int32, m.numGroup)
	for i := range list {
		tree := field{path: fmt.Sprintf("%s[%d]", trees.path, i), v: &list[i]}
		root, err := m.addTree(tree)
		if err != nil {
			return err
		}
		g := info[i]
		m.groups[g] = append(m.groups[g], root)
		if drops != nil {
			m.weights[g] = append(m.weights[g], drops[i])
		}
	}
	return nil
}

// addTree appends one tree's nodes to the flat array and returns the index of its root. It
// checks that the nodes form a tree, so that prediction needs no bounds or cycle checks.
func (m *Model) addTree(tree field) (int32, error) {
	if err := tree.want(kindObject); err != nil {
		return 0, err
	}
	if f := tree.get("tree_param").get("size_leaf_vector"); !f.missing() {
		if n, err := f.intParam(0, math.MaxInt32); err != nil {
			return 0, err
		} else if n > 1 {
			return 0, f.errorf("is %d: trees with vector leaves (multi_strategy=multi_output_tree) are not supported", n)
		}
	}
	left, err := tree.get("left_children").ints(-1, math.MaxInt32)
	if err != nil {
		return 0, err
	}
	n := len(left)
	if n == 0 {
		return 0, tree.get("left_children").errorf("is empty: a tree needs at least a root")
	}
	right, err := tree.get("right_children").ints(-1, n-1)
	if err != nil {
		return 0, err
	}
	feature, err := tree.get("split_indices").ints(0, featMask)
	if err != nil {
		return 0, err
	}
	cond, err := tree.get("split_conditions").floats()
	if err != nil {
		return 0, err
	}
	defaultLeft, err := tree.get("default_left").numbers()
	if err != nil {
		return 0, err
	}
	for _, c := range []struct {
		name string
		got  int
	}{{"right_children", len(right)}, {"split_indices", len(feature)}, {"split_conditions", len(cond)}, {"default_left", len(defaultLeft)}} {
		if c.got != n {
			return 0, tree.get(c.name).errorf("has %d entries, left_children has %d", c.got, n)
		}
	}
	cats, err := categories(tree, n)
	if err != nil {
		return 0, err
	}
	if len(m.nodes)+n > math.MaxInt32 {
		return 0, tree.errorf("the model has more than %d nodes", math.MaxInt32)
	}

	offset := int32(len(m.nodes))
	nodes := make([]node, n)
	seen := make([]bool, n)
	stack := []int{0}
	seen[0] = true
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		nd := node{value: cond[i], left: -1, right: -1}
		if left[i] >= 0 {
			l, r := left[i], right[i]
			if l >= n || r < 0 || seen[l] || seen[r] || l == r {
				return 0, tree.errorf("node %d has children %d and %d, which do not form a tree of %d nodes", i, l, r, n)
			}
			seen[l], seen[r] = true, true
			stack = append(stack, l, r)
			nd.left, nd.right = offset+int32(l), offset+int32(r)
			nd.feat = uint32(feature[i])
			if defaultLeft[i] != 0 {
				nd.feat |= flagDefaultLeft
			}
			if set, ok := cats[i]; ok {
				nd.feat |= flagCategorical
				nd.value = math.Float32frombits(uint32(len(m.catSets)))
				m.catSets = append(m.catSets, set)
			}
		}
		nodes[i] = nd
	}
	m.nodes = append(m.nodes, nodes...)
	return offset, nil
}

// categories reads a tree's categorical splits: node → sorted categories that go right.
func categories(tree field, n int) (map[int][]uint32, error) {
	splitType := tree.get("split_type")
	if splitType.missing() {
		return nil, nil
	}
	types, err := splitType.ints(0, 1)
	if err != nil {
		return nil, err
	}
	if len(types) != n {
		return nil, splitType.errorf("has %d entries for %d nodes", len(types), n)
	}
	if !slices.Contains(types, 1) {
		return nil, nil
	}
	nodesF, segF, sizesF, catsF := tree.get("categories_nodes"), tree.get("categories_segments"), tree.get("categories_sizes"), tree.get("categories")
	catNodes, err := nodesF.ints(0, n-1)
	if err != nil {
		return nil, err
	}
	all, err := catsF.ints(0, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	segments, err := segF.ints(0, len(all))
	if err != nil {
		return nil, err
	}
	sizes, err := sizesF.ints(0, len(all))
	if err != nil {
		return nil, err
	}
	if len(segments) != len(catNodes) || len(sizes) != len(catNodes) {
		return nil, nodesF.errorf("has %d nodes but %d segments and %d sizes", len(catNodes), len(segments), len(sizes))
	}
	total := 0
	for _, size := range sizes {
		total += size
	}
	if total > len(all) {
		// xgboost's segments never overlap; checking keeps a hostile file from making Load
		// copy the same categories once per node.
		return nil, sizesF.errorf("add up to %d categories, the tree has %d", total, len(all))
	}
	sets := make(map[int][]uint32, len(catNodes))
	for k, nd := range catNodes {
		if segments[k]+sizes[k] > len(all) {
			return nil, segF.errorf("segment %d runs past the %d categories", k, len(all))
		}
		set := make([]uint32, sizes[k])
		for j := range set {
			set[j] = uint32(all[segments[k]+j])
		}
		slices.Sort(set)
		sets[nd] = set
	}
	for i, t := range types {
		if _, ok := sets[i]; t == 1 && !ok {
			return nil, splitType.errorf("node %d is a categorical split without categories", i)
		}
		if t == 0 {
			delete(sets, i)
		}
	}
	return sets, nil
}

func (m *Model) buildLinear(weights field) error {
	w, err := weights.floats()
	if err != nil {
		return err
	}
	if want := (m.numFeature + 1) * m.numGroup; len(w) != want {
		return weights.errorf("has %d weights, want (num_feature %d + 1) × %d outputs = %d", len(w), m.numFeature, m.numGroup, want)
	}
	m.linear, m.isLinear = w, true
	return nil
}
