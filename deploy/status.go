package deploy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy/naming"
)

// StatusRequest filters Status; empty fields match everything.
type StatusRequest struct {
	Model       string
	Environment string
}

// Component is one model in one environment: its endpoint and what it serves.
type Component struct {
	Model              string    `json:"model"`
	Environment        string    `json:"environment"`
	Endpoint           string    `json:"endpoint"`
	EndpointStatus     string    `json:"endpoint_status"`
	EndpointConfigName string    `json:"endpoint_config_name"`
	Version            *Version  `json:"version,omitempty"`
	InstanceType       string    `json:"instance_type,omitempty"`
	Instances          int       `json:"instances"`
	LastChange         time.Time `json:"last_change"`
	FailureReason      string    `json:"failure_reason,omitempty"`
	// Deploying describes a deployment in progress, if any.
	Deploying string `json:"deploying,omitempty"`
}

// StatusResult lists components by model, then environment along the usual pipeline order
// (dev, test, staging, prod, then others alphabetically).
type StatusResult struct {
	Components []Component `json:"components"`
}

// Status reads every endpoint sagedeploy manages (those tagged with TagModel) and what it serves.
func (d *Deployer) Status(ctx context.Context, req StatusRequest) (StatusResult, error) {
	res := StatusResult{Components: []Component{}}
	names, err := d.listEndpointNames(ctx, req.Model)
	if err != nil {
		return res, err
	}
	if req.Model != "" && len(names) == 0 {
		// A shortened endpoint name may not contain the model's name: look at them all.
		if names, err = d.listEndpointNames(ctx, ""); err != nil {
			return res, err
		}
	}
	for _, n := range names {
		c, ok, err := d.component(ctx, n)
		if err != nil {
			if isNotFound(err) {
				continue // deleted meanwhile
			}
			return res, err
		}
		if !ok || (req.Model != "" && c.Model != req.Model) || (req.Environment != "" && c.Environment != req.Environment) {
			continue
		}
		res.Components = append(res.Components, c)
	}
	sort.Slice(res.Components, func(i, j int) bool {
		a, b := res.Components[i], res.Components[j]
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		if ra, rb := envRank(a.Environment), envRank(b.Environment); ra != rb {
			return ra < rb
		}
		return a.Environment < b.Environment
	})
	return res, nil
}

func envRank(env string) int {
	switch strings.ToLower(env) {
	case "dev", "development":
		return 0
	case "test", "qa":
		return 1
	case "staging", "stage", "preprod":
		return 2
	case "prod", "production":
		return 3
	}
	return 4
}

// listEndpointNames lists endpoints whose name contains contains (all when empty).
func (d *Deployer) listEndpointNames(ctx context.Context, contains string) ([]string, error) {
	in := &sagemaker.ListEndpointsInput{MaxResults: aws.Int32(100)}
	if contains != "" {
		in.NameContains = aws.String(contains)
	}
	var names []string
	p := sagemaker.NewListEndpointsPaginator(d.sm, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list endpoints: %w", err)
		}
		for _, e := range page.Endpoints {
			names = append(names, aws.ToString(e.EndpointName))
		}
	}
	return names, nil
}

// component reads one endpoint; ok is false for endpoints sagedeploy does not manage.
func (d *Deployer) component(ctx context.Context, name string) (Component, bool, error) {
	desc, err := d.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if err != nil {
		return Component{}, false, fmt.Errorf("describe endpoint %s: %w", name, err)
	}
	tags, err := d.listTags(ctx, aws.ToString(desc.EndpointArn))
	if err != nil {
		return Component{}, false, err
	}
	if tags[TagModel] == "" {
		return Component{}, false, nil
	}
	c := Component{
		Model: tags[TagModel], Environment: tags[TagEnvironment], Endpoint: name,
		EndpointStatus: string(desc.EndpointStatus), EndpointConfigName: aws.ToString(desc.EndpointConfigName),
		LastChange: aws.ToTime(desc.LastModifiedTime), FailureReason: aws.ToString(desc.FailureReason),
	}
	for _, v := range desc.ProductionVariants {
		c.Instances += int(aws.ToInt32(v.CurrentInstanceCount))
	}
	if ci, err := d.describeConfig(ctx, c.EndpointConfigName); err == nil {
		c.Version, c.InstanceType = &ci.Version, ci.InstanceType
		if len(desc.ProductionVariants) == 0 {
			c.Instances = ci.InstanceCount
		}
	}
	if pending(desc.EndpointStatus) {
		if m, ok := parseMarker(tags[TagDeploy]); ok {
			c.Deploying = m.describe()
		}
	}
	return c, true, nil
}

// HistoryRequest names an endpoint by model and environment, or by name.
type HistoryRequest struct {
	Model        string
	Environment  string
	EndpointName string
}

// HistoryResult is what an endpoint has served, oldest first; the entry serving now is Current.
type HistoryResult struct {
	Endpoint string         `json:"endpoint"`
	Entries  []HistoryEntry `json:"entries"`
}

// History reads the configurations an endpoint served, and their versions, from its tags.
func (d *Deployer) History(ctx context.Context, req HistoryRequest) (HistoryResult, error) {
	name := req.EndpointName
	if name == "" {
		if err := checkTarget(req.Model, req.Environment); err != nil {
			return HistoryResult{}, err
		}
		name = naming.Endpoint(req.Model, req.Environment)
	}
	res := HistoryResult{Endpoint: name, Entries: []HistoryEntry{}}
	desc, err := d.describeEndpoint(ctx, name)
	if err != nil {
		return res, err
	}
	if desc == nil {
		return res, errorf(ErrEndpointNotFound, "endpoint %s does not exist (model %s, environment %s)", name, req.Model, req.Environment)
	}
	tags, err := d.listTags(ctx, aws.ToString(desc.EndpointArn))
	if err != nil {
		return res, err
	}
	res.Entries = parseHistory(tags)
	current := aws.ToString(desc.EndpointConfigName)
	if n := len(res.Entries); desc.EndpointStatus == types.EndpointStatusInService && (n == 0 || res.Entries[n-1].EndpointConfigName != current) {
		// Serving something the history has not recorded yet (changed outside sagedeploy).
		e := HistoryEntry{Time: aws.ToTime(desc.LastModifiedTime), EndpointConfigName: current, Kind: "observed"}
		if ci, err := d.describeConfig(ctx, current); err == nil {
			e.Version = ci.Version.Number
		}
		res.Entries = append(res.Entries, e)
	}
	if n := len(res.Entries); n > 0 && res.Entries[n-1].EndpointConfigName == current {
		res.Entries[n-1].Current = true
	}
	return res, nil
}
