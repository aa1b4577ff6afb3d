package server

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

type apiHandler func(w http.ResponseWriter, r *http.Request, p principal) error

// api authenticates a request and answers errors as {"error": "..."} with their status.
func (s *Server) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

// jsonAPI serves /api/v1: the deployer's and agent's reports, commands, and the JSON views of
// what the dashboard shows. It shares the server's store, auth, audit and notifications.
type jsonAPI struct{ *Server }

func (s jsonAPI) apiNotFound(w http.ResponseWriter, r *http.Request) {
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/api/" {
			w.Header().Set("Allow", m)
			s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "%s %s is not supported; use %s", r.Method, r.URL.Path, m))
			return
		}
	}
	s.writeError(w, r, releases.Errorf(releases.ENOTFOUND, "no API route %s %s; the routes are listed in the README's API section (they start with /api/v1/)", r.Method, r.URL.Path))
}

// ReleaseView is a release as the API answers it: the release with its events, and the command
// that created it, if any.
type ReleaseView struct {
	store.ReleaseRecord
	AwaitingApproval bool                 `json:"awaiting_approval"`
	DurationSeconds  float64              `json:"duration_seconds,omitempty"`
	Command          *store.CommandRecord `json:"command,omitempty"`
}

func (s *Server) releaseView(ctx context.Context, r store.ReleaseRecord, withEvents bool) (ReleaseView, error) {
	v := ReleaseView{ReleaseRecord: r, AwaitingApproval: r.AwaitingApproval(), DurationSeconds: r.Duration(s.st.Now()).Seconds()}
	if !r.Status.Final() {
		// Three heartbeats fit in the no-progress timeout: one lost request is no harm.
		v.HeartbeatSeconds = (s.opts.RunningTimeout / 3).Seconds()
	}
	if withEvents {
		evs, err := s.st.Events(ctx, r.ID, 0)
		if err != nil {
			return v, err
		}
		v.Events = evs
	}
	if r.CommandID != "" {
		c, err := s.st.Command(ctx, r.CommandID)
		if err != nil {
			return v, err
		}
		v.Command = &c
	}
	return v, nil
}

// tokenOnly answers 403 for users on routes only the deployer and agents use.
func tokenOnly(p principal, doing string) error {
	if p.token == nil {
		return releases.Errorf(releases.EFORBIDDEN, "only an integration token can %s (Authorization: Bearer <token>); create one in Settings", doing)
	}
	return nil
}

// releaseForToken reads a release and checks that the principal may see it.
func (s *Server) releaseFor(ctx context.Context, p principal, id string) (store.ReleaseRecord, error) {
	rec, err := s.st.Release(ctx, id)
	if err != nil {
		return rec, err
	}
	if p.token != nil && p.token.Environment != rec.Environment {
		return rec, releases.Errorf(releases.EFORBIDDEN, "release %s belongs to environment %s; this integration token belongs to environment %s", id, rec.Environment, p.token.Environment)
	}
	return rec, nil
}

func (s jsonAPI) apiStartRelease(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := tokenOnly(p, "report releases"); err != nil {
		return err
	}
	var st releases.ReleaseStart
	if err := decodeJSON(r, &st, "the release start"); err != nil {
		return err
	}
	if err := st.Check(); err != nil {
		return err
	}
	if p.token.Environment != st.Environment {
		return releases.Errorf(releases.EFORBIDDEN, "this integration token belongs to environment %s; it cannot report releases of %s to environment %s (use a token of %s)", p.token.Environment, st.Model, st.Environment, st.Environment)
	}
	if st.ID == "" && st.Trigger.User == "" {
		// A deployer that knows no user (no CI user, no login) is known by its token's name.
		st.Trigger.User = p.token.Name
	}
	rec, err := s.st.StartRelease(r.Context(), st)
	if err != nil {
		return err
	}
	s.notify.signal(releaseKey(rec.ID))
	v, err := s.releaseView(r.Context(), rec, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s jsonAPI) apiGetRelease(w http.ResponseWriter, r *http.Request, p principal) error {
	rec, err := s.releaseFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.releaseView(r.Context(), rec, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// eventsBody is one event, or a batch of them as {"events": [...]}: a deployer sends what it
// queued while the server was busy in one request (one commit).
type eventsBody struct {
	releases.Event
	Events []releases.Event `json:"events"`
}

func (s jsonAPI) apiAddEvent(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := tokenOnly(p, "report progress"); err != nil {
		return err
	}
	rec, err := s.releaseFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	var body eventsBody
	if err := decodeJSON(r, &body, "the event"); err != nil {
		return err
	}
	batch := body.Events != nil
	evs := body.Events
	switch {
	case batch && body.Event != (releases.Event{}):
		return releases.Errorf(releases.EINVALID, `send one event, or a batch as {"events": [...]}, not both`)
	case !batch:
		evs = []releases.Event{body.Event}
	case len(evs) == 0 || len(evs) > releases.MaxEventBatch:
		return releases.Errorf(releases.EINVALID, "a batch holds 1 to %d events, not %d", releases.MaxEventBatch, len(evs))
	}
	for i := range evs {
		if strings.TrimSpace(evs[i].Message) == "" {
			return missing("the event", []string{"message"}, `{"phase": "wait", "message": "endpoint abalone-dev is Updating", "endpoint_status": "Updating"}`)
		}
		evs[i].Seq = 0
	}
	out, err := s.st.AddEvents(r.Context(), rec.ID, evs)
	if err != nil {
		return err
	}
	s.notify.signal(releaseKey(rec.ID))
	if batch {
		writeJSON(w, http.StatusCreated, map[string][]releases.Event{"events": out})
	} else {
		writeJSON(w, http.StatusCreated, out[0])
	}
	return nil
}

// apiHeartbeat keeps a running release of a live deployer from timing out.
func (s jsonAPI) apiHeartbeat(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := tokenOnly(p, "report progress"); err != nil {
		return err
	}
	rec, err := s.releaseFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.st.Heartbeat(r.Context(), rec.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]float64{"heartbeat_seconds": (s.opts.RunningTimeout / 3).Seconds()})
	return nil
}

// apiFinishRelease records a release's outcome with the events the deployer had not sent yet
// (ReleaseFinish.Events): one request and one commit at the end of a release instead of two.
func (s jsonAPI) apiFinishRelease(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := tokenOnly(p, "finish releases"); err != nil {
		return err
	}
	rec, err := s.releaseFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	var f releases.ReleaseFinish
	if err := decodeJSON(r, &f, "the release finish"); err != nil {
		return err
	}
	if err := f.Check(); err != nil {
		return err
	}
	wasFinal := rec.Status.Final()
	out, err := s.st.FinishRelease(r.Context(), rec.ID, f)
	if err != nil {
		return err
	}
	if !wasFinal {
		s.metrics.observeRelease(out)
	}
	s.notify.signal(releaseKey(rec.ID))
	v, err := s.releaseView(r.Context(), out, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s jsonAPI) apiListReleases(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	f := store.ReleaseFilter{Environment: q.Get("environment"), Model: q.Get("model"), Status: releases.Status(q.Get("status")),
		Before: q.Get("before"), After: q.Get("after")}
	if c := q.Get("component"); c != "" && f.Model == "" {
		f.Model = c
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			return releases.Errorf(releases.EINVALID, "limit %q is not valid: use a number from 1 to 200", l)
		}
		f.Limit = n
	}
	if p.token != nil {
		f.Environment = cmp.Or(f.Environment, p.token.Environment)
		if err := p.canSee(f.Environment); err != nil {
			return err
		}
	}
	if f.Status != "" && !f.Status.Final() && f.Status != releases.StatusPending && f.Status != releases.StatusRunning {
		return releases.Errorf(releases.EINVALID, "status %q is not valid: use pending, running, succeeded, failed or canceled", f.Status)
	}
	page, err := s.st.ListReleases(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s jsonAPI) apiApprove(w http.ResponseWriter, r *http.Request, p principal) error {
	return s.decide(w, r, p, true)
}

func (s jsonAPI) apiReject(w http.ResponseWriter, r *http.Request, p principal) error {
	return s.decide(w, r, p, false)
}

func (s jsonAPI) decide(w http.ResponseWriter, r *http.Request, p principal, approve bool) error {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeOptionalJSON(r, &body, "the decision"); err != nil {
		return err
	}
	rec, err := s.decideRelease(r, p, r.PathValue("id"), approve, body.Reason)
	if err != nil {
		return err
	}
	v, err := s.releaseView(r.Context(), rec, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// decideRelease approves or rejects a release at its gate, for the API and the dashboard.
func (s *Server) decideRelease(r *http.Request, p principal, id string, approve bool, reason string) (store.ReleaseRecord, error) {
	action := "release.approve"
	if !approve {
		action = "release.reject"
	}
	rec, err := s.st.Release(r.Context(), id)
	if err == nil {
		err = p.needRole(store.RoleDeployer, "approve or reject releases")
	}
	if err == nil {
		if approve {
			rec, err = s.st.Approve(r.Context(), id, p.name())
		} else {
			rec, err = s.st.Reject(r.Context(), id, p.name(), reason)
		}
	}
	outcome := "ok"
	if err != nil {
		outcome = s.publicMessage(r, err)
	}
	s.audit(r, p.name(), action, rec.Environment, rec.Model, id, outcome, decisionDetail(rec, reason))
	if err != nil {
		return rec, err
	}
	s.notify.signal(releaseKey(id))
	s.notify.signal(queueKey(rec.Environment))
	return rec, nil
}

// decisionDetail is what the audit log says about a gate decision: who asked for the release, so
// that requester and approver stand side by side.
func decisionDetail(rec store.ReleaseRecord, reason string) string {
	d := "requested by " + cmp.Or(rec.Requester(), "(nobody named)")
	if reason != "" {
		d += "; " + reason
	}
	return d
}

func (s jsonAPI) apiCancel(w http.ResponseWriter, r *http.Request, p principal) error {
	rec, err := s.cancelRelease(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.releaseView(r.Context(), rec, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) cancelRelease(r *http.Request, p principal, id string) (store.ReleaseRecord, error) {
	rec, err := s.releaseFor(r.Context(), p, id)
	if err == nil {
		err = p.canCommand(rec.Environment, "cancel releases")
	}
	if err == nil {
		rec, err = s.st.Cancel(r.Context(), id, p.name())
	}
	outcome := "ok"
	if err != nil {
		outcome = s.publicMessage(r, err)
	}
	s.audit(r, p.name(), "release.cancel", rec.Environment, rec.Model, id, outcome, "")
	if err == nil {
		s.notify.signal(releaseKey(id))
	}
	return rec, err
}

func (s jsonAPI) apiNextCommand(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := tokenOnly(p, "take commands"); err != nil {
		return err
	}
	wait := 30 * time.Second
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return releases.Errorf(releases.EINVALID, "wait %q is not a duration: use e.g. 30s", v)
		}
		wait = d
	}
	wait = min(wait, s.opts.MaxPollWait)
	env := p.token.Environment
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	tick := time.NewTicker(s.opts.StreamPoll)
	defer tick.Stop()
	for {
		s.agents.saw(env, time.Now())
		woken := s.notify.wait(queueKey(env))
		revoked := s.notify.wait(tokenKey(p.token.ID))
		// The claim re-checks the token: a revocation while this poll waited ends it at once.
		cmd, err := s.st.ClaimCommandAs(r.Context(), env, p.token.ID)
		if err != nil {
			return err
		}
		if cmd != nil {
			if cmd.QueuedAt != nil {
				s.metrics.observeCommand(cmd.Kind, "pickup", s.st.Now().Sub(*cmd.QueuedAt))
			}
			s.notify.signal(releaseKey(cmd.ReleaseID))
			s.log.Info("command dispatched", "command", cmd.ID, "kind", cmd.Kind, "environment", env, "model", cmd.Model, "release", cmd.ReleaseID)
			writeJSON(w, http.StatusOK, cmd.Command)
			return nil
		}
		select {
		case <-woken:
		case <-revoked:
		case <-tick.C:
		case <-ctx.Done():
			w.WriteHeader(http.StatusNoContent)
			return nil
		case <-s.ctx.Done():
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
}

func (s jsonAPI) apiCommandResult(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := tokenOnly(p, "report command results"); err != nil {
		return err
	}
	var res releases.CommandResult
	if err := decodeJSON(r, &res, "the command result"); err != nil {
		return err
	}
	if res.Status == "" {
		return missing("the command result", []string{"status"}, `{"status": "succeeded"}`)
	}
	if !res.Status.Final() {
		return releases.Errorf(releases.EINVALID, "status %q does not end a command: use succeeded or failed", res.Status)
	}
	id := r.PathValue("id")
	before, _ := s.st.Command(r.Context(), id)
	c, err := s.st.CompleteCommand(r.Context(), id, p.token.Environment, res)
	if err != nil {
		return err
	}
	if before.FinishedAt == nil {
		s.metrics.observeCommand(c.Kind, "complete", s.st.Now().Sub(c.CreatedAt))
		if rel, err := s.st.Release(r.Context(), c.ReleaseID); err == nil && rel.FinishedAt != nil && s.st.Now().Sub(*rel.FinishedAt) < time.Second {
			s.metrics.observeRelease(rel)
		}
	}
	s.log.Info("command completed", "command", c.ID, "kind", c.Kind, "environment", c.Environment, "state", c.State)
	s.notify.signal(releaseKey(c.ReleaseID))
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s jsonAPI) apiListCommands(w http.ResponseWriter, r *http.Request, p principal) error {
	env := r.URL.Query().Get("environment")
	if p.token != nil {
		if env == "" {
			env = p.token.Environment
		}
		if err := p.canSee(env); err != nil {
			return err
		}
	}
	list, err := s.st.Commands(r.Context(), env, 100)
	if err != nil {
		return err
	}
	if list == nil {
		list = []store.CommandRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": list})
	return nil
}

func (s jsonAPI) apiGetCommand(w http.ResponseWriter, r *http.Request, p principal) error {
	c, err := s.st.Command(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := p.canSee(c.Environment); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// EnvironmentView is an environment with whether an agent serves it.
type EnvironmentView struct {
	releases.Environment
	AgentLastSeen *time.Time `json:"agent_last_seen,omitempty"`
}

func (s *Server) environmentViews(ctx context.Context, p principal) ([]EnvironmentView, error) {
	envs, err := s.st.Environments(ctx)
	if err != nil {
		return nil, err
	}
	out := []EnvironmentView{}
	for _, e := range envs {
		if p.token != nil && p.token.Environment != e.Name {
			continue
		}
		v := EnvironmentView{Environment: e}
		if t, ok := s.agents.last(e.Name); ok {
			v.AgentLastSeen = &t
		}
		out = append(out, v)
	}
	return out, nil
}

func (s jsonAPI) apiEnvironments(w http.ResponseWriter, r *http.Request, p principal) error {
	envs, err := s.environmentViews(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"environments": envs})
	return nil
}

func (s jsonAPI) apiPutEnvironment(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleAdmin, "manage environments"); err != nil {
		return err
	}
	var e releases.Environment
	if err := decodeJSON(r, &e, "the environment"); err != nil {
		return err
	}
	var miss []string
	if e.Name == "" {
		miss = append(miss, "name")
	}
	if e.Kind == "" {
		miss = append(miss, "kind")
	}
	if err := missing("the environment", miss, `{"name": "prod", "kind": "sagemaker", "region": "eu-west-1", "requires_approval": true, "position": 1}`); err != nil {
		return err
	}
	err := s.st.PutEnvironment(r.Context(), e)
	s.audit(r, p.name(), "environment.save", e.Name, "", e.Name, outcomeOf(s.Server, r, err), fmt.Sprintf("kind=%s region=%s approval=%t self_approval=%t position=%d", e.Kind, e.Region, e.RequiresApproval, e.AllowSelfApproval, e.Position))
	if err != nil {
		return err
	}
	saved, err := s.st.Environment(r.Context(), e.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, saved)
	return nil
}

func outcomeOf(s *Server, r *http.Request, err error) string {
	if err == nil {
		return "ok"
	}
	return s.publicMessage(r, err)
}

func (s jsonAPI) apiComponents(w http.ResponseWriter, r *http.Request, p principal) error {
	list, err := s.st.Components(r.Context())
	if err != nil {
		return err
	}
	env := r.URL.Query().Get("environment")
	if p.token != nil {
		if env == "" {
			env = p.token.Environment
		}
		if err := p.canSee(env); err != nil {
			return err
		}
	}
	out := []store.ComponentView{}
	for _, c := range list {
		if env == "" || c.Environment == env {
			out = append(out, c)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"components": out})
	return nil
}

// ComponentDetail is what the component page shows.
type ComponentDetail struct {
	Component       store.ComponentView   `json:"component"`
	Versions        []store.ServedVersion `json:"versions"`
	Releases        []store.ReleaseRecord `json:"releases"`
	Active          *store.ReleaseRecord  `json:"active_release,omitempty"`
	NextEnvironment string                `json:"next_environment,omitempty"`
	Previous        *store.ServedVersion  `json:"previous_version,omitempty"`
	// Split is the traffic split of the active release while it shifts traffic.
	Split *TrafficSplit `json:"traffic_split,omitempty"`
}

func (s *Server) componentDetail(ctx context.Context, env, model string) (ComponentDetail, error) {
	var d ComponentDetail
	c, err := s.st.Component(ctx, env, model)
	if err != nil {
		return d, err
	}
	d.Component = c
	if d.Versions, err = s.st.ServedVersions(ctx, env, model); err != nil {
		return d, err
	}
	if d.Versions == nil {
		d.Versions = []store.ServedVersion{}
	}
	page, err := s.st.ListReleases(ctx, store.ReleaseFilter{Environment: env, Model: model, Limit: 15})
	if err != nil {
		return d, err
	}
	d.Releases = page.Releases
	if d.Active, err = s.st.ActiveRelease(ctx, env, model); err != nil {
		return d, err
	}
	if d.Split, err = s.activeSplit(ctx, d.Active); err != nil {
		return d, err
	}
	if next, err := s.st.NextEnvironment(ctx, env); err == nil {
		d.NextEnvironment = next.Name
	}
	for _, v := range d.Versions {
		if !v.Current {
			v := v
			d.Previous = &v
			break
		}
	}
	return d, nil
}

func (s jsonAPI) apiComponent(w http.ResponseWriter, r *http.Request, p principal) error {
	env, model := r.PathValue("env"), r.PathValue("model")
	if err := p.canSee(env); err != nil {
		return err
	}
	d, err := s.componentDetail(r.Context(), env, model)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// CommandRequest is the body of POST /api/v1/components/{env}/{model}/{restore|rollback|scale|promote}.
type CommandRequest struct {
	Version   int    `json:"version,omitempty"`   // restore: the version to serve again
	Instances int    `json:"instances,omitempty"` // scale: the instance count
	To        string `json:"to,omitempty"`        // promote: the target environment (default: the next one)
}

func (s jsonAPI) apiCommand(w http.ResponseWriter, r *http.Request, p principal) error {
	kind := releases.CommandKind(r.PathValue("command"))
	switch kind {
	case releases.CommandRestore, releases.CommandRollback, releases.CommandScale, releases.CommandPromote:
	default:
		return releases.Errorf(releases.ENOTFOUND, "unknown command %q: use restore, rollback, scale or promote", kind)
	}
	var body CommandRequest
	if err := decodeOptionalJSON(r, &body, "the "+string(kind)+" command"); err != nil {
		return err
	}
	c, rel, err := s.issueCommand(r, p, releases.CommandRequest{Kind: kind, Environment: r.PathValue("env"), Model: r.PathValue("model"), Version: body.Version, Instances: body.Instances, To: body.To})
	if err != nil {
		return err
	}
	v, err := s.releaseView(r.Context(), rel, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"command": c, "release": v})
	return nil
}

func (s jsonAPI) apiApprovals(w http.ResponseWriter, r *http.Request, p principal) error {
	list, err := s.st.PendingApprovals(r.Context())
	if err != nil {
		return err
	}
	// Each with what its environment serves now and what it would serve once approved.
	out := []approvalView{}
	for _, rel := range list {
		if p.token == nil || p.token.Environment == rel.Environment {
			v, err := s.approvalView(r.Context(), rel)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"releases": out})
	return nil
}

func (s jsonAPI) apiTokens(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleAdmin, "manage tokens"); err != nil {
		return err
	}
	list, err := s.st.Tokens(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []store.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
	return nil
}

// NewToken is the answer to creating a token: the only time the secret is shown.
type NewToken struct {
	store.Token
	Secret string `json:"token"`
}

func (s jsonAPI) apiCreateToken(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleAdmin, "manage tokens"); err != nil {
		return err
	}
	var body struct {
		Environment string `json:"environment"`
		Name        string `json:"name"`
	}
	if err := decodeJSON(r, &body, "the token"); err != nil {
		return err
	}
	if body.Environment == "" {
		return missing("the token", []string{"environment"}, `{"environment": "dev", "name": "ci"}`)
	}
	nt, err := s.createToken(r, p, body.Environment, body.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, nt)
	return nil
}

func (s *Server) createToken(r *http.Request, p principal, env, name string) (NewToken, error) {
	if name == "" {
		name = env + "-" + time.Now().UTC().Format("20060102")
	}
	secret, t, err := CreateToken(r.Context(), s.st, env, name, p.name())
	s.audit(r, p.name(), "token.create", env, "", t.ID, outcomeOf(s, r, err), "name="+name)
	return NewToken{Token: t, Secret: secret}, err
}

func (s jsonAPI) apiRevokeToken(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleAdmin, "manage tokens"); err != nil {
		return err
	}
	t, err := s.revokeToken(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) revokeToken(r *http.Request, p principal, id string) (store.Token, error) {
	t, requeued, err := s.st.RevokeTokenRequeue(r.Context(), id)
	detail := "name=" + t.Name
	if len(requeued) > 0 {
		detail += fmt.Sprintf(" requeued_commands=%d", len(requeued))
	}
	s.audit(r, p.name(), "token.revoke", t.Environment, "", id, outcomeOf(s, r, err), detail)
	if err != nil {
		return t, err
	}
	s.notify.signal(tokenKey(t.ID))
	for _, c := range requeued {
		s.log.Warn("command back in the queue: its agent's token was revoked", "command", c.ID, "environment", c.Environment, "token", t.ID)
		s.notify.signal(releaseKey(c.ReleaseID))
	}
	s.notify.signal(queueKey(t.Environment))
	return t, nil
}

func (s jsonAPI) apiUsers(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleAdmin, "manage users"); err != nil {
		return err
	}
	list, err := s.st.UserList(r.Context()) // with open sessions (users.go)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": list})
	return nil
}

func (s jsonAPI) apiAddUser(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleAdmin, "manage users"); err != nil {
		return err
	}
	var body struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &body, "the user"); err != nil {
		return err
	}
	var miss []string
	if body.Name == "" {
		miss = append(miss, "name")
	}
	if body.Role == "" {
		miss = append(miss, "role")
	}
	if err := missing("the user", miss, `{"name": "carol", "role": "deployer"}`); err != nil {
		return err
	}
	pw, err := s.addUser(r, p, body.Name, body.Role, body.Password)
	if err != nil {
		return err
	}
	out := map[string]string{"name": body.Name, "role": body.Role}
	if body.Password == "" {
		out["password"] = pw
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) addUser(r *http.Request, p principal, name, role, password string) (string, error) {
	var err error
	if !store.ValidRole(role) {
		err = releases.Errorf(releases.EINVALID, "role %q is not valid: use viewer, deployer or admin", role)
	}
	var pw string
	if err == nil {
		pw, err = AddUser(r.Context(), s.st, name, role, password, s.opts.PasswordCost)
	}
	s.audit(r, p.name(), "user.add", "", "", name, outcomeOf(s, r, err), "role="+role)
	return pw, err
}

func (s jsonAPI) apiAudit(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := p.needRole(store.RoleViewer, "read the audit log"); err != nil {
		return err
	}
	var before int64
	if b := r.URL.Query().Get("before"); b != "" {
		v, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return releases.Errorf(releases.EINVALID, "before %q is not an audit entry id", b)
		}
		before = v
	}
	list, err := s.st.Audit(r.Context(), 100, before)
	if err != nil {
		return err
	}
	if list == nil {
		list = []store.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": list})
	return nil
}

// apiMe says whom the server takes the credentials for, with the environments they see: a
// deployer checks both before its first AWS call, in one request.
func (s jsonAPI) apiMe(w http.ResponseWriter, r *http.Request, p principal) error {
	envs, err := s.environmentViews(r.Context(), p)
	if err != nil {
		return err
	}
	if p.token != nil {
		writeJSON(w, http.StatusOK, map[string]any{"kind": "token", "name": p.token.Name, "environment": p.token.Environment, "environments": envs})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "user", "name": p.user.Name, "role": p.user.Role, "environments": envs})
	return nil
}
