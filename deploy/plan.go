package deploy

import (
	"context"
	"strconv"
)

// Plan actions: what a deploy would do to the endpoint.
const (
	PlanCreate  = "create"  // the endpoint does not exist yet
	PlanUpdate  = "update"  // the endpoint would serve another configuration
	PlanNothing = "nothing" // the endpoint already serves what the deploy asks for
)

// PlanResult is what a deploy would change on an environment's endpoint, computed with reads
// only: `sagedeploy plan` and `deploy --dry-run`.
type PlanResult struct {
	Model       string `json:"model"`
	Environment string `json:"environment"`
	Endpoint    string `json:"endpoint"`
	Region      string `json:"region"`
	// Action is PlanCreate, PlanUpdate or PlanNothing.
	Action string `json:"action"`
	// EndpointStatus is the endpoint's status now ("" when it does not exist).
	EndpointStatus string `json:"endpoint_status,omitempty"`
	// Changes lists every field the deploy sets, changed or not, in a fixed order.
	Changes []Change `json:"changes"`
	// ModelCreated and ConfigCreated say the deploy would create the SageMaker model and the
	// endpoint configuration (else it reuses existing ones).
	ModelCreated  bool `json:"model_created"`
	ConfigCreated bool `json:"endpoint_config_created"`
}

// Change is one field of the endpoint before and after the deploy.
type Change struct {
	Field   string `json:"field"`
	From    string `json:"from"`
	To      string `json:"to"`
	Changed bool   `json:"changed"`
}

// Plan says what Deploy(req) would change, without changing anything: the environment is checked
// as Deploy checks it (pipeline file, release server), the version resolved, the configuration
// named, and the endpoint read.
func (d *Deployer) Plan(ctx context.Context, req DeployRequest) (PlanResult, error) {
	var dr DeployResult
	req, err := d.checkDeploy(req, &dr)
	if err != nil {
		return PlanResult{}, err
	}
	if ctx, err = d.checkEnvironment(ctx, req.Model, req.Environment); err != nil {
		return PlanResult{}, err
	}
	res := PlanResult{Model: req.Model, Environment: req.Environment, Endpoint: dr.Endpoint, Region: d.region}
	// The endpoint first: the plan keeps its instances and settings, as Deploy does.
	snap, err := d.readEndpoint(ctx, dr.Endpoint)
	if err != nil {
		return res, err
	}
	cfg, apply, err := d.prepare(ctx, req, snap, nil)
	if err != nil {
		return res, err
	}
	if apply != nil {
		res.ConfigCreated, res.ModelCreated = d.configMissing(ctx, cfg)
	}
	var cur configInfo
	count := 0
	if snap.exists() {
		res.EndpointStatus = string(snap.status())
		if c, ok := snap.serving(); ok {
			cur, count = c, snap.instances()
		}
	}
	res.Changes = planChanges(cur, count, cfg, req.Strategy, snap.exists())
	res.Action = planAction(snap.exists(), res.Changes)
	return res, nil
}

// configMissing says whether the configuration, and its model, would have to be created.
func (d *Deployer) configMissing(ctx context.Context, cfg configInfo) (config, model bool) {
	if _, err := d.describeConfig(ctx, cfg.Name); err == nil {
		return false, false
	}
	_, err := d.modelVersion(ctx, cfg.ModelName)
	return true, isNotFound(err)
}

func planChanges(cur configInfo, count int, next configInfo, st Strategy, exists bool) []Change {
	ver := func(c configInfo) string {
		if c.Name == "" {
			return ""
		}
		return c.versionString()
	}
	n := func(i int) string {
		if i == 0 {
			return ""
		}
		return strconv.Itoa(i)
	}
	strategy := st.String()
	if !exists {
		strategy = "all at once (a new endpoint)"
	}
	out := []Change{
		{Field: "version", From: ver(cur), To: ver(next)},
		{Field: "model", From: cur.ModelName, To: next.ModelName},
		{Field: "endpoint_config", From: cur.Name, To: next.Name},
		{Field: "instance_type", From: cur.InstanceType, To: next.InstanceType},
		{Field: "instance_count", From: n(count), To: n(next.InstanceCount)},
		{Field: "variant", From: cur.Variant, To: next.Variant},
	}
	for i := range out {
		out[i].Changed = out[i].From != out[i].To
	}
	changed := out[2].Changed
	return append(out, Change{Field: "strategy", To: strategy, Changed: changed})
}

func planAction(exists bool, changes []Change) string {
	switch {
	case !exists:
		return PlanCreate
	case changes[2].Changed: // the configuration decides whether the endpoint is updated
		return PlanUpdate
	}
	return PlanNothing
}
