package serving

import (
	"math"
	"math/rand/v2"
	"testing"
)

// appendPyFloat's fixed-notation shortcut writes what the general path writes, python's repr,
// for predictions of every size: float32 values of any bits, float64 values around the edges
// where python switches between fixed and exponent notation, and round numbers.
func TestAppendPyFloatShortcutMatchesGeneralPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var values []float64
	for range 200000 {
		values = append(values, float64(math.Float32frombits(rng.Uint32())), math.Float64frombits(rng.Uint64()))
	}
	for _, edge := range []float64{1e-4, 1e-5, 1e15, 1e16, 1, 10, 100, 0.1} {
		v := edge
		for range 200 {
			values = append(values, v, -v)
			v = math.Nextafter(v, 0)
		}
		v = edge
		for range 200 {
			values = append(values, v, -v)
			v = math.Nextafter(v, math.Inf(1))
		}
	}
	for i := range 1000 {
		values = append(values, float64(i), float64(i)*1e12, float64(i)/8)
	}
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		got, want := string(appendPyFloat(nil, v)), string(appendPyFloatExp(nil, v))
		if got != want {
			t.Fatalf("appendPyFloat(%b) = %s, the general path writes %s", v, got, want)
		}
	}
}
