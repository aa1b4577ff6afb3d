package server

import (
	"testing"
	"time"
)

// Releases on the local SageMaker take a fraction of a second; the timeline must tell a 40 ms
// release from a 900 ms one instead of showing "0s" for both.
func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                      "0ms",
		42 * time.Millisecond:             "42ms",
		999 * time.Millisecond:            "999ms",
		1500 * time.Millisecond:           "1.5s",
		9940 * time.Millisecond:           "9.9s",
		12 * time.Second:                  "12s",
		3*time.Minute + 12*time.Second:    "3m 12s",
		time.Hour + 4*time.Minute + 500e6: "1h 4m",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
