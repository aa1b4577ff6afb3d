package cli

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// progressPrinter renders deployer events on stderr: on a terminal, status changes as lines and
// waiting as one live line redrawn in place; elsewhere (CI logs), plain timestamped lines, with a
// reminder every 30 s while nothing changes.
type progressPrinter struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	live     bool // a live line is drawn and must be cleared before the next line
	lastLine time.Time
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *progressPrinter) event(e deploy.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Tick {
		if p.tty {
			fmt.Fprintf(p.w, "\r\033[K  … %s", e.Message)
			p.live = true
			return
		}
		if time.Since(p.lastLine) < 30*time.Second {
			return
		}
	}
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
	ts := e.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	phase := cmp.Or(e.Phase, "-")
	fmt.Fprintf(p.w, "%s [%s] %s\n", ts.Format("15:04:05"), phase, e.Message)
	p.lastLine = time.Now()
}

// done clears a live line left behind.
func (p *progressPrinter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
}

func versionText(v *deploy.Version) string {
	if v == nil || v.Number == 0 {
		return "-"
	}
	return fmt.Sprintf("v%d", v.Number)
}

func createdOr(created bool, yes, no string) string {
	if created {
		return yes
	}
	return no
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.UTC().Format("2006-01-02 15:04")
}
