package control

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// buildDeploymentLocked resolves an endpoint configuration into what the serving layer deploys.
// With retain set (UpdateEndpoint's RetainAllVariantProperties), variants that exist in both keep
// their current desired weight and instance count, except for the properties in exclude.
func (c *Control) buildDeploymentLocked(region, endpoint string, cfg *endpointConfigRes, retain *deployment, exclude map[string]bool, strategy *spec.Strategy) (*deployment, error) {
	dep := &deployment{ConfigName: cfg.Name, Spec: spec.Deployment{Region: region, Endpoint: endpoint, Config: cfg.Name, Strategy: strategy}}
	for _, v := range cfg.Variants {
		m, ok := c.st.models[scoped(region, nameKey(v.ModelName))]
		if !ok {
			return nil, errValidation("Could not find model %q.", c.arn(region, "model", nameKey(v.ModelName)))
		}
		count, weight := 1, v.InitialVariantWeight
		if v.InitialInstanceCount != nil {
			count = *v.InitialInstanceCount
		}
		if retain != nil {
			for _, old := range retain.Variants {
				if strings.EqualFold(old.Name, v.VariantName) {
					if !exclude["DesiredInstanceCount"] {
						count = old.DesiredInstanceCount
					}
					if !exclude["DesiredWeight"] {
						weight = old.DesiredWeight
					}
				}
			}
		}
		var images []string
		for _, ct := range m.Containers {
			images = append(images, ct.Image)
		}
		dep.Spec.Variants = append(dep.Spec.Variants, spec.Variant{Name: v.VariantName, ModelName: m.Name,
			Containers: m.Containers, InstanceType: v.InstanceType, InstanceCount: count, Weight: weight,
			Serverless: v.ServerlessConfig})
		dep.Variants = append(dep.Variants, variantState{Name: v.VariantName, Image: images,
			InstanceType: v.InstanceType, AcceleratorType: v.AcceleratorType,
			DesiredWeight: weight, DesiredInstanceCount: count, ResolutionTime: c.now(), Serverless: v.ServerlessConfig})
	}
	dep.DataCaptureConfig = mapOf(cfg.Input, "DataCaptureConfig")
	dep.AsyncInferenceConfig = mapOf(cfg.Input, "AsyncInferenceConfig")
	dep.ExplainerConfig = mapOf(cfg.Input, "ExplainerConfig")
	var err error
	if dep.Spec.DataCapture, err = dataCaptureOf(cfg.Name, dep.DataCaptureConfig); err != nil {
		return nil, err
	}
	if dep.Spec.Async, err = asyncOf(cfg.Name, dep.AsyncInferenceConfig); err != nil {
		return nil, err
	}
	return dep, nil
}

func (c *Control) findEndpointLocked(region, name string) (*endpointRes, error) {
	e, ok := c.st.endpoints[scoped(region, nameKey(name))]
	if !ok {
		return nil, errValidation("Could not find endpoint %q.", c.arn(region, "endpoint", nameKey(name)))
	}
	return e, nil
}

func (c *Control) createEndpoint(ctx context.Context, r *request) (any, error) {
	var in struct {
		EndpointName       string
		EndpointConfigName string
		Tags               []tag
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	dc, _ := r.input["DeploymentConfig"].(map[string]any)
	if _, err := strategyOf(dc); err != nil {
		return nil, err
	}
	if err := c.checkRollbackAlarms(dc); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errInternal(errClosed)
	}
	key := r.key(in.EndpointName)
	if existing, ok := c.st.endpoints[key]; ok {
		return nil, errValidation("Cannot create already existing endpoint %q.", existing.ARN)
	}
	cfg, err := c.findConfigLocked(r.region, in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	dep, err := c.buildDeploymentLocked(r.region, in.EndpointName, cfg, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := c.checkQuotaLocked(r.region, dep, nil); err != nil {
		return nil, err
	}
	now := c.now()
	arn := c.arn(r.region, "endpoint", nameKey(in.EndpointName))
	e := &endpointRes{base: base{ARN: arn, Region: r.region, Tags: in.Tags}, Name: in.EndpointName,
		Created: now, Modified: now, Seq: c.nextSeq(), Gen: 1, Status: statusCreating, ConfigName: cfg.Name,
		Pending: &pendingDeploy{Deployment: *dep, Start: now}, LastDeploymentConfig: dc}
	if err := c.put(ctx, kindEndpoint, key, e); err != nil {
		return nil, err
	}
	c.st.endpoints[key] = e
	gen := e.Gen
	c.startJobLocked(key, func(ctx context.Context) { c.runCreate(ctx, key, gen, *dep) })
	return map[string]any{"EndpointArn": e.ARN}, nil
}

func (c *Control) updateEndpoint(ctx context.Context, r *request) (any, error) {
	var in struct {
		EndpointName                     string
		EndpointConfigName               string
		RetainAllVariantProperties       bool
		ExcludeRetainedVariantProperties []struct{ VariantPropertyType string }
		RetainDeploymentConfig           bool
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	dc, _ := r.input["DeploymentConfig"].(map[string]any)
	if dc != nil && in.RetainDeploymentConfig {
		return nil, errValidation("Give either DeploymentConfig or RetainDeploymentConfig, not both.")
	}
	if len(in.ExcludeRetainedVariantProperties) > 0 && !in.RetainAllVariantProperties {
		return nil, errValidation("ExcludeRetainedVariantProperties applies only when RetainAllVariantProperties is true.")
	}
	exclude := map[string]bool{}
	for _, p := range in.ExcludeRetainedVariantProperties {
		exclude[p.VariantPropertyType] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errInternal(errClosed)
	}
	cur, err := c.findEndpointLocked(r.region, in.EndpointName)
	if err != nil {
		return nil, err
	}
	switch {
	case inProgress(cur.Status):
		return nil, errValidation("Cannot update in-progress endpoint %q.", cur.ARN)
	case cur.Status == statusFailed:
		return nil, errValidation("Cannot update failed endpoint %q: its creation failed (%s). Delete it and create it again.", cur.ARN, cur.FailureReason)
	}
	cfg, err := c.findConfigLocked(r.region, in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	if in.RetainDeploymentConfig {
		dc = cur.LastDeploymentConfig
	}
	strategy, err := strategyOf(dc)
	if err != nil {
		return nil, err
	}
	if err := c.checkRollbackAlarms(dc); err != nil {
		return nil, err
	}
	var retain *deployment
	if in.RetainAllVariantProperties {
		retain = cur.Current
	}
	dep, err := c.buildDeploymentLocked(r.region, cur.Name, cfg, retain, exclude, strategy)
	if err != nil {
		return nil, err
	}
	if err := c.checkQuotaLocked(r.region, dep, rollingBatch(dc)); err != nil {
		return nil, err
	}
	e := clone(cur)
	before := e.Status
	e.Gen++
	e.Status = statusUpdating
	e.FailureReason = ""
	e.Modified = c.now()
	e.Pending = &pendingDeploy{Deployment: *dep, Start: e.Modified}
	e.LastDeploymentConfig = dc
	key := r.key(e.Name)
	if err := c.put(ctx, kindEndpoint, key, e); err != nil {
		return nil, err
	}
	c.st.endpoints[key] = e
	gen := e.Gen
	c.startJobLocked(key, func(ctx context.Context) { c.runUpdate(ctx, key, gen, *dep, before) })
	return map[string]any{"EndpointArn": e.ARN}, nil
}

// desiredVariant is one entry of UpdateEndpointWeightsAndCapacities.
type desiredVariant struct {
	VariantName          string
	DesiredWeight        *float64
	DesiredInstanceCount *int
}

func (c *Control) updateEndpointWeightsAndCapacities(ctx context.Context, r *request) (any, error) {
	var in struct {
		EndpointName                string
		DesiredWeightsAndCapacities []desiredVariant
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errInternal(errClosed)
	}
	cur, err := c.findEndpointLocked(r.region, in.EndpointName)
	if err != nil {
		return nil, err
	}
	switch {
	case inProgress(cur.Status):
		return nil, errValidation("Cannot update in-progress endpoint %q.", cur.ARN)
	case cur.Status != statusInService || cur.Current == nil:
		return nil, errValidation("Cannot update endpoint %q in status %s; weights and capacities change only on an InService endpoint.", cur.ARN, cur.Status)
	}
	e := clone(cur)
	updates, err := applyDesired(e, in.DesiredWeightsAndCapacities)
	if err != nil {
		return nil, err
	}
	previous := cur.Current
	e.Gen++
	e.Status = statusUpdating
	e.FailureReason = ""
	e.Modified = c.now()
	key := r.key(e.Name)
	if err := c.put(ctx, kindEndpoint, key, e); err != nil {
		return nil, err
	}
	c.st.endpoints[key] = e
	gen, id := e.Gen, e.id()
	c.startJobLocked(key, func(ctx context.Context) { c.runWeights(ctx, key, gen, id, updates, previous) })
	return map[string]any{"EndpointArn": e.ARN}, nil
}

// applyDesired sets the desired weights and counts on e's current variants and returns them as
// the serving layer's updates, refusing what SageMaker refuses.
func applyDesired(e *endpointRes, desired []desiredVariant) ([]spec.VariantUpdate, error) {
	var updates []spec.VariantUpdate
	var missing []string
	seen := map[string]bool{}
	for _, d := range desired {
		if d.DesiredWeight == nil && d.DesiredInstanceCount == nil {
			return nil, errValidation("Variant %s: give DesiredWeight, DesiredInstanceCount or both.", d.VariantName)
		}
		if seen[d.VariantName] {
			return nil, errValidation("Variant %s appears more than once in DesiredWeightsAndCapacities.", d.VariantName)
		}
		seen[d.VariantName] = true
		i := slices.IndexFunc(e.Current.Variants, func(v variantState) bool { return v.Name == d.VariantName })
		if i < 0 {
			missing = append(missing, d.VariantName)
			continue
		}
		v := &e.Current.Variants[i]
		if v.Serverless != nil && d.DesiredInstanceCount != nil {
			return nil, errValidation("Variant %s of endpoint %q is serverless: it has no DesiredInstanceCount to set; deploy a configuration with another ServerlessConfig.MaxConcurrency instead.", d.VariantName, e.ARN)
		}
		if d.DesiredWeight != nil {
			v.DesiredWeight = *d.DesiredWeight
		}
		if d.DesiredInstanceCount != nil {
			v.DesiredInstanceCount = *d.DesiredInstanceCount
		}
		updates = append(updates, spec.VariantUpdate{VariantName: d.VariantName, Weight: d.DesiredWeight, InstanceCount: d.DesiredInstanceCount})
	}
	if len(missing) > 0 {
		return nil, errValidation("The variant(s) %q are not present in endpoint %q (endpoint configuration %s).", missing, e.ARN, e.ConfigName)
	}
	total := 0.0
	for _, v := range e.Current.Variants {
		total += v.DesiredWeight
	}
	if total <= 0 {
		return nil, errValidation("The weights of endpoint %q would all be 0; at least one variant must receive traffic.", e.ARN)
	}
	return updates, nil
}

func (c *Control) deleteEndpoint(ctx context.Context, r *request) (any, error) {
	name, _ := r.input["EndpointName"].(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errInternal(errClosed)
	}
	cur, err := c.findEndpointLocked(r.region, name)
	if err != nil {
		return nil, err
	}
	if cur.Status == statusDeleting {
		return nil, nil // already on its way out
	}
	e := clone(cur)
	e.Gen++
	e.Status = statusDeleting
	e.Modified = c.now()
	key := r.key(e.Name)
	if err := c.put(ctx, kindEndpoint, key, e); err != nil {
		return nil, err
	}
	c.st.endpoints[key] = e
	// A create or update in flight is abandoned; the delete job waits for it to stop.
	c.cancelJobLocked(key)
	gen, id := e.Gen, e.id()
	c.startJobLocked(key, func(ctx context.Context) { c.runDelete(ctx, key, gen, id) })
	return nil, nil
}

func (c *Control) describeEndpoint(ctx context.Context, r *request) (any, error) {
	name, _ := r.input["EndpointName"].(string)
	c.mu.Lock()
	e, err := c.findEndpointLocked(r.region, name)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// Endpoint records are replaced, never changed in place, so e can be read without the lock;
	// the serving layer is asked for live counts without holding it, as it may be busy deploying.
	out := map[string]any{
		"EndpointName":       e.Name,
		"EndpointArn":        e.ARN,
		"EndpointConfigName": e.ConfigName,
		"EndpointStatus":     e.Status,
		"CreationTime":       epoch(e.Created),
		"LastModifiedTime":   epoch(e.Modified),
	}
	if e.FailureReason != "" {
		out["FailureReason"] = e.FailureReason
	}
	if e.LastDeploymentConfig != nil {
		out["LastDeploymentConfig"] = e.LastDeploymentConfig
	}
	if e.Current != nil && e.Status != statusFailed {
		out["ProductionVariants"] = c.variantSummaries(e)
		if dcc := e.Current.DataCaptureConfig; dcc != nil {
			out["DataCaptureConfig"] = dataCaptureSummary(dcc)
		}
		if e.Current.AsyncInferenceConfig != nil {
			out["AsyncInferenceConfig"] = e.Current.AsyncInferenceConfig
		}
		if e.Current.ExplainerConfig != nil {
			out["ExplainerConfig"] = e.Current.ExplainerConfig
		}
	}
	if p := e.Pending; p != nil {
		var variants []any
		// The new fleet is Creating until the serving layer reports a blue/green stage
		// (ActivatingTraffic, Baking), as SageMaker shows a deployment's progress.
		status := []any{map[string]any{"Status": "Creating", "StartTime": epoch(p.Start)}}
		if evs := c.stagesOf(e.Name, p.Deployment.ConfigName); len(evs) > 0 {
			status = status[:0]
			for _, ev := range evs {
				status = append(status, map[string]any{"Status": ev.Status, "StatusMessage": ev.Message, "StartTime": epoch(ev.Time)})
			}
		}
		for _, v := range p.Deployment.Variants {
			pv := map[string]any{"VariantName": v.Name, "DesiredWeight": v.DesiredWeight,
				"DesiredInstanceCount": v.DesiredInstanceCount, "CurrentWeight": 0, "CurrentInstanceCount": 0,
				"DeployedImages": deployedImages(v),
				"VariantStatus":  status}
			if v.InstanceType != "" {
				pv["InstanceType"] = v.InstanceType
			}
			variants = append(variants, pv)
		}
		out["PendingDeploymentSummary"] = map[string]any{"EndpointConfigName": p.Deployment.ConfigName,
			"ProductionVariants": variants, "StartTime": epoch(p.Start)}
	}
	return c.output(r.op, out), nil
}

// variantSummaries reports the serving variants: desired values as last asked for, current ones
// from the serving layer when it serves the endpoint.
func (c *Control) variantSummaries(e *endpointRes) []any {
	live, serving := c.opts.Serving.Variants(e.id())
	var out []any
	for _, v := range e.Current.Variants {
		curW, curN := v.CurrentWeight, v.CurrentInstanceCount
		switch {
		case e.Status == statusOutOfService:
			curW, curN = 0, 0
		case serving:
			for _, l := range live {
				if l.VariantName == v.Name {
					curW, curN = l.Weight, l.CurrentInstanceCount
				}
			}
		}
		summary := map[string]any{"VariantName": v.Name, "DeployedImages": deployedImages(v),
			"CurrentWeight": curW, "DesiredWeight": v.DesiredWeight,
			"CurrentInstanceCount": curN, "DesiredInstanceCount": v.DesiredInstanceCount}
		if s := v.Serverless; s != nil {
			// Serverless variants have no instances to count; they report their configuration.
			delete(summary, "CurrentInstanceCount")
			delete(summary, "DesiredInstanceCount")
			summary["CurrentServerlessConfig"], summary["DesiredServerlessConfig"] = serverlessSummary(s), serverlessSummary(s)
		}
		out = append(out, summary)
	}
	return out
}

func serverlessSummary(s *spec.Serverless) map[string]any {
	out := map[string]any{"MemorySizeInMB": s.MemorySizeInMB, "MaxConcurrency": s.MaxConcurrency}
	if s.ProvisionedConcurrency > 0 {
		out["ProvisionedConcurrency"] = s.ProvisionedConcurrency
	}
	return out
}

func deployedImages(v variantState) []any {
	var out []any
	for _, img := range v.Image {
		// Images are not pulled from a registry here, so the resolved image is the one specified.
		out = append(out, map[string]any{"SpecifiedImage": img, "ResolvedImage": img, "ResolutionTime": epoch(v.ResolutionTime)})
	}
	return out
}

func dataCaptureSummary(dcc map[string]any) map[string]any {
	enabled := true
	if b, ok := dcc["EnableCapture"].(bool); ok {
		enabled = b
	}
	status := "Stopped"
	if enabled {
		status = "Started"
	}
	kms, _ := dcc["KmsKeyId"].(string)
	return map[string]any{"EnableCapture": enabled, "CaptureStatus": status,
		"CurrentSamplingPercentage": dcc["InitialSamplingPercentage"], "DestinationS3Uri": dcc["DestinationS3Uri"], "KmsKeyId": kms}
}

func (c *Control) listEndpoints(ctx context.Context, r *request) (any, error) {
	q, err := readListQuery(r.input)
	if err != nil {
		return nil, err
	}
	statusEquals, _ := r.input["StatusEquals"].(string)
	before, after, err := timeBounds(r.input, "LastModifiedTimeBefore", "LastModifiedTimeAfter")
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	var items []listItem
	for _, e := range c.st.endpoints {
		if e.Region != r.region || !q.keep(e.Name, e.Created) || (statusEquals != "" && e.Status != statusEquals) {
			continue
		}
		if (before != nil && !e.Modified.Before(*before)) || (after != nil && !e.Modified.After(*after)) {
			continue
		}
		items = append(items, listItem{name: e.Name, created: e.Created, seq: e.Seq, status: e.Status,
			out: map[string]any{"EndpointName": e.Name, "EndpointArn": e.ARN, "CreationTime": epoch(e.Created),
				"LastModifiedTime": epoch(e.Modified), "EndpointStatus": e.Status}})
	}
	c.mu.Unlock()
	page, next, err := q.page(r.op, items, "Descending", 10)
	if err != nil {
		return nil, err
	}
	return withToken(map[string]any{"Endpoints": page}, next), nil
}

func timeBounds(in map[string]any, beforeField, afterField string) (before, after *time.Time, err error) {
	for field, dst := range map[string]**time.Time{beforeField: &before, afterField: &after} {
		if v, ok := in[field]; ok {
			t, perr := parseTimestamp(v)
			if perr != nil {
				return nil, nil, errSerialization("%s: %v", field, perr)
			}
			*dst = &t
		}
	}
	return before, after, nil
}
