package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// On a terminal, waiting redraws one live line and status changes print lines that clear it; in
// CI logs, heartbeats are dropped so each status change is one plain line.
func TestProgressPrinterLiveLineAndPlainLogs(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	events := []deploy.Event{
		{Time: at, Phase: "wait", Message: "endpoint e is Updating"},
		{Time: at, Phase: "wait", Message: "endpoint e is Updating (1s)", Tick: true},
		{Time: at, Phase: "wait", Message: "endpoint e is Updating (2s)", Tick: true},
		{Time: at, Phase: "wait", Message: "endpoint e: Updating → InService (3s)"},
	}
	var tty bytes.Buffer
	p := &progressPrinter{w: &tty, tty: true}
	for _, e := range events {
		p.event(e)
	}
	p.done()
	got := tty.String()
	if strings.Count(got, "\r\033[K  … endpoint e is Updating") != 2 || !strings.Contains(got, "\r\033[K03:04:05 [wait] endpoint e: Updating → InService (3s)\n") {
		t.Errorf("terminal rendering = %q", got)
	}
	var ci bytes.Buffer
	p = newProgressPrinter(&ci) // a buffer is not a terminal
	for _, e := range events {
		p.event(e)
	}
	if want := "03:04:05 [wait] endpoint e is Updating\n03:04:05 [wait] endpoint e: Updating → InService (3s)\n"; ci.String() != want {
		t.Errorf("log rendering = %q, want %q", ci.String(), want)
	}
}
