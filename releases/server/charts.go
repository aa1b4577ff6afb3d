package server

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Charts are drawn on the server as inline SVG: no front-end build, readable without script.
// Each has a <title> and <desc>, a text summary beside it, and series that differ by dash
// pattern and label as well as by colour.

// series is one line of a chart.
type series struct {
	Name  string
	Class string // stroke colour and dash pattern (app.css: .s-inv, .s-4xx, ...)
	Dash  string
	Vals  []float64 // one per bucket; NaN: no data
	Gaps  bool      // break the line where there is no data (latency), rather than draw 0
}

// marker is a release on the time axis.
type marker struct {
	At    time.Time
	Label string // "v2", "rollback to v1"
}

// lineChart is what one chart shows.
type lineChart struct {
	ID, Title, Unit string
	From, To        time.Time
	Series          []series
	Markers         []marker
}

const (
	chartW, chartH            = 640.0, 180.0
	padL, padR, padT, padB    = 48.0, 12.0, 12.0, 28.0
	plotW, plotH              = chartW - padL - padR, chartH - padT - padB
	chartMarkerLabelMaxLength = 24
)

// bucketsFor is how a window is cut: 60 one-minute buckets for an hour, 96 of 15 minutes for a
// day, 84 of two hours for a week.
func bucketsFor(win time.Duration) (int, time.Duration) {
	switch {
	case win <= time.Hour:
		return 60, time.Minute
	case win <= 24*time.Hour:
		return 96, 15 * time.Minute
	}
	return 84, 2 * time.Hour
}

// bucketize is one metric's values per bucket: the sum of its points, or for latency the worst
// of them; NaN where it has none.
func bucketize(buckets []store.MetricBucket, metric string, n int, sum bool) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	for _, b := range buckets {
		if b.Metric != metric || b.Index < 0 || b.Index >= n {
			continue
		}
		out[b.Index] = b.Max
		if sum {
			out[b.Index] = b.Sum
		}
	}
	return out
}

func (c lineChart) max() float64 {
	m := 0.0
	for _, s := range c.Series {
		for _, v := range s.Vals {
			if !math.IsNaN(v) {
				m = max(m, v)
			}
		}
	}
	return niceCeil(m)
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten, so the axis reads well.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range []float64{1, 2, 5, 10} {
		if v <= f*p {
			return f * p
		}
	}
	return 10 * p
}

// svg draws the chart.
func (c lineChart) svg(desc string) string {
	var b strings.Builder
	top := c.max()
	fmt.Fprintf(&b, `<svg class="chart" id="%s" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s-t %s-d" xmlns="http://www.w3.org/2000/svg">`, c.ID, chartW, chartH, c.ID, c.ID)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, c.ID, esc(c.Title), c.ID, esc(desc))
	c.axes(&b, top)
	for _, m := range c.Markers {
		c.drawMarker(&b, m)
	}
	for _, s := range c.Series {
		c.drawSeries(&b, s, top)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func (c lineChart) x(t time.Time) float64 {
	span := c.To.Sub(c.From)
	if span <= 0 {
		return padL
	}
	return padL + plotW*float64(t.Sub(c.From))/float64(span)
}

func (c lineChart) axes(b *strings.Builder, top float64) {
	fmt.Fprintf(b, `<g class="axis"><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f"/><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f"/>`,
		padL, padT+plotH, padL+plotW, padT+plotH, padL, padT, padL, padT+plotH)
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="end">%s</text><text x="%.0f" y="%.0f" text-anchor="end">0</text>`,
		padL-4, padT+8, esc(short(top)+" "+c.Unit), padL-4, padT+plotH)
	layout := "15:04"
	if c.To.Sub(c.From) > 24*time.Hour {
		layout = "Jan 2"
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f">%s</text><text x="%.0f" y="%.0f" text-anchor="end">%s UTC</text></g>`,
		padL, chartH-8, c.From.UTC().Format(layout), padL+plotW, chartH-8, c.To.UTC().Format(layout))
}

func (c lineChart) drawMarker(b *strings.Builder, m marker) {
	if m.At.Before(c.From) || m.At.After(c.To) {
		return
	}
	x := c.x(m.At)
	label := m.Label
	if len(label) > chartMarkerLabelMaxLength {
		label = label[:chartMarkerLabelMaxLength]
	}
	fmt.Fprintf(b, `<g class="marker"><title>%s at %s</title><line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke-dasharray="2 3"/><text x="%.1f" y="%.0f">%s</text></g>`,
		esc(m.Label), m.At.UTC().Format("2006-01-02 15:04 UTC"), x, padT, x, padT+plotH, x+3, padT+10, esc(label))
}

// drawSeries draws one line as a path. A period without a point is no traffic for counts (drawn
// at 0), but no measurement for latency (Gaps: the line breaks there).
func (c lineChart) drawSeries(b *strings.Builder, s series, top float64) {
	n := len(s.Vals)
	if n == 0 {
		return
	}
	step := c.To.Sub(c.From) / time.Duration(n)
	var d strings.Builder
	pen := "M"
	for i, v := range s.Vals {
		if math.IsNaN(v) {
			if s.Gaps {
				pen = "M"
				continue
			}
			v = 0
		}
		x := c.x(c.From.Add(step*time.Duration(i) + step/2))
		y := padT + plotH - plotH*v/top
		fmt.Fprintf(&d, "%s%.1f,%.1f ", pen, x, y)
		pen = "L"
	}
	fmt.Fprintf(b, `<path class="series %s" data-series="%s" fill="none" stroke-width="2" stroke-dasharray="%s" d="%s"><title>%s</title></path>`,
		s.Class, esc(s.Name), s.Dash, strings.TrimSpace(d.String()), esc(s.Name))
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// short writes a number compactly: 12, 1.5k, 2.3M.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v < 1:
		// Sub-millisecond latencies of the local SageMaker: two significant digits, not "0.0".
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	return fmt.Sprintf("%.1f", v)
}

func total(vals []float64) float64 {
	t := 0.0
	for _, v := range vals {
		if !math.IsNaN(v) {
			t += v
		}
	}
	return t
}

func worst(vals []float64) float64 {
	w := math.NaN()
	for _, v := range vals {
		if !math.IsNaN(v) && (math.IsNaN(w) || v > w) {
			w = v
		}
	}
	return w
}
