package control

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Document kinds in the store.
const (
	kindModel          = "model"
	kindEndpointConfig = "endpoint-config"
	kindEndpoint       = "endpoint"
	kindGroup          = "model-package-group"
	kindPackage        = "model-package"
)

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// base is what every resource has: its ARN, the region it lives in and its tags. Each region is
// a namespace of its own, as in AWS: the same name in two regions is two resources.
type base struct {
	ARN    string `json:"arn"`
	Region string `json:"region,omitempty"`
	Tags   []tag  `json:"tags,omitempty"`
}

func (b *base) meta() *base { return b }

// resource is a pointer to one of the resource types, all of which embed base.
type resource interface{ meta() *base }

// modelRes is a SageMaker model.
type modelRes struct {
	base
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Seq     int64     `json:"seq"`
	// Input is the CreateModel request (without Tags), echoed by DescribeModel.
	Input map[string]any `json:"input"`
	// Containers are the containers with model packages resolved, as the serving layer needs them.
	Containers []spec.Container `json:"containers"`
}

// configVariant is the part of a ProductionVariant that deploys need.
type configVariant struct {
	VariantName          string  `json:"VariantName"`
	ModelName            string  `json:"ModelName"`
	InstanceType         string  `json:"InstanceType,omitempty"`
	AcceleratorType      string  `json:"AcceleratorType,omitempty"`
	InitialInstanceCount *int    `json:"InitialInstanceCount,omitempty"`
	InitialVariantWeight float64 `json:"InitialVariantWeight"`
	Serverless           bool    `json:"serverless,omitempty"`
	// ServerlessConfig is set for serverless variants.
	ServerlessConfig *spec.Serverless `json:"serverlessConfig,omitempty"`
}

// endpointConfigRes is an endpoint configuration; immutable once created.
type endpointConfigRes struct {
	base
	Name     string          `json:"name"`
	Created  time.Time       `json:"created"`
	Seq      int64           `json:"seq"`
	Input    map[string]any  `json:"input"`
	Variants []configVariant `json:"variants"`
}

// variantState is what an endpoint reports about one of its production variants.
type variantState struct {
	Name                 string    `json:"name"`
	Image                []string  `json:"images,omitempty"`
	InstanceType         string    `json:"instanceType,omitempty"`
	AcceleratorType      string    `json:"acceleratorType,omitempty"`
	DesiredWeight        float64   `json:"desiredWeight"`
	DesiredInstanceCount int       `json:"desiredInstanceCount"`
	CurrentWeight        float64   `json:"currentWeight"`
	CurrentInstanceCount int       `json:"currentInstanceCount"`
	ResolutionTime       time.Time `json:"resolutionTime"`
	// Serverless is set for serverless variants, which report it instead of instance counts.
	Serverless *spec.Serverless `json:"serverless,omitempty"`
}

// deployment is a configuration made concrete for the serving layer: what to deploy and what the
// endpoint reports about it. It is a snapshot: deleting the configuration or a model later does not
// change what an endpoint serves, as on AWS.
type deployment struct {
	ConfigName string          `json:"configName"`
	Spec       spec.Deployment `json:"spec"`
	Variants   []variantState  `json:"variants"`
	// Echoed from the configuration by DescribeEndpoint.
	DataCaptureConfig    map[string]any `json:"dataCaptureConfig,omitempty"`
	AsyncInferenceConfig map[string]any `json:"asyncInferenceConfig,omitempty"`
	ExplainerConfig      map[string]any `json:"explainerConfig,omitempty"`
}

// pendingDeploy is a create or update in progress.
type pendingDeploy struct {
	Deployment deployment `json:"deployment"`
	Start      time.Time  `json:"start"`
}

// Endpoint statuses, as AWS names them.
const (
	statusCreating       = "Creating"
	statusUpdating       = "Updating"
	statusSystemUpdating = "SystemUpdating"
	statusRollingBack    = "RollingBack"
	statusInService      = "InService"
	statusDeleting       = "Deleting"
	statusFailed         = "Failed"
	statusOutOfService   = "OutOfService"
)

// endpointRes is an endpoint.
type endpointRes struct {
	base
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Modified time.Time `json:"modified"`
	Seq      int64     `json:"seq"`
	// Gen counts the operations started on the endpoint; a background job only applies its
	// outcome if the endpoint is still at the generation the job started from.
	Gen    int64  `json:"gen"`
	Status string `json:"status"`
	// FailureReason explains a failed create, or a failed update the endpoint rolled back from.
	FailureReason string `json:"failureReason,omitempty"`
	// Current is what serves (or served before a failure); nil until a create succeeds.
	Current *deployment `json:"current,omitempty"`
	// ConfigName is DescribeEndpoint's EndpointConfigName: the configuration in use, or being
	// created.
	ConfigName string `json:"configName"`
	// Pending is the deployment in progress while Creating or Updating with a new configuration.
	Pending *pendingDeploy `json:"pending,omitempty"`
	// LastDeploymentConfig is the DeploymentConfig of the latest create or update.
	LastDeploymentConfig map[string]any `json:"lastDeploymentConfig,omitempty"`
}

// id is how the serving layer knows the endpoint.
func (e *endpointRes) id() spec.EndpointID { return spec.EndpointID{Region: e.Region, Name: e.Name} }

// groupRes is a model package group.
type groupRes struct {
	base
	Name        string    `json:"name"`
	Created     time.Time `json:"created"`
	Seq         int64     `json:"seq"`
	Description string    `json:"description,omitempty"`
	// LastVersion is the highest version ever given in the group; versions are never reused.
	LastVersion int `json:"lastVersion"`
}

// packageRes is a model package: a version in a group, or an unversioned package.
type packageRes struct {
	base
	Name  string `json:"name"`
	Group string `json:"group,omitempty"`
	// Version is 0 for unversioned packages.
	Version     int        `json:"version,omitempty"`
	Created     time.Time  `json:"created"`
	Modified    *time.Time `json:"modified,omitempty"`
	Seq         int64      `json:"seq"`
	ClientToken string     `json:"clientToken,omitempty"`
	// Input is the CreateModelPackage request (without Tags and ClientToken), updated by
	// UpdateModelPackage.
	Input map[string]any `json:"input"`
}

// key is the package's key in its region.
func (p *packageRes) key() string { return scoped(p.Region, packageKey(p.Group, p.Name, p.Version)) }

func packageKey(group, name string, version int) string {
	if version > 0 {
		return fmt.Sprintf("%s/%d", group, version)
	}
	return name
}

func (p *packageRes) approval() string { s, _ := p.Input["ModelApprovalStatus"].(string); return s }

// state is the control plane's memory, guarded by Control.mu. A resource installed here is
// never modified in place: a change installs a new copy (see clone), so a reader may keep using a
// record after releasing the lock.
type state struct {
	models    map[string]*modelRes
	configs   map[string]*endpointConfigRes
	endpoints map[string]*endpointRes
	groups    map[string]*groupRes
	packages  map[string]*packageRes
}

// nameKey is the key of a model, configuration or endpoint: AWS treats those names
// case-insensitively (and lower-cases them in ARNs) but preserves their case otherwise.
func nameKey(name string) string { return strings.ToLower(name) }

// scoped is a resource's key in its region: the key of its document in the store and of the
// state's maps. Resource names cannot hold a colon, so the region prefix is unambiguous.
func scoped(region, key string) string { return region + ":" + key }

// arnRegion is the region field of an ARN, "" when there is none.
func arnRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

func newState() *state {
	return &state{
		models: map[string]*modelRes{}, configs: map[string]*endpointConfigRes{},
		endpoints: map[string]*endpointRes{}, groups: map[string]*groupRes{}, packages: map[string]*packageRes{},
	}
}

// loadState reads every document. Documents written before regions were namespaces (keys
// without a region) are moved into the region their ARN names — the region they were created
// through, so a user keeps seeing them where they made them — or defaultRegion, and rewritten.
func loadState(ctx context.Context, store Store, defaultRegion string) (*state, error) {
	docs, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	st := newState()
	var puts []Document
	var deletes []DocKey
	for _, d := range docs {
		region, _, regional := strings.Cut(d.Key, ":")
		if !regional {
			region = ""
		}
		// Decode first, under a provisional key, to learn the ARN of an old document.
		v, err := decodeDoc(d)
		if err != nil {
			return nil, err
		}
		b := v.meta()
		if !regional {
			region = cmp.Or(arnRegion(b.ARN), defaultRegion)
		}
		b.Region = cmp.Or(b.Region, region)
		key := d.Key
		if !regional {
			key = scoped(b.Region, d.Key)
			nd, err := doc(d.Kind, key, v)
			if err != nil {
				return nil, err
			}
			puts, deletes = append(puts, nd), append(deletes, DocKey{d.Kind, d.Key})
		}
		if err := st.install(d.Kind, key, v); err != nil {
			return nil, err
		}
	}
	if len(puts) > 0 {
		if err := store.Write(ctx, puts, deletes); err != nil {
			return nil, fmt.Errorf("load state: give %d resources their region: %w", len(puts), err)
		}
	}
	return st, nil
}

// decodeDoc decodes a stored document into a new resource of its kind.
func decodeDoc(d Document) (resource, error) {
	var v resource
	switch d.Kind {
	case kindModel:
		v = &modelRes{}
	case kindEndpointConfig:
		v = &endpointConfigRes{}
	case kindEndpoint:
		v = &endpointRes{}
	case kindGroup:
		v = &groupRes{}
	case kindPackage:
		v = &packageRes{}
	default:
		return nil, fmt.Errorf("load state: unknown document kind %q (store written by a newer sagedeploy?)", d.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(d.Body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("load state: %s %s: %w", d.Kind, d.Key, err)
	}
	return v, nil
}

// install puts a decoded resource into its map.
func (st *state) install(kind, key string, v resource) error {
	switch r := v.(type) {
	case *modelRes:
		st.models[key] = r
	case *endpointConfigRes:
		st.configs[key] = r
	case *endpointRes:
		st.endpoints[key] = r
	case *groupRes:
		st.groups[key] = r
	case *packageRes:
		st.packages[key] = r
	default:
		return fmt.Errorf("load state: %s %s: unexpected %T", kind, key, v)
	}
	return nil
}

func (st *state) maxSeq() int64 {
	var m int64
	for _, v := range st.models {
		m = max(m, v.Seq)
	}
	for _, v := range st.configs {
		m = max(m, v.Seq)
	}
	for _, v := range st.endpoints {
		m = max(m, v.Seq)
	}
	for _, v := range st.groups {
		m = max(m, v.Seq)
	}
	for _, v := range st.packages {
		m = max(m, v.Seq)
	}
	return m
}

func (c *Control) nextSeq() int64 { c.seq++; return c.seq }

// doc encodes a resource for the store.
func doc(kind, key string, v any) (Document, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Document{}, fmt.Errorf("encode %s %s: %w", kind, key, err)
	}
	return Document{Kind: kind, Key: key, Body: b}, nil
}

// persist writes resources through to the store. Callers hold c.mu and install the new values in
// memory only once persist succeeded, so memory never runs ahead of the disk.
func (c *Control) persist(ctx context.Context, puts []Document, deletes ...DocKey) error {
	if err := c.opts.Store.Write(ctx, puts, deletes); err != nil {
		return errInternal(err)
	}
	return nil
}

func (c *Control) put(ctx context.Context, kind, key string, v any) error {
	d, err := doc(kind, key, v)
	if err != nil {
		return errInternal(err)
	}
	return c.persist(ctx, []Document{d})
}

// clone deep-copies a resource through JSON, so that changes can be persisted before they are
// installed.
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	out := new(T)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	return out
}

// epoch renders a time as JSON 1.1 does: seconds since the epoch, as a number.
func epoch(t time.Time) json.Number {
	ms := t.UnixMilli()
	s := fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
	return json.Number(strings.TrimSuffix(strings.TrimRight(s, "0"), "."))
}
