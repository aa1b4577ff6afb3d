package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"

	"github.com/sagedeploy/sagedeploy/releases"
)

// Version is one model package version of a model.
type Version struct {
	Model          string     `json:"model"`
	Number         int        `json:"number"`
	ARN            string     `json:"model_package_arn"`
	ApprovalStatus string     `json:"approval_status,omitempty"`
	Description    string     `json:"description,omitempty"`
	Image          string     `json:"image,omitempty"`
	ModelDataURL   string     `json:"model_data_url,omitempty"`
	CreatedAt      *time.Time `json:"created_at,omitempty"`

	// detailed: read with DescribeModelPackage, so Image and ModelDataURL are known (empty
	// meaning the version has none).
	detailed bool
	// named: Model and Number come from the name of a model the pipeline made (findPipelineModel),
	// unread; the model itself says the ARN, and whether it really serves that version.
	named bool
}

// release converts v for the release server; nil when nothing is known.
func (v *Version) release() *releases.Version {
	if v == nil || (v.Number == 0 && v.ARN == "") {
		return nil
	}
	return &releases.Version{ModelPackageARN: v.ARN, Number: v.Number, Description: v.Description}
}

// releaseVersion is v for the release server, the zero Version when nothing is known.
func releaseVersion(v *Version) releases.Version {
	if r := v.release(); r != nil {
		return *r
	}
	return releases.Version{}
}

// String renders "version 3" or "an unversioned model" for messages.
func (v *Version) String() string {
	if v == nil || v.Number == 0 {
		return "an unknown version"
	}
	return "version " + strconv.Itoa(v.Number)
}

// versionFromARN parses ".../model-package/{group}/{n}".
func versionFromARN(arn string) (group string, n int, ok bool) {
	i := strings.Index(arn, ":model-package/")
	if i < 0 {
		return "", 0, false
	}
	parts := strings.Split(arn[i+len(":model-package/"):], "/")
	if len(parts) != 2 {
		return "", 0, false
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return "", 0, false
	}
	return parts[0], n, true
}

// listVersions lists every version of a group, oldest first. It tells a missing group
// (ErrGroupNotFound) from an empty one.
func (d *Deployer) listVersions(ctx context.Context, model string) ([]types.ModelPackageSummary, error) {
	var out []types.ModelPackageSummary
	p := sagemaker.NewListModelPackagesPaginator(d.sm, &sagemaker.ListModelPackagesInput{
		ModelPackageGroupName: aws.String(model),
		ModelPackageType:      types.ModelPackageTypeVersioned,
		MaxResults:            aws.Int32(100),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if isNotFound(err) {
				return nil, d.groupNotFound(model, err)
			}
			return nil, fmt.Errorf("list versions of model %s: %w", model, err)
		}
		out = append(out, page.ModelPackageSummaryList...)
	}
	if len(out) == 0 {
		if _, err := d.sm.DescribeModelPackageGroup(ctx, &sagemaker.DescribeModelPackageGroupInput{ModelPackageGroupName: aws.String(model)}); err != nil {
			if isNotFound(err) {
				return nil, d.groupNotFound(model, err)
			}
			return nil, fmt.Errorf("describe model package group %s: %w", model, err)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return aws.ToInt32(out[i].ModelPackageVersion) < aws.ToInt32(out[j].ModelPackageVersion)
	})
	return out, nil
}

func (d *Deployer) groupNotFound(model string, cause error) error {
	return errorf(ErrGroupNotFound, "model package group %s does not exist in %s: register a version with `sagedeploy register --model %s --artifact model.tar.gz --bucket BUCKET --approve` (or check MODEL_NAME / --model and the region)%s",
		model, d.region, model, causeSuffix(cause))
}

func causeSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " [" + err.Error() + "]"
}

// ResolveVersion finds the version to deploy: number when it is not 0, else the latest Approved
// version of the group, with all its details (image, artifact). Only Approved versions are deployed.
func (d *Deployer) ResolveVersion(ctx context.Context, model string, number int) (Version, error) {
	return d.resolveVersion(ctx, model, number, true)
}

// resolveVersion is ResolveVersion; without details it answers from the group's list alone
// (number, ARN, approval, description), one call instead of two, for steps that only name the
// version (withDetails fills the rest where it is needed).
func (d *Deployer) resolveVersion(ctx context.Context, model string, number int, details bool) (Version, error) {
	if model == "" {
		return Version{}, errorf(ErrInvalid, "no model given: set --model or MODEL_NAME to the model package group name")
	}
	all, err := d.listVersions(ctx, model)
	if err != nil {
		return Version{}, err
	}
	var pick *types.ModelPackageSummary
	if number > 0 {
		for i := range all {
			if int(aws.ToInt32(all[i].ModelPackageVersion)) == number {
				pick = &all[i]
			}
		}
		if pick == nil {
			return Version{}, errorf(ErrVersionNotFound, "model %s has no version %d (%s)", model, number, describeVersions(all))
		}
		if pick.ModelApprovalStatus != types.ModelApprovalStatusApproved {
			return Version{}, errorf(ErrNoApprovedVersion, "version %d of model %s is %s, not Approved; approve it with `aws sagemaker update-model-package --model-package-arn %s --model-approval-status Approved`",
				number, model, statusOf(*pick), aws.ToString(pick.ModelPackageArn))
		}
	} else {
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].ModelApprovalStatus == types.ModelApprovalStatusApproved {
				pick = &all[i]
				break
			}
		}
		if pick == nil {
			hint := "`sagedeploy register --model " + model + " --artifact model.tar.gz --bucket BUCKET --approve`"
			if n := len(all); n > 0 {
				hint = "`aws sagemaker update-model-package --model-package-arn " + aws.ToString(all[n-1].ModelPackageArn) +
					" --model-approval-status Approved`, or register an approved one with " + hint
			}
			return Version{}, errorf(ErrNoApprovedVersion, "model package group %s has no Approved version (%s); approve one with %s",
				model, describeVersions(all), hint)
		}
	}
	if details {
		return d.describeVersion(ctx, aws.ToString(pick.ModelPackageArn))
	}
	return Version{
		Model: model, Number: int(aws.ToInt32(pick.ModelPackageVersion)), ARN: aws.ToString(pick.ModelPackageArn),
		ApprovalStatus: string(pick.ModelApprovalStatus), Description: aws.ToString(pick.ModelPackageDescription),
		CreatedAt: pick.CreationTime,
	}, nil
}

// withDetails is v with what only DescribeModelPackage says (approval, image, artifact): v as is
// when it has them, else v described once by its ARN. A version known only from the name of
// modelName (named) is read through that model, which must serve it.
func (d *Deployer) withDetails(ctx context.Context, v Version, modelName string) (Version, error) {
	switch {
	case v.detailed:
		return v, nil
	case v.ARN != "":
		return d.describeVersion(ctx, v.ARN)
	case !v.named:
		return v, nil
	}
	got, err := d.modelVersion(ctx, modelName)
	if err != nil {
		return v, err
	}
	if !strings.EqualFold(got.Model, v.Model) || got.Number != v.Number {
		serves := "no version of the model registry"
		if got.Model != "" {
			serves = got.String() + " of " + got.Model
		}
		return v, errorf(ErrInvalid, "model %s is named for %s of %s but serves %s: it was not made by this pipeline. Nothing was changed: delete the model, or use another pipeline id",
			modelName, v.String(), v.Model, serves)
	}
	return got, nil
}

func statusOf(s types.ModelPackageSummary) string {
	if s.ModelApprovalStatus == "" {
		return "without approval status"
	}
	return string(s.ModelApprovalStatus)
}

// describeVersions renders "3 versions: 1 PendingManualApproval, 2 Rejected, 3 PendingManualApproval".
func describeVersions(all []types.ModelPackageSummary) string {
	if len(all) == 0 {
		return "no versions"
	}
	parts := make([]string, 0, len(all))
	for _, s := range all {
		parts = append(parts, fmt.Sprintf("%d %s", aws.ToInt32(s.ModelPackageVersion), statusOf(s)))
	}
	noun := "versions"
	if len(all) == 1 {
		noun = "version"
	}
	return fmt.Sprintf("%d %s: %s", len(all), noun, strings.Join(parts, ", "))
}

// describeVersion reads one version by ARN.
func (d *Deployer) describeVersion(ctx context.Context, arn string) (Version, error) {
	out, err := d.sm.DescribeModelPackage(ctx, &sagemaker.DescribeModelPackageInput{ModelPackageName: aws.String(arn)})
	if err != nil {
		return Version{}, fmt.Errorf("describe model package %s: %w", arn, err)
	}
	v := Version{
		Model:          aws.ToString(out.ModelPackageGroupName),
		Number:         int(aws.ToInt32(out.ModelPackageVersion)),
		ARN:            aws.ToString(out.ModelPackageArn),
		ApprovalStatus: string(out.ModelApprovalStatus),
		Description:    aws.ToString(out.ModelPackageDescription),
		CreatedAt:      out.CreationTime,
		detailed:       true,
	}
	if v.ARN == "" {
		v.ARN = arn
	}
	if g, n, ok := versionFromARN(v.ARN); ok {
		if v.Model == "" {
			v.Model = g
		}
		if v.Number == 0 {
			v.Number = n
		}
	}
	if spec := out.InferenceSpecification; spec != nil && len(spec.Containers) > 0 {
		v.Image = aws.ToString(spec.Containers[0].Image)
		v.ModelDataURL = aws.ToString(spec.Containers[0].ModelDataUrl)
	}
	return v, nil
}

// apiError returns the code and message of an AWS API error.
func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

// isNotFound reports a missing resource: SageMaker says so with ResourceNotFound or with a
// ValidationException whose message says "Could not find" / "does not exist".
func isNotFound(err error) bool {
	code, msg := apiError(err)
	switch code {
	case "ResourceNotFound", "ResourceNotFoundException", "NoSuchBucket", "NotFound", "NoSuchKey":
		return true
	case "ValidationException":
		m := strings.ToLower(msg)
		return strings.Contains(m, "could not find") || strings.Contains(m, "does not exist") || strings.Contains(m, "not found")
	}
	return false
}

// isAlreadyExists reports a create that lost a race (or is retried).
func isAlreadyExists(err error) bool {
	code, msg := apiError(err)
	m := strings.ToLower(msg)
	return (code == "ValidationException" || code == "ConflictException" || code == "ResourceInUse") &&
		(strings.Contains(m, "already exist") || strings.Contains(m, "already in use"))
}

// isInProgress reports UpdateEndpoint refused because another change is under way.
func isInProgress(err error) bool {
	code, msg := apiError(err)
	m := strings.ToLower(msg)
	return code == "ValidationException" && (strings.Contains(m, "in-progress") || strings.Contains(m, "in progress"))
}
