package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// streams serves server-sent events of a release's progress, for the API and the release page.
type streams struct{ *Server }

// streamState is the "release" event of a release stream: what the release page updates in place.
type streamState struct {
	ID               string                `json:"id"`
	Status           string                `json:"status"`
	AwaitingApproval bool                  `json:"awaiting_approval"`
	Reason           releases.Reason       `json:"reason,omitempty"`
	ReasonText       string                `json:"reason_text,omitempty"`
	FailureReason    string                `json:"failure_reason,omitempty"`
	ApprovedBy       string                `json:"approved_by,omitempty"`
	RejectedBy       string                `json:"rejected_by,omitempty"`
	StartedAt        *time.Time            `json:"started_at,omitempty"`
	FinishedAt       *time.Time            `json:"finished_at,omitempty"`
	Duration         string                `json:"duration,omitempty"`
	CommandState     releases.CommandState `json:"command_state,omitempty"`
	CommandNote      string                `json:"command_note,omitempty"`
	Version          int                   `json:"version,omitempty"`
	InstanceCount    int                   `json:"instance_count,omitempty"`
}

func (s streams) apiStream(w http.ResponseWriter, r *http.Request) {
	p, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.releaseFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.streamRelease(w, r, rec)
}

// streamRelease sends a release's events as server-sent events ("progress", with the event's
// seq as id, so a reconnecting browser resumes with Last-Event-ID), its state whenever it changes
// ("release"), and "end" once it is final.
func (s streams) streamRelease(w http.ResponseWriter, r *http.Request, rec store.ReleaseRecord) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported by this connection", http.StatusInternalServerError)
		return
	}
	after := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after, _ = strconv.Atoi(v)
	} else if v := r.URL.Query().Get("after"); v != "" {
		after, _ = strconv.Atoi(v)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	fl.Flush()

	ctx := r.Context()
	tick := time.NewTicker(s.opts.StreamPoll)
	defer tick.Stop()
	keepalive := time.NewTicker(20 * time.Second)
	defer keepalive.Stop()
	var lastState []byte
	for {
		woken := s.notify.wait(releaseKey(rec.ID))
		final, err := s.streamOnce(ctx, w, rec.ID, &after, &lastState)
		if err != nil {
			return
		}
		if final {
			fmt.Fprintf(w, "event: end\ndata: {}\n\n")
			fl.Flush()
			return
		}
		fl.Flush()
		select {
		case <-woken:
		case <-tick.C:
		case <-keepalive.C:
			fmt.Fprintf(w, ": keepalive\n\n")
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// streamOnce writes the events after *after and, when it changed since *lastState, the
// release's state; final says whether the release and its command (if any) have ended. An agent
// reports a command's result after the release it ran, so ending the stream with the release
// would leave the page showing a finished command as "dispatched" until a reload.
func (s streams) streamOnce(ctx context.Context, w io.Writer, id string, after *int, lastState *[]byte) (final bool, err error) {
	// The release is read before its events: a finish stores its last events in the same commit
	// as the outcome, so a stream that sees the release ended sees those events too, and sends
	// them before the outcome and the end of the stream.
	cur, err := s.st.Release(ctx, id)
	if err != nil {
		return false, err
	}
	evs, err := s.st.Events(ctx, id, *after)
	if err != nil {
		return false, err
	}
	for _, e := range evs {
		b, _ := json.Marshal(e)
		fmt.Fprintf(w, "id: %d\nevent: progress\ndata: %s\n\n", e.Seq, b)
		*after = e.Seq
	}
	st := s.streamStateOf(ctx, cur)
	b, _ := json.Marshal(st)
	// The duration of a running release changes every read; compare without it.
	st.Duration = ""
	cb, _ := json.Marshal(st)
	if string(cb) != string(*lastState) {
		fmt.Fprintf(w, "event: release\ndata: %s\n\n", b)
		*lastState = cb
	}
	return cur.Status.Final() && s.commandSettled(st.CommandState, cur.FinishedAt), nil
}

// commandResultGrace is how long after its release ends a stream waits for the command's result:
// an agent that died between the two would otherwise keep followers waiting for ever.
const commandResultGrace = time.Minute

// commandSettled reports whether a release's command (if any) needs no more waiting for.
func (s streams) commandSettled(state releases.CommandState, releaseFinished *time.Time) bool {
	if state == "" || state.Final() {
		return true
	}
	return releaseFinished != nil && s.st.Now().Sub(*releaseFinished) > commandResultGrace
}

func (s streams) streamStateOf(ctx context.Context, cur store.ReleaseRecord) streamState {
	st := streamState{ID: cur.ID, Status: string(cur.Status), AwaitingApproval: cur.AwaitingApproval(), FailureReason: cur.FailureReason,
		Reason: cur.Reason, ReasonText: reasonText(cur.Reason),
		ApprovedBy: cur.ApprovedBy, RejectedBy: cur.RejectedBy, StartedAt: cur.StartedAt, FinishedAt: cur.FinishedAt,
		Version: cur.Version.Number, InstanceCount: cur.InstanceCount}
	if cur.StartedAt != nil {
		st.Duration = humanDuration(cur.Duration(s.st.Now()))
	}
	if cur.CommandID != "" {
		if c, err := s.st.Command(ctx, cur.CommandID); err == nil {
			st.CommandState, st.CommandNote = c.State, c.Note
		}
	}
	return st
}

// dashLive streams "change" events to the dashboard's pages whenever what they show changes,
// including between the page's render (whose fingerprint it passes as ?state=) and this
// connection. A page answers by fetching itself again and swapping its live parts in place.
func (s dashboard) dashLive(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.sessionOf(r); err != nil {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported by this connection", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	fl.Flush()
	s.liveLoop(r.Context(), w, fl, r.URL.Query().Get("state"))
}

// liveLoop sends a change whenever the fingerprint differs from the last one sent, starting from
// last, the one the page was rendered with.
func (s dashboard) liveLoop(ctx context.Context, w io.Writer, fl http.Flusher, last string) {
	tick := time.NewTicker(s.opts.StreamPoll)
	defer tick.Stop()
	keepalive := time.NewTicker(20 * time.Second)
	defer keepalive.Stop()
	for {
		woken := s.notify.wait(anyKey)
		fp, err := s.fingerprint(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("dashboard live stream", "err", err)
			}
			return
		}
		if fp != last {
			fmt.Fprintf(w, "event: change\ndata: {\"state\":%q}\n\n", fp)
			fl.Flush()
			last = fp
		}
		select {
		case <-woken:
		case <-tick.C:
		case <-keepalive.C:
			fmt.Fprintf(w, ": keepalive\n\n")
			fl.Flush()
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// liveCache keeps the last fingerprint with the notifier generation it was read at: every open
// page's stream and every page render asks for it, and it changes only after a signal (or, for
// changes made by another server on the same database, at most a stream poll later).
type liveCache struct {
	mu  sync.Mutex
	gen uint64
	at  time.Time
	fp  string
}

// fingerprint digests what the dashboard's pages show — components, recent releases, approvals,
// commands — so that the live stream speaks only when one of them changed, not at every wake-up
// (heartbeats and agents' polls wake it too).
func (s dashboard) fingerprint(ctx context.Context) (string, error) {
	gen := s.notify.generation()
	c := &s.live
	c.mu.Lock()
	if c.fp != "" && c.gen == gen && time.Since(c.at) < s.opts.StreamPoll {
		fp := c.fp
		c.mu.Unlock()
		return fp, nil
	}
	c.mu.Unlock()
	fp, err := s.readFingerprint(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.gen, c.at, c.fp = gen, time.Now(), fp
	c.mu.Unlock()
	return fp, nil
}

func (s dashboard) readFingerprint(ctx context.Context) (string, error) {
	comps, err := s.st.Components(ctx)
	if err != nil {
		return "", fmt.Errorf("live state: %w", err)
	}
	recent, err := s.st.ListReleases(ctx, store.ReleaseFilter{Limit: 50})
	if err != nil {
		return "", fmt.Errorf("live state: %w", err)
	}
	pending, err := s.st.PendingApprovals(ctx)
	if err != nil {
		return "", fmt.Errorf("live state: %w", err)
	}
	cmds, err := s.st.Commands(ctx, "", 50)
	if err != nil {
		return "", fmt.Errorf("live state: %w", err)
	}
	sum := sha256.New()
	for _, v := range []any{comps, recent.Releases, pending, cmds} {
		if err := json.NewEncoder(sum).Encode(v); err != nil {
			return "", fmt.Errorf("live state: %w", err)
		}
	}
	return hex.EncodeToString(sum.Sum(nil)[:12]), nil
}

// humanDuration renders a duration the way people read it: 340ms, 4.2s, 45s, 3m 12s, 1h 4m.
// Local releases take well under a second, so sub-second and sub-10s durations keep precision
// rather than all reading "0s".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
}
