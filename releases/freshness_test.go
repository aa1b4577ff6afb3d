package releases_test

import (
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
)

func TestFreshnessOf(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dev := []releases.Served{{Number: 1, FirstServedAt: t0}, {Number: 2, FirstServedAt: t0.Add(24 * time.Hour)}, {Number: 3, FirstServedAt: t0.Add(5 * 24 * time.Hour)}}
	now := t0.Add(10*24*time.Hour + time.Hour)
	for _, tc := range []struct {
		name         string
		prod, dev    int
		behind, days int
		text         string
	}{
		{"two behind since v2 reached dev", 1, 3, 2, 9, "prod is 2 versions and 9 days behind dev"},
		{"one behind", 2, 3, 1, 5, "prod is 1 version and 5 days behind dev"},
		{"level", 3, 3, 0, 0, "prod is up to date with dev"},
		{"ahead (a hotfix straight to prod)", 4, 3, 0, 0, "prod is up to date with dev"},
		{"serving nothing yet", 0, 3, 3, 10, "prod is 3 versions and 10 days behind dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := releases.FreshnessOf("abalone", "prod", "dev", tc.prod, tc.dev, dev, now)
			if f.VersionsBehind != tc.behind || f.DaysBehind != tc.days || f.Text != tc.text {
				t.Fatalf("%+v", f)
			}
		})
	}
}
