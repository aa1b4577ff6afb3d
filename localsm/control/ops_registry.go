package control

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
)

// Model approval statuses.
const (
	approvalApproved = "Approved"
	approvalPending  = "PendingManualApproval"
	approvalRejected = "Rejected"
)

// refName strips an ARN of resourceType down to its name part ("abalone", "abalone/3"); plain
// names are returned as they are.
func refName(ref, resourceType string) (string, bool) {
	if !strings.HasPrefix(ref, "arn:") {
		return ref, true
	}
	parts := strings.SplitN(ref, ":", 6)
	if len(parts) < 6 || !strings.HasPrefix(parts[5], resourceType+"/") {
		return "", false
	}
	return strings.TrimPrefix(parts[5], resourceType+"/"), true
}

func (c *Control) findGroupLocked(region, ref string) (*groupRes, error) {
	name, ok := refName(ref, "model-package-group")
	if !ok {
		return nil, errValidation("%s is not a model package group ARN (arn:aws:sagemaker:REGION:ACCOUNT:model-package-group/NAME).", ref)
	}
	g, ok := c.st.groups[scoped(region, name)]
	if !ok {
		return nil, errValidation("ModelPackageGroup %s does not exist.", c.arn(region, "model-package-group", name))
	}
	return g, nil
}

// findPackageLocked resolves a VersionedArnOrName: a versioned package's ARN or GROUP/VERSION,
// or an unversioned package's ARN or name.
func (c *Control) findPackageLocked(region, ref string) (*packageRes, error) {
	name, ok := refName(ref, "model-package")
	if !ok {
		return nil, errValidation("%s is not a model package ARN (arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION).", ref)
	}
	p, ok := c.st.packages[scoped(region, name)]
	if !ok {
		return nil, errValidation("ModelPackage %s does not exist.", c.arn(region, "model-package", name))
	}
	return p, nil
}

func (c *Control) createModelPackageGroup(ctx context.Context, r *request) (any, error) {
	var in struct {
		ModelPackageGroupName        string
		ModelPackageGroupDescription string
		Tags                         []tag
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := scoped(r.region, in.ModelPackageGroupName)
	if g, ok := c.st.groups[key]; ok {
		return nil, errValidation("Model Package Group already exists: %s", g.ARN)
	}
	arn := c.arn(r.region, "model-package-group", in.ModelPackageGroupName)
	g := &groupRes{base: base{ARN: arn, Region: r.region, Tags: in.Tags}, Name: in.ModelPackageGroupName,
		Created: c.now(), Seq: c.nextSeq(), Description: in.ModelPackageGroupDescription}
	if err := c.put(ctx, kindGroup, key, g); err != nil {
		return nil, err
	}
	c.st.groups[key] = g
	return map[string]any{"ModelPackageGroupArn": g.ARN}, nil
}

func groupSummary(g *groupRes) map[string]any {
	out := map[string]any{"ModelPackageGroupName": g.Name, "ModelPackageGroupArn": g.ARN,
		"CreationTime": epoch(g.Created), "ModelPackageGroupStatus": "Completed"}
	if g.Description != "" {
		out["ModelPackageGroupDescription"] = g.Description
	}
	return out
}

func (c *Control) describeModelPackageGroup(ctx context.Context, r *request) (any, error) {
	ref, _ := r.input["ModelPackageGroupName"].(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.findGroupLocked(r.region, ref)
	if err != nil {
		return nil, err
	}
	out := groupSummary(g)
	out["CreatedBy"] = map[string]any{}
	return c.output(r.op, out), nil
}

func (c *Control) listModelPackageGroups(ctx context.Context, r *request) (any, error) {
	q, err := readListQuery(r.input)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	var items []listItem
	for _, g := range c.st.groups {
		if g.Region == r.region && q.keep(g.Name, g.Created) {
			items = append(items, listItem{name: g.Name, created: g.Created, seq: g.Seq, out: groupSummary(g)})
		}
	}
	c.mu.Unlock()
	page, next, err := q.page(r.op, items, "Ascending", 10)
	if err != nil {
		return nil, err
	}
	return withToken(map[string]any{"ModelPackageGroupSummaryList": page}, next), nil
}

func (c *Control) createModelPackage(ctx context.Context, r *request) (any, error) {
	var in struct {
		ModelPackageName      string
		ModelPackageGroupName string
		ModelApprovalStatus   string
		ClientToken           string
		CertifyForMarketplace bool
		Tags                  []tag
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.ClientToken != "" {
		// Idempotent retry: the same token returns the package it created.
		for _, p := range c.st.packages {
			if p.Region == r.region && p.ClientToken == in.ClientToken {
				return map[string]any{"ModelPackageArn": p.ARN}, nil
			}
		}
	}
	input := copyMap(r.input)
	delete(input, "Tags")
	delete(input, "ClientToken")
	p := &packageRes{base: base{Region: r.region, Tags: in.Tags}, Created: c.now(), Seq: c.nextSeq(),
		ClientToken: in.ClientToken, Input: input}
	var group *groupRes
	switch {
	case in.ModelPackageGroupName != "" && in.ModelPackageName != "":
		return nil, errValidation("Both ModelPackageName and ModelPackageGroupName are provided in the input. Cannot determine which one to use.")
	case in.ModelPackageGroupName != "":
		g, err := c.findGroupLocked(r.region, in.ModelPackageGroupName)
		if err != nil {
			return nil, err
		}
		if in.CertifyForMarketplace {
			return nil, errValidation("CertifyForMarketplace does not apply to versioned model packages (model package group %s).", g.Name)
		}
		group = clone(g)
		group.LastVersion++
		p.Group, p.Name, p.Version = g.Name, g.Name, group.LastVersion
		p.ARN = c.arn(r.region, "model-package", g.Name+"/"+strconv.Itoa(p.Version))
		if in.ModelApprovalStatus == "" {
			input["ModelApprovalStatus"] = approvalPending
		}
		input["ModelPackageGroupName"] = g.Name
	case in.ModelPackageName != "":
		if existing, ok := c.st.packages[scoped(r.region, in.ModelPackageName)]; ok {
			return nil, errConflict("Model Package already exists: %s", existing.ARN)
		}
		if in.ModelApprovalStatus != "" {
			return nil, errValidation("ModelApprovalStatus applies to versioned model packages only; create the package in a model package group (ModelPackageGroupName) to approve it.")
		}
		p.Name = in.ModelPackageName
		p.ARN = c.arn(r.region, "model-package", p.Name)
	default:
		return nil, errValidation("Missing ARN: give ModelPackageGroupName to register a version in a model package group, or ModelPackageName for an unversioned package.")
	}
	if err := c.savePackageLocked(ctx, p, group); err != nil {
		return nil, err
	}
	return map[string]any{"ModelPackageArn": p.ARN}, nil
}

// savePackageLocked persists a new package and, for a version, its group's version counter in
// one write, then installs both.
func (c *Control) savePackageLocked(ctx context.Context, p *packageRes, group *groupRes) error {
	d, err := doc(kindPackage, p.key(), p)
	if err != nil {
		return errInternal(err)
	}
	docs := []Document{d}
	if group != nil {
		gd, err := doc(kindGroup, scoped(group.Region, group.Name), group)
		if err != nil {
			return errInternal(err)
		}
		docs = append(docs, gd)
	}
	if err := c.persist(ctx, docs); err != nil {
		return err
	}
	if group != nil {
		c.st.groups[scoped(group.Region, group.Name)] = group
	}
	c.st.packages[p.key()] = p
	return nil
}

func packageSummary(p *packageRes) map[string]any {
	out := map[string]any{"ModelPackageName": p.Name, "ModelPackageArn": p.ARN,
		"CreationTime": epoch(p.Created), "ModelPackageStatus": "Completed"}
	if p.Version > 0 {
		out["ModelPackageGroupName"] = p.Group
		out["ModelPackageVersion"] = p.Version
		out["ModelApprovalStatus"] = p.approval()
	}
	if d, ok := p.Input["ModelPackageDescription"]; ok {
		out["ModelPackageDescription"] = d
	}
	return out
}

func (c *Control) describeModelPackage(ctx context.Context, r *request) (any, error) {
	ref, _ := r.input["ModelPackageName"].(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.findPackageLocked(r.region, ref)
	if err != nil {
		return nil, err
	}
	out := copyMap(p.Input)
	for k, v := range packageSummary(p) {
		out[k] = v
	}
	out["ModelPackageStatusDetails"] = map[string]any{"ValidationStatuses": []any{}, "ImageScanStatuses": []any{}}
	out["CreatedBy"] = map[string]any{}
	if p.Modified != nil {
		out["LastModifiedTime"] = epoch(*p.Modified)
		out["LastModifiedBy"] = map[string]any{}
	}
	return c.output(r.op, out), nil
}

func (c *Control) listModelPackages(ctx context.Context, r *request) (any, error) {
	q, err := readListQuery(r.input)
	if err != nil {
		return nil, err
	}
	approval, _ := r.input["ModelApprovalStatus"].(string)
	pkgType, _ := r.input["ModelPackageType"].(string)
	groupRef, _ := r.input["ModelPackageGroupName"].(string)
	c.mu.Lock()
	group := ""
	if groupRef != "" {
		name, ok := refName(groupRef, "model-package-group")
		if !ok {
			c.mu.Unlock()
			return nil, errValidation("%s is not a model package group ARN.", groupRef)
		}
		group = name
		if pkgType == "" {
			// Naming a group lists its versions.
			pkgType = "Versioned"
		}
	}
	if pkgType == "" {
		pkgType = "Unversioned" // the documented default
	}
	var items []listItem
	for _, p := range c.st.packages {
		switch {
		case p.Region != r.region:
			continue
		case pkgType == "Versioned" && p.Version == 0, pkgType == "Unversioned" && p.Version > 0:
			continue
		case group != "" && p.Group != group:
			continue
		case approval != "" && p.approval() != approval:
			continue
		case !q.keep(p.Name, p.Created):
			continue
		}
		items = append(items, listItem{name: p.Name, created: p.Created, seq: p.Seq, out: packageSummary(p)})
	}
	c.mu.Unlock()
	page, next, err := q.page(r.op, items, "Ascending", 10)
	if err != nil {
		return nil, err
	}
	return withToken(map[string]any{"ModelPackageSummaryList": page}, next), nil
}

func (c *Control) updateModelPackage(ctx context.Context, r *request) (any, error) {
	var in struct {
		ModelPackageArn                        string
		ModelApprovalStatus                    string
		ApprovalDescription                    *string
		CustomerMetadataProperties             map[string]string
		CustomerMetadataPropertiesToRemove     []string
		AdditionalInferenceSpecificationsToAdd []json.RawMessage
	}
	if err := bind(r.input, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, err := c.findPackageLocked(r.region, in.ModelPackageArn)
	if err != nil {
		return nil, err
	}
	p := clone(cur)
	if in.ModelApprovalStatus != "" {
		if p.Version == 0 {
			return nil, errValidation("Model package %s is unversioned; ModelApprovalStatus applies to versioned model packages only.", p.ARN)
		}
		p.Input["ModelApprovalStatus"] = in.ModelApprovalStatus
	}
	if in.ApprovalDescription != nil {
		p.Input["ApprovalDescription"] = *in.ApprovalDescription
	}
	if len(in.CustomerMetadataProperties) > 0 || len(in.CustomerMetadataPropertiesToRemove) > 0 {
		meta, _ := p.Input["CustomerMetadataProperties"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		for k, v := range in.CustomerMetadataProperties {
			meta[k] = v
		}
		for _, k := range in.CustomerMetadataPropertiesToRemove {
			delete(meta, k)
		}
		if len(meta) == 0 {
			delete(p.Input, "CustomerMetadataProperties")
		} else {
			p.Input["CustomerMetadataProperties"] = meta
		}
	}
	if add, ok := r.input["AdditionalInferenceSpecificationsToAdd"].([]any); ok && len(add) > 0 {
		existing, _ := p.Input["AdditionalInferenceSpecifications"].([]any)
		if len(existing)+len(add) > 15 {
			return nil, errValidation("Model package %s would have %d additional inference specifications; at most 15 are allowed.", p.ARN, len(existing)+len(add))
		}
		p.Input["AdditionalInferenceSpecifications"] = append(existing, add...)
	}
	now := c.now()
	p.Modified = &now
	if err := c.put(ctx, kindPackage, p.key(), p); err != nil {
		return nil, err
	}
	c.st.packages[p.key()] = p
	return map[string]any{"ModelPackageArn": p.ARN}, nil
}
