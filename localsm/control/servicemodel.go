package control

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

//go:generate go run ./internal/genmodel -out servicemodel.json

// servicemodelJSON is botocore's SageMaker service model trimmed to the operations served here
// (see internal/genmodel). Requests are checked against it the way AWS's front end checks them.
//
//go:embed servicemodel.json
var servicemodelJSON []byte

type memberDef struct {
	Name  string `json:"name"`
	Shape string `json:"shape"`
}

type shapeDef struct {
	Type     string      `json:"type"`
	Members  []memberDef `json:"members"`
	Required []string    `json:"required"`
	Member   string      `json:"member"`
	Key      string      `json:"key"`
	Value    string      `json:"value"`
	Min      *float64    `json:"min"`
	Max      *float64    `json:"max"`
	Pattern  string      `json:"pattern"`
	Enum     []string    `json:"enum"`

	required map[string]bool
	match    func(string) bool
}

type serviceModel struct {
	Operations map[string]struct {
		Input  string `json:"input"`
		Output string `json:"output"`
	} `json:"operations"`
	AllOperations []string             `json:"allOperations"`
	Shapes        map[string]*shapeDef `json:"shapes"`
}

// loadServiceModel parses the embedded model and compiles its patterns.
func loadServiceModel() (*serviceModel, error) {
	var m serviceModel
	if err := json.Unmarshal(servicemodelJSON, &m); err != nil {
		return nil, fmt.Errorf("service model: %w", err)
	}
	addNewerMembers(&m)
	for name, s := range m.Shapes {
		s.required = map[string]bool{}
		for _, r := range s.Required {
			s.required[r] = true
		}
		if s.Pattern != "" {
			match, err := compilePattern(s.Pattern)
			if err != nil {
				return nil, fmt.Errorf("service model: shape %s: %w", name, err)
			}
			s.match = match
		}
	}
	return &m, nil
}

// addNewerMembers adds the members SageMaker gained after the botocore release the embedded
// model comes from (Debian's), so that they are validated and echoed by Describe calls: the
// SDKs send them, and a deployer that copies an endpoint's settings must get them back.
func addNewerMembers(m *serviceModel) {
	one, most := 1.0, 200.0
	m.Shapes["ServerlessProvisionedConcurrency"] = &shapeDef{Type: "integer", Min: &one, Max: &most}
	for shape, mem := range map[string]memberDef{
		"ProductionVariantServerlessConfig": {Name: "ProvisionedConcurrency", Shape: "ServerlessProvisionedConcurrency"},
		"AsyncInferenceOutputConfig":        {Name: "S3FailurePath", Shape: "DestinationS3Uri"},
	} {
		s := m.Shapes[shape]
		if s != nil && !slices.ContainsFunc(s.Members, func(d memberDef) bool { return d.Name == mem.Name }) {
			s.Members = append(s.Members, mem)
		}
	}
}

var bigRepeat = regexp.MustCompile(`\{[0-9]+,[0-9]{4,}\}`)

// compilePattern turns a service-model pattern (Java regular expression, matched against the
// whole value as AWS does) into a Go matcher. The few Java constructs RE2 lacks are rewritten into
// an equivalent regexp plus a check.
func compilePattern(p string) (func(string) bool, error) {
	switch {
	case p == `^(?!\s*$).+`:
		// Not blank, one line.
		re := regexp.MustCompile(`^.+$`)
		return func(s string) bool { return strings.TrimSpace(s) != "" && re.MatchString(s) }, nil
	case strings.Contains(p, `(?<!-)`):
		// A resource name or ARN whose name part must not end with '-', optionally followed by
		// a /version suffix.
		re, err := regexp.Compile(`^(?:` + strings.Replace(p, `(?<!-)`, `(?P<end>)`, 1) + `)$`)
		if err != nil {
			return nil, err
		}
		end := re.SubexpIndex("end")
		return func(s string) bool {
			m := re.FindStringSubmatchIndex(s)
			if m == nil {
				return false
			}
			at := m[2*end]
			return at > 0 && s[at-1] != '-'
		}, nil
	}
	p = strings.ReplaceAll(p, `${1,128}`, `$`)
	p = strings.ReplaceAll(p, `${1,256}`, `$`)
	// RE2 caps repeat counts at 1000; such long runs are bounded by the shape's length
	// constraint anyway.
	p = bigRepeat.ReplaceAllStringFunc(p, func(m string) string {
		lo, _, _ := strings.Cut(strings.Trim(m, "{}"), ",")
		return "{" + lo + ",}"
	})
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, err
	}
	return re.MatchString, nil
}

// decodeInput parses a request body, checks it against the operation's input shape and returns
// the value ready to be unmarshalled into the operation's Go type. Type mismatches are
// SerializationExceptions; constraint violations are one ValidationException listing them all,
// in AWS's wording.
func (m *serviceModel) decodeInput(op string, body []byte) (map[string]any, error) {
	var doc any
	if len(strings.TrimSpace(string(body))) == 0 {
		doc = map[string]any{}
	} else {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, errSerialization("Request body is not valid JSON: %v", err)
		}
		if dec.More() {
			return nil, errSerialization("Request body holds more than one JSON value")
		}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, errSerialization("Request body must be a JSON object, not %s", jsonKind(doc))
	}
	v := validator{m: m}
	if err := v.structure(m.Operations[op].Input, obj, ""); err != nil {
		return nil, err
	}
	if len(v.problems) > 0 {
		noun := "errors"
		if len(v.problems) == 1 {
			noun = "error"
		}
		return nil, errValidation("%d validation %s detected: %s", len(v.problems), noun, strings.Join(v.problems, "; "))
	}
	return obj, nil
}

type validator struct {
	m        *serviceModel
	problems []string
}

func (v *validator) fail(path string, value any, constraint string) {
	v.problems = append(v.problems, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", showValue(value), path, constraint))
}

// memberPath names a member as AWS's validation messages do: lower camel case, dotted, list
// items as "name.1.member".
func memberPath(parent, name string) string {
	n := strings.ToLower(name[:1]) + name[1:]
	if parent == "" {
		return n
	}
	return parent + "." + n
}

func (v *validator) structure(shapeName string, obj map[string]any, path string) error {
	s := v.m.Shapes[shapeName]
	for _, mem := range s.Members {
		p := memberPath(path, mem.Name)
		val, present := obj[mem.Name]
		if !present || val == nil {
			delete(obj, mem.Name)
			if s.required[mem.Name] {
				v.fail(p, nil, "Member must not be null")
			}
			continue
		}
		if err := v.value(mem.Shape, val, p); err != nil {
			return err
		}
	}
	return nil
}

// value checks val against a shape: a wrong JSON type is a SerializationException at once;
// broken constraints are collected as problems, reported together as AWS does.
func (v *validator) value(shapeName string, val any, path string) error {
	s := v.m.Shapes[shapeName]
	switch s.Type {
	case "structure":
		obj, ok := val.(map[string]any)
		if !ok {
			return errSerialization("Expected an object at '%s', found %s", path, jsonKind(val))
		}
		return v.structure(shapeName, obj, path)
	case "list":
		return v.list(s, val, path)
	case "map":
		return v.mapValue(s, val, path)
	case "string":
		return v.str(s, val, path)
	case "integer", "long", "float", "double":
		return v.number(s, val, path)
	case "boolean":
		if _, ok := val.(bool); !ok {
			return errSerialization("Expected a boolean at '%s', found %s", path, jsonKind(val))
		}
	case "timestamp":
		if _, err := parseTimestamp(val); err != nil {
			return errSerialization("Expected a timestamp (epoch seconds) at '%s', found %s", path, jsonKind(val))
		}
	case "blob":
		if _, ok := val.(string); !ok {
			return errSerialization("Expected base64 text at '%s', found %s", path, jsonKind(val))
		}
	}
	return nil
}

func (v *validator) list(s *shapeDef, val any, path string) error {
	arr, ok := val.([]any)
	if !ok {
		return errSerialization("Expected a list at '%s', found %s", path, jsonKind(val))
	}
	v.length(s, float64(len(arr)), val, path)
	for i, item := range arr {
		p := fmt.Sprintf("%s.%d.member", path, i+1)
		if item == nil {
			v.fail(p, nil, "Member must not be null")
			continue
		}
		if err := v.value(s.Member, item, p); err != nil {
			return err
		}
	}
	return nil
}

// mapValue checks a map's size, then each key and value, in key order so that messages are
// stable; AWS reports a bad key or value as one problem of the map.
func (v *validator) mapValue(s *shapeDef, val any, path string) error {
	obj, ok := val.(map[string]any)
	if !ok {
		return errSerialization("Expected a map at '%s', found %s", path, jsonKind(val))
	}
	v.length(s, float64(len(obj)), val, path)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sub := validator{m: v.m}
		if err := sub.value(s.Key, k, path); err != nil {
			return err
		}
		if len(sub.problems) > 0 {
			v.fail(path, k, "Map keys must satisfy constraint: ["+constraintsOf(sub.problems)+"]")
		}
		sub.problems = nil
		if obj[k] == nil {
			continue
		}
		if err := sub.value(s.Value, obj[k], path); err != nil {
			return err
		}
		if len(sub.problems) > 0 {
			v.fail(path, obj[k], "Map value must satisfy constraint: ["+constraintsOf(sub.problems)+"]")
		}
	}
	return nil
}

func (v *validator) str(s *shapeDef, val any, path string) error {
	str, ok := val.(string)
	if !ok {
		return errSerialization("Expected a string at '%s', found %s", path, jsonKind(val))
	}
	v.length(s, float64(utf16Len(str)), val, path)
	if len(s.Enum) > 0 && !contains(s.Enum, str) {
		v.fail(path, val, "Member must satisfy enum value set: ["+strings.Join(s.Enum, ", ")+"]")
	}
	if s.match != nil && !s.match(str) {
		v.fail(path, val, "Member must satisfy regular expression pattern: "+s.Pattern)
	}
	return nil
}

// number checks integers (which must fit their type) and floats (which must be finite).
func (v *validator) number(s *shapeDef, val any, path string) error {
	n, ok := val.(json.Number)
	if !ok {
		return errSerialization("Expected a number at '%s', found %s", path, jsonKind(val))
	}
	if s.Type == "integer" || s.Type == "long" {
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || (s.Type == "integer" && (i > math.MaxInt32 || i < math.MinInt32)) {
			return errSerialization("Expected an %s at '%s', found %s", s.Type, path, n)
		}
		v.rangeOf(s, float64(i), val, path)
		return nil
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return errSerialization("Expected a number at '%s', found %s", path, n)
	}
	v.rangeOf(s, f, val, path)
	return nil
}

func (v *validator) length(s *shapeDef, n float64, val any, path string) {
	if s.Min != nil && n < *s.Min {
		v.fail(path, val, fmt.Sprintf("Member must have length greater than or equal to %s", fmtNum(*s.Min)))
	}
	if s.Max != nil && n > *s.Max {
		v.fail(path, val, fmt.Sprintf("Member must have length less than or equal to %s", fmtNum(*s.Max)))
	}
}

func (v *validator) rangeOf(s *shapeDef, n float64, val any, path string) {
	if s.Min != nil && n < *s.Min {
		v.fail(path, val, fmt.Sprintf("Member must have value greater than or equal to %s", fmtNum(*s.Min)))
	}
	if s.Max != nil && n > *s.Max {
		v.fail(path, val, fmt.Sprintf("Member must have value less than or equal to %s", fmtNum(*s.Max)))
	}
}

// constraintsOf keeps only the "Member must ..." part of nested problems.
func constraintsOf(problems []string) string {
	out := make([]string, len(problems))
	for i, p := range problems {
		if at := strings.Index(p, "constraint: "); at >= 0 {
			p = p[at+len("constraint: "):]
		}
		out[i] = p
	}
	return strings.Join(out, ", ")
}

// parseTimestamp reads a JSON 1.1 timestamp: epoch seconds (possibly fractional); an RFC 3339
// string is accepted too, as some clients send one.
func parseTimestamp(val any) (time.Time, error) {
	switch t := val.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e11 {
			return time.Time{}, fmt.Errorf("bad epoch seconds %s", t)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	case string:
		return time.Parse(time.RFC3339Nano, t)
	}
	return time.Time{}, fmt.Errorf("not a timestamp")
}

func showValue(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return "'" + t + "'"
	case json.Number:
		return "'" + string(t) + "'"
	default:
		b, _ := json.Marshal(t)
		return "'" + string(b) + "'"
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
