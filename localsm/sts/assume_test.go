package sts_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// AssumeRole through the real SDK: the session runs as the role, in the role's account, which is
// how a deployer reaches an environment in another account.
func TestAssumeRoleWithTheSDK(t *testing.T) {
	srv := localsmtest.Start(t, localsm.Options{Account: "222222222222"})
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIABASE", "secret", "")}
	client := func(c aws.Config) *sts.Client {
		return sts.NewFromConfig(c, func(o *sts.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	}
	role := "arn:aws:iam::222222222222:role/sagedeploy-deployer"
	assumed := cfg
	assumed.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(client(cfg), role, func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "ci-42" }))
	id, err := client(assumed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with assumed-role credentials: %v", err)
	}
	if aws.ToString(id.Account) != "222222222222" || aws.ToString(id.Arn) != "arn:aws:sts::222222222222:assumed-role/sagedeploy-deployer/ci-42" {
		t.Fatalf("caller = %s in %s; want the assumed role", aws.ToString(id.Arn), aws.ToString(id.Account))
	}
	_, err = client(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("deployer"), RoleSessionName: aws.String("ci")})
	if err == nil || !strings.Contains(err.Error(), "not a valid role ARN") {
		t.Fatalf("AssumeRole of a bad ARN = %v, want a ValidationError", err)
	}
}
