package deploy_test

import (
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
