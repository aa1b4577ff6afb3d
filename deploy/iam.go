package deploy

import (
	"cmp"
	"fmt"
	"sort"
	"strings"
)

// PolicyDocument is an IAM policy document.
type PolicyDocument struct {
	Version   string            `json:"Version"`
	Statement []PolicyStatement `json:"Statement"`
}

// PolicyStatement is one statement of a policy document.
type PolicyStatement struct {
	Sid       string         `json:"Sid,omitempty"`
	Effect    string         `json:"Effect"`
	Principal map[string]any `json:"Principal,omitempty"`
	Action    []string       `json:"Action"`
	Resource  []string       `json:"Resource,omitempty"`
	Condition map[string]any `json:"Condition,omitempty"`
}

// iamActions maps each AWS operation the deployer calls ("Service/Operation", service as the SDK
// names it) to the IAM action that allows it. STS calls need no permission.
var iamActions = map[string]string{
	"SageMaker/AddTags":                                 "sagemaker:AddTags",
	"SageMaker/CreateEndpoint":                          "sagemaker:CreateEndpoint",
	"SageMaker/CreateEndpointConfig":                    "sagemaker:CreateEndpointConfig",
	"SageMaker/CreateModel":                             "sagemaker:CreateModel",
	"SageMaker/CreateModelPackage":                      "sagemaker:CreateModelPackage",
	"SageMaker/CreateModelPackageGroup":                 "sagemaker:CreateModelPackageGroup",
	"SageMaker/DeleteEndpoint":                          "sagemaker:DeleteEndpoint",
	"SageMaker/DeleteTags":                              "sagemaker:DeleteTags",
	"SageMaker/DescribeEndpoint":                        "sagemaker:DescribeEndpoint",
	"SageMaker/DescribeEndpointConfig":                  "sagemaker:DescribeEndpointConfig",
	"SageMaker/DescribeModel":                           "sagemaker:DescribeModel",
	"SageMaker/DescribeModelPackage":                    "sagemaker:DescribeModelPackage",
	"SageMaker/DescribeModelPackageGroup":               "sagemaker:DescribeModelPackageGroup",
	"SageMaker/ListEndpointConfigs":                     "sagemaker:ListEndpointConfigs",
	"SageMaker/ListEndpoints":                           "sagemaker:ListEndpoints",
	"SageMaker/ListModelPackages":                       "sagemaker:ListModelPackages",
	"SageMaker/ListModels":                              "sagemaker:ListModels",
	"SageMaker/ListTags":                                "sagemaker:ListTags",
	"SageMaker/UpdateEndpoint":                          "sagemaker:UpdateEndpoint",
	"SageMaker/UpdateEndpointWeightsAndCapacities":      "sagemaker:UpdateEndpointWeightsAndCapacities",
	"SageMaker/UpdateModelPackage":                      "sagemaker:UpdateModelPackage",
	"SageMaker Runtime/InvokeEndpoint":                  "sagemaker:InvokeEndpoint",
	"S3/HeadBucket":                                     "s3:ListBucket",
	"S3/CreateBucket":                                   "s3:CreateBucket",
	"S3/HeadObject":                                     "s3:GetObject",
	"S3/PutObject":                                      "s3:PutObject",
	"Service Quotas/ListServiceQuotas":                  "servicequotas:ListServiceQuotas",
	"Application Auto Scaling/DescribeScalableTargets":  "application-autoscaling:DescribeScalableTargets",
	"Application Auto Scaling/DescribeScalingPolicies":  "application-autoscaling:DescribeScalingPolicies",
	"Application Auto Scaling/DeregisterScalableTarget": "application-autoscaling:DeregisterScalableTarget",
	"Application Auto Scaling/RegisterScalableTarget":   "application-autoscaling:RegisterScalableTarget",
	"Application Auto Scaling/PutScalingPolicy":         "application-autoscaling:PutScalingPolicy",
	"CloudWatch/DescribeAlarms":                         "cloudwatch:DescribeAlarms",
	"STS/GetCallerIdentity":                             "",
	"STS/AssumeRoleWithWebIdentity":                     "",
}

// IAMAction returns the IAM action that allows an AWS operation the deployer calls (service as
// the SDK's ServiceID, e.g. "SageMaker"); ok is false for operations the deployer does not call.
// The action is empty for calls that need no permission.
func IAMAction(service, operation string) (action string, ok bool) {
	action, ok = iamActions[service+"/"+operation]
	return action, ok
}

// Actions lists every IAM action the deployer needs, sorted; also the PassRole it needs to hand
// the execution role to SageMaker.
func Actions() []string {
	set := map[string]bool{"iam:PassRole": true}
	for _, a := range iamActions {
		if a != "" {
			set[a] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// PolicyOptions scope the deployer's permissions policy.
type PolicyOptions struct {
	// Bucket holds the model artifacts (required).
	Bucket string
	// Region and Account narrow SageMaker resources; "*" when empty.
	Region  string
	Account string
	// ExecutionRoleARN is the role the deployer passes to SageMaker; any role when empty.
	ExecutionRoleARN string
}

// PermissionsPolicy is the least-privilege policy for the identity that runs sagedeploy: exactly
// the SageMaker, S3 and iam:PassRole actions the deployer calls.
func PermissionsPolicy(o PolicyOptions) (PolicyDocument, error) {
	if o.Bucket == "" {
		return PolicyDocument{}, errorf(ErrInvalid, "the policy needs the artifact bucket: --bucket or S3_BUCKET_NAME")
	}
	region, account := cmp.Or(o.Region, "*"), cmp.Or(o.Account, "*")
	arn := func(kind string) string { return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/*", region, account, kind) }
	var list, act, s3Bucket, s3Object, preflight []string
	for _, a := range Actions() {
		switch {
		case a == "iam:PassRole":
		case strings.HasPrefix(a, "servicequotas:") || strings.HasPrefix(a, "cloudwatch:") || strings.HasPrefix(a, "application-autoscaling:"):
			preflight = append(preflight, a)
		case len(a) > 14 && a[:14] == "sagemaker:List" && a != "sagemaker:ListTags":
			list = append(list, a)
		case a[:10] == "sagemaker:":
			act = append(act, a)
		case a == "s3:GetObject" || a == "s3:PutObject":
			s3Object = append(s3Object, a)
		default:
			s3Bucket = append(s3Bucket, a)
		}
	}
	role := cmp.Or(o.ExecutionRoleARN, fmt.Sprintf("arn:aws:iam::%s:role/*", account))
	return PolicyDocument{
		Version: "2012-10-17",
		Statement: []PolicyStatement{
			{Sid: "SageMakerDeploy", Effect: "Allow", Action: act, Resource: []string{
				arn("model-package-group"), arn("model-package"), arn("model"), arn("endpoint-config"), arn("endpoint"),
			}},
			{Sid: "SageMakerList", Effect: "Allow", Action: list, Resource: []string{"*"}},
			// Preflight reads the endpoint quotas and the rollback alarms, and an update moves the
			// variant's autoscaling; none of them has a narrower resource.
			{Sid: "PreflightAndAutoscaling", Effect: "Allow", Action: preflight, Resource: []string{"*"}},
			{Sid: "ArtifactBucket", Effect: "Allow", Action: s3Bucket, Resource: []string{"arn:aws:s3:::" + o.Bucket}},
			{Sid: "ArtifactObjects", Effect: "Allow", Action: s3Object, Resource: []string{"arn:aws:s3:::" + o.Bucket + "/*"}},
			{Sid: "PassExecutionRole", Effect: "Allow", Action: []string{"iam:PassRole"}, Resource: []string{role},
				Condition: map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "sagemaker.amazonaws.com"}}},
		},
	}, nil
}

// TrustOptions describe who may assume the deployer's role.
type TrustOptions struct {
	Account   string // the AWS account holding the OIDC provider
	OrgID     string // CircleCI organization id
	ProjectID string // CircleCI project id; "*" allows every project of the org
	// SageMaker also lets SageMaker assume the role, for when the same role is the models'
	// execution role (SAGEMAKER_EXECUTION_ROLE_ARN serves both in the orb).
	SageMaker bool
}

// TrustPolicy is the role trust policy for CircleCI's OIDC tokens: provider
// oidc.circleci.com/org/ORG_ID, audience ORG_ID, subject org/ORG_ID/project/PROJECT_ID/user/*.
func TrustPolicy(o TrustOptions) (PolicyDocument, error) {
	if o.Account == "" || o.OrgID == "" || o.ProjectID == "" {
		return PolicyDocument{}, errorf(ErrInvalid, "the trust policy needs --account (AWS account id), --org-id (CircleCI organization id) and --project-id (CircleCI project id, or *)")
	}
	provider := "oidc.circleci.com/org/" + o.OrgID
	doc := PolicyDocument{
		Version: "2012-10-17",
		Statement: []PolicyStatement{{
			Sid:       "CircleCIOIDC",
			Effect:    "Allow",
			Principal: map[string]any{"Federated": fmt.Sprintf("arn:aws:iam::%s:oidc-provider/%s", o.Account, provider)},
			Action:    []string{"sts:AssumeRoleWithWebIdentity"},
			Condition: map[string]any{
				"StringEquals": map[string]any{provider + ":aud": o.OrgID},
				"StringLike":   map[string]any{provider + ":sub": fmt.Sprintf("org/%s/project/%s/user/*", o.OrgID, o.ProjectID)},
			},
		}},
	}
	if o.SageMaker {
		doc.Statement = append(doc.Statement, PolicyStatement{
			Sid: "SageMakerExecution", Effect: "Allow",
			Principal: map[string]any{"Service": "sagemaker.amazonaws.com"},
			Action:    []string{"sts:AssumeRole"},
		})
	}
	return doc, nil
}
