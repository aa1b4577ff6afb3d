package xgboost

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// maxDepth bounds nesting so that a hostile file cannot exhaust the stack; xgboost models nest
// about six levels deep.
const maxDepth = 64

type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray   // mixed elements in arr
	kindNumbers // an array whose elements are all numbers, in nums
	kindObject
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "array", "object"}[k]
}

// value is one node of a decoded JSON or UBJSON document. Arrays of numbers, which hold nearly
// all of a model's bytes, are kept unboxed in nums. Numbers with a fraction or exponent are
// read as float32 (what xgboost stores) and integers exactly.
type value struct {
	kind kind
	num  float64
	str  string
	arr  []value
	nums []float64
	obj  []member
}

type member struct {
	key string
	val value
}

func (v *value) get(key string) *value {
	if v == nil || v.kind != kindObject {
		return nil
	}
	for i := range v.obj {
		if v.obj[i].key == key {
			return &v.obj[i].val
		}
	}
	return nil
}

// syntaxError describes where a document stops making sense; eof marks a document that ends
// early, which nearly always means a truncated file.
type syntaxError struct {
	offset int
	eof    bool
	msg    string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.offset) }

// ---- JSON ----

type jsonParser struct {
	data []byte
	pos  int
}

func parseJSON(data []byte) (value, error) {
	p := &jsonParser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return value{}, p.errorf("unexpected %s after the end of the document", p.describe())
	}
	return v, nil
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return &syntaxError{offset: p.pos, eof: p.pos >= len(p.data), msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) describe() string {
	if p.pos >= len(p.data) {
		return "end of data"
	}
	c := p.data[p.pos]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("character %q", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (value, error) {
	if depth > maxDepth {
		return value{}, p.errorf("nesting deeper than %d levels", maxDepth)
	}
	if p.pos >= len(p.data) {
		return value{}, p.errorf("unexpected end of data")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return value{kind: kindString, str: s}, err
	case c == 't':
		return value{kind: kindBool, num: 1}, p.literal("true")
	case c == 'f':
		return value{kind: kindBool}, p.literal("false")
	case c == 'n':
		return value{kind: kindNull}, p.literal("null")
	case c == '-' || c == 'N' || c == 'I' || (c >= '0' && c <= '9'):
		n, err := p.number()
		return value{kind: kindNumber, num: n}, err
	}
	return value{}, p.errorf("unexpected %s", p.describe())
}

func (p *jsonParser) literal(word string) error {
	if len(p.data)-p.pos < len(word) {
		p.pos = len(p.data)
		return p.errorf("unexpected end of data")
	}
	if string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.errorf("unexpected %s", p.describe())
	}
	p.pos += len(word)
	return nil
}

// number reads a JSON number, or NaN/Infinity/-Infinity which xgboost writes for non-finite
// floats (a categorical split's threshold is NaN).
func (p *jsonParser) number() (float64, error) {
	start := p.pos
	neg := p.data[p.pos] == '-'
	if neg {
		p.pos++
	}
	if p.pos < len(p.data) {
		switch p.data[p.pos] {
		case 'N':
			return math.NaN(), p.literal("NaN")
		case 'I':
			if err := p.literal("Infinity"); err != nil {
				return 0, err
			}
			if neg {
				return math.Inf(-1), nil
			}
			return math.Inf(1), nil
		}
	}
	integer := true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c >= '0' && c <= '9' || c == '-' || c == '+' {
			p.pos++
		} else if c == '.' || c == 'e' || c == 'E' {
			integer = false
			p.pos++
		} else {
			break
		}
	}
	tok := string(p.data[start:p.pos])
	if integer {
		if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
			return float64(n), nil
		}
	}
	f, err := strconv.ParseFloat(tok, 32)
	if err != nil && !isRangeError(err) {
		p.pos = start
		return 0, p.errorf("invalid number %q", tok)
	}
	return f, nil
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func (p *jsonParser) string() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	escaped := false
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '\\':
			escaped = true
			p.pos += 2
			continue
		case '"':
			p.pos++
			raw := p.data[start:p.pos]
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				p.pos = start
				return "", p.errorf("invalid string")
			}
			return s, nil
		}
		p.pos++
	}
	p.pos = len(p.data)
	return "", p.errorf("unexpected end of data inside a string")
}

func (p *jsonParser) object(depth int) (value, error) {
	p.pos++ // {
	v := value{kind: kindObject}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.errorf("unexpected end of data")
		}
		if p.data[p.pos] != '"' {
			return value{}, p.errorf("expected a quoted key, found %s", p.describe())
		}
		key, err := p.string()
		if err != nil {
			return value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return value{}, p.errorf("expected ':' after key %q, found %s", key, p.describe())
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth + 1)
		if err != nil {
			return value{}, err
		}
		v.obj = append(v.obj, member{key: key, val: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.errorf("unexpected end of data")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return value{}, p.errorf("expected ',' or '}' in an object, found %s", p.describe())
		}
	}
}

func (p *jsonParser) array(depth int) (value, error) {
	p.pos++ // [
	v := value{kind: kindNumbers}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		el, err := p.value(depth + 1)
		if err != nil {
			return value{}, err
		}
		v.add(el)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.errorf("unexpected end of data")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return value{}, p.errorf("expected ',' or ']' in an array, found %s", p.describe())
		}
	}
}

// add appends an element, keeping the array unboxed while every element is a number.
func (v *value) add(el value) {
	if v.kind == kindNumbers {
		if el.kind == kindNumber {
			v.nums = append(v.nums, el.num)
			return
		}
		v.kind = kindArray
		v.arr = make([]value, len(v.nums), len(v.nums)+1)
		for i, n := range v.nums {
			v.arr[i] = value{kind: kindNumber, num: n}
		}
		v.nums = nil
	}
	v.arr = append(v.arr, el)
}

// ---- UBJSON (https://ubjson.org), as xgboost writes it: big-endian, typed arrays ----

type ubjParser struct {
	data []byte
	pos  int
}

func parseUBJSON(data []byte) (value, error) {
	p := &ubjParser{data: data}
	v, err := p.value(0)
	if err != nil {
		return value{}, err
	}
	if p.pos != len(p.data) {
		return value{}, p.errorf("unexpected data after the end of the document")
	}
	return v, nil
}

func (p *ubjParser) errorf(format string, args ...any) error {
	return &syntaxError{offset: p.pos, eof: p.pos >= len(p.data), msg: fmt.Sprintf(format, args...)}
}

func (p *ubjParser) need(n int) error {
	if n < 0 || n > len(p.data)-p.pos {
		p.pos = len(p.data)
		return p.errorf("unexpected end of data")
	}
	return nil
}

func (p *ubjParser) byte() (byte, error) {
	if err := p.need(1); err != nil {
		return 0, err
	}
	p.pos++
	return p.data[p.pos-1], nil
}

// scalarSize is the payload size of a fixed-size marker, or 0 for other markers.
func scalarSize(marker byte) int {
	switch marker {
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	}
	return 0
}

// scalar reads the payload of a fixed-size numeric marker.
func (p *ubjParser) scalar(marker byte) (float64, error) {
	n := scalarSize(marker)
	if err := p.need(n); err != nil {
		return 0, err
	}
	b := p.data[p.pos : p.pos+n]
	p.pos += n
	switch marker {
	case 'i':
		return float64(int8(b[0])), nil
	case 'U', 'C':
		return float64(b[0]), nil
	case 'I':
		return float64(int16(binary.BigEndian.Uint16(b))), nil
	case 'l':
		return float64(int32(binary.BigEndian.Uint32(b))), nil
	case 'L':
		return float64(int64(binary.BigEndian.Uint64(b))), nil
	case 'd':
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case 'D':
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return 0, p.errorf("marker %q is not a number", marker)
}

// length reads a count or string length: an integer marker and its payload.
func (p *ubjParser) length() (int, error) {
	m, err := p.byte()
	if err != nil {
		return 0, err
	}
	switch m {
	case 'i', 'U', 'I', 'l', 'L':
	default:
		p.pos--
		return 0, p.errorf("expected an integer length, found marker 0x%02x", m)
	}
	n, err := p.scalar(m)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > float64(len(p.data)) {
		return 0, p.errorf("length %v is impossible for a %d-byte file", n, len(p.data))
	}
	return int(n), nil
}

func (p *ubjParser) str() (string, error) {
	n, err := p.length()
	if err != nil {
		return "", err
	}
	if err := p.need(n); err != nil {
		return "", err
	}
	s := string(p.data[p.pos : p.pos+n])
	p.pos += n
	return s, nil
}

func (p *ubjParser) value(depth int) (value, error) {
	m, err := p.byte()
	if err != nil {
		return value{}, err
	}
	for m == 'N' { // no-op
		if m, err = p.byte(); err != nil {
			return value{}, err
		}
	}
	return p.typed(m, depth)
}

// typed reads a value whose marker is already known.
func (p *ubjParser) typed(m byte, depth int) (value, error) {
	if depth > maxDepth {
		return value{}, p.errorf("nesting deeper than %d levels", maxDepth)
	}
	switch m {
	case 'Z':
		return value{kind: kindNull}, nil
	case 'T':
		return value{kind: kindBool, num: 1}, nil
	case 'F':
		return value{kind: kindBool}, nil
	case 'i', 'U', 'I', 'l', 'L', 'd', 'D':
		n, err := p.scalar(m)
		return value{kind: kindNumber, num: n}, err
	case 'C':
		n, err := p.scalar(m)
		return value{kind: kindString, str: string(rune(n))}, err
	case 'S':
		s, err := p.str()
		return value{kind: kindString, str: s}, err
	case 'H': // high-precision number, as text
		s, err := p.str()
		if err != nil {
			return value{}, err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return value{}, p.errorf("invalid high-precision number %q", s)
		}
		return value{kind: kindNumber, num: f}, nil
	case '[':
		return p.array(depth)
	case '{':
		return p.object(depth)
	}
	p.pos--
	return value{}, p.errorf("invalid marker 0x%02x", m)
}

// header reads the optional $type and #count of an optimized container. count is -1 when the
// container ends with a closing marker instead.
func (p *ubjParser) header() (elem byte, count int, err error) {
	count = -1
	if p.pos < len(p.data) && p.data[p.pos] == '$' {
		p.pos++
		if elem, err = p.byte(); err != nil {
			return 0, 0, err
		}
		if scalarSize(elem) == 0 && elem != 'S' && elem != 'H' && elem != '[' && elem != '{' {
			// Payload-free element types (null, booleans) would let a tiny file claim an
			// enormous container; xgboost never writes them.
			p.pos--
			return 0, 0, p.errorf("unsupported typed container of marker 0x%02x", elem)
		}
		if p.pos >= len(p.data) || p.data[p.pos] != '#' {
			return 0, 0, p.errorf("typed container without a count")
		}
	}
	if p.pos < len(p.data) && p.data[p.pos] == '#' {
		p.pos++
		if count, err = p.length(); err != nil {
			return 0, 0, err
		}
	}
	return elem, count, nil
}

func (p *ubjParser) array(depth int) (value, error) {
	elem, count, err := p.header()
	if err != nil {
		return value{}, err
	}
	if size := scalarSize(elem); size > 0 && elem != 'C' {
		// The common case: xgboost's typed arrays of float32, uint8, int32 and int64.
		if err := p.need(count * size); err != nil {
			return value{}, err
		}
		nums := make([]float64, count)
		for i := range nums {
			nums[i], _ = p.scalar(elem)
		}
		return value{kind: kindNumbers, nums: nums}, nil
	}
	v := value{kind: kindNumbers}
	for i := 0; count < 0 || i < count; i++ {
		var el value
		if elem != 0 {
			el, err = p.typed(elem, depth+1)
		} else {
			m, err := p.byte()
			if err != nil {
				return value{}, err
			}
			if m == ']' && count < 0 {
				return v, nil
			}
			if m == 'N' {
				i--
				continue
			}
			el, err = p.typed(m, depth+1)
			if err != nil {
				return value{}, err
			}
		}
		if err != nil {
			return value{}, err
		}
		v.add(el)
	}
	return v, nil
}

func (p *ubjParser) object(depth int) (value, error) {
	elem, count, err := p.header()
	if err != nil {
		return value{}, err
	}
	v := value{kind: kindObject}
	for i := 0; count < 0 || i < count; i++ {
		if count < 0 {
			if p.pos >= len(p.data) {
				return value{}, p.errorf("unexpected end of data")
			}
			if p.data[p.pos] == '}' {
				p.pos++
				return v, nil
			}
			if p.data[p.pos] == 'N' {
				p.pos++
				i--
				continue
			}
		}
		key, err := p.str()
		if err != nil {
			return value{}, err
		}
		var val value
		if elem != 0 {
			val, err = p.typed(elem, depth+1)
		} else {
			val, err = p.value(depth + 1)
		}
		if err != nil {
			return value{}, err
		}
		v.obj = append(v.obj, member{key: key, val: val})
	}
	return v, nil
}
