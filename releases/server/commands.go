package server

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// issueCommand validates a dashboard or API command, creates it with the pending release the agent
// will report into, wakes the environment's agents, and audits the attempt either way.
func (s *Server) issueCommand(r *http.Request, p principal, req releases.CommandRequest) (store.CommandRecord, store.ReleaseRecord, error) {
	req.RequestedBy = p.name()
	req.Trigger = releases.Trigger{Type: releases.TriggerUser, User: p.name()}
	if p.token != nil {
		req.Trigger.Type = releases.TriggerPipeline
	}
	cmd, rel, gate, err := s.planCommand(r, p, req)
	var c store.CommandRecord
	var rec store.ReleaseRecord
	if err == nil {
		c, rec, err = s.st.CreateCommand(r.Context(), cmd, rel, gate)
	}
	s.audit(r, p.name(), "command."+string(req.Kind), cmp.Or(cmd.Environment, req.Environment), req.Model, rec.ID, outcomeOf(s, r, err), commandDetail(req, cmd))
	if err != nil {
		return c, rec, err
	}
	s.log.Info("command queued", "command", c.ID, "kind", c.Kind, "environment", c.Environment, "model", c.Model,
		"release", rec.ID, "by", p.name(), "awaiting_approval", gate)
	s.notify.signal(queueKey(c.Environment))
	return c, rec, nil
}

// commandDetail is what the audit log says about a command beside its kind.
func commandDetail(req releases.CommandRequest, cmd releases.Command) string {
	switch req.Kind {
	case releases.CommandRestore:
		return fmt.Sprintf("version=%d", req.Version)
	case releases.CommandScale:
		return fmt.Sprintf("instances=%d", req.Instances)
	case releases.CommandPromote:
		return fmt.Sprintf("from=%s to=%s", req.Environment, cmd.Environment)
	case releases.CommandRollback:
		return fmt.Sprintf("to version=%d", cmd.Version)
	}
	return ""
}

// commandVerb says what a command on a component does, for the permission check's message.
func commandVerb(k releases.CommandKind) string {
	switch k {
	case releases.CommandRestore:
		return "restore versions"
	case releases.CommandRollback:
		return "roll back"
	case releases.CommandScale:
		return "scale endpoints"
	}
	return ""
}

// planCommand looks up what the rules of package releases need to turn a request into the
// command and its release, and checks that the principal may ask for it; the rules decide.
func (s *Server) planCommand(r *http.Request, p principal, req releases.CommandRequest) (releases.Command, releases.Release, bool, error) {
	ctx := r.Context()
	if req.Environment == "" || req.Model == "" {
		return releases.Command{}, releases.Release{}, false, req.Check()
	}
	env, err := s.st.Environment(ctx, req.Environment)
	if err != nil {
		return releases.Command{}, releases.Release{}, false, err
	}
	comp, err := s.st.Component(ctx, env.Name, req.Model)
	if err != nil {
		return releases.Command{}, releases.Release{}, false, err
	}
	if req.Kind == releases.CommandPromote {
		return s.planPromote(r, p, req, comp.Component)
	}
	if verb := commandVerb(req.Kind); verb != "" {
		if err := p.canCommand(env.Name, verb); err != nil {
			return releases.Command{}, releases.Release{}, false, err
		}
	}
	if err := req.Check(); err != nil {
		return releases.Command{}, releases.Release{}, false, err
	}
	cmd, rel, err := s.planOnComponent(r, req, comp.Component)
	return cmd, rel, false, err
}

// planOnComponent plans a command that changes the component it names: none of them waits at a gate.
func (s *Server) planOnComponent(r *http.Request, req releases.CommandRequest, comp releases.Component) (releases.Command, releases.Release, error) {
	switch req.Kind {
	case releases.CommandRestore:
		v, err := s.st.Version(r.Context(), req.Model, req.Version)
		if err != nil {
			return releases.Command{}, releases.Release{}, err
		}
		return releases.PlanRestore(req, comp, v)
	case releases.CommandRollback:
		prev, err := s.st.PreviousVersion(r.Context(), comp.Environment, req.Model)
		return releases.PlanRollback(req, comp, prev.Version, err)
	}
	return releases.PlanScale(req, comp)
}

// planPromote plans serving in the target environment what comp serves.
func (s *Server) planPromote(r *http.Request, p principal, req releases.CommandRequest, comp releases.Component) (releases.Command, releases.Release, bool, error) {
	ctx := r.Context()
	if err := releases.CanPromote(req, comp); err != nil {
		return releases.Command{}, releases.Release{}, false, err
	}
	var target releases.Environment
	var err error
	if req.To != "" {
		target, err = s.st.Environment(ctx, req.To)
	} else {
		target, err = s.st.NextEnvironment(ctx, comp.Environment)
	}
	if err != nil {
		return releases.Command{}, releases.Release{}, false, err
	}
	if target.Name != comp.Environment {
		if err := p.canCommand(target.Name, "promote into "+target.Name); err != nil {
			return releases.Command{}, releases.Release{}, false, err
		}
	}
	var into *releases.Component
	switch tc, err := s.st.Component(ctx, target.Name, req.Model); {
	case err == nil:
		into = &tc.Component
	case !errors.Is(err, store.ErrNotFound):
		return releases.Command{}, releases.Release{}, false, err
	}
	return releases.PlanPromote(req, comp, target, into)
}
