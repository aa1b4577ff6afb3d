package control

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

func (c *Control) createEndpointConfig(ctx context.Context, r *request) (any, error) {
	var in struct {
		EndpointConfigName string
		ProductionVariants []struct {
			VariantName          string
			ModelName            string
			InstanceType         string
			AcceleratorType      string
			InitialInstanceCount *int
			InitialVariantWeight *float64
			ServerlessConfig     *serverlessConfig
		}
		Tags []tag
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := r.key(in.EndpointConfigName)
	if existing, ok := c.st.configs[key]; ok {
		return nil, errValidation("Cannot create already existing endpoint configuration %q.", existing.ARN)
	}
	input := copyMap(r.input)
	delete(input, "Tags")
	rawVariants, _ := input["ProductionVariants"].([]any)
	seen := map[string]bool{}
	var variants []configVariant
	for i, v := range in.ProductionVariants {
		if seen[strings.ToLower(v.VariantName)] {
			return nil, errValidation("Endpoint configuration %s has more than one production variant named %s; variant names must be unique.", in.EndpointConfigName, v.VariantName)
		}
		seen[strings.ToLower(v.VariantName)] = true
		if _, ok := c.st.models[r.key(v.ModelName)]; !ok {
			return nil, errValidation("Could not find model %q.", c.arn(r.region, "model", nameKey(v.ModelName)))
		}
		serverless := v.ServerlessConfig != nil
		switch {
		case serverless && (v.InstanceType != "" || v.InitialInstanceCount != nil):
			return nil, errValidation("Production variant %s specifies both ServerlessConfig and InstanceType/InitialInstanceCount; choose one.", v.VariantName)
		case !serverless && (v.InstanceType == "" || v.InitialInstanceCount == nil):
			return nil, errValidation("Production variant %s must specify InstanceType and InitialInstanceCount (or ServerlessConfig).", v.VariantName)
		}
		var sls *spec.Serverless
		if serverless {
			var err error
			if sls, err = checkServerless(v.VariantName, *v.ServerlessConfig); err != nil {
				return nil, err
			}
		}
		weight := 1.0
		if v.InitialVariantWeight != nil {
			weight = *v.InitialVariantWeight
		}
		// DescribeEndpointConfig reports the weight AWS defaults to.
		if raw, ok := rawVariants[i].(map[string]any); ok {
			raw = copyMap(raw)
			raw["InitialVariantWeight"] = json.Number(fmtNum(weight))
			rawVariants[i] = raw
		}
		variants = append(variants, configVariant{VariantName: v.VariantName, ModelName: v.ModelName,
			InstanceType: v.InstanceType, AcceleratorType: v.AcceleratorType, InitialInstanceCount: v.InitialInstanceCount,
			InitialVariantWeight: weight, Serverless: serverless, ServerlessConfig: sls})
	}
	if err := checkConfigSettings(in.EndpointConfigName, variants, input); err != nil {
		return nil, err
	}
	total := 0.0
	for _, v := range variants {
		total += v.InitialVariantWeight
	}
	if total <= 0 {
		return nil, errValidation("Endpoint configuration %s gives every production variant a weight of 0; at least one variant must receive traffic.", in.EndpointConfigName)
	}
	arn := c.arn(r.region, "endpoint-config", nameKey(in.EndpointConfigName))
	cfg := &endpointConfigRes{base: base{ARN: arn, Region: r.region, Tags: in.Tags}, Name: in.EndpointConfigName,
		Created: c.now(), Seq: c.nextSeq(), Input: input, Variants: variants}
	if err := c.put(ctx, kindEndpointConfig, key, cfg); err != nil {
		return nil, err
	}
	c.st.configs[key] = cfg
	return map[string]any{"EndpointConfigArn": cfg.ARN}, nil
}

func (c *Control) findConfigLocked(region, name string) (*endpointConfigRes, error) {
	cfg, ok := c.st.configs[scoped(region, nameKey(name))]
	if !ok {
		return nil, errValidation("Could not find endpoint configuration %q.", c.arn(region, "endpoint-config", nameKey(name)))
	}
	return cfg, nil
}

func (c *Control) describeEndpointConfig(ctx context.Context, r *request) (any, error) {
	name, _ := r.input["EndpointConfigName"].(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, err := c.findConfigLocked(r.region, name)
	if err != nil {
		return nil, err
	}
	out := copyMap(cfg.Input)
	out["EndpointConfigName"] = cfg.Name
	out["EndpointConfigArn"] = cfg.ARN
	out["CreationTime"] = epoch(cfg.Created)
	return c.output(r.op, out), nil
}

func (c *Control) deleteEndpointConfig(ctx context.Context, r *request) (any, error) {
	name, _ := r.input["EndpointConfigName"].(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.findConfigLocked(r.region, name); err != nil {
		return nil, err
	}
	// As on AWS, deleting a configuration an endpoint uses is allowed: the endpoint keeps serving
	// the snapshot it was deployed from.
	if err := c.persist(ctx, nil, DocKey{kindEndpointConfig, r.key(name)}); err != nil {
		return nil, err
	}
	delete(c.st.configs, r.key(name))
	return nil, nil
}

func (c *Control) listEndpointConfigs(ctx context.Context, r *request) (any, error) {
	q, err := readListQuery(r.input)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	var items []listItem
	for _, cfg := range c.st.configs {
		if cfg.Region == r.region && q.keep(cfg.Name, cfg.Created) {
			items = append(items, listItem{name: cfg.Name, created: cfg.Created, seq: cfg.Seq,
				out: map[string]any{"EndpointConfigName": cfg.Name, "EndpointConfigArn": cfg.ARN, "CreationTime": epoch(cfg.Created)}})
		}
	}
	c.mu.Unlock()
	page, next, err := q.page(r.op, items, "Descending", 10)
	if err != nil {
		return nil, err
	}
	return withToken(map[string]any{"EndpointConfigs": page}, next), nil
}
