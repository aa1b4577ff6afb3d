package xgboost

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Python pickles of XGBoost models: a Booster pickled by python xgboost, or a scikit-learn
// wrapper (XGBRegressor, XGBClassifier, XGBRanker, ...) pickled or joblib.dump'ed. The reader
// interprets the pickle opcodes of protocols 2 to 5 into plain values and never runs anything:
// a class or function (GLOBAL, STACK_GLOBAL) is only a name here, and any name outside the few
// reconstructors these files use is refused. What Python would rebuild as objects stays a
// record of the class, its arguments and its state, and the model is the Booster's state
// "handle": the raw bytes xgboost serialized, which Load then reads as any other model file.
//
// A hand-written reader is used rather than a general unpickling library because those are
// built to reconstruct objects by calling registered classes; here nothing may be called, and
// joblib's arrays, whose bytes follow their wrapper inside the pickle, need skipping in place.

// allowedGlobals are the names the pickles of XGBoost models refer to. Everything else, such as
// os.system or builtins.eval, is refused by name.
var allowedGlobals = map[string]bool{
	"xgboost.core.Booster":                                    true,
	"xgboost.sklearn.XGBModel":                                true,
	"xgboost.sklearn.XGBRegressor":                            true,
	"xgboost.sklearn.XGBClassifier":                           true,
	"xgboost.sklearn.XGBRanker":                               true,
	"xgboost.sklearn.XGBRFRegressor":                          true,
	"xgboost.sklearn.XGBRFClassifier":                         true,
	"builtins.bytearray":                                      true,
	"__builtin__.bytearray":                                   true,
	"builtins.set":                                            true,
	"builtins.frozenset":                                      true,
	"builtins.object":                                         true,
	"__builtin__.object":                                      true,
	"_codecs.encode":                                          true,
	"copyreg._reconstructor":                                  true,
	"copy_reg._reconstructor":                                 true,
	"numpy.core.multiarray._reconstruct":                      true,
	"numpy._core.multiarray._reconstruct":                     true,
	"numpy.core.multiarray.scalar":                            true,
	"numpy._core.multiarray.scalar":                           true,
	"numpy.ndarray":                                           true,
	"numpy.dtype":                                             true,
	"joblib.numpy_pickle.NumpyArrayWrapper":                   true,
	"sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper": true,
	"sklearn.preprocessing._label.LabelEncoder":               true,
	"sklearn.preprocessing.label.LabelEncoder":                true,
}

const (
	boosterClass     = "xgboost.core.Booster"
	arrayWrapper     = "NumpyArrayWrapper"
	maxPickleStack   = 1 << 20
	maxPickleSearch  = 64 // nesting levels searched for the Booster
	pickleFormatName = "Python pickle"
)

type pyKind uint8

const (
	pyNone pyKind = iota
	pyBool
	pyInt
	pyFloat
	pyStr
	pyBytes
	pyTuple
	pyList
	pyDict
	pyGlobal
	pyObject
	pyMark
)

func (k pyKind) String() string {
	return [...]string{"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict", "class", "object", "mark"}[k]
}

// pyValue is one value of the pickle machine. Lists, dicts and objects are shared by pointer,
// as Python shares them through the memo, so that later SETITEMS and BUILD reach every
// reference.
type pyValue struct {
	kind  pyKind
	i     int64
	s     string // str, bytes; module.name of a global or an object's class
	items []*pyValue
	keys  []*pyValue // dict
	args  *pyValue   // object: constructor arguments
	state *pyValue   // object: what BUILD set
}

func (v *pyValue) describe() string {
	switch v.kind {
	case pyObject, pyGlobal:
		return v.s
	}
	return v.kind.String()
}

// lookup returns the value of a str key in a dict, or nil.
func (v *pyValue) lookup(key string) *pyValue {
	if v == nil || v.kind != pyDict {
		return nil
	}
	for i, k := range v.keys {
		if k.kind == pyStr && k.s == key {
			return v.items[i]
		}
	}
	return nil
}

// unpickler is the pickle machine: a stack, the marks, the memo and the input.
type unpickler struct {
	data  []byte
	pos   int
	stack []*pyValue
	marks []int
	memo  map[uint64]*pyValue
	proto int
}

func (u *unpickler) errorf(format string, args ...any) error {
	return &syntaxError{offset: u.pos, msg: fmt.Sprintf(format, args...)}
}

func (u *unpickler) take(n int, what string) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		at := u.pos
		u.pos = len(u.data)
		return nil, &syntaxError{offset: at, eof: true, msg: fmt.Sprintf("the pickle ends inside %s", what)}
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) uint(n int, what string) (uint64, error) {
	b, err := u.take(n, what)
	if err != nil {
		return 0, err
	}
	var x uint64
	for i := n - 1; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x, nil
}

// sized reads a length of n bytes and then that many bytes.
func (u *unpickler) sized(n int, what string) ([]byte, error) {
	size, err := u.uint(n, "the length of "+what)
	if err != nil {
		return nil, err
	}
	if size > uint64(len(u.data)-u.pos) {
		return nil, &syntaxError{offset: u.pos, eof: true, msg: fmt.Sprintf("%s of %d bytes runs past the end of the pickle", what, size)}
	}
	return u.take(int(size), what)
}

func (u *unpickler) line(what string) (string, error) {
	for i := u.pos; i < len(u.data); i++ {
		if u.data[i] == '\n' {
			s := string(u.data[u.pos:i])
			u.pos = i + 1
			return s, nil
		}
	}
	u.pos = len(u.data)
	return "", &syntaxError{offset: u.pos, eof: true, msg: "the pickle ends inside " + what}
}

func (u *unpickler) push(v *pyValue) error {
	if len(u.stack) >= maxPickleStack {
		return u.errorf("the pickle's stack grows beyond %d values", maxPickleStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (*pyValue, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1]) {
		return nil, u.errorf("the pickle pops from an empty stack: it is garbled")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (*pyValue, error) {
	if len(u.stack) == 0 {
		return nil, u.errorf("the pickle reads an empty stack: it is garbled")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the values pushed since the last MARK and removes them and the mark.
func (u *unpickler) popMark() ([]*pyValue, error) {
	if len(u.marks) == 0 {
		return nil, u.errorf("the pickle closes a MARK it never opened: it is garbled")
	}
	at := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := slices.Clone(u.stack[at:])
	u.stack = u.stack[:at]
	return items, nil
}

// unpickle runs the machine to STOP and returns the pickled value.
func unpickle(data []byte) (*pyValue, int, error) {
	u := &unpickler{data: data, memo: map[uint64]*pyValue{}}
	v, err := u.run()
	return v, u.proto, err
}

func (u *unpickler) run() (*pyValue, error) {
	for {
		if u.pos >= len(u.data) {
			return nil, &syntaxError{offset: u.pos, eof: true, msg: "the pickle ends before its STOP opcode"}
		}
		op := u.data[u.pos]
		u.pos++
		if op == '.' { // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		}
		handled, err := u.scalarOp(op)
		if !handled && err == nil {
			handled, err = u.containerOp(op)
		}
		if !handled && err == nil {
			handled, err = u.memoOp(op)
		}
		if !handled && err == nil {
			handled, err = u.objectOp(op)
		}
		if err != nil {
			return nil, err
		}
		if !handled {
			u.pos--
			return nil, u.errorf("opcode 0x%02x (%q) is not one python xgboost, pickle protocols 2-5 or joblib write", op, op)
		}
	}
}

// scalarOp handles the opcodes that push a constant, and the framing ones.
func (u *unpickler) scalarOp(op byte) (bool, error) {
	var v *pyValue
	var err error
	switch op {
	case 0x80: // PROTO
		var b []byte
		if b, err = u.take(1, "the protocol number"); err == nil {
			u.proto = int(b[0])
		}
		return true, err
	case 0x95: // FRAME: a length to skip; the opcodes inside are read as they come
		_, err = u.take(8, "a frame length")
		return true, err
	case 'N':
		v = &pyValue{kind: pyNone}
	case 0x88, 0x89: // NEWTRUE, NEWFALSE
		v = &pyValue{kind: pyBool, i: boolInt(op == 0x88)}
	case 'K', 'M', 'J': // BININT1, BININT2, BININT
		n := map[byte]int{'K': 1, 'M': 2, 'J': 4}[op]
		var x uint64
		x, err = u.uint(n, "an integer")
		if op == 'J' {
			x = uint64(int64(int32(uint32(x))))
		}
		v = &pyValue{kind: pyInt, i: int64(x)}
	case 0x8a, 0x8b: // LONG1, LONG4
		v, err = u.long(map[byte]int{0x8a: 1, 0x8b: 4}[op])
	case 'G': // BINFLOAT, big-endian
		var b []byte
		if b, err = u.take(8, "a float"); err == nil {
			v = &pyValue{kind: pyFloat, i: int64(binary.BigEndian.Uint64(b))}
		}
	case 'I': // INT (text), which protocol 2 still uses for some booleans
		v, err = u.textInt()
	default:
		return u.stringOp(op)
	}
	if err != nil {
		return true, err
	}
	return true, u.push(v)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (u *unpickler) long(n int) (*pyValue, error) {
	b, err := u.sized(n, "a long integer")
	if err != nil {
		return nil, err
	}
	if len(b) > 8 {
		return &pyValue{kind: pyInt, i: math.MaxInt64}, nil // only sizes and counts matter here
	}
	var x big.Int
	le := slices.Clone(b)
	slices.Reverse(le)
	x.SetBytes(le)
	if len(b) > 0 && b[len(b)-1]&0x80 != 0 {
		x.Sub(&x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return &pyValue{kind: pyInt, i: x.Int64()}, nil
}

func (u *unpickler) textInt() (*pyValue, error) {
	s, err := u.line("an integer")
	if err != nil {
		return nil, err
	}
	switch s {
	case "01":
		return &pyValue{kind: pyBool, i: 1}, nil
	case "00":
		return &pyValue{kind: pyBool}, nil
	}
	n, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil {
		return nil, u.errorf("INT %q is not an integer", s)
	}
	return &pyValue{kind: pyInt, i: n}, nil
}

func (u *unpickler) stringOp(op byte) (bool, error) {
	kind, size := pyStr, 0
	switch op {
	case 0x8c: // SHORT_BINUNICODE
		size = 1
	case 'X': // BINUNICODE
		size = 4
	case 0x8d: // BINUNICODE8
		size = 8
	case 'C', 'U': // SHORT_BINBYTES, SHORT_BINSTRING
		kind, size = pyBytes, 1
	case 'B', 'T': // BINBYTES, BINSTRING
		kind, size = pyBytes, 4
	case 0x8e, 0x96: // BINBYTES8, BYTEARRAY8
		kind, size = pyBytes, 8
	default:
		return false, nil
	}
	b, err := u.sized(size, "a string")
	if err != nil {
		return true, err
	}
	return true, u.push(&pyValue{kind: kind, s: string(b)})
}

// containerOp handles tuples, lists, dicts and sets (sets are kept as lists).
func (u *unpickler) containerOp(op byte) (bool, error) {
	switch op {
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
		return true, nil
	case ')':
		return true, u.push(&pyValue{kind: pyTuple})
	case ']', 0x8f: // EMPTY_LIST, EMPTY_SET
		return true, u.push(&pyValue{kind: pyList})
	case '}':
		return true, u.push(&pyValue{kind: pyDict})
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		n := int(op - 0x84)
		if len(u.stack) < n {
			return true, u.errorf("the pickle builds a tuple of %d from a shorter stack: it is garbled", n)
		}
		items := slices.Clone(u.stack[len(u.stack)-n:])
		u.stack = u.stack[:len(u.stack)-n]
		return true, u.push(&pyValue{kind: pyTuple, items: items})
	case 't', 'l', 0x91, 'd': // TUPLE, LIST, FROZENSET, DICT
		items, err := u.popMark()
		if err != nil {
			return true, err
		}
		switch op {
		case 't':
			return true, u.push(&pyValue{kind: pyTuple, items: items})
		case 'd':
			d := &pyValue{kind: pyDict}
			return true, errors.Join(d.setItems(u, items), u.push(d))
		}
		return true, u.push(&pyValue{kind: pyList, items: items})
	case 'a', 'e', 0x90, 's', 'u': // APPEND, APPENDS, ADDITEMS, SETITEM, SETITEMS
		return true, u.extend(op)
	}
	return false, nil
}

func (u *unpickler) extend(op byte) error {
	var items []*pyValue
	var err error
	switch op {
	case 'a':
		var v *pyValue
		v, err = u.pop()
		items = []*pyValue{v}
	case 's':
		var k, v *pyValue
		if v, err = u.pop(); err == nil {
			k, err = u.pop()
		}
		items = []*pyValue{k, v}
	default:
		items, err = u.popMark()
	}
	if err != nil {
		return err
	}
	target, err := u.top()
	if err != nil {
		return err
	}
	if op == 's' || op == 'u' {
		return target.setItems(u, items)
	}
	if target.kind != pyList && target.kind != pyObject {
		return u.errorf("the pickle appends to a %s: it is garbled", target.describe())
	}
	target.items = append(target.items, items...)
	return nil
}

func (d *pyValue) setItems(u *unpickler, kv []*pyValue) error {
	if d.kind != pyDict && d.kind != pyObject {
		return u.errorf("the pickle sets items of a %s: it is garbled", d.describe())
	}
	if len(kv)%2 != 0 {
		return u.errorf("the pickle sets %d items, an odd number: it is garbled", len(kv))
	}
	for i := 0; i < len(kv); i += 2 {
		d.keys = append(d.keys, kv[i])
		d.items = append(d.items, kv[i+1])
	}
	return nil
}

// memoOp handles the memo, and the stack opcodes that neither build nor read values.
func (u *unpickler) memoOp(op byte) (bool, error) {
	switch op {
	case 0x94: // MEMOIZE
		v, err := u.top()
		if err == nil {
			u.memo[uint64(len(u.memo))] = v
		}
		return true, err
	case 'q', 'r', 'h', 'j': // BINPUT, LONG_BINPUT, BINGET, LONG_BINGET
		n := 1
		if op == 'r' || op == 'j' {
			n = 4
		}
		idx, err := u.uint(n, "a memo index")
		if err != nil {
			return true, err
		}
		if op == 'q' || op == 'r' {
			v, err := u.top()
			if err == nil {
				u.memo[idx] = v
			}
			return true, err
		}
		v, ok := u.memo[idx]
		if !ok {
			return true, u.errorf("the pickle reads memo entry %d, which it never stored: it is garbled", idx)
		}
		return true, u.push(v)
	case '0': // POP
		_, err := u.pop()
		return true, err
	case '1': // POP_MARK
		_, err := u.popMark()
		return true, err
	case '2': // DUP
		v, err := u.top()
		if err != nil {
			return true, err
		}
		return true, u.push(v)
	}
	return false, nil
}

// objectOp handles classes and objects: names are checked against allowedGlobals, and
// "calling" one only records the call, except for the two ways bytes are spelled in pickles
// of protocol 2 (bytearray(...) and _codecs.encode(text, "latin1")).
func (u *unpickler) objectOp(op byte) (bool, error) {
	switch op {
	case 'c': // GLOBAL: module and name on two lines
		module, err := u.line("a class name")
		if err != nil {
			return true, err
		}
		name, err := u.line("a class name")
		if err != nil {
			return true, err
		}
		return true, u.global(module, name)
	case 0x93: // STACK_GLOBAL
		name, err := u.pop()
		if err != nil {
			return true, err
		}
		module, err := u.pop()
		if err != nil {
			return true, err
		}
		if name.kind != pyStr || module.kind != pyStr {
			return true, u.errorf("STACK_GLOBAL names a %s.%s: it is garbled", module.describe(), name.describe())
		}
		return true, u.global(module.s, name.s)
	case 'R', 0x81, 0x92: // REDUCE, NEWOBJ, NEWOBJ_EX
		return true, u.call(op)
	case 'b': // BUILD
		return true, u.build()
	case 'i', 'o', 0x82, 0x83, 0x84, 'P', 'Q', 0x97, 0x98:
		// INST, OBJ, EXT1/2/4, PERSID, BINPERSID, NEXT_BUFFER, READONLY_BUFFER
		return true, u.errorf("the pickle uses opcode %q (0x%02x), which pickles of XGBoost models never contain; refusing to read it", op, op)
	}
	return false, nil
}

func (u *unpickler) global(module, name string) error {
	full := module + "." + name
	if !allowedGlobals[full] {
		return &refusedGlobal{name: full}
	}
	return u.push(&pyValue{kind: pyGlobal, s: full})
}

// refusedGlobal is a pickle that names something outside allowedGlobals.
type refusedGlobal struct{ name string }

func (e *refusedGlobal) Error() string {
	return fmt.Sprintf("the pickle refers to %s, which is not an xgboost, numpy or scikit-learn class that models are pickled with; "+
		"sagedeploy never runs code from a pickle, so it refuses it. Save the model with booster.save_model('xgboost-model') instead", e.name)
}

func (u *unpickler) call(op byte) error {
	if op == 0x92 { // NEWOBJ_EX: keyword arguments, which no reconstructor here takes
		if _, err := u.pop(); err != nil {
			return err
		}
	}
	args, err := u.pop()
	if err != nil {
		return err
	}
	fn, err := u.pop()
	if err != nil {
		return err
	}
	if fn.kind != pyGlobal {
		return u.errorf("the pickle calls a %s, not a class: it is garbled", fn.describe())
	}
	if args.kind != pyTuple {
		return u.errorf("the pickle calls %s with a %s instead of an argument tuple: it is garbled", fn.s, args.describe())
	}
	switch fn.s {
	case "builtins.bytearray", "__builtin__.bytearray", "_codecs.encode":
		b, err := toBytes(fn.s, args.items)
		if err != nil {
			return u.errorf("%v", err)
		}
		return u.push(&pyValue{kind: pyBytes, s: b})
	}
	return u.push(&pyValue{kind: pyObject, s: fn.s, args: args})
}

// toBytes evaluates bytearray(...) and _codecs.encode(text, "latin1"), the spellings of bytes
// in protocol 2, without running anything.
func toBytes(fn string, args []*pyValue) (string, error) {
	if len(args) == 0 {
		return "", nil
	}
	switch a := args[0]; a.kind {
	case pyBytes:
		return a.s, nil
	case pyStr:
		enc := "latin1"
		if len(args) > 1 && args[1].kind == pyStr {
			enc = strings.ReplaceAll(strings.ToLower(args[1].s), "-", "")
		}
		if enc != "latin1" && enc != "iso88591" {
			return "", fmt.Errorf("%s(text, %q): only latin-1 text is read", fn, enc)
		}
		return latin1(a.s)
	}
	return "", fmt.Errorf("%s of a %s is not bytes", fn, args[0].describe())
}

func latin1(s string) (string, error) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff || r == utf8.RuneError {
			return "", fmt.Errorf("latin-1 text holds the character %q", r)
		}
		out = append(out, byte(r))
	}
	return string(out), nil
}

func (u *unpickler) build() error {
	state, err := u.pop()
	if err != nil {
		return err
	}
	obj, err := u.top()
	if err != nil {
		return err
	}
	if obj.kind != pyObject {
		return u.errorf("the pickle sets the state of a %s: it is garbled", obj.describe())
	}
	obj.state = state
	if strings.HasSuffix(obj.s, "."+arrayWrapper) {
		return u.skipArray(state)
	}
	return nil
}
