package control

import (
	"context"
	"strings"
)

// taggable finds the resource an ARN names and returns its tag list and a way to save new tags.
func (c *Control) taggableLocked(arn string) (tags *[]tag, save func(ctx context.Context) error, ok bool) {
	for key, m := range c.st.models {
		if strings.EqualFold(m.ARN, arn) {
			n := clone(m)
			return &n.Tags, func(ctx context.Context) error {
				if err := c.put(ctx, kindModel, key, n); err != nil {
					return err
				}
				c.st.models[key] = n
				return nil
			}, true
		}
	}
	for key, v := range c.st.configs {
		if strings.EqualFold(v.ARN, arn) {
			n := clone(v)
			return &n.Tags, func(ctx context.Context) error {
				if err := c.put(ctx, kindEndpointConfig, key, n); err != nil {
					return err
				}
				c.st.configs[key] = n
				return nil
			}, true
		}
	}
	for key, v := range c.st.endpoints {
		if strings.EqualFold(v.ARN, arn) {
			n := clone(v)
			return &n.Tags, func(ctx context.Context) error {
				if err := c.put(ctx, kindEndpoint, key, n); err != nil {
					return err
				}
				c.st.endpoints[key] = n
				return nil
			}, true
		}
	}
	for key, v := range c.st.groups {
		if v.ARN == arn {
			n := clone(v)
			return &n.Tags, func(ctx context.Context) error {
				if err := c.put(ctx, kindGroup, key, n); err != nil {
					return err
				}
				c.st.groups[key] = n
				return nil
			}, true
		}
	}
	for key, v := range c.st.packages {
		if v.ARN == arn {
			n := clone(v)
			return &n.Tags, func(ctx context.Context) error {
				if err := c.put(ctx, kindPackage, key, n); err != nil {
					return err
				}
				c.st.packages[key] = n
				return nil
			}, true
		}
	}
	return nil, nil, false
}

func errNoTaggable(arn string) error {
	return errValidation("Resource %s does not exist (or is not a model, endpoint configuration, endpoint, model package group or model package).", arn)
}

func (c *Control) addTags(ctx context.Context, r *request) (any, error) {
	var in struct {
		ResourceArn string
		Tags        []tag
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tags, save, ok := c.taggableLocked(in.ResourceArn)
	if !ok {
		return nil, errNoTaggable(in.ResourceArn)
	}
	for _, t := range in.Tags {
		replaced := false
		for i := range *tags {
			if (*tags)[i].Key == t.Key {
				(*tags)[i].Value = t.Value
				replaced = true
			}
		}
		if !replaced {
			*tags = append(*tags, t)
		}
	}
	if len(*tags) > 50 {
		return nil, apiErr(400, "ResourceLimitExceeded", "Resource %s would have %d tags; at most 50 are allowed.", in.ResourceArn, len(*tags))
	}
	if err := save(ctx); err != nil {
		return nil, err
	}
	return map[string]any{"Tags": tagList(in.Tags)}, nil
}

func (c *Control) deleteTags(ctx context.Context, r *request) (any, error) {
	var in struct {
		ResourceArn string
		TagKeys     []string
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tags, save, ok := c.taggableLocked(in.ResourceArn)
	if !ok {
		return nil, errNoTaggable(in.ResourceArn)
	}
	kept := (*tags)[:0:0]
	for _, t := range *tags {
		if !contains(in.TagKeys, t.Key) {
			kept = append(kept, t)
		}
	}
	*tags = kept
	if err := save(ctx); err != nil {
		return nil, err
	}
	return nil, nil
}

func (c *Control) listTags(ctx context.Context, r *request) (any, error) {
	arn, _ := r.input["ResourceArn"].(string)
	q, err := readListQuery(r.input)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	tags, _, ok := c.taggableLocked(arn)
	var items []listItem
	if ok {
		for i, t := range *tags {
			// Tags keep the order they were added in.
			items = append(items, listItem{name: t.Key, seq: int64(i), out: map[string]any{"Key": t.Key, "Value": t.Value}})
		}
	}
	c.mu.Unlock()
	if !ok {
		return nil, errNoTaggable(arn)
	}
	q.SortBy, q.SortOrder = "", ""
	page, next, err := q.page(r.op, items, "Ascending", 50)
	if err != nil {
		return nil, err
	}
	return withToken(map[string]any{"Tags": page}, next), nil
}

func tagList(tags []tag) []any {
	out := make([]any, 0, len(tags))
	for _, t := range tags {
		out = append(out, map[string]any{"Key": t.Key, "Value": t.Value})
	}
	return out
}
