package quickstart

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// printer writes the run's progress for a person: numbered steps, a few indented lines each, and
// timings. Deployer events arrive from other goroutines (the promotion waits in one), hence the
// lock.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func newPrinter(w io.Writer) *printer {
	if w == nil {
		w = io.Discard
	}
	return &printer{w: w}
}

func (p *printer) printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, a...)
}

func (p *printer) step(n, of int, title string) { p.printf("\n[%d/%d] %s\n", n, of, title) }

func (p *printer) line(s string) { p.printf("      %s\n", s) }

func (p *printer) attention(s string) { p.printf("   >> %s\n", s) }

func (p *printer) done(d time.Duration) { p.printf("      done in %s\n", Round(d)) }

// milestone reports whether an event's phase is worth a line without Verbose.
func milestone(e deploy.Event) bool {
	switch e.Phase {
	case "endpoint", "verify", "rollback", "approval":
		return true
	}
	return false
}

// event prints a deployer progress event: the milestones, or everything when verbose.
func (p *printer) event(e deploy.Event, verbose bool) {
	if e.Tick || (!verbose && !milestone(e)) {
		return
	}
	msg := strings.TrimSpace(e.Message)
	if e.Phase == "approval" && strings.Contains(msg, "waits for an approval") {
		return // the run says it in its own words, with the link
	}
	p.printf("      · %-8s %s\n", e.Phase, msg)
}

// Round renders a duration for people: 840ms, 2.3s, 1m12s.
func Round(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
