package releases

// Planning a dashboard command: the rules that decide whether a restore, rollback, scale or
// promotion makes sense for a component, and the command and pending release it creates. The
// server looks up what they need (the component, a version, the target environment) and checks
// who may ask; these functions decide.

// MaxInstances bounds a scale command; SageMaker's own quotas are usually far lower.
const MaxInstances = 100

// CommandRequest is what a user asks an agent to do, before it is checked.
type CommandRequest struct {
	Kind        CommandKind
	Environment string // the component's environment; for a promotion, the source
	Model       string
	Version     int    // restore
	Instances   int    // scale
	To          string // promote: the target environment, "" for the next one
	RequestedBy string
	Trigger     Trigger
}

// Check refuses a request that no state of the component could make valid.
func (q CommandRequest) Check() error {
	if q.Environment == "" || q.Model == "" {
		return Errorf(EINVALID, "name the environment and the model of the command")
	}
	switch q.Kind {
	case CommandRestore:
		if q.Version <= 0 {
			return Errorf(EINVALID, "restore of %s in %s needs the version to serve again, e.g. {\"version\": 3}", q.Model, q.Environment)
		}
	case CommandScale:
		if q.Instances <= 0 || q.Instances > MaxInstances {
			return Errorf(EINVALID, "scaling %s in %s needs an instance count from 1 to %d, e.g. {\"instances\": 2}", q.Model, q.Environment, MaxInstances)
		}
	case CommandRollback, CommandPromote:
	default:
		return Errorf(EINVALID, "unknown command %q: use restore, rollback, scale or promote", q.Kind)
	}
	return nil
}

// start is the command and the release that q creates on comp, before its kind fills them in.
func (q CommandRequest) start(comp Component) (Command, Release) {
	cmd := Command{Kind: q.Kind, Environment: comp.Environment, Model: q.Model, RequestedBy: q.RequestedBy}
	rel := Release{Environment: comp.Environment, Model: q.Model, EndpointName: comp.EndpointName, InstanceType: comp.InstanceType,
		InstanceCount: comp.InstanceCount, Trigger: q.Trigger, PreviousVersion: comp.CurrentVersion}
	return cmd, rel
}

func current(comp Component) int {
	if comp.CurrentVersion == nil {
		return 0
	}
	return comp.CurrentVersion.Number
}

// PlanRestore plans serving v, a known version of the model, again on comp.
func PlanRestore(q CommandRequest, comp Component, v Version) (Command, Release, error) {
	cmd, rel := q.start(comp)
	if !comp.RestoreEnabled {
		return cmd, rel, Errorf(ECONFLICT, "restoring versions is disabled for %s in %s (it was deployed with enable_restore_version=false); deploy the version you want instead", q.Model, comp.Environment)
	}
	if v.Number == current(comp) {
		return cmd, rel, Errorf(ECONFLICT, "%s in %s already serves version %d; pick another version to restore", q.Model, comp.Environment, v.Number)
	}
	cmd.Version = v.Number
	rel.Kind, rel.Version = KindRestore, v
	return cmd, rel, nil
}

// PlanRollback plans serving prev, the version comp served before its current one. prevErr is the
// lookup's error: a component with no earlier version has nothing to roll back to.
func PlanRollback(q CommandRequest, comp Component, prev Version, prevErr error) (Command, Release, error) {
	cmd, rel := q.start(comp)
	if !comp.RestoreEnabled {
		return cmd, rel, Errorf(ECONFLICT, "rolling back is disabled for %s in %s (it was deployed with enable_restore_version=false)", q.Model, comp.Environment)
	}
	switch ErrorCode(prevErr) {
	case "":
	case ENOTFOUND:
		return cmd, rel, Errorf(ECONFLICT, "%s", ErrorMessage(prevErr))
	default:
		return cmd, rel, prevErr
	}
	// The server names the version it expects the rollback to serve; the executor may resolve it
	// itself and report what it did.
	cmd.Version = prev.Number
	rel.Kind, rel.Version = KindRollback, prev
	return cmd, rel, nil
}

// PlanScale plans setting comp's instance count to q.Instances.
func PlanScale(q CommandRequest, comp Component) (Command, Release, error) {
	cmd, rel := q.start(comp)
	if !comp.ScaleEnabled {
		return cmd, rel, Errorf(ECONFLICT, "scaling is disabled for %s in %s (it was deployed with enable_scaling_component=false)", q.Model, comp.Environment)
	}
	if q.Instances == comp.InstanceCount {
		return cmd, rel, Errorf(ECONFLICT, "%s in %s already runs %d instance(s)", q.Model, comp.Environment, comp.InstanceCount)
	}
	cmd.Instances = q.Instances
	rel.Kind, rel.InstanceCount = KindScale, q.Instances
	if comp.CurrentVersion != nil {
		rel.Version = *comp.CurrentVersion
	}
	return cmd, rel, nil
}

// PlanPromote plans serving in target what from serves. into is the model's component in target,
// nil when the model was never there. gated says whether the release waits at target's gate.
func PlanPromote(q CommandRequest, from Component, target Environment, into *Component) (cmd Command, rel Release, gated bool, err error) {
	cmd, rel = q.start(from)
	if err := CanPromote(q, from); err != nil {
		return cmd, rel, false, err
	}
	if target.Name == from.Environment {
		return cmd, rel, false, Errorf(EINVALID, "promote %s from %s to a different environment", q.Model, from.Environment)
	}
	var prev *Version
	if into != nil {
		if into.CurrentVersion != nil && into.CurrentVersion.Number == from.CurrentVersion.Number {
			return cmd, rel, false, Errorf(ECONFLICT, "%s in %s already serves version %d, the version %s serves", q.Model, target.Name, into.CurrentVersion.Number, from.Environment)
		}
		prev = into.CurrentVersion
		rel.EndpointName, rel.InstanceType, rel.InstanceCount = into.EndpointName, into.InstanceType, into.InstanceCount
	} else {
		rel.EndpointName = q.Model + "-" + target.Name
	}
	cmd.Environment, cmd.FromEnvironment, cmd.Version = target.Name, from.Environment, from.CurrentVersion.Number
	rel.Environment, rel.Kind, rel.Version, rel.PreviousVersion = target.Name, KindPromote, *from.CurrentVersion, prev
	return cmd, rel, Gated(target, KindPromote), nil
}

// CanPromote refuses promoting from a component that serves nothing yet.
func CanPromote(q CommandRequest, from Component) error {
	if from.CurrentVersion == nil {
		return Errorf(ECONFLICT, "%s in %s serves no version yet, so there is nothing to promote; deploy it there first", q.Model, from.Environment)
	}
	return nil
}
