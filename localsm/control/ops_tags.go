package control

import (
	"context"
	"strings"
)

// taggable is a resource found by ARN, copied so that its tags can change: tags is the copy's
// tag list, save persists the copy and installs it.
type taggable struct {
	tags *[]tag
	save func(ctx context.Context) error
}

// taggableLocked finds the resource an ARN names in region. Model, configuration and endpoint
// ARNs match regardless of case (AWS lower-cases those names in ARNs); registry ARNs exactly.
func (c *Control) taggableLocked(region, arn string) (taggable, bool) {
	if t, ok := findTaggable(c, kindModel, c.st.models, region, arn, true); ok {
		return t, true
	}
	if t, ok := findTaggable(c, kindEndpointConfig, c.st.configs, region, arn, true); ok {
		return t, true
	}
	if t, ok := findTaggable(c, kindEndpoint, c.st.endpoints, region, arn, true); ok {
		return t, true
	}
	if t, ok := findTaggable(c, kindGroup, c.st.groups, region, arn, false); ok {
		return t, true
	}
	return findTaggable(c, kindPackage, c.st.packages, region, arn, false)
}

// findTaggable looks for arn among the resources of one kind.
func findTaggable[T any, P interface {
	*T
	resource
}](c *Control, kind string, m map[string]P, region, arn string, fold bool) (taggable, bool) {
	for key, v := range m {
		b := v.meta()
		if b.Region != region || !(b.ARN == arn || fold && strings.EqualFold(b.ARN, arn)) {
			continue
		}
		n := P(clone((*T)(v)))
		return taggable{tags: &n.meta().Tags, save: func(ctx context.Context) error {
			if err := c.put(ctx, kind, key, n); err != nil {
				return err
			}
			m[key] = n
			return nil
		}}, true
	}
	return taggable{}, false
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
	t, ok := c.taggableLocked(r.region, in.ResourceArn)
	if !ok {
		return nil, errNoTaggable(in.ResourceArn)
	}
	tags := t.tags
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
	if err := t.save(ctx); err != nil {
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
	t, ok := c.taggableLocked(r.region, in.ResourceArn)
	if !ok {
		return nil, errNoTaggable(in.ResourceArn)
	}
	tags := t.tags
	kept := (*tags)[:0:0]
	for _, t := range *tags {
		if !contains(in.TagKeys, t.Key) {
			kept = append(kept, t)
		}
	}
	*tags = kept
	if err := t.save(ctx); err != nil {
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
	found, ok := c.taggableLocked(r.region, arn)
	var items []listItem
	if ok {
		for i, t := range *found.tags {
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
