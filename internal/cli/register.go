package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

func newRegisterCmd(g *globals) *cobra.Command {
	var artifact, image, desc, commit, contentType string
	var approve bool
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Upload a model artifact and add it as a new version to the model registry",
		Long: `Upload a model artifact to S3 and register it as a new version of the model's package group
(created when missing). --artifact is a model.tar.gz, a single model file or a directory (packed
into a model.tar.gz; a lone file is named xgboost-model for the XGBoost image), or an s3:// URL
of an uploaded model.tar.gz. Local artifacts go to --bucket (created when missing) under a
content-addressed key. The image defaults to SageMaker's XGBoost image of the region. When the
latest version already has this artifact and image, it is reused instead of duplicated.`,
		Example: `  sagedeploy register --model abalone --artifact model.tar.gz --bucket my-models --approve`,
		Args:    cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	c.b.str(&artifact, "artifact", "", "model.tar.gz, model file, directory, or s3:// URL")
	c.b.str(&image, "image", "", "inference image (default: SageMaker's XGBoost "+deploy.XGBoostVersion+" image of the region)")
	c.b.boolean(&approve, "approve", false, "register the version as Approved (default PendingManualApproval)")
	c.b.str(&desc, "description", "", "version description", "MODEL_DESC")
	c.b.str(&commit, "commit", "", "source commit, recorded in the version's metadata", "CIRCLE_SHA1", "GITHUB_SHA")
	c.b.str(&contentType, "content-type", "text/csv", "content type the model accepts and answers with")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		if artifact == "" {
			return usageErr(errors.New("register needs --artifact (a model.tar.gz, a model file, a directory or an s3:// URL)"))
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			res, err := d.Register(ctx, deploy.RegisterRequest{
				Model: c.model, Artifact: artifact, Bucket: c.bucket, Image: image, Approve: approve, Description: desc,
				PipelineID: c.pipelineID, ProjectID: c.projectID, Commit: commit, ContentTypes: []string{contentType},
			})
			return emit(g.stdout, c.output, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "%s version %d of %s (%s): %s\nartifact %s\n", createdOr(res.Created, "registered", "reused"), res.Version.Number, c.model, res.Version.ApprovalStatus, res.Version.ARN, res.ArtifactURL)
			})
		})
	}
	return cmd
}
