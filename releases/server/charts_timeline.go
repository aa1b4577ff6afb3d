package server

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// span is a stretch of time one version served.
type span struct {
	Version    int
	From, To   time.Time
	Rollback   bool
	ReleaseID  string
	ReleaseTxt string
}

// servedSpans follows succeeded releases (oldest first) to which version served when.
func servedSpans(rels []store.ReleaseRecord, now time.Time) []span {
	var out []span
	for _, r := range rels {
		if r.Status != releases.StatusSucceeded || r.FinishedAt == nil || r.Kind == releases.KindScale || r.Version.Number == 0 {
			continue
		}
		if n := len(out); n > 0 {
			out[n-1].To = *r.FinishedAt
		}
		out = append(out, span{Version: r.Version.Number, From: *r.FinishedAt, To: now, Rollback: r.Kind == releases.KindRestore, ReleaseID: r.ID, ReleaseTxt: releaseLabel(r)})
	}
	return out
}

// versionTimeline draws which version served when, rollbacks hatched and labelled.
func versionTimeline(rels []store.ReleaseRecord, now time.Time) string {
	spans := servedSpans(rels, now)
	if len(spans) == 0 {
		return `<p class="muted small" id="timeline-empty">No release has finished here yet.</p>`
	}
	from := spans[0].From
	total := now.Sub(from)
	if total <= 0 {
		total = time.Second
	}
	var b, text strings.Builder
	desc := fmt.Sprintf("%d version change%s since %s", len(spans), plural(len(spans)), from.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, `<figure><svg class="chart timeline" id="chart-timeline" viewBox="0 0 %.0f 44" role="img" aria-labelledby="chart-timeline-t chart-timeline-d" xmlns="http://www.w3.org/2000/svg">`, chartW)
	fmt.Fprintf(&b, `<title id="chart-timeline-t">Version timeline</title><desc id="chart-timeline-d">%s</desc>`, esc(desc))
	text.WriteString(`<ol class="chart-text" id="chart-timeline-text">`)
	for i, sp := range spans {
		x := padL + plotW*float64(sp.From.Sub(from))/float64(total)
		w := max(plotW*float64(sp.To.Sub(sp.From))/float64(total), 2)
		cls, label := fmt.Sprintf("seg seg-%d", i%2), fmt.Sprintf("v%d", sp.Version)
		if sp.Rollback {
			cls, label = cls+" seg-rollback", label+" ↶"
		}
		fmt.Fprintf(&b, `<g class="%s" data-version="%d"><title>%s: %s – %s</title><rect x="%.1f" y="6" width="%.1f" height="22" rx="3"/>`,
			cls, sp.Version, esc(sp.ReleaseTxt), sp.From.UTC().Format("Jan 2 15:04"), sp.To.UTC().Format("Jan 2 15:04"), x, w)
		if w > 24 {
			fmt.Fprintf(&b, `<text x="%.1f" y="21">%s</text>`, x+4, esc(label))
		}
		b.WriteString(`</g>`)
		fmt.Fprintf(&text, `<li>%s from %s%s</li>`, esc(sp.ReleaseTxt), sp.From.UTC().Format("2006-01-02 15:04 UTC"), untilText(sp, i == len(spans)-1))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="42">%s</text><text class="axis" x="%.0f" y="42" text-anchor="end">now</text></svg>`,
		padL, from.UTC().Format("Jan 2 15:04"), padL+plotW)
	text.WriteString(`</ol>`)
	return b.String() + `<figcaption>` + text.String() + `</figcaption></figure>`
}

func untilText(sp span, last bool) string {
	if last {
		return ", serving now"
	}
	return " to " + sp.To.UTC().Format("2006-01-02 15:04 UTC")
}

// durationTrend draws how long the component's last releases took; failed ones hatched and marked ✕.
func durationTrend(rels []store.ReleaseRecord) string {
	var done []store.ReleaseRecord
	for _, r := range rels {
		if r.StartedAt != nil && r.FinishedAt != nil {
			done = append(done, r)
		}
	}
	if len(done) > 20 {
		done = done[len(done)-20:]
	}
	if len(done) == 0 {
		return `<p class="muted small" id="durations-empty">No finished release yet.</p>`
	}
	secs := make([]float64, len(done))
	for i, r := range done {
		secs[i] = r.FinishedAt.Sub(*r.StartedAt).Seconds()
	}
	top := niceCeil(slices.Max(secs))
	sorted := slices.Clone(secs)
	slices.Sort(sorted)
	desc := fmt.Sprintf("The last %d releases took from %s to %s (median %s).", len(done), humanSecs(sorted[0]), humanSecs(sorted[len(sorted)-1]), humanSecs(sorted[len(sorted)/2]))
	if len(done) == 1 {
		desc = fmt.Sprintf("The only finished release took %s.", humanSecs(secs[0]))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<figure><svg class="chart durations" id="chart-durations" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="chart-durations-t chart-durations-d" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH)
	fmt.Fprintf(&b, `<title id="chart-durations-t">Release durations</title><desc id="chart-durations-d">%s</desc>`, esc(desc))
	fmt.Fprintf(&b, `<g class="axis"><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f"/><text x="%.0f" y="%.0f" text-anchor="end">%s</text><text x="%.0f" y="%.0f" text-anchor="end">0</text></g>`,
		padL, padT+plotH, padL+plotW, padT+plotH, padL-4, padT+8, esc(humanSecs(top)), padL-4, padT+plotH)
	slot := plotW / float64(len(done))
	for i, r := range done {
		h := plotH * secs[i] / top
		x := padL + slot*float64(i) + slot*0.15
		cls, mark := "bar", ""
		if r.Status != releases.StatusSucceeded {
			cls, mark = "bar bar-failed", "✕"
		}
		fmt.Fprintf(&b, `<g class="%s"><title>%s %s: %s, %s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/><text x="%.1f" y="%.1f">%s</text></g>`,
			cls, r.Kind, releaseLabel(r), r.Status, humanSecs(secs[i]), x, padT+plotH-h, slot*0.7, h, x+slot*0.2, padT+plotH+14, mark)
	}
	b.WriteString(`</svg><figcaption class="chart-text" id="chart-durations-text">` + esc(desc) + ` Failed releases are hatched and marked ✕.</figcaption></figure>`)
	return b.String()
}

func humanSecs(s float64) string {
	return humanDuration(time.Duration(s * float64(time.Second)))
}
