package releases

import (
	"fmt"
	"time"
)

// Freshness says how far an environment is behind the one before it along the pipeline.
type Freshness struct {
	Model       string `json:"model"`
	Environment string `json:"environment"`
	Upstream    string `json:"upstream"`
	Version     int    `json:"version"`          // what this environment serves (0: nothing)
	UpstreamVer int    `json:"upstream_version"` // what the upstream serves
	// VersionsBehind is how many version numbers the upstream is ahead; 0 when level or ahead.
	VersionsBehind int `json:"versions_behind"`
	// BehindSince is when the upstream first served a version newer than this environment's;
	// DaysBehind counts whole days from then. Zero when not behind.
	BehindSince *time.Time `json:"behind_since,omitempty"`
	DaysBehind  int        `json:"days_behind"`
	Text        string     `json:"text"`
}

// Served is one version an environment served, first served at.
type Served struct {
	Number        int
	FirstServedAt time.Time
}

// FreshnessOf compares env (serving current) with upstream (serving upCurrent, with its history
// upHistory) at now.
func FreshnessOf(model, env, upstream string, current, upCurrent int, upHistory []Served, now time.Time) Freshness {
	f := Freshness{Model: model, Environment: env, Upstream: upstream, Version: current, UpstreamVer: upCurrent}
	if upCurrent > current {
		f.VersionsBehind = upCurrent - current
		for _, s := range upHistory {
			if s.Number > current && (f.BehindSince == nil || s.FirstServedAt.Before(*f.BehindSince)) {
				at := s.FirstServedAt
				f.BehindSince = &at
			}
		}
		if f.BehindSince != nil {
			f.DaysBehind = int(now.Sub(*f.BehindSince) / (24 * time.Hour))
		}
	}
	f.Text = f.describe()
	return f
}

func (f Freshness) describe() string {
	switch {
	case f.UpstreamVer == 0:
		return fmt.Sprintf("%s serves nothing yet", f.Upstream)
	case f.VersionsBehind == 0:
		return fmt.Sprintf("%s is up to date with %s", f.Environment, f.Upstream)
	}
	return fmt.Sprintf("%s is %s and %s behind %s", f.Environment, plural(f.VersionsBehind, "version"), plural(f.DaysBehind, "day"), f.Upstream)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
