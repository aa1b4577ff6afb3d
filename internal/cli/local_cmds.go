package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
	"github.com/sagedeploy/sagedeploy/localsm/quotas"
)

// addLocalCommands registers `sagedeploy local`.
func addLocalCommands(root *cobra.Command, g *globals) {
	root.AddCommand(newLocalCmd(g))
}

// Dummy credentials to export: the local SageMaker accepts any signature.
const (
	localAccessKeyID     = "local"
	localSecretAccessKey = "local"
)

// localLong and localExample are the help of `sagedeploy local`.
const (
	localLong = `Run a local SageMaker on one port: the SageMaker control-plane API (models, endpoint
configurations, endpoints, the model registry, tags), endpoint invocations that really serve
the models, STS (AssumeRoleWithWebIdentity, GetCallerIdentity) and S3 (path-style) on disk.
Point any AWS SDK or CLI at it with one endpoint URL and dummy credentials; the deployer
("sagedeploy deploy ...") then runs unchanged, with no AWS account.

Request signatures are accepted WITHOUT verification, and web identity tokens are read but
not verified: this is a development server, not a security boundary. It listens on
127.0.0.1 by default; do not expose it to a network you do not trust.

aws-sdk-go-v2 honours AWS_ENDPOINT_URL for every service, except for the STS call of its web
identity (OIDC) credentials (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), made before it reads
AWS_ENDPOINT_URL: for that path also export AWS_ENDPOINT_URL_STS with the same URL.

State (every resource, version and endpoint) and S3 objects persist in --data-dir; on start,
endpoints that were InService are deployed again (DescribeEndpoint shows SystemUpdating until
they serve). Stop it with Ctrl-C (SIGINT) or SIGTERM.

Built-in serving: XGBoost models (SageMaker's XGBoost image URIs) are served in-process. Other
images run as local processes under the SageMaker serving contract (GET /ping,
POST /invocations on $SAGEMAKER_BIND_TO_PORT) when --image-map maps them to a command.

Deployment guardrails work as in SageMaker: an UpdateEndpoint whose DeploymentConfig names
CloudWatch alarms (AutoRollbackConfiguration) rolls back to the old fleet when one goes into
ALARM during the traffic shift or a bake. --period-scale 0.01 makes alarm periods and bakes 100
times shorter, to watch a canary roll back in seconds.`
	localExample = `  # Start it and export what it prints:
  sagedeploy local
  export AWS_ENDPOINT_URL=http://127.0.0.1:4570 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1

  # Upload a model and register it (AWS CLI v2; older CLIs need --endpoint-url $AWS_ENDPOINT_URL):
  aws s3 mb s3://models
  aws s3 cp model.tar.gz s3://models/abalone/v1/model.tar.gz
  aws sagemaker create-model-package-group --model-package-group-name abalone
  aws sagemaker create-model-package --model-package-group-name abalone \
    --model-approval-status Approved \
    --inference-specification '{"Containers":[{"Image":"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1","ModelDataUrl":"s3://models/abalone/v1/model.tar.gz"}],"SupportedContentTypes":["text/csv"],"SupportedResponseMIMETypes":["text/csv"]}'

  # Deploy it and call it:
  aws sagemaker create-model --model-name abalone-v1 --execution-role-arn arn:aws:iam::000000000000:role/sm \
    --primary-container ModelPackageName=arn:aws:sagemaker:us-east-1:000000000000:model-package/abalone/1
  aws sagemaker create-endpoint-config --endpoint-config-name abalone-v1 \
    --production-variants VariantName=AllTraffic,ModelName=abalone-v1,InstanceType=ml.m5.large,InitialInstanceCount=1
  aws sagemaker create-endpoint --endpoint-name abalone-dev --endpoint-config-name abalone-v1
  aws sagemaker wait endpoint-in-service --endpoint-name abalone-dev
  aws sagemaker-runtime invoke-endpoint --endpoint-name abalone-dev --content-type text/csv \
    --body 0,0,1,0.455,0.365,0.095,0.514,0.2245,0.101,0.15 --cli-binary-format raw-in-base64-out /dev/stdout

  # Serve your own container image with a local command:
  sagedeploy local --image-map 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:1='python3 serve.py'

  # An account with room for 2 ml.m5.large endpoint instances (Service Quotas):
  sagedeploy local --endpoint-quota ml.m5.large=2

  # Throwaway instance on a free port (tests, CI):
  sagedeploy local --addr 127.0.0.1:0 --data-dir "$(mktemp -d)" --output json`
)

// localFlags are the flags of `sagedeploy local`.
type localFlags struct {
	addr, dataDir, account, region, imageMapFile, maxBody, output string
	maxModel, s3CORSOrigin                                        string
	imageMap                                                      []string
	endpointQuotas                                                []string
	defaultQuota                                                  float64
	periodScale                                                   float64
}

func newLocalCmd(g *globals) *cobra.Command {
	lf := &localFlags{}
	cmd := &cobra.Command{
		Use:     "local",
		Short:   "Run a local SageMaker (control plane, runtime, STS, S3) on one port",
		Long:    localLong,
		Example: localExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLocal(cmd.Context(), g, lf)
		},
	}
	f := cmd.Flags()
	f.StringVar(&lf.addr, "addr", g.envOr("SAGEDEPLOY_LOCAL_ADDR", localsm.DefaultAddr), "address to listen on; port 0 picks a free port (env SAGEDEPLOY_LOCAL_ADDR)")
	f.StringVar(&lf.dataDir, "data-dir", g.getenv("SAGEDEPLOY_LOCAL_DATA_DIR"), "directory for state, S3 objects and model files (default $XDG_STATE_HOME/sagedeploy/local or ~/.local/state/sagedeploy/local; env SAGEDEPLOY_LOCAL_DATA_DIR)")
	f.StringVar(&lf.account, "account", "000000000000", "12-digit AWS account id used in ARNs")
	f.StringVar(&lf.region, "region", "us-east-1", "region for ARNs of unsigned requests and for the AWS_REGION to export (signed requests use their signing region)")
	f.StringArrayVar(&lf.imageMap, "image-map", nil, "IMAGE=COMMAND: serve container IMAGE with a local COMMAND under the SageMaker serving contract (repeatable)")
	f.StringVar(&lf.imageMapFile, "image-map-file", "", "file of IMAGE=COMMAND lines (blank lines and # comments ignored); --image-map entries override it")
	f.StringVar(&lf.maxBody, "max-body-size", "6MiB", "largest invocation request body, e.g. 6MiB, 10MB or a byte count (SageMaker's limit is 6 MiB = 6291456 bytes)")
	f.StringVar(&lf.maxModel, "max-model-size", "4GiB", "largest size a model artifact may unpack to; a bigger one (e.g. a decompression bomb) fails its endpoint")
	f.StringVar(&lf.s3CORSOrigin, "s3-cors-origin", "", "the one web origin (e.g. http://localhost:3000) allowed to call the S3 API from a browser; by default web pages get nothing")
	f.Float64Var(&lf.periodScale, "period-scale", 1, "scale CloudWatch periods, alarm evaluation and deployment bakes by this factor, for demos and tests: 0.01 makes a 60-second alarm period last 0.6 s and a 10-minute canary bake 6 s (1: real time)")
	f.StringVarP(&lf.output, "output", "o", "text", "output format of the startup message: text or json")
	f.StringArrayVar(&lf.endpointQuotas, "endpoint-quota", nil, "TYPE=COUNT: the account's endpoint instance quota Service Quotas reports for an instance type, e.g. ml.m5.large=2 (repeatable; CreateEndpoint and UpdateEndpoint refuse a fleet past it, as SageMaker does)")
	f.Float64Var(&lf.defaultQuota, "default-endpoint-quota", quotas.DefaultEndpointInstances, "endpoint instance quota of every instance type --endpoint-quota does not name")
	return cmd
}

// options checks the flags and turns them into the local SageMaker's options.
func (lf *localFlags) options(g *globals) (localsm.Options, error) {
	images, err := loadImageMap(lf.imageMapFile, lf.imageMap)
	if err != nil {
		return localsm.Options{}, err
	}
	maxBytes, err := parseSize(lf.maxBody)
	if err != nil {
		return localsm.Options{}, fmt.Errorf("--max-body-size: %w", err)
	}
	maxModelBytes, err := parseSize(lf.maxModel)
	if err != nil {
		return localsm.Options{}, fmt.Errorf("--max-model-size: %w", err)
	}
	if lf.output != "text" && lf.output != "json" {
		return localsm.Options{}, fmt.Errorf("--output must be text or json, not %q", lf.output)
	}
	limits, err := quotas.ParseLimits(lf.endpointQuotas)
	if err != nil {
		return localsm.Options{}, fmt.Errorf("--endpoint-quota: %w", err)
	}
	if lf.periodScale <= 0 || lf.periodScale > 1 {
		return localsm.Options{}, fmt.Errorf("--period-scale must be more than 0 and at most 1 (1 is real time), not %v", lf.periodScale)
	}
	dataDir := lf.dataDir
	if dataDir == "" {
		if dataDir, err = localsm.DefaultDataDir(); err != nil {
			return localsm.Options{}, err
		}
	}
	return localsm.Options{Addr: lf.addr, DataDir: dataDir, Account: lf.account,
		ImageMap: images, MaxBodyBytes: maxBytes, Logger: g.logger(), DefaultRegion: lf.region,
		MaxModelBytes: maxModelBytes, S3CORSOrigin: lf.s3CORSOrigin,
		CloudWatch:     cloudwatch.Options{PeriodScale: lf.periodScale},
		EndpointQuotas: limits, DefaultEndpointQuota: lf.defaultQuota}, nil
}

// runLocal serves a local SageMaker until ctx ends (Ctrl-C).
func runLocal(ctx context.Context, g *globals, lf *localFlags) error {
	opts, err := lf.options(g)
	if err != nil {
		return err
	}
	localGC(g)
	srv, err := localsm.Start(ctx, opts)
	if err != nil {
		return err
	}
	if err := printLocalReady(g, lf.output, srv.URL(), opts.DataDir, lf.region); err != nil {
		srv.Close(context.Background())
		return err
	}
	<-ctx.Done()
	g.logger().Info("stopping local SageMaker")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Close(stopCtx); err != nil {
		return fmt.Errorf("stop local SageMaker: %w", err)
	}
	return nil
}

// localGC sets the collector for serving, unless GOGC in the environment says otherwise. The
// local SageMaker's heap is mostly what it keeps (the API's model, the loaded models) and an
// invocation leaves little garbage; at the default GOGC of 100 the collector marks that whole heap
// again every few megabytes of garbage, a cost per request that a small server does not pay. At
// 400 it marks a quarter as often, for a heap of about five times what is live (tens of MB).
func localGC(g *globals) {
	if _, set := g.lookupEnv("GOGC"); !set {
		debug.SetGCPercent(localGCPercent)
	}
}

// localGCPercent is GOGC for sagedeploy local (and up).
const localGCPercent = 400

// printLocalReady tells the user where the server is and what to export.
func printLocalReady(g *globals, output, url, dataDir, region string) error {
	env := [][2]string{
		{"AWS_ENDPOINT_URL", url},
		{"AWS_ACCESS_KEY_ID", localAccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", localSecretAccessKey},
		{"AWS_REGION", region},
	}
	if output == "json" {
		m := map[string]string{}
		for _, kv := range env {
			m[kv[0]] = kv[1]
		}
		return writeJSONLine(g.stdout, map[string]any{"url": url, "data_dir": dataDir, "env": m})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Local SageMaker listening on %s (data in %s)\n\nPoint AWS SDKs and CLIs at it:\n", url, dataDir)
	for _, kv := range env {
		fmt.Fprintf(&b, "  export %s=%s\n", kv[0], kv[1])
	}
	fmt.Fprintf(&b, "\n(AWS CLI before 2.13 and boto3 before 1.28 ignore AWS_ENDPOINT_URL: pass --endpoint-url %s.)\nPress Ctrl-C to stop.\n", url)
	_, err := fmt.Fprint(g.stdout, b.String())
	return err
}

// loadImageMap merges the image map file and --image-map flags (flags win).
func loadImageMap(file string, flags []string) (map[string]string, error) {
	out := map[string]string{}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--image-map-file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			image, command, err := splitImageMapping(line)
			if err != nil {
				return nil, fmt.Errorf("--image-map-file %s line %d: %w", file, n, err)
			}
			out[image] = command
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("--image-map-file %s: %w", file, err)
		}
	}
	for _, m := range flags {
		image, command, err := splitImageMapping(m)
		if err != nil {
			return nil, fmt.Errorf("--image-map: %w", err)
		}
		out[image] = command
	}
	return out, nil
}

func splitImageMapping(s string) (image, command string, err error) {
	image, command, ok := strings.Cut(s, "=")
	image, command = strings.TrimSpace(image), strings.TrimSpace(command)
	if !ok || image == "" || command == "" {
		return "", "", fmt.Errorf("%q is not IMAGE=COMMAND (e.g. my-registry/my-model:1=python3 serve.py)", s)
	}
	return image, command, nil
}

// parseSize reads a byte size: a count, or a number with B, KB, MB, GB (powers of 1000) or KiB,
// MiB, GiB (powers of 1024).
func parseSize(s string) (int64, error) {
	upper := strings.ToUpper(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(upper, u.suffix) {
			upper, mult = strings.TrimSpace(strings.TrimSuffix(upper, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(upper, 64)
	if err != nil || f <= 0 || f*mult > 1<<40 {
		return 0, fmt.Errorf("%q is not a size such as 6MB, 10MiB or 6291456", s)
	}
	return int64(f * mult), nil
}
