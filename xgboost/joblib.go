package xgboost

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// joblib.dump writes each numpy array as a NumpyArrayWrapper object whose BUILD opcode is
// followed, inside the pickle stream, by the array itself: its raw bytes (after a one-byte
// padding length and the padding that aligns them) or, for arrays of Python objects, a nested
// pickle of protocol 2. The arrays of an XGBoost estimator (classes_, feature names) do not
// matter for prediction, so they are skipped.

// skipArray moves past the array data that follows a NumpyArrayWrapper's state.
func (u *unpickler) skipArray(state *pyValue) error {
	shape, dtype := state.lookup("shape"), state.lookup("dtype")
	if shape == nil || shape.kind != pyTuple || dtype == nil {
		return u.errorf("a joblib array has no shape or dtype: the file is garbled")
	}
	itemSize, isObject, err := dtypeSize(dtype)
	if err != nil {
		return u.errorf("a joblib array: %v", err)
	}
	if isObject {
		nested := &unpickler{data: u.data, pos: u.pos, memo: map[uint64]*pyValue{}}
		if _, err := nested.run(); err != nil {
			return err
		}
		u.pos = nested.pos
		return nil
	}
	left := int64(len(u.data) - u.pos)
	count := int64(1)
	for _, d := range shape.items {
		if d.kind != pyInt || d.i < 0 {
			return u.errorf("a joblib array has a shape of %s: the file is garbled", d.describe())
		}
		if d.i > 0 && count > left/d.i {
			return &syntaxError{offset: u.pos, eof: true, msg: "a joblib array is larger than what is left of the file"}
		}
		count *= d.i
	}
	if align := state.lookup("numpy_array_alignment_bytes"); align != nil && align.kind == pyInt {
		pad, err := u.take(1, "the padding of a joblib array")
		if err != nil {
			return err
		}
		if _, err := u.take(int(pad[0]), "the padding of a joblib array"); err != nil {
			return err
		}
	}
	if itemSize > 0 && count > math.MaxInt64/itemSize {
		return u.errorf("a joblib array is impossibly large")
	}
	_, err = u.take(int(min(count*itemSize, math.MaxInt)), fmt.Sprintf("a joblib array of %d values", count))
	return err
}

// dtypeSize reads a numpy.dtype as pickled: numpy.dtype("i8", False, True) with the state
// (version, byte order, subarray, names, fields, element size, alignment, flags, ...).
func dtypeSize(dtype *pyValue) (size int64, isObject bool, err error) {
	if dtype.kind != pyObject || dtype.s != "numpy.dtype" || dtype.args == nil || len(dtype.args.items) == 0 || dtype.args.items[0].kind != pyStr {
		return 0, false, fmt.Errorf("its dtype is a %s, not a numpy.dtype", dtype.describe())
	}
	code := dtype.args.items[0].s
	if strings.HasPrefix(code, "O") {
		return 0, true, nil
	}
	if st := dtype.state; st != nil && st.kind == pyTuple && len(st.items) > 5 && st.items[5].kind == pyInt && st.items[5].i > 0 {
		return st.items[5].i, false, nil // flexible and structured types carry their size here
	}
	digits := strings.TrimLeft(code, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ?")
	n, perr := strconv.Atoi(digits)
	if perr != nil || n <= 0 {
		return 0, false, fmt.Errorf("its dtype %q has no size", code)
	}
	return int64(n), false, nil
}
