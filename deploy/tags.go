package deploy

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// Tag keys sagedeploy sets on what it creates.
const (
	TagModel           = "sagedeploy:model"             // model package group
	TagVersion         = "sagedeploy:version"           // model package version number
	TagModelPackageARN = "sagedeploy:model-package-arn" // the exact version
	TagEnvironment     = "sagedeploy:environment"
	TagPipelineID      = "sagedeploy:pipeline-id"
	TagProjectID       = "sagedeploy:project-id"
	TagCreatedBy       = "sagedeploy:created-by" // "sagedeploy <version>"
	// TagDeploy, on an endpoint, names the deployment in progress (see deployMarker); empty
	// when none is (a deployment clears it in the same AddTags that records its history).
	TagDeploy = "sagedeploy:deploy"
	// TagHistoryPrefix + a zero-padded sequence number, on an endpoint, records one configuration
	// it served (see historyEntry). The newest maxHistory entries are kept.
	TagHistoryPrefix = "sagedeploy:history:"
)

// maxHistory bounds the history kept in endpoint tags (SageMaker allows 50 tags per resource).
const maxHistory = 30

// tagValue makes s fit SageMaker's tag value pattern and length.
func tagValue(s string) string {
	b := []rune(s)
	for i, r := range b {
		if !(unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Zs, r) || strings.ContainsRune("_.:/=+-@", r)) {
			b[i] = '_'
		}
	}
	if len(b) > 256 {
		b = b[:256]
	}
	return string(b)
}

// baseTags are the tags of every resource sagedeploy creates.
func (d *Deployer) baseTags(model, env, pipelineID, projectID string) map[string]string {
	t := map[string]string{TagModel: model, TagCreatedBy: d.createdBy()}
	if env != "" {
		t[TagEnvironment] = env
	}
	if pipelineID != "" {
		t[TagPipelineID] = pipelineID
	}
	if projectID != "" {
		t[TagProjectID] = projectID
	}
	return t
}

func versionTags(t map[string]string, v Version) map[string]string {
	if v.Number > 0 {
		t[TagVersion] = strconv.Itoa(v.Number)
	}
	if v.ARN != "" {
		t[TagModelPackageARN] = v.ARN
	}
	return t
}

// createdBy names this sagedeploy on what it creates: "sagedeploy <version>".
func (d *Deployer) createdBy() string { return "sagedeploy " + cmp.Or(d.opts.Version, "dev") }

// sdkTags renders tags in a stable order.
func sdkTags(m map[string]string) []types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tagValue(m[k]))})
	}
	return out
}

// listTags reads all tags of a resource.
func (d *Deployer) listTags(ctx context.Context, arn string) (map[string]string, error) {
	out := map[string]string{}
	p := sagemaker.NewListTagsPaginator(d.sm, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tags of %s: %w", arn, err)
		}
		for _, t := range page.Tags {
			out[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return out, nil
}

func (d *Deployer) addTags(ctx context.Context, arn string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	if _, err := d.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(arn), Tags: sdkTags(tags)}); err != nil {
		return fmt.Errorf("tag %s: %w", arn, err)
	}
	return nil
}

func (d *Deployer) deleteTags(ctx context.Context, arn string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := d.sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: aws.String(arn), TagKeys: keys}); err != nil {
		return fmt.Errorf("untag %s: %w", arn, err)
	}
	return nil
}

// fields renders key=value pairs separated by spaces (tag values allow "=" and " ").
func fields(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(strings.ReplaceAll(kv[i+1], " ", "_"))
	}
	return b.String()
}

func parseFields(s string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if ok {
			out[k] = v
		}
	}
	return out
}

// HistoryEntry is one configuration an endpoint served, oldest first in History.
type HistoryEntry struct {
	Seq                int       `json:"seq"`
	Time               time.Time `json:"time"`
	Version            int       `json:"version"`
	EndpointConfigName string    `json:"endpoint_config_name"`
	// Kind is what put it there: deploy, promote, restore (rollback), or observed (seen serving
	// at the start of a later deployment).
	Kind    string `json:"kind"`
	Current bool   `json:"current,omitempty"`
}

func historyKey(seq int) string { return fmt.Sprintf("%s%06d", TagHistoryPrefix, seq) }

func (h HistoryEntry) tagValue() string {
	return fields("t", h.Time.UTC().Format(time.RFC3339), "v", strconv.Itoa(h.Version), "c", h.EndpointConfigName, "k", h.Kind)
}

// parseHistory reads the history entries from endpoint tags, oldest first.
func parseHistory(tags map[string]string) []HistoryEntry {
	var out []HistoryEntry
	for k, v := range tags {
		if !strings.HasPrefix(k, TagHistoryPrefix) {
			continue
		}
		seq, err := strconv.Atoi(strings.TrimPrefix(k, TagHistoryPrefix))
		if err != nil {
			continue
		}
		f := parseFields(v)
		e := HistoryEntry{Seq: seq, EndpointConfigName: f["c"], Kind: f["k"]}
		e.Version, _ = strconv.Atoi(f["v"])
		e.Time, _ = time.Parse(time.RFC3339, f["t"])
		if e.EndpointConfigName == "" {
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// appendHistory records that the endpoint serves e.EndpointConfigName, unless its newest entry
// already says so. Two deployers recording the same observation write the same key and value.
// tags are the endpoint's current tags when the caller just read them, else nil.
func (d *Deployer) appendHistory(ctx context.Context, endpointARN string, e HistoryEntry, tags map[string]string) error {
	if tags == nil {
		var err error
		if tags, err = d.listTags(ctx, endpointARN); err != nil {
			return err
		}
	}
	set, drop := historyChange(tags, e)
	if err := d.addTags(ctx, endpointARN, set); err != nil {
		return err
	}
	return d.deleteTags(ctx, endpointARN, drop...)
}

// historyChange is the tags to set and the keys to drop so that the history in tags ends with e
// (numbered after the newest entry), keeping at most maxHistory entries; nothing when the newest
// entry already records e's configuration.
func historyChange(tags map[string]string, e HistoryEntry) (set map[string]string, drop []string) {
	h := parseHistory(tags)
	set = map[string]string{}
	if n := len(h); n > 0 && h[n-1].EndpointConfigName == e.EndpointConfigName {
		return set, nil
	}
	e.Seq = 1
	if n := len(h); n > 0 {
		e.Seq = h[n-1].Seq + 1
	}
	set[historyKey(e.Seq)] = e.tagValue()
	for _, old := range h[:max(0, len(h)+1-maxHistory)] {
		drop = append(drop, historyKey(old.Seq))
	}
	return set, drop
}

// deployMarker is the TagDeploy value naming a deployment in progress, so that a concurrent
// deployer can say whom it waits for.
type deployMarker struct {
	ID      string
	Version int
	Config  string
	Release string
	Started time.Time
	By      string // pipeline id or user
}

func (m deployMarker) tagValue() string {
	return fields("id", m.ID, "v", strconv.Itoa(m.Version), "c", m.Config, "r", m.Release,
		"t", m.Started.UTC().Format(time.RFC3339), "by", m.By)
}

func parseMarker(s string) (deployMarker, bool) {
	f := parseFields(s)
	if f["id"] == "" {
		return deployMarker{}, false
	}
	m := deployMarker{ID: f["id"], Config: f["c"], Release: f["r"], By: f["by"]}
	m.Version, _ = strconv.Atoi(f["v"])
	m.Started, _ = time.Parse(time.RFC3339, f["t"])
	return m, true
}

// describe renders a marker for messages: "version 3 (config …, release …, pipeline …, started …)".
func (m deployMarker) describe() string {
	var parts []string
	if m.Config != "" {
		parts = append(parts, "config "+m.Config)
	}
	if m.Release != "" {
		parts = append(parts, "release "+m.Release)
	}
	if m.By != "" {
		parts = append(parts, "by "+m.By)
	}
	if !m.Started.IsZero() {
		parts = append(parts, "started "+m.Started.UTC().Format(time.RFC3339))
	}
	s := "a deployment"
	if m.Version > 0 {
		s = fmt.Sprintf("the deployment of version %d", m.Version)
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}
