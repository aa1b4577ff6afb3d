package cloudwatch

import (
	"math"
	"regexp"
	"slices"
	"strconv"
)

// sketch keeps the distribution of a bucket's samples for percentiles (p99 ModelLatency is the
// usual guardrail), in logarithmic bins under 1.6% wide: memory bounded by the range of values
// whatever the traffic, and a percentile within 0.8% of the exact sample. Bins come from the
// float's exponent and the top bits of its mantissa, cheaper than a logarithm on the serving path.
type sketch struct {
	pos, neg map[int32]float64 // bin → count, for positive values and for magnitudes of negative ones
	zero     float64
}

// binsPerOctave splits each power of two into equal parts.
const binsPerOctave = 64

func (s *sketch) addValue(v, count float64) {
	switch {
	case v == 0 || math.IsNaN(v):
		s.zero += count
	case v > 0:
		if s.pos == nil {
			s.pos = map[int32]float64{}
		}
		s.pos[bin(v)] += count
	default:
		if s.neg == nil {
			s.neg = map[int32]float64{}
		}
		s.neg[bin(-v)] += count
	}
}

func bin(v float64) int32 {
	frac, exp := math.Frexp(v) // v = frac × 2^exp, frac in [0.5, 1)
	return int32(exp)*binsPerOctave + int32((frac-0.5)*2*binsPerOctave)
}

// binValue is the middle of a bin, within 0.8% of any value in it.
func binValue(k int32) float64 {
	exp := k / binsPerOctave
	part := k % binsPerOctave
	if part < 0 {
		exp, part = exp-1, part+binsPerOctave
	}
	return math.Ldexp(0.5+(float64(part)+0.5)/(2*binsPerOctave), int(exp))
}

func (s *sketch) merge(o *sketch) {
	s.zero += o.zero
	for k, c := range o.pos {
		if s.pos == nil {
			s.pos = map[int32]float64{}
		}
		s.pos[k] += c
	}
	for k, c := range o.neg {
		if s.neg == nil {
			s.neg = map[int32]float64{}
		}
		s.neg[k] += c
	}
}

func (s *sketch) clone() *sketch {
	if s == nil {
		return nil
	}
	c := &sketch{}
	c.merge(s)
	return c
}

// quantile returns the value below which a fraction q of the samples fall.
func (s *sketch) quantile(q float64) float64 {
	total := s.zero
	for _, c := range s.pos {
		total += c
	}
	for _, c := range s.neg {
		total += c
	}
	rank := q * total
	seen := 0.0
	for _, k := range sortedBins(s.neg, true) {
		if seen += s.neg[k]; seen >= rank {
			return -binValue(k)
		}
	}
	if seen += s.zero; seen >= rank {
		return 0
	}
	keys := sortedBins(s.pos, false)
	for _, k := range keys {
		if seen += s.pos[k]; seen >= rank {
			return binValue(k)
		}
	}
	if len(keys) > 0 {
		return binValue(keys[len(keys)-1])
	}
	return 0
}

func sortedBins(m map[int32]float64, descending bool) []int32 {
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if descending {
		slices.Reverse(keys)
	}
	return keys
}

var percentileStat = regexp.MustCompile(`^p(\d{1,2}(\.\d{1,10})?|100)$`)

// percentile parses an extended statistic such as "p99" or "p99.9" into a fraction.
func percentile(stat string) (float64, bool) {
	m := percentileStat.FindStringSubmatch(stat)
	if m == nil {
		return 0, false
	}
	p, err := strconv.ParseFloat(m[1], 64)
	return p / 100, err == nil
}

// validStat reports whether a statistic or extended statistic can be computed.
func validStat(stat string) bool {
	_, ok := percentile(stat)
	return ok || slices.Contains(statistics, stat)
}
