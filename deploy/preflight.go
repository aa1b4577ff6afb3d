package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Preflight: the checks a deploy runs, reading only, before its first write — so that what
// cannot succeed (a missing artifact, no room for a blue/green fleet, a rollback alarm that does
// not exist) is refused with nothing changed, instead of failing half-way on SageMaker.

// ErrPreflight: a preflight check failed; nothing was changed.
var ErrPreflight = errors.New("preflight failed")

// Check results.
const (
	CheckPassed  = "passed"
	CheckFailed  = "failed"
	CheckSkipped = "skipped"
)

// Check is one named preflight check and its result.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// preflightInput is what the checks look at: the configuration about to serve, the endpoint as
// it is, and the strategy that moves traffic.
type preflightInput struct {
	cfg      configInfo
	snap     *endpointSnapshot
	strategy Strategy
	endpoint string
	// gated: the release waits for an approval first, so the capacity check also counts the
	// account's other endpoints (nobody should approve what cannot fit).
	gated bool
	// capacity holds the capacity check's reads the deploy started ahead; the check starts the
	// others.
	capacity capacityReads
}

// preflight runs every check, reports each as an event, and fails with the first failed
// check's reason (naming every failed check). The checks only read, each from its own service
// (S3, Service Quotas and SageMaker, CloudWatch), so they run side by side: preflight takes as long
// as its slowest check, not the sum of them.
func (d *Deployer) preflight(ctx context.Context, in preflightInput, sink func(Event)) ([]Check, error) {
	run := []func() Check{
		func() Check { return d.checkVersion(in) },
		func() Check { return d.checkArtifact(ctx, in) },
		func() Check { return d.checkImage(in) },
		func() Check { return d.checkCapacity(ctx, in) },
		func() Check { return d.checkVariant(in) },
		func() Check { return d.checkAlarms(ctx, in) },
	}
	checks := make([]Check, len(run))
	var wg sync.WaitGroup
	for i, check := range run {
		wg.Go(func() { checks[i] = check() })
	}
	wg.Wait()
	var failed []string
	for _, c := range checks {
		d.emit(Event{Phase: releases.PhasePreflight, Endpoint: in.endpoint, Message: fmt.Sprintf("preflight %s: %s — %s", c.Name, c.Status, c.Detail)}, sink)
		if c.Status == CheckFailed {
			failed = append(failed, c.Name+": "+c.Detail)
		}
	}
	if len(failed) > 0 {
		return checks, errorf(ErrPreflight, "preflight failed for %s, nothing was changed: %s", in.endpoint, strings.Join(failed, "; "))
	}
	return checks, nil
}

// checkVersion: the registry says the version may serve.
func (d *Deployer) checkVersion(in preflightInput) Check {
	c := Check{Name: "version"}
	v := in.cfg.Version
	switch {
	case v.ApprovalStatus == "":
		c.Status, c.Detail = CheckSkipped, fmt.Sprintf("model %s is not from the model registry, so it has no approval status", in.cfg.ModelName)
	case v.ApprovalStatus != string(types.ModelApprovalStatusApproved):
		c.Status, c.Detail = CheckFailed, fmt.Sprintf("%s of %s is %s, not Approved: approve it in the model registry first", v.String(), v.Model, v.ApprovalStatus)
	default:
		c.Status, c.Detail = CheckPassed, fmt.Sprintf("%s of %s is Approved", v.String(), v.Model)
	}
	return c
}

// checkArtifact: the model artifact is in S3, where SageMaker will fetch it.
func (d *Deployer) checkArtifact(ctx context.Context, in preflightInput) Check {
	c := Check{Name: "artifact"}
	loc := in.cfg.Version.ModelDataURL
	bucket, key, ok := splitS3(loc)
	if !ok {
		c.Status, c.Detail = CheckSkipped, "the version names no S3 artifact (its container brings the model)"
		return c
	}
	_, err := d.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	switch {
	case err == nil:
		c.Status, c.Detail = CheckPassed, loc+" exists"
	case isNotFound(err) || httpStatus(err) == 404:
		c.Status, c.Detail = CheckFailed, fmt.Sprintf("artifact %s of %s is missing: register the version again (`sagedeploy register --bucket BUCKET ...`) or restore the object", loc, in.cfg.Version.String())
	case httpStatus(err) == 403:
		// SageMaker reads the artifact with the execution role, which may see what the deployer cannot.
		c.Status, c.Detail = CheckSkipped, fmt.Sprintf("cannot see artifact %s (access denied): grant the deployer s3:GetObject on it to have it checked", loc)
	default:
		c.Status, c.Detail = CheckFailed, fmt.Sprintf("cannot read artifact %s: %v", loc, err)
	}
	return c
}

func splitS3(loc string) (bucket, key string, ok bool) {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "s3" || u.Host == "" || len(u.Path) < 2 {
		return "", "", false
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), true
}

var ecrHost = regexp.MustCompile(`^\d{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/`)

// checkImage: an ECR image is pulled from the endpoint's region; one of another region does not
// resolve there.
func (d *Deployer) checkImage(in preflightInput) Check {
	c := Check{Name: "image"}
	img := in.cfg.Version.Image
	m := ecrHost.FindStringSubmatch(img)
	switch {
	case img == "":
		c.Status, c.Detail = CheckSkipped, "the version names no image; the model's own container is used"
	case m == nil:
		c.Status, c.Detail = CheckPassed, img+" is not an ECR image; SageMaker pulls it as named"
	case m[2] != d.region:
		c.Status, c.Detail = CheckFailed, fmt.Sprintf("image %s is in ECR of %s, but the endpoint is in %s: register the version with the image of %s", img, m[2], d.region, d.region)
	default:
		c.Status, c.Detail = CheckPassed, fmt.Sprintf("%s resolves in %s", img, d.region)
	}
	return c
}

// checkVariant: a blue/green update keeps the variant name, or autoscaling, alarms and
// dashboards that name the old variant silently stop applying.
func (d *Deployer) checkVariant(in preflightInput) Check {
	c := Check{Name: "variant"}
	cur, ok := in.snap.serving()
	switch {
	case !ok:
		c.Status, c.Detail = CheckSkipped, "no endpoint serves yet"
	case cur.Variant != "" && in.cfg.Variant != "" && cur.Variant != in.cfg.Variant:
		c.Status, c.Detail = CheckFailed, fmt.Sprintf("endpoint %s serves variant %s but %s names variant %s: autoscaling and alarms on %s would stop applying; use a configuration with variant %s", in.endpoint, cur.Variant, in.cfg.Name, in.cfg.Variant, cur.Variant, cur.Variant)
	default:
		c.Status, c.Detail = CheckPassed, "variant "+cur.Variant+" stays"
	}
	return c
}

// checkAlarms: every rollback alarm exists, and the deployer may read them — SageMaker ignores
// an alarm it cannot find, so a typo would turn the guardrail off without a word.
func (d *Deployer) checkAlarms(ctx context.Context, in preflightInput) Check {
	c := Check{Name: "alarms"}
	want := in.strategy.RollbackAlarms
	if len(want) == 0 {
		c.Status, c.Detail = CheckSkipped, "no rollback alarms asked for"
		return c
	}
	found := map[string]bool{}
	p := cloudwatch.NewDescribeAlarmsPaginator(d.cw, &cloudwatch.DescribeAlarmsInput{AlarmNames: want})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			c.Status, c.Detail = CheckFailed, fmt.Sprintf("cannot describe CloudWatch alarms %s: %v (the role needs cloudwatch:DescribeAlarms)", strings.Join(want, ", "), err)
			return c
		}
		for _, a := range page.MetricAlarms {
			found[aws.ToString(a.AlarmName)] = true
		}
		for _, a := range page.CompositeAlarms {
			found[aws.ToString(a.AlarmName)] = true
		}
	}
	var missing []string
	for _, a := range want {
		if !found[a] {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		c.Status, c.Detail = CheckFailed, fmt.Sprintf("CloudWatch alarm %s does not exist in %s: create it (aws cloudwatch put-metric-alarm) or fix --rollback-alarm", strings.Join(missing, ", "), d.region)
		return c
	}
	c.Status, c.Detail = CheckPassed, "alarms "+strings.Join(want, ", ")+" exist"
	return c
}

// checkCapacity: the account's endpoint quota for the instance type must hold the new fleet
// beside what runs now (a blue/green update runs both fleets until traffic has moved). It counts
// the endpoint's own fleet (read already) everywhere, which catches a quota of 0 and a fleet that
// cannot double; the account's other endpoints (a list, and two reads per endpoint) only before an
// approval gate. Elsewhere SageMaker counts them itself when the endpoint is created or updated,
// refusing with ResourceLimitExceeded and changing nothing, at no extra call.
func (d *Deployer) checkCapacity(ctx context.Context, in preflightInput) Check {
	c := Check{Name: "capacity"}
	itype, count := in.cfg.InstanceType, in.cfg.InstanceCount
	if itype == "" || count <= 0 {
		c.Status, c.Detail = CheckSkipped, "the configuration runs no instances of its own (serverless)"
		return c
	}
	reads := in.capacity
	if reads.quotas == nil {
		reads.quotas = d.readQuotas(ctx)
	}
	if in.gated && reads.others == nil {
		reads.others = d.readOthers(ctx, in.endpoint)
	}
	quota, ok, err := reads.quotas.quota(ctx, itype)
	switch {
	case err != nil:
		c.Status, c.Detail = CheckSkipped, fmt.Sprintf("could not read the %s endpoint quota (%v); the role needs servicequotas:ListServiceQuotas", itype, err)
		return c
	case !ok:
		c.Status, c.Detail = CheckSkipped, fmt.Sprintf("Service Quotas lists no endpoint quota for %s", itype)
		return c
	}
	running, counted := 0, "this endpoint's instances"
	if cur, serving := in.snap.serving(); serving && cur.InstanceType == itype {
		running = in.snap.instances()
	}
	extra, how := count, "blue/green runs both fleets until traffic has moved"
	if _, serving := in.snap.serving(); serving && in.strategy.Type == Rolling {
		// A rolling update replaces the fleet in place: one batch more at a time.
		extra, how = max(1, (count*in.strategy.Percent+99)/100), "a rolling update adds one batch at a time"
	}
	if in.gated {
		others, basis, err := d.otherInstances(ctx, reads.others, itype, quota-float64(running+extra))
		switch {
		case err != nil:
			counted = fmt.Sprintf("this endpoint's instances; the others could not be counted: %v", err)
		case others < 0:
			counted = fmt.Sprintf("this endpoint's instances; the account has over %d other endpoints, too many to read one by one: SageMaker counts them when it creates the fleet", maxCapacityScan)
		default:
			running += others
			counted = basis
		}
	}
	need := running + extra
	what := fmt.Sprintf("%d %s running + %d new = %d, quota %d", running, itype, extra, need, int(quota))
	if float64(need) > quota {
		c.Status, c.Detail = CheckFailed, fmt.Sprintf("not enough %s quota for the new fleet: %s (%s); ask AWS for a higher \"%s for endpoint usage\" quota, scale other endpoints down, use --rolling, or another --instance-type", itype, what, how, itype)
		return c
	}
	c.Status, c.Detail = CheckPassed, what+" (counting "+counted+")"
	return c
}

// maxCapacityScan bounds the other endpoints the capacity check reads before a gate.
const maxCapacityScan = 50

// capacityReads are what the capacity check reads — the endpoint quotas and, before a gate, the
// account's other endpoints — started as soon as the deploy knows it will need them, so that they
// overlap its reads of the endpoint, the configuration and the version instead of following them.
type capacityReads struct {
	quotas *quotaReads
	others *readAhead[otherEndpoints] // nil unless gated
}

// quotaReads pages through the account's SageMaker quotas ahead of the check, and stops after
// the page that holds the quota of the instance type the check asked for.
type quotaReads struct {
	want  atomic.Pointer[string]
	pages *readAhead[map[string]float64] // endpoint quota by instance type
}

// readQuotas starts reading the endpoint quotas.
func (d *Deployer) readQuotas(ctx context.Context) *quotaReads {
	q := &quotaReads{}
	q.pages = ahead(func() (map[string]float64, error) { return d.endpointQuotas(ctx, &q.want) })
	return q
}

// expect names the instance type whose quota the check will ask for, as soon as it is known.
func (q *quotaReads) expect(itype string) {
	if q != nil && itype != "" {
		q.want.Store(&itype)
	}
}

// quota is the endpoint quota of itype; ok is false when Service Quotas lists none.
func (q *quotaReads) quota(ctx context.Context, itype string) (float64, bool, error) {
	q.expect(itype)
	quotas, err := q.pages.wait(ctx)
	v, ok := quotas[itype]
	return v, ok, err
}

// readOthers starts reading the endpoints other than own.
func (d *Deployer) readOthers(ctx context.Context, own string) *readAhead[otherEndpoints] {
	return ahead(func() (otherEndpoints, error) { return d.otherEndpoints(ctx, own) })
}

// endpointQuotas are the account's endpoint quotas by instance type, found by their names
// ("ml.m5.large for endpoint usage"): the quota codes differ by account and region.
func (d *Deployer) endpointQuotas(ctx context.Context, want *atomic.Pointer[string]) (map[string]float64, error) {
	const suffix = " for endpoint usage"
	out := map[string]float64{}
	p := servicequotas.NewListServiceQuotasPaginator(d.sq, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("sagemaker"), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, q := range page.Quotas {
			if itype, ok := strings.CutSuffix(aws.ToString(q.QuotaName), suffix); ok {
				out[itype] = aws.ToFloat64(q.Value)
			}
		}
		if w := want.Load(); w != nil {
			if _, found := out[*w]; found {
				return out, nil // the rest of the pages would not change the answer
			}
		}
	}
	return out, nil
}

// otherEndpoints are the account's other endpoints in the region that run instances, each
// described once; tooMany: there are more than maxCapacityScan, too many to read one by one.
type otherEndpoints struct {
	descs   []*sagemaker.DescribeEndpointOutput
	tooMany bool
}

func (d *Deployer) otherEndpoints(ctx context.Context, own string) (otherEndpoints, error) {
	var out otherEndpoints
	p := sagemaker.NewListEndpointsPaginator(d.sm, &sagemaker.ListEndpointsInput{MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("list endpoints: %w", err)
		}
		for _, e := range page.Endpoints {
			name := aws.ToString(e.EndpointName)
			if name == own || e.EndpointStatus == types.EndpointStatusFailed || e.EndpointStatus == types.EndpointStatusDeleting {
				continue // ours is counted from its snapshot; these run no instances
			}
			if len(out.descs) == maxCapacityScan {
				return otherEndpoints{tooMany: true}, nil
			}
			desc, err := d.describeEndpoint(ctx, name)
			if err != nil {
				return out, err
			}
			if desc != nil {
				out.descs = append(out.descs, desc)
			}
		}
	}
	return out, nil
}

// otherInstances counts the instances of itype the other endpoints run (how says how they were
// counted), or -1 past maxCapacityScan endpoints. The sum of all their instances, of any type, is
// an upper bound, and only when that bound does not fit in room are their configurations read
// for the instance type.
func (d *Deployer) otherInstances(ctx context.Context, others *readAhead[otherEndpoints], itype string, room float64) (int, string, error) {
	o, err := others.wait(ctx)
	switch {
	case err != nil:
		return 0, "", err
	case o.tooMany:
		return -1, "", nil
	}
	bound := 0
	for _, desc := range o.descs {
		bound += endpointFleet(desc)
	}
	if float64(bound) <= room {
		return bound, "this endpoint's instances and every instance of the other endpoints, whatever its type: even so it fits", nil
	}
	total := 0
	for _, desc := range o.descs {
		n, err := d.endpointInstances(ctx, desc, itype)
		if err != nil {
			return 0, "", err
		}
		total += n
	}
	return total, "the instances of every endpoint", nil
}

// endpointFleet is every instance an endpoint runs or is bringing in, of any type.
func endpointFleet(desc *sagemaker.DescribeEndpointOutput) int {
	n := 0
	for _, v := range desc.ProductionVariants {
		n += int(max(aws.ToInt32(v.CurrentInstanceCount), aws.ToInt32(v.DesiredInstanceCount)))
	}
	if p := desc.PendingDeploymentSummary; p != nil {
		for _, v := range p.ProductionVariants {
			n += int(max(aws.ToInt32(v.CurrentInstanceCount), aws.ToInt32(v.DesiredInstanceCount)))
		}
	}
	return n
}

// endpointInstances is how many instances of itype an endpoint, as described, runs now.
func (d *Deployer) endpointInstances(ctx context.Context, desc *sagemaker.DescribeEndpointOutput, itype string) (int, error) {
	if desc.EndpointStatus == types.EndpointStatusFailed {
		return 0, nil
	}
	cfg, err := d.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: desc.EndpointConfigName})
	if err != nil {
		if isNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("describe endpoint configuration of %s: %w", aws.ToString(desc.EndpointName), err)
	}
	total := 0
	for _, pv := range cfg.ProductionVariants {
		if string(pv.InstanceType) != itype {
			continue
		}
		n := int(aws.ToInt32(pv.InitialInstanceCount))
		for _, live := range desc.ProductionVariants {
			if aws.ToString(live.VariantName) == aws.ToString(pv.VariantName) && live.CurrentInstanceCount != nil {
				n = int(aws.ToInt32(live.CurrentInstanceCount))
			}
		}
		total += n
	}
	return total, nil
}
