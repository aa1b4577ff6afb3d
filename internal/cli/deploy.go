package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// releaseLine prints the link to the release a command made, when it was reported.
func releaseLine(w io.Writer, url string) {
	if url != "" {
		fmt.Fprintf(w, "release: %s\n", url)
	}
}

// deployLong is the help of `sagedeploy deploy` (and of `sagedeploy sagemaker upsert-endpoint`).
const deployLong = `Make the environment's endpoint ({model}-{environment} unless --endpoint-name) serve a version:
the endpoint configuration this pipeline created (create-endpoint-config), or the one given
with --endpoint-config-name, or else a new one for the latest Approved version (--version pins
one; the model and configuration are created as needed). The endpoint is created or updated,
then sagedeploy waits until it is InService, showing progress.

SageMaker rolls a failed update back silently; sagedeploy checks that the endpoint serves the
requested configuration afterwards and otherwise fails, naming the version still serving.
Another deployment to the same endpoint is waited for (up to --lock-timeout), never interleaved.

Preflight: before anything changes, the deploy checks that the version is Approved, its
artifact is in S3, its image is in the endpoint's region, the instance quota holds the new fleet
beside the old one (blue/green), the variant name stays and every --rollback-alarm exists; each
check is named in the output, and a failed one stops the deploy (--skip-preflight skips them).

Traffic shifting: all at once by default; --canary PERCENT --bake 5m or --linear PERCENT
--bake 2m for blue/green steps, or --rolling PERCENT --bake 2m to replace the fleet in batches
(no second fleet), with --rollback-alarm NAME for automatic rollback. Each shift, batch and bake
is a line of output and an event of the release; --timeout bounds each step.
Verification: --verify-body FILE [--verify-content-type T] [--verify-expect 1..30] invokes the
new version; with --rollback-on-failure a failed check restores the previous version.`

func newDeployCmd(g *globals, use string) *cobra.Command {
	var env, configName, endpointName, desc string
	var version int
	var restore, scale, dryRun bool
	cmd := &cobra.Command{
		Use:   use,
		Short: "Create or update an environment's endpoint and wait until it serves the new version",
		Long:  deployLong,
		Example: `  MODEL_NAME=abalone DEPLOY_ENVIRONMENT=dev sagedeploy deploy
  sagedeploy deploy --model abalone --env prod --version 3 --canary 10 --bake 5m
  sagedeploy deploy --model abalone --env dev --verify-body sample.csv --verify-expect 1..30 --rollback-on-failure`,
		Args: cobra.NoArgs,
	}
	c := bindConn(cmd, g)
	c.b.str(&env, "env", "", "environment (dev, staging, prod, ...); default: the release token's", "DEPLOY_ENVIRONMENT")
	c.b.integer(&version, "version", 0, "model package version to deploy instead of the pipeline's or the latest Approved one")
	ro := bindRollout(cmd, c.b, "when a configuration is created", "of the endpoint")
	c.b.str(&configName, "endpoint-config-name", "", "deploy this existing endpoint configuration", "ENDPOINT_CONFIGURATION_NAME")
	c.b.str(&endpointName, "endpoint-name", "", "endpoint to create or update instead of {model}-{environment}", "ENDPOINT_NAME")
	c.b.str(&desc, "description", "", "model description, shown on the release", "MODEL_DESC")
	c.b.boolean(&restore, "restore-enabled", true, "let the release dashboard restore earlier versions of this component", "RESTORE_VERSION_ENABLED")
	c.b.boolean(&scale, "scale-enabled", true, "let the release dashboard scale this component", "SCALE_COMPONENT_ENABLED")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change on the endpoint (as `sagedeploy plan`) and change nothing")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.load(cmd); err != nil {
			return err
		}
		if err := c.needModel(); err != nil {
			return err
		}
		var err error
		if env, err = c.environmentFor(cmd.Context(), g, env); err != nil {
			return err
		}
		r, err := ro.parse(c.b, g.stdin, c.model, env)
		if err != nil {
			return err
		}
		req := deploy.DeployRequest{
			Model: c.model, Environment: env, EndpointName: endpointName, EndpointConfigName: configName,
			Version: version, PipelineID: c.pipelineID, ProjectID: c.projectID, Description: desc,
			InstanceType: r.instanceType, InstanceCount: r.instanceCount,
			Strategy: r.strategy, Verify: r.verify, RollbackOnFailure: r.rollbackOnFailure,
			Timeout: r.timeout, LockTimeout: r.lockTimeout, RestoreEnabled: &restore, ScaleEnabled: &scale,
			SkipPreflight: r.skipPreflight, Settings: r.settings,
		}
		return run(g, c, cmd, func(ctx context.Context, d *deploy.Deployer) error {
			if dryRun {
				return runPlan(ctx, g, c, d, req)
			}
			res, err := d.Deploy(ctx, req)
			return emit(g.stdout, c.output, res, err, func(w io.Writer) { deployText(w, res) })
		})
	}
	return cmd
}

func deployText(w io.Writer, r deploy.DeployResult) {
	defer releaseLine(w, r.ReleaseURL)
	if !r.Changed {
		fmt.Fprintf(w, "%s already serves version %d of %s (%s); nothing changed\n", r.Endpoint, r.Version.Number, r.Model, r.EndpointConfigName)
		return
	}
	prev := "nothing before"
	if r.PreviousVersion != nil {
		prev = fmt.Sprintf("version %d before", r.PreviousVersion.Number)
	}
	fmt.Fprintf(w, "%s (%s) serves version %d of %s on %s × %d — %s after %s (%s)\n",
		r.Endpoint, r.Environment, r.Version.Number, r.Model, r.InstanceType, r.InstanceCount, r.EndpointStatus, r.Duration.Round(time.Millisecond), prev)
	if r.Verification != nil && r.Verification.Passed {
		fmt.Fprintf(w, "verification passed (variant %s)\n", r.Verification.Variant)
	}
}
