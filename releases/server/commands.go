package server

import (
	"fmt"
	"net/http"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// maxInstances bounds a scale command; SageMaker's own quotas are usually far lower.
const maxInstances = 100

type commandRequest struct {
	kind       releases.CommandKind
	env, model string
	version    int
	instances  int
	to         string // promote: target environment
}

// issueCommand validates a dashboard or API command, creates it with the pending release the agent
// will report into, wakes the environment's agents, and audits the attempt either way.
func (s *Server) issueCommand(r *http.Request, p principal, req commandRequest) (store.CommandRecord, store.ReleaseRecord, error) {
	cmd, rel, gate, err := s.planCommand(r, p, req)
	var c store.CommandRecord
	var rec store.ReleaseRecord
	if err == nil {
		c, rec, err = s.st.CreateCommand(r.Context(), cmd, rel, gate)
	}
	detail := ""
	switch req.kind {
	case releases.CommandRestore:
		detail = fmt.Sprintf("version=%d", req.version)
	case releases.CommandScale:
		detail = fmt.Sprintf("instances=%d", req.instances)
	case releases.CommandPromote:
		detail = fmt.Sprintf("from=%s to=%s", req.env, cmd.Environment)
	case releases.CommandRollback:
		detail = fmt.Sprintf("to version=%d", cmd.Version)
	}
	env := cmd.Environment
	if env == "" {
		env = req.env
	}
	s.audit(r, p.name(), "command."+string(req.kind), env, req.model, rec.ID, outcomeOf(s, r, err), detail)
	if err != nil {
		return c, rec, err
	}
	s.log.Info("command queued", "command", c.ID, "kind", c.Kind, "environment", c.Environment, "model", c.Model,
		"release", rec.ID, "by", p.name(), "awaiting_approval", gate)
	s.notify.signal(queueKey(c.Environment))
	return c, rec, nil
}

// planCommand turns a request into the command and its release, checking everything a user could
// get wrong before anything is stored.
func (s *Server) planCommand(r *http.Request, p principal, req commandRequest) (releases.Command, releases.Release, bool, error) {
	ctx := r.Context()
	var cmd releases.Command
	var rel releases.Release
	if req.env == "" || req.model == "" {
		return cmd, rel, false, errorf(http.StatusBadRequest, "name the environment and the model of the command")
	}
	env, err := s.st.Environment(ctx, req.env)
	if err != nil {
		return cmd, rel, false, err
	}
	comp, err := s.st.Component(ctx, req.env, req.model)
	if err != nil {
		return cmd, rel, false, err
	}
	trigger := releases.Trigger{Type: "user", User: p.name()}
	if p.token != nil {
		trigger = releases.Trigger{Type: "pipeline", User: p.name()}
	}
	cmd = releases.Command{Kind: req.kind, Environment: env.Name, Model: req.model, RequestedBy: p.name()}
	rel = releases.Release{Environment: env.Name, Model: req.model, EndpointName: comp.EndpointName, InstanceType: comp.InstanceType,
		InstanceCount: comp.InstanceCount, Trigger: trigger, PreviousVersion: comp.CurrentVersion}
	gate := false
	current := 0
	if comp.CurrentVersion != nil {
		current = comp.CurrentVersion.Number
	}

	switch req.kind {
	case releases.CommandRestore:
		if err := p.canCommand(env.Name, "restore versions"); err != nil {
			return cmd, rel, false, err
		}
		if req.version <= 0 {
			return cmd, rel, false, errorf(http.StatusBadRequest, "restore of %s in %s needs the version to serve again, e.g. {\"version\": 3}", req.model, env.Name)
		}
		if !comp.RestoreEnabled {
			return cmd, rel, false, errorf(http.StatusConflict, "restoring versions is disabled for %s in %s (it was deployed with enable_restore_version=false); deploy the version you want instead", req.model, env.Name)
		}
		if req.version == current {
			return cmd, rel, false, errorf(http.StatusConflict, "%s in %s already serves version %d; pick another version to restore", req.model, env.Name, current)
		}
		v, err := s.st.Version(ctx, req.model, req.version)
		if err != nil {
			return cmd, rel, false, err
		}
		cmd.Version = v.Number
		rel.Kind, rel.Version = releases.KindRestore, v

	case releases.CommandRollback:
		if err := p.canCommand(env.Name, "roll back"); err != nil {
			return cmd, rel, false, err
		}
		if !comp.RestoreEnabled {
			return cmd, rel, false, errorf(http.StatusConflict, "rolling back is disabled for %s in %s (it was deployed with enable_restore_version=false)", req.model, env.Name)
		}
		prev, err := s.st.PreviousVersion(ctx, env.Name, req.model)
		if err != nil {
			return cmd, rel, false, errorf(http.StatusConflict, "%s", err.Error())
		}
		// The server names the version it expects the rollback to serve; the executor may
		// resolve it itself and report what it did.
		cmd.Version = prev.Number
		rel.Kind, rel.Version = releases.KindRestore, prev.Version

	case releases.CommandScale:
		if err := p.canCommand(env.Name, "scale endpoints"); err != nil {
			return cmd, rel, false, err
		}
		if req.instances <= 0 || req.instances > maxInstances {
			return cmd, rel, false, errorf(http.StatusBadRequest, "scaling %s in %s needs an instance count from 1 to %d, e.g. {\"instances\": 2}", req.model, env.Name, maxInstances)
		}
		if !comp.ScaleEnabled {
			return cmd, rel, false, errorf(http.StatusConflict, "scaling is disabled for %s in %s (it was deployed with enable_scaling_component=false)", req.model, env.Name)
		}
		if req.instances == comp.InstanceCount {
			return cmd, rel, false, errorf(http.StatusConflict, "%s in %s already runs %d instance(s)", req.model, env.Name, comp.InstanceCount)
		}
		cmd.Instances = req.instances
		rel.Kind, rel.InstanceCount = releases.KindScale, req.instances
		if comp.CurrentVersion != nil {
			rel.Version = *comp.CurrentVersion
		}

	case releases.CommandPromote:
		if comp.CurrentVersion == nil {
			return cmd, rel, false, errorf(http.StatusConflict, "%s in %s serves no version yet, so there is nothing to promote; deploy it there first", req.model, env.Name)
		}
		var target releases.Environment
		if req.to != "" {
			target, err = s.st.Environment(ctx, req.to)
		} else {
			target, err = s.st.NextEnvironment(ctx, env.Name)
		}
		if err != nil {
			return cmd, rel, false, err
		}
		if target.Name == env.Name {
			return cmd, rel, false, errorf(http.StatusBadRequest, "promote %s from %s to a different environment", req.model, env.Name)
		}
		if err := p.canCommand(target.Name, "promote into "+target.Name); err != nil {
			return cmd, rel, false, err
		}
		var prev *releases.Version
		if tc, err := s.st.Component(ctx, target.Name, req.model); err == nil {
			if tc.CurrentVersion != nil && tc.CurrentVersion.Number == comp.CurrentVersion.Number {
				return cmd, rel, false, errorf(http.StatusConflict, "%s in %s already serves version %d, the version %s serves", req.model, target.Name, tc.CurrentVersion.Number, env.Name)
			}
			prev = tc.CurrentVersion
			rel.EndpointName, rel.InstanceType, rel.InstanceCount = tc.EndpointName, tc.InstanceType, tc.InstanceCount
		} else {
			rel.EndpointName = req.model + "-" + target.Name
		}
		cmd.Environment, cmd.FromEnvironment, cmd.Version = target.Name, env.Name, comp.CurrentVersion.Number
		rel.Environment, rel.Kind, rel.Version, rel.PreviousVersion = target.Name, releases.KindPromote, *comp.CurrentVersion, prev
		gate = target.RequiresApproval

	default:
		return cmd, rel, false, errorf(http.StatusBadRequest, "unknown command %q: use restore, rollback, scale or promote", req.kind)
	}
	return cmd, rel, gate, nil
}
