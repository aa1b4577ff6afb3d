package serving

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// parseDecimal is a shortcut: whatever it accepts must read as strconv.ParseFloat reads it, to
// the bit, and it must accept the plain decimals that CSV features are.
func checkDecimal(t *testing.T, s string) (accepted bool) {
	t.Helper()
	got, ok := parseDecimal([]byte(s))
	if !ok {
		return false
	}
	want, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parseDecimal(%q) = %v, but strconv refuses it: %v", s, got, err)
	}
	if math.Float64bits(got) != math.Float64bits(want) {
		t.Fatalf("parseDecimal(%q) = %v (%#x), strconv says %v (%#x)", s, got, math.Float64bits(got), want, math.Float64bits(want))
	}
	return true
}

func TestParseDecimalMatchesStrconv(t *testing.T) {
	for _, s := range []string{"0.455", "-0.455", "+0.455", "1", "0", "-0", "12.", ".5", "-.5", "0.1", "0.2245",
		"9007199254740991", "0.000000000000000001", "3.141592653589793", "1.9485", "000000.5", "0.3000000000000004"} {
		if !checkDecimal(t, s) {
			t.Errorf("parseDecimal refuses %q, a plain decimal: the fast path is not taken", s)
		}
	}
	// Left to strconv: exponents, special values, too many digits or too large a mantissa,
	// blanks, lone signs and points, two points, hex, underscores.
	for _, s := range []string{"1e5", "nan", "inf", "-Infinity", "12345678901234567890", "9007199254740993",
		"0.30000000000000004", "0.0000000000000000000001", " 1", "1 ", "", "-", "+", ".", "-.", "1.2.3", "0x10", "1_000", "1,5"} {
		if _, ok := parseDecimal([]byte(s)); ok {
			t.Errorf("parseDecimal accepts %q, which it should leave to strconv", s)
		}
	}
	// Random strings over the characters that matter.
	rng := rand.New(rand.NewPCG(7, 8))
	const alphabet = "0123456789000999..-+e"
	accepted := 0
	for range 200000 {
		b := make([]byte, 1+rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if checkDecimal(t, string(b)) {
			accepted++
		}
	}
	if accepted < 10000 {
		t.Fatalf("only %d random strings took the fast path; the test proves little", accepted)
	}
	// Random float32 features as a client writes them.
	for range 100000 {
		v := float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-4)))
		checkDecimal(t, strconv.FormatFloat(float64(v), 'f', -1, 32))
	}
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0.455", "-12.", ".5", "1e5", "12345678901234567890", "+0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkDecimal(t, s) })
}
