package serving

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// payloadError is a request the model server refuses, with the HTTP status SageMaker's XGBoost
// container answers with (415 for a payload it cannot parse, 400 for one it cannot predict on,
// 406 for an Accept it cannot produce).
type payloadError struct {
	status int
	msg    string
}

func (e *payloadError) Error() string { return e.msg }

func badPayload(status int, format string, args ...any) *payloadError {
	return &payloadError{status: status, msg: fmt.Sprintf(format, args...)}
}

// parseFloat parses one field as numpy does for float64 columns (surrounding blanks allowed,
// "nan" and "inf" accepted); an empty field is a missing value. The float64 is then narrowed,
// as xgboost narrows a float64 array to float32, so predictions match python's bit for bit.
func parseFloat(field []byte) (float32, bool) {
	if f, ok := parseDecimal(field); ok {
		return float32(f), true
	}
	field = bytes.TrimSpace(field)
	if len(field) == 0 {
		return float32(math.NaN()), true
	}
	// strconv copies the string into any error it returns, so viewing the request buffer
	// without copying is safe and keeps the hot path free of allocations.
	f, err := strconv.ParseFloat(unsafe.String(&field[0], len(field)), 64)
	if err != nil {
		// Out of float64 range: ±Inf or 0, as numpy reads it too.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	return float32(f), true
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseDecimal is the fast path of parseFloat for what CSV features nearly always are: an
// optional sign, digits and at most one point ("-0.455", "12", ".5"), at most 19 digits in all,
// nothing around them. When the digits make an integer below 2^53 and there are at most 22
// after the point, the value is that integer divided by a power of ten, both exact in float64,
// so the one rounding of the division gives the correctly rounded result: the same bits as
// strconv.ParseFloat, which takes this path too, without its generality. Anything else says
// !ok and goes the slow way.
func parseDecimal(s []byte) (float64, bool) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg, i = s[0] == '-', 1
	}
	var mant uint64
	digits, frac, point := 0, 0, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 19 || mant >= 1<<53 || frac >= len(pow10) {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// csvDelimiter picks the delimiter from the first line, as the container sniffs it: a comma
// unless the line has none and has tabs, semicolons or pipes instead.
func csvDelimiter(line []byte) byte {
	if bytes.IndexByte(line, ',') >= 0 {
		return ','
	}
	for _, d := range []byte{'\t', ';', '|'} {
		if bytes.IndexByte(line, d) >= 0 {
			return d
		}
	}
	return ','
}

// nextLine splits off the next line of a payload, dropping a trailing carriage return.
func nextLine(body []byte) (line, rest []byte) {
	i := bytes.IndexByte(body, '\n')
	if i < 0 {
		line, rest = body, nil
	} else {
		line, rest = body[:i], body[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func isBlank(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }

// parseCSV reads text/csv rows (no header, one row per line) into dst as rows of width
// features, padding short rows with missing values. It returns the rows and their count.
func parseCSV(body []byte, features int, dst []float32) ([]float32, int, *payloadError) {
	var delim byte
	width, rows, lineNo := -1, 0, 0
	for len(body) > 0 {
		var line []byte
		line, body = nextLine(body)
		lineNo++
		if isBlank(line) {
			continue
		}
		if delim == 0 {
			delim = csvDelimiter(line)
		}
		n := 0
		for {
			i := bytes.IndexByte(line, delim)
			field := line
			if i >= 0 {
				field = line[:i]
			}
			v, ok := parseFloat(field)
			if !ok {
				return nil, 0, badPayload(415, "Loading csv data failed with Exception, please ensure data is in csv format: "+
					"line %d, field %d: %q is not a number (send rows of numeric features, one row per line, without a header)",
					lineNo, n+1, truncate(field, 40))
			}
			dst = append(dst, v)
			n++
			if i < 0 {
				break
			}
			line = line[i+1:]
		}
		if width < 0 {
			width = n
			if width > features {
				return nil, 0, badPayload(400, "Unable to evaluate payload provided: Feature size of csv inference data %d "+
					"is larger than feature size of trained model %d (send the features only, without the label)",
					width, features)
			}
		} else if n != width {
			return nil, 0, badPayload(415, "Loading csv data failed with Exception, please ensure data is in csv format: "+
				"line %d has %d fields but the first row has %d", lineNo, n, width)
		}
		for ; n < features; n++ {
			dst = append(dst, float32(math.NaN()))
		}
		rows++
	}
	return dst, rows, nil
}

// parseLibSVM reads text/libsvm rows ("label idx:value idx:value ...", the label optional and
// ignored) into dense rows of width features, absent entries missing. As in SageMaker's XGBoost
// container, indices are taken as 1-based (shifted down by one) when none of them is 0.
func parseLibSVM(body []byte, features int, dst []float32) ([]float32, int, *payloadError) {
	shift := 1
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		for tok := range bytes.FieldsSeq(line) {
			if i := bytes.IndexByte(tok, ':'); i >= 0 {
				idx, err := strconv.Atoi(string(tok[:i]))
				if err == nil && idx == 0 {
					shift = 0
				}
			}
		}
	}
	nan := float32(math.NaN())
	rows, lineNo := 0, 0
	for len(body) > 0 {
		var line []byte
		line, body = nextLine(body)
		lineNo++
		if isBlank(line) {
			continue
		}
		start := len(dst)
		for range features {
			dst = append(dst, nan)
		}
		row := dst[start:]
		for tok := range bytes.FieldsSeq(line) {
			i := bytes.IndexByte(tok, ':')
			if i < 0 {
				continue // the label
			}
			idx, err := strconv.Atoi(string(tok[:i]))
			v, ok := parseFloat(tok[i+1:])
			if err != nil || idx < 0 || !ok {
				return nil, 0, badPayload(415, "Loading libsvm data failed with Exception, please ensure data is in libsvm format: "+
					"line %d: %q is not an index:value pair", lineNo, truncate(tok, 40))
			}
			idx -= shift
			if idx >= features {
				return nil, 0, badPayload(400, "Unable to evaluate payload provided: Feature size of libsvm inference data %d "+
					"is larger than feature size of trained model %d", idx+1, features)
			}
			row[idx] = v
		}
		rows++
	}
	return dst, rows, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// appendPyFloat formats v as python's repr(float) does, which is how SageMaker's XGBoost
// container writes predictions: the shortest digits that round-trip, fixed notation for
// exponents in [-4, 16) with at least one decimal ("10.0"), else "1e-05" / "1.5e+16".
func appendPyFloat(dst []byte, v float64) []byte {
	// Predictions are nearly always in [1e-4, 1e15), where python writes fixed notation and
	// strconv can write the shortest digits that way directly. Below 1e15 the shortest digits
	// cannot round up to 1e16, where python switches to exponents.
	if a := math.Abs(v); a >= 1e-4 && a < 1e15 {
		start := len(dst)
		dst = strconv.AppendFloat(dst, v, 'f', -1, 64)
		if bytes.IndexByte(dst[start:], '.') < 0 {
			dst = append(dst, '.', '0') // python's "10.0"
		}
		return dst
	}
	return appendPyFloatExp(dst, v)
}

// appendPyFloatExp is appendPyFloat for any value, going through strconv's exponent form.
func appendPyFloatExp(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "nan"...)
	case math.IsInf(v, 1):
		return append(dst, "inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-inf"...)
	}
	var tmp [32]byte
	s := strconv.AppendFloat(tmp[:0], v, 'e', -1, 64) // -d.ddde±XX
	if s[0] == '-' {
		dst = append(dst, '-')
		s = s[1:]
	}
	e := bytes.IndexByte(s, 'e')
	exp := 0
	for _, c := range s[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if s[e+1] == '-' {
		exp = -exp
	}
	var digits [24]byte
	nd := copy(digits[:], s[:1])
	if e > 1 {
		nd += copy(digits[nd:], s[2:e])
	}
	d := digits[:nd]
	switch {
	case exp >= 16 || exp < -4:
		dst = append(dst, d[0])
		if nd > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	case exp < 0:
		dst = append(dst, '0', '.')
		for i := -1; i > exp; i-- {
			dst = append(dst, '0')
		}
		return append(dst, d...)
	case nd <= exp+1:
		dst = append(dst, d...)
		for i := nd; i <= exp; i++ {
			dst = append(dst, '0')
		}
		return append(dst, '.', '0')
	default:
		dst = append(dst, d[:exp+1]...)
		dst = append(dst, '.')
		return append(dst, d[exp+1:]...)
	}
}

// appendJSONFloat is python's json.dumps of a float: repr, with NaN and Infinity spelled as
// JavaScript does.
func appendJSONFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(v, -1):
		return append(dst, "-Infinity"...)
	}
	return appendPyFloat(dst, v)
}
