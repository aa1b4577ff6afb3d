package control

import (
	"context"
	"maps"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

type containerIn struct {
	Image            string            `json:"Image"`
	ModelDataUrl     string            `json:"ModelDataUrl"`
	Environment      map[string]string `json:"Environment"`
	ModelPackageName string            `json:"ModelPackageName"`
}

func (c *Control) createModel(ctx context.Context, r *request) (any, error) {
	var in struct {
		ModelName        string
		PrimaryContainer *containerIn
		Containers       []containerIn
		Tags             []tag
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	arn := c.arn(r.region, "model", nameKey(in.ModelName))
	key := r.key(in.ModelName)
	if existing, ok := c.st.models[key]; ok {
		return nil, errValidation("Cannot create already existing model %q.", existing.ARN)
	}
	var containers []containerIn
	switch {
	case in.PrimaryContainer != nil && len(in.Containers) > 0:
		return nil, errValidation("Model %s specifies both PrimaryContainer and Containers; give PrimaryContainer for a single container, or Containers for an inference pipeline.", in.ModelName)
	case in.PrimaryContainer != nil:
		containers = []containerIn{*in.PrimaryContainer}
	case len(in.Containers) > 0:
		containers = in.Containers
	default:
		return nil, errValidation("Model %s needs a container: give PrimaryContainer (Image and ModelDataUrl, or ModelPackageName).", in.ModelName)
	}
	var resolved []spec.Container
	for i, ct := range containers {
		if ct.ModelPackageName != "" {
			pkgContainers, err := c.resolvePackageLocked(r.region, ct)
			if err != nil {
				return nil, err
			}
			resolved = append(resolved, pkgContainers...)
			continue
		}
		if ct.Image == "" {
			return nil, errValidation("Container %d of model %s has neither Image nor ModelPackageName; give the inference image URI (and ModelDataUrl), or a model package.", i+1, in.ModelName)
		}
		resolved = append(resolved, spec.Container{Image: ct.Image, ModelDataURL: ct.ModelDataUrl, Environment: ct.Environment})
	}
	input := copyMap(r.input)
	delete(input, "Tags")
	m := &modelRes{base: base{ARN: arn, Region: r.region, Tags: in.Tags}, Name: in.ModelName,
		Created: c.now(), Seq: c.nextSeq(), Input: input, Containers: resolved}
	if err := c.put(ctx, kindModel, key, m); err != nil {
		return nil, err
	}
	c.st.models[key] = m
	return map[string]any{"ModelArn": arn}, nil
}

// resolvePackageLocked turns a container that names a model package into the package's
// containers: the image and artifact the serving layer needs. Only an Approved version can be
// deployed, as the registry's approval gate intends.
func (c *Control) resolvePackageLocked(region string, ct containerIn) ([]spec.Container, error) {
	p, err := c.findPackageLocked(region, ct.ModelPackageName)
	if err != nil {
		return nil, err
	}
	if p.Version > 0 && p.approval() != approvalApproved {
		return nil, errValidation("Model package %s has ModelApprovalStatus %s; only an Approved model package version can be deployed. Approve it with UpdateModelPackage first.", p.ARN, p.approval())
	}
	var spec_ struct {
		InferenceSpecification *struct {
			Containers []containerIn
		}
	}
	if err := bind(p.Input, &spec_); err != nil {
		return nil, err
	}
	if spec_.InferenceSpecification == nil || len(spec_.InferenceSpecification.Containers) == 0 {
		return nil, errValidation("Model package %s has no InferenceSpecification, so it cannot be deployed.", p.ARN)
	}
	var out []spec.Container
	for _, pc := range spec_.InferenceSpecification.Containers {
		env := maps.Clone(pc.Environment)
		if len(ct.Environment) > 0 {
			if env == nil {
				env = map[string]string{}
			}
			maps.Copy(env, ct.Environment)
		}
		out = append(out, spec.Container{Image: pc.Image, ModelDataURL: pc.ModelDataUrl, Environment: env, ModelPackageName: p.ARN})
	}
	return out, nil
}

func (c *Control) describeModel(ctx context.Context, r *request) (any, error) {
	name, _ := r.input["ModelName"].(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.st.models[r.key(name)]
	if !ok {
		return nil, errValidation("Could not find model %q.", c.arn(r.region, "model", nameKey(name)))
	}
	out := copyMap(m.Input)
	out["ModelName"] = m.Name
	out["ModelArn"] = m.ARN
	out["CreationTime"] = epoch(m.Created)
	return c.output(r.op, out), nil
}

func (c *Control) deleteModel(ctx context.Context, r *request) (any, error) {
	name, _ := r.input["ModelName"].(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	key := r.key(name)
	if _, ok := c.st.models[key]; !ok {
		return nil, errValidation("Could not find model %q.", c.arn(r.region, "model", nameKey(name)))
	}
	if err := c.persist(ctx, nil, DocKey{kindModel, key}); err != nil {
		return nil, err
	}
	delete(c.st.models, key)
	return nil, nil
}

func (c *Control) listModels(ctx context.Context, r *request) (any, error) {
	q, err := readListQuery(r.input)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	var items []listItem
	for _, m := range c.st.models {
		if m.Region != r.region || !q.keep(m.Name, m.Created) {
			continue
		}
		items = append(items, listItem{name: m.Name, created: m.Created, seq: m.Seq,
			out: map[string]any{"ModelName": m.Name, "ModelArn": m.ARN, "CreationTime": epoch(m.Created)}})
	}
	c.mu.Unlock()
	page, next, err := q.page(r.op, items, "Descending", 10)
	if err != nil {
		return nil, err
	}
	return withToken(map[string]any{"Models": page}, next), nil
}

// withToken adds NextToken to a list response when there is a next page.
func withToken(out map[string]any, next string) map[string]any {
	if next != "" {
		out["NextToken"] = next
	}
	return out
}
