package control

import (
	"slices"
)

// instancesInUseLocked counts, by instance type, the instances the region's endpoints hold: the
// fleet that serves and the one being created or brought in. c.mu is held.
func (c *Control) instancesInUseLocked(region string) map[string]int {
	use := map[string]int{}
	add := func(d *deployment, desired bool) {
		if d == nil {
			return
		}
		for _, v := range d.Variants {
			if v.Serverless != nil || v.InstanceType == "" {
				continue
			}
			if desired {
				use[v.InstanceType] += v.DesiredInstanceCount
			} else {
				use[v.InstanceType] += v.CurrentInstanceCount
			}
		}
	}
	for _, e := range c.st.endpoints {
		if e.Region != region || e.Status == statusFailed || e.Status == statusDeleting {
			continue
		}
		add(e.Current, false)
		if e.Pending != nil {
			add(&e.Pending.Deployment, true)
		}
	}
	return use
}

// checkQuotaLocked refuses a fleet the account's endpoint quota cannot hold beside what the
// region's endpoints run, in SageMaker's words. batch, when positive, is a rolling update's
// largest batch: only that many new instances run at once. c.mu is held.
func (c *Control) checkQuotaLocked(region string, dep *deployment, batch func(count int) int) error {
	if c.opts.EndpointQuota == nil {
		return nil
	}
	delta := map[string]int{}
	for _, v := range dep.Variants {
		if v.Serverless != nil || v.InstanceType == "" {
			continue
		}
		n := v.DesiredInstanceCount
		if batch != nil {
			n = min(n, batch(n))
		}
		delta[v.InstanceType] += n
	}
	use := c.instancesInUseLocked(region)
	types := make([]string, 0, len(delta))
	for t := range delta {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		if q := c.opts.EndpointQuota(t); float64(use[t]+delta[t]) > q {
			return apiErr(400, "ResourceLimitExceeded", "The account-level service limit '%s for endpoint usage' is %d Instances, with current utilization of %d Instances and a request delta of %d Instances. Please use AWS Service Quotas to request an increase for this quota.",
				t, int(q), use[t], delta[t])
		}
	}
	return nil
}

// rollingBatch is the largest batch of a RollingUpdatePolicy in a DeploymentConfig, as a function of
// the fleet size; nil when the update is not rolling.
func rollingBatch(dc map[string]any) func(count int) int {
	p, _ := dc["RollingUpdatePolicy"].(map[string]any)
	b, _ := p["MaximumBatchSize"].(map[string]any)
	if b == nil {
		return nil
	}
	value, _ := b["Value"].(float64)
	if t, _ := b["Type"].(string); t == "CAPACITY_PERCENT" {
		return func(count int) int { return max(1, (count*int(value)+99)/100) }
	}
	return func(int) int { return max(1, int(value)) }
}
