package deploy_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
)

// A scale-up is a decision about load, not about the version: neither a rollback nor the next
// update may quietly take it back.
func TestRollbackAndUpdateKeepTheInstancesOfAScaleUp(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	d, _ := l.deployer(nil)
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Scale(ctx, deploy.ScaleRequest{Model: "abalone", Environment: "dev", Instances: 3}); err != nil {
		t.Fatal(err)
	}

	rb, err := d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "dev"})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if rb.Kind != releases.KindRollback || rb.Version.Number != 1 || rb.InstanceCount != 3 {
		t.Errorf("rollback: kind %s, version %d on %d instances; want a rollback to version 1 on 3", rb.Kind, rb.Version.Number, rb.InstanceCount)
	}
	expectVersion(t, d, "abalone-dev", 1)
	if n := aws.ToInt32(describe(t, l, "abalone-dev").ProductionVariants[0].CurrentInstanceCount); n != 3 {
		t.Errorf("after scale --instances 3 and rollback, dev runs %d instances; want 3", n)
	}

	up, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(describe(t, l, "abalone-dev").ProductionVariants[0].CurrentInstanceCount); n != 3 || up.InstanceCount != 3 {
		t.Errorf("an update without --instance-count runs %d instances (result says %d); want the 3 it ran", n, up.InstanceCount)
	}
}
