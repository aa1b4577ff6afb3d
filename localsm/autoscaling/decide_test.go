package autoscaling

import (
	"math"
	"testing"
	"time"
)

// Target tracking keeps each instance near the target: it scales out past it, in below it,
// within bounds, and waits out cooldowns.
func TestDecide(t *testing.T) {
	never := time.Duration(math.MaxInt64)
	base := observation{Current: 2, Min: 1, Max: 4, HaveMetric: true, Target: 100,
		SinceOut: never, SinceIn: never, ScaleOutCooldown: 5 * time.Minute, ScaleInCooldown: 5 * time.Minute}
	cases := []struct {
		name string
		edit func(*observation)
		want int
	}{
		{"at target", func(o *observation) { o.PerInstance = 100 }, 2},
		{"load of 3 instances", func(o *observation) { o.PerInstance = 150 }, 3},
		{"capped at max", func(o *observation) { o.PerInstance = 1000 }, 4},
		{"half the load", func(o *observation) { o.PerInstance = 50 }, 1},
		{"no invocations: no change", func(o *observation) { o.HaveMetric = false }, 2},
		{"below min after register", func(o *observation) { o.Min = 3; o.HaveMetric = false }, 3},
		{"above max after register", func(o *observation) { o.Max = 1; o.PerInstance = 500 }, 1},
		{"scale-out cooldown", func(o *observation) { o.PerInstance = 300; o.SinceOut = time.Minute }, 2},
		{"scale-out after cooldown", func(o *observation) { o.PerInstance = 300; o.SinceOut = 6 * time.Minute }, 4},
		{"scale-in waits after a scale-out", func(o *observation) { o.PerInstance = 10; o.SinceOut = time.Minute }, 2},
		{"scale-in disabled", func(o *observation) { o.PerInstance = 10; o.DisableScaleIn = true }, 2},
		{"scale-out suspended", func(o *observation) { o.PerInstance = 300; o.OutSuspended = true }, 2},
		{"no rounding up at exactly target", func(o *observation) { o.Current, o.PerInstance, o.Target = 3, 0.7, 0.7 }, 3},
	}
	for _, c := range cases {
		o := base
		c.edit(&o)
		if got, why := decide(o); got != c.want {
			t.Errorf("%s: decide = %d (%s), want %d", c.name, got, why, c.want)
		}
	}
}
