package deploy_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// Every AWS call the deployer makes across all its operations is allowed by the policy it prints,
// and the policy allows nothing it never calls.
func TestPermissionsPolicyIsExactlyWhatTheDeployerCalls(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rec := &calls{}
	d, _ := l.deployer(rec)
	register(t, d, "abalone", 1, false)
	if _, err := d.Register(ctx, deploy.RegisterRequest{Model: "abalone", Artifact: "x", ArtifactData: mustArtifact(t, 1), Bucket: "models", Approve: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateModel(ctx, deploy.CreateModelRequest{Model: "abalone", PipelineID: pipelineA}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA}); err != nil {
		t.Fatal(err)
	}
	registerScaling(t, l, "abalone-dev") // the update moves it aside and back
	seedHistory(t, l, "abalone-dev", 29) // a full history: the update drops the oldest entries
	register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Verify: &deploy.Verification{Body: []byte("1,0,0,0.5,0.4,0.1,0.5,0.2,0.1,0.15\n"), ContentType: "text/csv"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Promote(ctx, deploy.PromoteRequest{Model: "abalone", From: "dev", To: "prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Rollback(ctx, deploy.RollbackRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Scale(ctx, deploy.ScaleRequest{Model: "abalone", Environment: "dev", Instances: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Status(ctx, deploy.StatusRequest{}); err != nil {
		t.Fatal(err)
	}
	bad := registerData(t, d, "abalone", pickleArtifact(t), true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "staging", Version: bad.Version.Number, Timeout: time.Minute}); !errors.Is(err, deploy.ErrDeployFailed) {
		t.Fatalf("bad first deploy: %v", err)
	}

	// Preflight reads the rollback alarms (this one does not exist) before anything is created.
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "qa", Strategy: deploy.Strategy{RollbackAlarms: []string{"abalone-qa-5xx"}}}); !errors.Is(err, deploy.ErrPreflight) {
		t.Fatalf("deploy with a missing rollback alarm: %v", err)
	}

	doc, err := deploy.PermissionsPolicy(deploy.PolicyOptions{Bucket: "models"})
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, s := range doc.Statement {
		for _, a := range s.Action {
			allowed[a] = true
		}
	}
	used := map[string]bool{"iam:PassRole": true} // CreateModel passes the execution role
	for _, op := range rec.names() {
		svc, name, _ := strings.Cut(op, "/")
		action, ok := deploy.IAMAction(svc, name)
		if !ok {
			t.Errorf("the deployer called %s, which its IAM policy does not account for", op)
			continue
		}
		if action == "" {
			continue
		}
		used[action] = true
		if !allowed[action] {
			t.Errorf("%s needs %s, which the printed policy does not allow", op, action)
		}
	}
	for a := range allowed {
		if !used[a] {
			t.Errorf("the policy allows %s, which no deployer operation called", a)
		}
	}
}

func mustArtifact(t *testing.T, v int) []byte {
	t.Helper()
	b, err := abaloneArtifact(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPolicyDocuments(t *testing.T) {
	doc, err := deploy.PermissionsPolicy(deploy.PolicyOptions{Bucket: "my-models", Account: "123456789012", ExecutionRoleARN: "arn:aws:iam::123456789012:role/sm"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	s := string(b)
	for _, want := range []string{`"arn:aws:s3:::my-models"`, `"arn:aws:s3:::my-models/*"`, `"arn:aws:iam::123456789012:role/sm"`,
		`"iam:PassedToService":"sagemaker.amazonaws.com"`, `"arn:aws:sagemaker:*:123456789012:endpoint/*"`, `"Version":"2012-10-17"`} {
		if !strings.Contains(s, want) {
			t.Errorf("permissions policy lacks %s:\n%s", want, s)
		}
	}
	if _, err := deploy.PermissionsPolicy(deploy.PolicyOptions{}); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("policy without bucket: %v", err)
	}
	trust, err := deploy.TrustPolicy(deploy.TrustOptions{Account: "123456789012", OrgID: "org-1", ProjectID: "proj-9"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(trust)
	s = string(b)
	for _, want := range []string{
		`"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.circleci.com/org/org-1"`,
		`"sts:AssumeRoleWithWebIdentity"`,
		`"oidc.circleci.com/org/org-1:aud":"org-1"`,
		`"oidc.circleci.com/org/org-1:sub":"org/org-1/project/proj-9/user/*"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("trust policy lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "sagemaker.amazonaws.com") {
		t.Errorf("trust policy lets SageMaker assume the role without being asked: %s", s)
	}
	if _, err := deploy.TrustPolicy(deploy.TrustOptions{Account: "1", OrgID: "o"}); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("trust policy without project: %v", err)
	}
}
