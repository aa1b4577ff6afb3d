package releases

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ApprovalWait tunes WaitApproval.
type ApprovalWait struct {
	// Poll is how often the release is read while its event stream cannot be followed (a
	// dropped connection, a proxy that buffers, a server without streams). Default 2s.
	Poll time.Duration
	// OnRetry, when set, hears each failure WaitApproval retries (the stream dropped, a read
	// failed), so that the caller can log it.
	OnRetry func(error)
}

// streamIdle is how long a stream may stay silent before it is taken for dead: the server sends
// a keep-alive every 20 s, so three missed ones mean the connection is gone without a reset.
const streamIdle = 65 * time.Second

// errStreamUnsupported: the server answered the stream route with 404 or 405 (an older server).
var errStreamUnsupported = errors.New("the release server has no event stream for releases")

// WaitApproval waits until a release pending at its gate is approved (the release is returned)
// or rejected or canceled (ErrRejected), or ctx ends. It follows the release's event stream, so
// an approval is noticed the moment the server records it; when the stream drops or cannot be
// opened it reads the release, waits poll (2s when 0) and follows again. A release server that cannot be
// reached is retried until ctx ends — giving up would bypass the gate — while a refusal (revoked
// token, unknown release) is returned.
func (c *Client) WaitApproval(ctx context.Context, id string, poll time.Duration) (Release, error) {
	return c.WaitApprovalWith(ctx, id, ApprovalWait{Poll: poll})
}

// WaitApprovalWith is WaitApproval with its retries told to w.OnRetry.
func (c *Client) WaitApprovalWith(ctx context.Context, id string, w ApprovalWait) (Release, error) {
	poll := cmp.Or(max(w.Poll, 0), 2*time.Second)
	streams := true
	for {
		if streams {
			err := c.followPending(ctx, id)
			switch {
			case errors.Is(err, errStreamUnsupported):
				streams = false
			case err != nil && IsRefusal(err):
				return Release{}, fmt.Errorf("wait for approval of release %s: %w", id, err)
			case err != nil && ctx.Err() == nil && w.OnRetry != nil:
				w.OnRetry(err)
			}
		}
		r, err := c.Release(ctx, id)
		switch {
		case err == nil && r.Status == StatusCanceled:
			return r, fmt.Errorf("%w (release %s%s)", ErrRejected, id, byWhom(r.RejectedBy))
		case err == nil && r.Status != StatusPending:
			return r, nil
		case err != nil && IsRefusal(err):
			return Release{}, err
		case err != nil && ctx.Err() == nil && w.OnRetry != nil:
			w.OnRetry(err)
		}
		if err == nil && streams {
			continue // the stream ended while still pending (a server restart): follow it again at once
		}
		select {
		case <-ctx.Done():
			return Release{}, fmt.Errorf("wait for approval of release %s: %w", id, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// followPending follows the release's event stream until its state is no longer pending (nil),
// the stream ends or fails (an error), or ctx ends.
func (c *Client) followPending(ctx context.Context, id string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// after: the stream replays no progress events (the deployer's own), only the state.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/releases/"+url.PathEscape(id)+"/stream?after=2147483647", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("follow release %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		if _, err := c.Release(ctx, id); err != nil {
			return err // the release itself is unknown: a refusal, said as the server says it
		}
		return errStreamUnsupported
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return answerError(resp.StatusCode, data)
	}
	idle := time.AfterFunc(streamIdle, func() { cancel(fmt.Errorf("the event stream of release %s was silent for %s", id, streamIdle)) })
	defer idle.Stop()
	return readUntilDecided(bufio.NewScanner(resp.Body), func() { idle.Reset(streamIdle) }, func() error { return context.Cause(ctx) })
}

// readUntilDecided reads server-sent events until a "release" event whose status is not pending
// or an "end" event. alive is called on every line; cause says why the stream ended early.
func readUntilDecided(sc *bufio.Scanner, alive func(), cause func() error) error {
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	var event string
	var data strings.Builder
	for sc.Scan() {
		alive()
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if decided(event, data.String()) {
				return nil
			}
			event = ""
			data.Reset()
		case field == "event":
			event = value
		case field == "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
	return cmp.Or(cause(), sc.Err(), errors.New("the event stream ended while the release was pending"))
}

// decided reports whether one server-sent event says the gate has decided.
func decided(event, data string) bool {
	switch event {
	case "end":
		return true
	case "release":
		var st struct {
			Status Status `json:"status"`
		}
		return json.Unmarshal([]byte(data), &st) == nil && st.Status != "" && st.Status != StatusPending
	}
	return false
}
