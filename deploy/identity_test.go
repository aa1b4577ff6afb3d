package deploy_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// jwt builds a token shaped like CircleCI's OIDC tokens (unsigned: the local STS reads claims only).
func jwt(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		enc([]byte(`{"iss":"https://oidc.circleci.com/org/org-1","aud":"org-1","sub":"`+sub+`"}`)) + "." + enc([]byte("sig"))
}

func TestWebIdentityCredentialsComeFromSTS(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rec := &calls{}
	d, _ := l.deployer(rec, func(o *deploy.Options) {
		o.Credentials = nil
		o.WebIdentity = &deploy.WebIdentity{
			RoleARN:         "arn:aws:iam::123456789012:role/sagedeploy-ci",
			RoleSessionName: "sagedeploy-pipeline-1",
			Token:           func() ([]byte, error) { return []byte(jwt("org/org-1/project/p-1/user/u-1")), nil },
		}
	})
	id, err := d.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.ARN != "arn:aws:sts::123456789012:assumed-role/sagedeploy-ci/sagedeploy-pipeline-1" || id.Account != "123456789012" {
		t.Fatalf("caller identity = %+v, want the assumed role", id)
	}
	if rec.count("STS/AssumeRoleWithWebIdentity") != 1 {
		t.Fatalf("calls %v: want one AssumeRoleWithWebIdentity", rec.names())
	}
	// The whole deployment runs with those credentials; the model's default execution role is of
	// the assumed account.
	register(t, d, "abalone", 1, true)
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	m := describeModel(t, l, res.ModelName)
	if !strings.HasPrefix(m, "arn:aws:iam::123456789012:role/") {
		t.Errorf("model execution role %s is not in the assumed account", m)
	}
	if rec.count("STS/AssumeRoleWithWebIdentity") != 1 {
		t.Errorf("credentials were not cached: %d AssumeRoleWithWebIdentity calls", rec.count("STS/AssumeRoleWithWebIdentity"))
	}
	// A malformed token fails with STS's explanation.
	bad, _ := l.deployer(nil, func(o *deploy.Options) {
		o.Credentials = nil
		o.WebIdentity = &deploy.WebIdentity{RoleARN: "arn:aws:iam::123456789012:role/x", Token: func() ([]byte, error) { return []byte("not-a-jwt"), nil }}
	})
	if _, err := bad.Identity(ctx); err == nil || !strings.Contains(err.Error(), "JWT") {
		t.Fatalf("malformed token: %v", err)
	}
}
