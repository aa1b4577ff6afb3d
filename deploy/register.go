package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/releases"
)

// RegisterRequest asks to add a version to the model registry.
type RegisterRequest struct {
	// Model is the model package group; created when missing.
	Model string
	// Artifact is a local model.tar.gz, a single model file or a directory (packed into a
	// model.tar.gz), or an s3:// URL of an uploaded model.tar.gz.
	Artifact string
	// ArtifactData, when set, is the model.tar.gz itself (Artifact is then only its name).
	ArtifactData []byte
	// Bucket receives local artifacts; created when missing.
	Bucket string
	// Image is the inference image; SageMaker's XGBoost image for the region when empty.
	Image string
	// ContentTypes the model accepts and answers with; text/csv when empty.
	ContentTypes []string
	// Approve registers the version as Approved (else PendingManualApproval).
	Approve     bool
	Description string
	PipelineID  string
	ProjectID   string
	Commit      string
	Repository  string
}

// RegisterResult reports the registered version.
type RegisterResult struct {
	Version       Version `json:"version"`
	ArtifactURL   string  `json:"artifact_url"`
	Uploaded      bool    `json:"uploaded"`
	BucketCreated bool    `json:"bucket_created"`
	GroupCreated  bool    `json:"group_created"`
	// Created is false when the latest version already had this artifact and image (a retried
	// step): that version is returned instead of a duplicate.
	Created  bool `json:"created"`
	Approved bool `json:"approved"`
}

// Register uploads the artifact (content-addressed, so re-uploading is a no-op), creates the
// model package group when missing and adds a version with the artifact and image. If the latest
// version already has the same artifact and image, it is reused (and approved when asked).
func (d *Deployer) Register(ctx context.Context, req RegisterRequest) (RegisterResult, error) {
	var res RegisterResult
	if req.Model == "" {
		return res, errorf(ErrInvalid, "register needs a model name (--model or MODEL_NAME): the model package group to add a version to")
	}
	if err := releases.CheckModelName(req.Model); err != nil {
		return res, errorf(ErrInvalid, "%s", err)
	}
	if req.Artifact == "" && req.ArtifactData == nil {
		return res, errorf(ErrInvalid, "register needs an artifact: --artifact model.tar.gz (or a model file, a directory, or an s3:// URL)")
	}
	image := req.Image
	if image == "" {
		var err error
		if image, err = XGBoostImage(d.region); err != nil {
			return res, err
		}
	}
	if err := d.placeArtifact(ctx, req, image, &res); err != nil {
		return res, err
	}
	if err := d.ensureGroup(ctx, req, &res); err != nil {
		return res, err
	}
	if reused, err := d.reuseLatest(ctx, req, image, &res); err != nil || reused {
		return res, err
	}
	return res, d.createVersion(ctx, req, image, &res)
}

// placeArtifact makes sure the artifact is in S3 — checking an s3:// URL, or packing and
// uploading a local one — and sets res.ArtifactURL.
func (d *Deployer) placeArtifact(ctx context.Context, req RegisterRequest, image string, res *RegisterResult) error {
	if strings.HasPrefix(req.Artifact, "s3://") && req.ArtifactData == nil {
		if err := d.checkObject(ctx, req.Artifact); err != nil {
			return err
		}
		res.ArtifactURL = req.Artifact
		return nil
	}
	data := req.ArtifactData
	if data == nil {
		var err error
		if data, err = packArtifact(req.Artifact, isXGBoostImage(image)); err != nil {
			return err
		}
	}
	if req.Bucket == "" {
		return errorf(ErrInvalid, "register needs an S3 bucket for the artifact: --bucket or S3_BUCKET_NAME (created if missing)")
	}
	return d.upload(ctx, req.Model, req.Bucket, data, res)
}

// approvalStatus is the status a new (or reused) version gets.
func approvalStatus(approve bool) types.ModelApprovalStatus {
	if approve {
		return types.ModelApprovalStatusApproved
	}
	return types.ModelApprovalStatusPendingManualApproval
}

// reuseLatest returns the latest version instead of a duplicate when it already has this artifact
// and image (a retried step), approving it when asked.
func (d *Deployer) reuseLatest(ctx context.Context, req RegisterRequest, image string, res *RegisterResult) (bool, error) {
	all, err := d.listVersions(ctx, req.Model)
	if err != nil || len(all) == 0 {
		return false, err
	}
	latest, err := d.describeVersion(ctx, aws.ToString(all[len(all)-1].ModelPackageArn))
	if err != nil {
		return false, err
	}
	if latest.ModelDataURL != res.ArtifactURL || latest.Image != image {
		return false, nil
	}
	if req.Approve && latest.ApprovalStatus != string(types.ModelApprovalStatusApproved) {
		status := approvalStatus(true)
		if _, err := d.sm.UpdateModelPackage(ctx, &sagemaker.UpdateModelPackageInput{ModelPackageArn: aws.String(latest.ARN), ModelApprovalStatus: status}); err != nil {
			return false, fmt.Errorf("approve %s: %w", latest.ARN, err)
		}
		latest.ApprovalStatus, res.Approved = string(status), true
	}
	res.Version = latest
	d.emit(Event{Phase: releases.PhaseRegister, Message: fmt.Sprintf("%s of %s already has this artifact and image; reusing it", latest.String(), req.Model)}, nil)
	return true, nil
}

// createVersion adds a version with the artifact and image to the group.
func (d *Deployer) createVersion(ctx context.Context, req RegisterRequest, image string, res *RegisterResult) error {
	ctypes := req.ContentTypes
	if len(ctypes) == 0 {
		ctypes = []string{"text/csv"}
	}
	in := &sagemaker.CreateModelPackageInput{
		ModelPackageGroupName: aws.String(req.Model),
		InferenceSpecification: &types.InferenceSpecification{
			Containers:                 []types.ModelPackageContainerDefinition{{Image: aws.String(image), ModelDataUrl: aws.String(res.ArtifactURL)}},
			SupportedContentTypes:      ctypes,
			SupportedResponseMIMETypes: ctypes,
		},
		ModelApprovalStatus:        approvalStatus(req.Approve),
		Tags:                       sdkTags(d.baseTags(req.Model, "", req.PipelineID, req.ProjectID)),
		MetadataProperties:         d.versionMetadata(req),
		CustomerMetadataProperties: d.customerMetadata(req),
	}
	if req.Description != "" {
		in.ModelPackageDescription = aws.String(req.Description)
	}
	out, err := d.sm.CreateModelPackage(ctx, in)
	if err != nil {
		return fmt.Errorf("add a version to model package group %s: %w", req.Model, err)
	}
	v, err := d.describeVersion(ctx, aws.ToString(out.ModelPackageArn))
	if err != nil {
		return err
	}
	res.Version, res.Created, res.Approved = v, true, req.Approve
	d.emit(Event{Phase: releases.PhaseRegister, Message: fmt.Sprintf("registered %s of %s (%s): %s", v.String(), req.Model, v.ApprovalStatus, v.ARN)}, nil)
	return nil
}

// versionMetadata is where the version comes from (commit, repository, project), when known.
func (d *Deployer) versionMetadata(req RegisterRequest) *types.MetadataProperties {
	if req.Commit == "" && req.ProjectID == "" && req.Repository == "" {
		return nil
	}
	mp := &types.MetadataProperties{GeneratedBy: aws.String(d.createdBy())}
	if req.Commit != "" {
		mp.CommitId = aws.String(req.Commit)
	}
	if req.Repository != "" {
		mp.Repository = aws.String(req.Repository)
	}
	if req.ProjectID != "" {
		mp.ProjectId = aws.String(req.ProjectID)
	}
	return mp
}

// customerMetadata records who registered the version, and from which pipeline and commit.
func (d *Deployer) customerMetadata(req RegisterRequest) map[string]string {
	meta := map[string]string{"registered-by": tagValue(d.createdBy())}
	if req.PipelineID != "" {
		meta["pipeline-id"] = tagValue(req.PipelineID)
	}
	if req.Commit != "" {
		meta["commit"] = tagValue(req.Commit)
	}
	return meta
}

func (d *Deployer) ensureGroup(ctx context.Context, req RegisterRequest, res *RegisterResult) error {
	_, err := d.sm.DescribeModelPackageGroup(ctx, &sagemaker.DescribeModelPackageGroupInput{ModelPackageGroupName: aws.String(req.Model)})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("describe model package group %s: %w", req.Model, err)
	}
	_, err = d.sm.CreateModelPackageGroup(ctx, &sagemaker.CreateModelPackageGroupInput{
		ModelPackageGroupName:        aws.String(req.Model),
		ModelPackageGroupDescription: aws.String("Versions of " + req.Model + ", registered by sagedeploy"),
		Tags:                         sdkTags(d.baseTags(req.Model, "", req.PipelineID, req.ProjectID)),
	})
	if err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("create model package group %s: %w", req.Model, err)
	}
	res.GroupCreated = err == nil
	if res.GroupCreated {
		d.emit(Event{Phase: releases.PhaseRegister, Message: "created model package group " + req.Model}, nil)
	}
	return nil
}

// upload stores data at a content-addressed key of bucket, creating the bucket when missing.
func (d *Deployer) upload(ctx context.Context, model, bucket string, data []byte, res *RegisterResult) error {
	sum := sha256.Sum256(data)
	key := fmt.Sprintf("sagedeploy/%s/%s/model.tar.gz", model, hex.EncodeToString(sum[:])[:16])
	res.ArtifactURL = "s3://" + bucket + "/" + key
	if _, err := d.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		if !isNotFound(err) && httpStatus(err) != 404 {
			return fmt.Errorf("check bucket %s: %w", bucket, err)
		}
		in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
		if d.region != "us-east-1" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(d.region)}
		}
		if _, err := d.s3.CreateBucket(ctx, in); err != nil {
			var owned *s3types.BucketAlreadyOwnedByYou
			if !errors.As(err, &owned) {
				return fmt.Errorf("create bucket %s: %w", bucket, err)
			}
		} else {
			res.BucketCreated = true
			d.emit(Event{Phase: releases.PhaseRegister, Message: "created bucket " + bucket}, nil)
		}
	}
	if _, err := d.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err == nil {
		return nil
	}
	if _, err := d.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentType: aws.String("application/gzip"), ContentLength: aws.Int64(int64(len(data))),
	}); err != nil {
		return fmt.Errorf("upload the artifact to %s: %w", res.ArtifactURL, err)
	}
	res.Uploaded = true
	d.emit(Event{Phase: releases.PhaseRegister, Message: fmt.Sprintf("uploaded %d bytes to %s", len(data), res.ArtifactURL)}, nil)
	return nil
}

// checkObject makes sure an s3:// artifact exists, so a typo fails here rather than at deploy time.
func (d *Deployer) checkObject(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || strings.TrimPrefix(u.Path, "/") == "" {
		return errorf(ErrInvalid, "artifact %q is not an s3://bucket/key URL", raw)
	}
	_, err = d.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.Host), Key: aws.String(strings.TrimPrefix(u.Path, "/"))})
	if err != nil {
		if isNotFound(err) || httpStatus(err) == 404 {
			return errorf(ErrInvalid, "artifact %s does not exist: upload it first, or give a local file to --artifact", raw)
		}
		return fmt.Errorf("check artifact %s: %w", raw, err)
	}
	return nil
}

// packArtifact returns a model.tar.gz: the file itself when it already is one, else a gzip tar of
// the file (named xgboost-model for SageMaker's XGBoost image) or of the directory's files.
func packArtifact(path string, xgboost bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, errorf(ErrInvalid, "artifact %s: %v", path, err)
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read artifact: %w", err)
		}
		if isTarGz(data) {
			return data, nil
		}
		name := filepath.Base(path)
		if xgboost {
			name = "xgboost-model"
		}
		return tarGz(map[string][]byte{name: data})
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pack artifact directory %s: %w", path, err)
	}
	if len(files) == 0 {
		return nil, errorf(ErrInvalid, "artifact directory %s is empty", path)
	}
	return tarGz(files)
}

func isTarGz(data []byte) bool {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return false
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return false
	}
	_, err = tar.NewReader(zr).Next()
	return err == nil
}

func tarGz(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, bytes.NewReader(files[n])); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
