package cloudwatch

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The three protocols CloudWatch clients speak (query forms, JSON 1.0, CBOR) are first decoded
// into one generic tree (map[string]any, []any, string, float64, bool, time.Time), then bound to
// the operation's Go input type by field name, which are AWS's member names. Outputs go the other
// way: a Go value becomes a tree of fields in declaration order, which each protocol encodes.

var timeType = reflect.TypeFor[time.Time]()

// bind fills dst (a pointer) from a decoded request tree.
func bind(tree map[string]any, dst any) error {
	return bindValue(tree, reflect.ValueOf(dst).Elem(), "")
}

func bindValue(v any, dst reflect.Value, path string) error {
	if v == nil {
		return nil
	}
	if dst.Kind() == reflect.Pointer {
		dst.Set(reflect.New(dst.Type().Elem()))
		return bindValue(v, dst.Elem(), path)
	}
	if dst.Type() == timeType {
		t, err := asTime(v)
		if err != nil {
			return invalidValue(path, v)
		}
		dst.Set(reflect.ValueOf(t))
		return nil
	}
	switch dst.Kind() {
	case reflect.Struct:
		return bindStruct(v, dst, path)
	case reflect.Slice:
		return bindSlice(v, dst, path)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return invalidValue(path, v)
		}
		dst.SetString(s)
	case reflect.Float64:
		f, err := asFloat(v)
		if err != nil {
			return invalidValue(path, v)
		}
		dst.SetFloat(f)
	case reflect.Int, reflect.Int64:
		f, err := asFloat(v)
		if err != nil || f != math.Trunc(f) {
			return invalidValue(path, v)
		}
		dst.SetInt(int64(f))
	case reflect.Bool:
		b, err := asBool(v)
		if err != nil {
			return invalidValue(path, v)
		}
		dst.SetBool(b)
	default:
		return fmt.Errorf("bind %s: unsupported field kind %s", path, dst.Kind())
	}
	return nil
}

func bindStruct(v any, dst reflect.Value, path string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return invalidValue(path, v)
	}
	t := dst.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if fv, ok := m[f.Name]; ok {
			if err := bindValue(fv, dst.Field(i), joinPath(path, f.Name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func bindSlice(v any, dst reflect.Value, path string) error {
	if s, ok := v.(string); ok && s == "" {
		// The query protocol sends an empty list as "Name=".
		dst.Set(reflect.MakeSlice(dst.Type(), 0, 0))
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return invalidValue(path, v)
	}
	out := reflect.MakeSlice(dst.Type(), len(list), len(list))
	for i, e := range list {
		if err := bindValue(e, out.Index(i), fmt.Sprintf("%s.member.%d", path, i+1)); err != nil {
			return err
		}
	}
	dst.Set(out)
	return nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func invalidValue(path string, v any) error {
	return errInvalidValue("The value %v for parameter %s is invalid.", v, path)
}

func asFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		return strconv.ParseFloat(x, 64)
	}
	return 0, fmt.Errorf("not a number: %v", v)
}

func asBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return strconv.ParseBool(x)
	}
	return false, fmt.Errorf("not a boolean: %v", v)
}

// asTime reads a timestamp: ISO 8601 (query), epoch seconds (JSON), or a CBOR timestamp.
func asTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case float64:
		sec, frac := math.Modf(x)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05Z0700", "2006-01-02"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t.UTC(), nil
			}
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return asTime(f)
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %v", v)
}

// field is one member of an output structure, in declaration order.
type field struct {
	name  string
	value any // string, float64, int64, bool, time.Time, []any, []field
}

// entries is a map's key/value pairs, which the query protocol writes as entry elements.
type entries []field

// toTree turns an output value into fields and lists. Nil pointers, nil slices, empty strings
// and zero times are left out, as AWS leaves out members it has no value for; numbers that may
// legitimately be zero are pointers in the output types.
func toTree(v reflect.Value) (any, bool) {
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil, false
		}
		return toTree(v.Elem())
	}
	if v.Type() == timeType {
		t := v.Interface().(time.Time)
		return t, !t.IsZero()
	}
	switch v.Kind() {
	case reflect.Struct:
		var out []field
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if fv, ok := toTree(v.Field(i)); ok {
				out = append(out, field{v.Type().Field(i).Name, fv})
			}
		}
		return out, true
	case reflect.Slice:
		if v.IsNil() {
			return nil, false
		}
		out := make([]any, 0, v.Len())
		for i := range v.Len() {
			e, _ := toTree(v.Index(i))
			out = append(out, e)
		}
		return out, true
	case reflect.Map:
		if v.IsNil() {
			return nil, false
		}
		out := entries{}
		for _, k := range v.MapKeys() {
			e, _ := toTree(v.MapIndex(k))
			out = append(out, field{k.String(), e})
		}
		slices.SortFunc(out, func(a, b field) int { return strings.Compare(a.name, b.name) })
		return out, true
	case reflect.String:
		return v.String(), v.String() != ""
	case reflect.Float64:
		return v.Float(), true
	case reflect.Int, reflect.Int64:
		return v.Int(), true
	case reflect.Bool:
		return v.Bool(), true
	}
	return nil, false
}
