package xgboost

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// snapshotHeader starts the buffer xgboost 1.0 to 1.5 pickled as a Booster's state: the header,
// the length of the legacy binary model as an int64, that model, then the JSON configuration.
// Later versions pickle a JSON or UBJSON document {"Model": ..., "Config": ...} instead.
const snapshotHeader = "CONFIG-offset:"

// isPickle reports a pickle of protocol 2 or later, which starts with the PROTO opcode.
func isPickle(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x80 && data[1] >= 2 && data[1] <= 5
}

// decodeLegacy reads a legacy binary model (base is its offset in the file, for messages).
func decodeLegacy(data []byte, base, fileSize int) (value, string, error) {
	doc, err := parseLegacy(data, base)
	if err != nil {
		return value{}, "", formatProblem("an "+legacyFormatName, fileSize, err)
	}
	return doc, legacyFormatName, nil
}

// decodeSnapshot reads the serialization buffer of xgboost 1.0 to 1.5: its legacy binary model.
func decodeSnapshot(data []byte, fileSize int) (value, string, error) {
	rest := data[len(snapshotHeader):]
	if len(rest) < 8 {
		return value{}, "", unsupported("the model file is an XGBoost serialization snapshot but ends after its header (%d bytes): it is truncated; upload the complete file", fileSize)
	}
	n := binary.LittleEndian.Uint64(rest)
	if n == 0 || n > uint64(len(rest)-8) {
		return value{}, "", unsupported("the model file is an XGBoost serialization snapshot whose model of %d bytes does not fit in its %d bytes: it is truncated or garbled", n, fileSize)
	}
	doc, _, err := decodeLegacy(rest[8:8+n], len(snapshotHeader)+8, fileSize)
	return doc, "XGBoost serialization snapshot", err
}

// formatProblem words a reader's error for the person who uploaded the file; format is what
// the file was recognized as, with its article.
func formatProblem(format string, size int, err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		if se.eof {
			return unsupported("the model file is %s but it is truncated: %s (byte %d of %d); upload the complete file", format, se.msg, se.offset, size)
		}
		return unsupported("the model file is %s but it is garbled: %s (at byte %d of %d)", format, se.msg, se.offset, size)
	}
	return unsupported("the model file is %s but %v", format, err)
}

// decodePickle finds the Booster in a pickle and decodes the model bytes it holds.
func decodePickle(data []byte) (value, string, error) {
	root, proto, err := unpickle(data)
	var refused *refusedGlobal
	if errors.As(err, &refused) {
		return value{}, "", unsupported("%v", refused)
	}
	if err != nil {
		return value{}, "", formatProblem("a "+pickleFormatName, len(data), err)
	}
	of := root.describe()
	if root.kind != pyObject && root.kind != pyGlobal {
		of = "a " + of
	}
	what := fmt.Sprintf("Python pickle (protocol %d) of %s", proto, of)
	raw, err := boosterBytes(root)
	if err != nil {
		return value{}, "", unsupported("the model file is a %s, %v", what, err)
	}
	doc, format, err := decode(raw, false)
	if err != nil {
		inner := strings.TrimPrefix(err.Error(), ErrUnsupportedFormat.Error()+": ")
		return value{}, "", unsupported("the model file is a %s; the booster inside it is unreadable: %s", what, inner)
	}
	return doc, fmt.Sprintf("%s holding an %s", what, format), nil
}

// boosterBytes returns the serialized model of the first Booster in the pickled value: the
// state "handle" of an xgboost.core.Booster, or the raw bytes old xgboost stored as an
// estimator's "_Booster".
func boosterBytes(root *pyValue) ([]byte, error) {
	seen := map[*pyValue]bool{}
	var found *pyValue
	var walk func(v *pyValue, depth int)
	walk = func(v *pyValue, depth int) {
		if v == nil || found != nil || seen[v] || depth > maxPickleSearch {
			return
		}
		seen[v] = true
		if v.kind == pyObject && v.s == boosterClass {
			found = v
			return
		}
		if v.kind == pyObject && v.state != nil {
			if b := v.state.lookup("_Booster"); b != nil && b.kind == pyBytes {
				found = &pyValue{kind: pyObject, s: boosterClass, state: &pyValue{kind: pyDict, keys: []*pyValue{{kind: pyStr, s: "handle"}}, items: []*pyValue{b}}}
				return
			}
		}
		for _, c := range v.items {
			walk(c, depth+1)
		}
		walk(v.state, depth+1)
	}
	walk(root, 0)
	if found == nil {
		if root.kind == pyObject && root.s != boosterClass {
			return nil, fmt.Errorf("which holds no trained booster: fit the model before saving it")
		}
		return nil, fmt.Errorf("which holds no XGBoost Booster; pickle a trained Booster or XGBRegressor/XGBClassifier, or save the model with booster.save_model('xgboost-model')")
	}
	handle := found.state.lookup("handle")
	if handle == nil || handle.kind == pyNone {
		return nil, fmt.Errorf("whose Booster is empty (never trained or loaded)")
	}
	if handle.kind != pyBytes {
		return nil, fmt.Errorf("whose Booster holds a %s where xgboost keeps the model's bytes", handle.describe())
	}
	return []byte(handle.s), nil
}
