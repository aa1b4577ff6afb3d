package deploy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// A deploy killed after it created (or updated) the endpoint leaves its marker of a deployment in
// progress; the retry, which finds the endpoint already serving the configuration, removes it, so
// no later message names a deployment that ended long ago.
func TestRetryClearsTheMarkerOfAKilledDeploy(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	req := deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1, PipelineID: "p-killed"}
	if _, err := d.Deploy(ctx, req); err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(describe(t, l, "abalone-dev").EndpointArn)
	// What the killed attempt left: its marker, never cleared.
	stale := "id=deadbeef v=1 c=abalone-dev-v1 r=rel-killed t=2026-01-01T00:00:00Z by=p-killed"
	if _, err := l.sm().AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(arn), Tags: []smtypes.Tag{{Key: aws.String(deploy.TagDeploy), Value: aws.String(stale)}}}); err != nil {
		t.Fatal(err)
	}
	res, err := d.Deploy(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed {
		t.Errorf("the retry changed the endpoint; it already served the configuration")
	}
	if m := tagsOf(t, l, arn)[deploy.TagDeploy]; m != "" {
		t.Errorf("after the retry the endpoint still carries the killed deploy's marker %q", m)
	}
}

// seedHistory adds n history entries to an endpoint after its newest one, each naming a
// configuration that no longer exists, as a long-lived endpoint collects them.
func seedHistory(t *testing.T, l *local, endpoint string, n int) {
	t.Helper()
	arn := aws.ToString(describe(t, l, endpoint).EndpointArn)
	last := 0
	for k := range tagsOf(t, l, arn) {
		if seq, ok := strings.CutPrefix(k, deploy.TagHistoryPrefix); ok {
			if v, _ := strconv.Atoi(seq); v > last {
				last = v
			}
		}
	}
	var tags []smtypes.Tag
	for i := 1; i <= n; i++ {
		tags = append(tags, smtypes.Tag{Key: aws.String(fmt.Sprintf("%s%06d", deploy.TagHistoryPrefix, last+i)),
			Value: aws.String(fmt.Sprintf("t=2026-01-01T00:00:%02dZ v=1 c=%s-gone-%d k=deploy", i%60, endpoint, i))})
	}
	if _, err := l.sm().AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(arn), Tags: tags}); err != nil {
		t.Fatal(err)
	}
}

// An endpoint keeps its newest 30 history entries: a deploy to an endpoint with a full history
// records what served and what serves now, and drops the oldest entries to make room, so the
// endpoint never reaches SageMaker's limit of 50 tags.
func TestHistoryKeepsTheNewestEntries(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1}); err != nil {
		t.Fatal(err)
	}
	first, err := d.History(ctx, deploy.HistoryRequest{Model: "abalone", Environment: "dev"})
	if err != nil || len(first.Entries) != 1 {
		t.Fatalf("history after the first deploy: %+v, %v", first, err)
	}
	v1 := first.Entries[0].EndpointConfigName
	seedHistory(t, l, "abalone-dev", 29) // 30 entries: full
	register(t, d, "abalone", 2, true)
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.History(ctx, deploy.HistoryRequest{Model: "abalone", Environment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	n := len(h.Entries)
	if n != 30 {
		t.Fatalf("history has %d entries, want the newest 30: %+v", n, h.Entries)
	}
	if got := h.Entries[n-1]; got.EndpointConfigName != res.EndpointConfigName || got.Version != 2 || !got.Current {
		t.Errorf("newest entry %+v, want version 2 on %s, current", got, res.EndpointConfigName)
	}
	if got := h.Entries[n-2]; got.EndpointConfigName != v1 || got.Kind != "observed" {
		t.Errorf("entry before it %+v, want %s observed serving when the deploy began", got, v1)
	}
	for _, e := range h.Entries {
		if e.Seq <= 2 {
			t.Errorf("entry %d (%s) should have been dropped to make room", e.Seq, e.EndpointConfigName)
		}
	}
}
