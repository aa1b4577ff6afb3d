package deploy

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Verification is a request sent to the endpoint once it serves the new version, and what the
// answer must look like.
type Verification struct {
	Body        []byte `json:"-"`
	ContentType string `json:"content_type"`
	Accept      string `json:"accept,omitempty"`
	// Expect is what every line of the answer must be, parsed from the user's words by
	// ParseExpectation; the zero value accepts any successful answer.
	Expect Expectation `json:"expect"`
}

// VerifyResult reports a verification.
type VerifyResult struct {
	Passed  bool   `json:"passed"`
	Variant string `json:"variant,omitempty"`
	// Response is the answer's body (truncated to 4 KiB).
	Response string `json:"response"`
	Problem  string `json:"problem,omitempty"`
}

// Expectation is a parsed Verification.Expect.
type Expectation struct {
	text    string
	re      *regexp.Regexp
	isRange bool
	lo, hi  float64
}

var rangeRe = regexp.MustCompile(`^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?\s*\.\.\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?\s*$`)

// ParseExpectation parses what the answer must be: a numeric range "lo..hi" (either end may be
// left open: "..30", "1..") that every value — lines, and comma-separated values within them —
// must fall in, or else a regular expression every non-empty line must match. Empty accepts any
// successful answer.
func ParseExpectation(s string) (Expectation, error) {
	e := Expectation{text: s}
	if s == "" {
		return e, nil
	}
	if m := rangeRe.FindStringSubmatch(s); m != nil && (m[1] != "" || m[2] != "") {
		e.isRange, e.lo, e.hi = true, math.Inf(-1), math.Inf(1)
		if m[1] != "" {
			e.lo, _ = strconv.ParseFloat(m[1], 64)
		}
		if m[2] != "" {
			e.hi, _ = strconv.ParseFloat(m[2], 64)
		}
		if e.lo > e.hi {
			return e, errorf(ErrInvalid, "--verify-expect %q: the range is empty (%g > %g)", s, e.lo, e.hi)
		}
		return e, nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return e, errorf(ErrInvalid, "--verify-expect %q is neither a range like 1..30 nor a valid regular expression: %v", s, err)
	}
	e.re = re
	return e, nil
}

// MustParseExpectation is ParseExpectation for expectations written in the program; it panics
// when s is not valid.
func MustParseExpectation(s string) Expectation {
	e, err := ParseExpectation(s)
	if err != nil {
		panic(err)
	}
	return e
}

// String is the expectation as given.
func (e Expectation) String() string { return e.text }

// MarshalText renders the expectation as given, so that a Verification prints readably.
func (e Expectation) MarshalText() ([]byte, error) { return []byte(e.text), nil }

// Check returns nil when body meets the expectation, else an error saying which line did not.
func (e Expectation) Check(body []byte) error {
	lines := strings.Split(strings.ReplaceAll(string(bytes.TrimSpace(body)), "\r\n", "\n"), "\n")
	if len(lines) == 1 && strings.TrimSpace(lines[0]) == "" {
		return fmt.Errorf("the endpoint answered with an empty body")
	}
	if e.text == "" {
		return nil
	}
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if e.re != nil {
			if !e.re.MatchString(line) {
				return fmt.Errorf("line %d %q does not match %q", i+1, clip(line, 200), e.text)
			}
			continue
		}
		for _, f := range strings.Split(line, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return fmt.Errorf("line %d: %q is not a number (expected values in %s)", i+1, clip(f, 200), e.text)
			}
			if v < e.lo || v > e.hi || math.IsNaN(v) {
				return fmt.Errorf("line %d: %g is outside %s", i+1, v, e.text)
			}
		}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
