package releases

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrRejected is returned by WaitApproval when a user rejected the release at the gate.
var ErrRejected = errors.New("release rejected at the approval gate")

// APIError is an error answer of the release server.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("release server: %s (HTTP %d)", e.Message, e.StatusCode)
}

// Client talks to a release server's /api/v1 with an environment-scoped integration token.
//
// Routes (the server implements exactly these; bodies and answers are the JSON of this package's types):
//
//	POST /api/v1/releases                      ReleaseStart → 201 Release (status running, or pending at a gate)
//	GET  /api/v1/releases/{id}                 → 200 Release with Events
//	POST /api/v1/releases/{id}/events          Event → 201 Event (Seq assigned), or
//	                                           {"events": [Event, …]} (1 to 500) → 201 {"events": [Event, …]}
//	POST /api/v1/releases/{id}/finish          ReleaseFinish → 200 Release; its optional "events" (up to 500,
//	                                           as a batch takes them) are stored in order before the outcome,
//	                                           in the same commit, unless the release had already ended
//	                                           with this outcome (a retried finish adds nothing twice)
//	POST /api/v1/releases/{id}/heartbeat       → 200 (the deployer waits and is alive)
//	GET  /api/v1/releases?environment=&model=&status=&limit=  → 200 ReleaseList
//	POST /api/v1/releases/{id}/approve|reject  {"reason": "..."} → 200 Release (a user, not a token)
//	POST /api/v1/releases/{id}/cancel          → 200 Release
//	GET  /api/v1/agent/commands/next?wait=30s  → 200 Command, or 204 when none came within wait
//	POST /api/v1/agent/commands/{id}/result    CommandResult → 200
//
// Authorization: Bearer <token>. Errors: non-2xx with {"error": "message a user can act on"}.
type Client struct {
	base  string
	token string
	http  *http.Client
	// user and password, when set, sign in as a dashboard user (approvals need one).
	user, password string
}

// NewUserClient returns a client that acts as a dashboard user (basic credentials), as approving
// and rejecting releases needs. hc may be nil.
func NewUserClient(baseURL, user, password string, hc *http.Client) *Client {
	c := NewClient(baseURL, "", hc)
	c.user, c.password = user, password
	return c
}

// NewClient returns a client for the server at baseURL (e.g. http://127.0.0.1:4571). hc may be nil.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 0}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: hc}
}

// BaseURL is the server's URL as given.
func (c *Client) BaseURL() string { return c.base }

// StartRelease records the start of a release. The answer's Status is pending when the
// environment's gate needs an approval first; call WaitApproval then.
func (c *Client) StartRelease(ctx context.Context, s ReleaseStart) (Release, error) {
	var r Release
	err := c.do(ctx, http.MethodPost, "/api/v1/releases", s, &r, 30*time.Second)
	if err != nil {
		return Release{}, fmt.Errorf("start release of %s in %s: %w", s.Model, s.Environment, err)
	}
	return r, nil
}

// Release reads one release with its events.
func (c *Client) Release(ctx context.Context, id string) (Release, error) {
	var r Release
	if err := c.do(ctx, http.MethodGet, "/api/v1/releases/"+url.PathEscape(id), nil, &r, 30*time.Second); err != nil {
		return Release{}, fmt.Errorf("read release %s: %w", id, err)
	}
	return r, nil
}

func byWhom(u string) string {
	if u == "" {
		return ""
	}
	return " by " + u
}

// AddEvent appends a progress event to a release.
func (c *Client) AddEvent(ctx context.Context, id string, e Event) (Event, error) {
	var out Event
	if err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/events", e, &out, 30*time.Second); err != nil {
		return Event{}, fmt.Errorf("report event of release %s: %w", id, err)
	}
	return out, nil
}

// AddEvents records events of a release in one request, in order: one commit on the server
// instead of one per event. A server from before batches refuses the "events" field; it gets the
// events one at a time.
func (c *Client) AddEvents(ctx context.Context, id string, evs []Event) ([]Event, error) {
	body := struct {
		Events []Event `json:"events"`
	}{evs}
	var out struct {
		Events []Event `json:"events"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/events", body, &out, 30*time.Second)
	switch {
	case err == nil:
		return out.Events, nil
	case refusesField(err, "events"):
		added := make([]Event, 0, len(evs))
		for _, e := range evs {
			a, err := c.AddEvent(ctx, id, e)
			if err != nil {
				return added, err
			}
			added = append(added, a)
		}
		return added, nil
	}
	return nil, fmt.Errorf("report %d events of release %s: %w", len(evs), id, err)
}

// Heartbeat tells the server that the deployer of a running release is alive and waiting (a long
// bake reports no event for minutes), so that the no-progress timeout does not end it.
func (c *Client) Heartbeat(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/heartbeat", struct{}{}, nil, 15*time.Second); err != nil {
		return fmt.Errorf("heartbeat of release %s: %w", id, err)
	}
	return nil
}

// refusesField reports whether err is a server from before field name refusing it.
func refusesField(err error, name string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest && strings.Contains(ae.Message, `unknown field "`+name+`"`)
}

// FinishRelease records the outcome of a release, after the events f carries (f.Events), in one
// request: one commit on the server. A server from before finishes carried events refuses the
// field; it gets the events first (AddEvents), then the outcome, so nothing is lost.
func (c *Client) FinishRelease(ctx context.Context, id string, f ReleaseFinish) (Release, error) {
	var r Release
	err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/finish", f, &r, 30*time.Second)
	if len(f.Events) > 0 && refusesField(err, "events") {
		return c.finishAfterEvents(ctx, id, f)
	}
	if err != nil {
		return Release{}, fmt.Errorf("finish release %s: %w", id, err)
	}
	return r, nil
}

// finishAfterEvents sends f's events and then f, as two requests. Events the server refuses
// (the release ended meanwhile: it timed out) do not keep the outcome from it, as a deployer's
// outcome corrects a timed-out release; the answer is then an *EventsRefusedError.
func (c *Client) finishAfterEvents(ctx context.Context, id string, f ReleaseFinish) (Release, error) {
	evs := f.Events
	f.Events = nil
	_, evErr := c.AddEvents(ctx, id, evs)
	if evErr != nil && !IsRefusal(evErr) {
		return Release{}, fmt.Errorf("finish release %s: %w", id, evErr)
	}
	r, err := c.FinishRelease(ctx, id, f)
	if err != nil {
		return r, err
	}
	if evErr != nil {
		return r, &EventsRefusedError{Release: id, Events: len(evs), Err: evErr}
	}
	return r, nil
}

// EventsRefusedError says that a release server from before finishes carried events recorded the
// outcome of a release but refused the events sent ahead of it.
type EventsRefusedError struct {
	Release string
	Events  int // how many events were not recorded
	Err     error
}

func (e *EventsRefusedError) Error() string {
	return fmt.Sprintf("finish release %s: the outcome was recorded, its last %d event(s) were not: %v", e.Release, e.Events, e.Err)
}

func (e *EventsRefusedError) Unwrap() error { return e.Err }

// ReleaseFilter narrows a list of releases; empty fields match all.
type ReleaseFilter struct {
	Environment string
	Model       string
	Status      Status
	Limit       int
}

// ReleaseList is a page of releases, newest first.
type ReleaseList struct {
	Releases []Release `json:"releases"`
	Older    string    `json:"older,omitempty"`
}

// ListReleases lists the newest releases matching f (a token sees its environment's only).
func (c *Client) ListReleases(ctx context.Context, f ReleaseFilter) (ReleaseList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"environment": f.Environment, "model": f.Model, "status": string(f.Status)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out ReleaseList
	if err := c.do(ctx, http.MethodGet, "/api/v1/releases?"+q.Encode(), nil, &out, 30*time.Second); err != nil {
		return out, fmt.Errorf("list releases: %w", err)
	}
	return out, nil
}

// Decide approves (or rejects) a release waiting at its environment's gate, as the client's user.
func (c *Client) Decide(ctx context.Context, id string, approve bool, reason string) (Release, error) {
	verb := "approve"
	if !approve {
		verb = "reject"
	}
	var r Release
	body := map[string]string{"reason": reason}
	if err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/"+verb, body, &r, 30*time.Second); err != nil {
		return r, fmt.Errorf("%s release %s: %w", verb, id, err)
	}
	return r, nil
}

// Cancel abandons a pending release no agent executes yet.
func (c *Client) Cancel(ctx context.Context, id string) (Release, error) {
	var r Release
	if err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/cancel", struct{}{}, &r, 30*time.Second); err != nil {
		return r, fmt.Errorf("cancel release %s: %w", id, err)
	}
	return r, nil
}

// NextCommand long-polls for the next command for the token's environment. It returns nil, nil
// when none arrived within wait.
func (c *Client) NextCommand(ctx context.Context, wait time.Duration) (*Command, error) {
	q := url.Values{"wait": {wait.String()}}
	var cmd Command
	err := c.do(ctx, http.MethodGet, "/api/v1/agent/commands/next?"+q.Encode(), nil, &cmd, wait+30*time.Second)
	if errors.Is(err, errNoContent) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("poll for commands: %w", err)
	}
	return &cmd, nil
}

// CompleteCommand reports the outcome of a command.
func (c *Client) CompleteCommand(ctx context.Context, id string, res CommandResult) error {
	if err := c.do(ctx, http.MethodPost, "/api/v1/agent/commands/"+url.PathEscape(id)+"/result", res, nil, 30*time.Second); err != nil {
		return fmt.Errorf("report result of command %s: %w", id, err)
	}
	return nil
}

var errNoContent = errors.New("no content")

func (c *Client) do(ctx context.Context, method, path string, in, out any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode == http.StatusNoContent {
		return errNoContent
	}
	if resp.StatusCode/100 != 2 {
		return answerError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// authorize signs a request with the client's token, or as its user.
func (c *Client) authorize(req *http.Request) {
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "":
		req.SetBasicAuth(c.user, c.password)
	}
}

// answerError is the APIError of an error answer, in the server's words when it gave some.
func answerError(status int, data []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return &APIError{StatusCode: status, Message: cmp.Or(msg, http.StatusText(status))}
}

// Principal is who the release server takes the client's credentials for: an integration token
// of one environment, or a user.
type Principal struct {
	Kind        string `json:"kind"` // "token" or "user"
	Name        string `json:"name"`
	Environment string `json:"environment,omitempty"`
	Role        string `json:"role,omitempty"`
	// Environments are the environments the credentials see, as Environments lists them; nil
	// from a server that does not say (ask Environments then).
	Environments []Environment `json:"environments,omitempty"`
}

// Me asks the server whom it takes the client's credentials for.
func (c *Client) Me(ctx context.Context) (Principal, error) {
	var p Principal
	if err := c.do(ctx, http.MethodGet, "/api/v1/me", nil, &p, 30*time.Second); err != nil {
		return Principal{}, fmt.Errorf("ask the release server at %s whom the credentials belong to: %w", c.base, err)
	}
	return p, nil
}

// Environments lists the environments the client's credentials see, in pipeline order (an
// integration token sees only its own).
func (c *Client) Environments(ctx context.Context) ([]Environment, error) {
	var out struct {
		Environments []Environment `json:"environments"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/environments", nil, &out, 30*time.Second); err != nil {
		return nil, fmt.Errorf("list the environments of the release server at %s: %w", c.base, err)
	}
	return out.Environments, nil
}

// IsRefusal reports whether err is the release server answering no — bad or revoked credentials
// (401), a token of another environment or a missing role (403), an unknown environment or a
// broken rule (other 4xx) — as opposed to not answering. A deployer stops on a refusal: going on
// would change an environment the server says this caller may not change.
func IsRefusal(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 && ae.StatusCode != http.StatusRequestTimeout && ae.StatusCode != http.StatusTooManyRequests
}

// IsUnreachable reports whether err means the release server could not give an answer: no
// connection, a timeout, or a fault of its own (5xx, 408, 429).
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return !IsRefusal(err)
	}
	return !errors.Is(err, context.Canceled)
}
