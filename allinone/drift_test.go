package allinone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/chromedp/chromedp"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/internal/cli"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
)

// TestDriftObservedEverywhereAndAdoptedInOneClick changes dev's endpoint with the AWS SDK behind
// sagedeploy's back. The stack's agent, observing every 200ms, notices; the dashboard, `sagedeploy
// status` (text and JSON) and /metrics say "changed outside sagedeploy" with what differs; one
// click on Adopt makes the observed state the recorded one. Then traffic sent to the endpoint
// shows on the component page's chart, read by the agent from the local CloudWatch.
func TestDriftObservedEverywhereAndAdoptedInOneClick(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{ObserveInterval: 200 * time.Millisecond, Server: server.Options{StreamPoll: 200 * time.Millisecond}})
	dev, err := s.Deployer(bg, "dev", deploy.Options{})
	must(t, err)
	data, _ := abalone.Artifact(1)
	_, err = dev.Register(bg, deploy.RegisterRequest{Model: "abalone", Artifact: "model.tar.gz", ArtifactData: data, Bucket: "models", Approve: true})
	must(t, err)
	_, err = dev.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
	must(t, err)
	allinonetest.WaitFor(t, 30*time.Second, "the agent's first look at dev/abalone, in sync", func() bool {
		o, d, _ := s.Store().Observation(bg, "dev", "abalone")
		return o != nil && d == nil && o.InstanceCount == 1
	})

	// Behind sagedeploy's back: two instances instead of one, straight through the AWS SDK.
	_, err = allinonetest.SageMaker(s).UpdateEndpointWeightsAndCapacities(bg, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName: aws.String("abalone-dev"), DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{
			{VariantName: aws.String(variantOf(t, s, "abalone-dev")), DesiredInstanceCount: aws.Int32(2)}}})
	must(t, err)
	allinonetest.WaitFor(t, 30*time.Second, "the server to mark dev/abalone changed outside sagedeploy", func() bool {
		_, d, _ := s.Store().Observation(bg, "dev", "abalone")
		return d != nil && hasDifference(*d, "instances", "1", "2")
	})

	expectDriftInAPIAndMetrics(t, s)
	expectDriftInStatus(t, s)
	ctx := adoptInBrowser(t, s)
	expectInvocationsOnChart(t, s, ctx)
}

func variantOf(t *testing.T, s *allinone.Stack, endpoint string) string {
	t.Helper()
	out, err := allinonetest.SageMaker(s).DescribeEndpoint(bg, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	must(t, err)
	return aws.ToString(out.ProductionVariants[0].VariantName)
}

func hasDifference(d releases.Drift, field, recorded, observed string) bool {
	for _, x := range d.Differences {
		if x.Field == field && x.Recorded == recorded && x.Observed == observed {
			return true
		}
	}
	return false
}

func expectDriftInAPIAndMetrics(t *testing.T, s *allinone.Stack) {
	t.Helper()
	login := s.AdminLogin()
	var api struct{ Drift []releases.Drift }
	if code := allinonetest.API(t, s, login.User, login.Password, "GET", "/api/v1/drift", nil, &api); code != 200 || len(api.Drift) != 1 || api.Drift[0].Model != "abalone" {
		t.Fatalf("GET /api/v1/drift: HTTP %d %+v, want abalone in dev", code, api.Drift)
	}
	resp, err := http.Get(s.ListenURL() + "/metrics")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `sagedeploy_component_drift{differences="instances",environment="dev",model="abalone"} 1`
	if !strings.Contains(string(body), want) {
		t.Fatalf("/metrics lacks %s", want)
	}
}

func expectDriftInStatus(t *testing.T, s *allinone.Stack) {
	t.Helper()
	rel, err := s.ReleasesEnv(bg, "dev")
	must(t, err)
	env := map[string]string{}
	for _, kv := range append(s.AWSEnv(), rel...) {
		env[kv[0]] = kv[1]
	}
	text := runCLI(t, env, "status")
	if !strings.Contains(text, "CHANGED OUTSIDE SAGEDEPLOY") || !strings.Contains(text, "abalone in dev: changed outside sagedeploy: instances 1 → 2") {
		t.Fatalf("sagedeploy status does not say dev changed outside sagedeploy:\n%s", text)
	}
	var js struct {
		Components []deploy.Component `json:"components"`
		Drift      []releases.Drift   `json:"drift"`
	}
	must(t, json.Unmarshal([]byte(runCLI(t, env, "status", "-o", "json")), &js))
	if len(js.Components) != 1 || len(js.Drift) != 1 || !hasDifference(js.Drift[0], "instances", "1", "2") {
		t.Fatalf("sagedeploy status -o json: %+v", js)
	}
}

func runCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := cli.Run(context.Background(), args, cli.Process{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: cli.EnvMap(env)}); code != 0 {
		t.Fatalf("sagedeploy %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

func adoptInBrowser(t *testing.T, s *allinone.Stack) context.Context {
	t.Helper()
	login := s.AdminLogin()
	ctx := browsertest.New(t, 120*time.Second)
	must(t, browsertest.SignIn(ctx, s.ServerURL(), login.User, login.Password))
	waitText(t, ctx, `[data-component="dev/abalone"] [data-drift]`, "changed outside sagedeploy")
	must(t, chromedp.Do(ctx, chromedp.Navigate(s.ServerURL()+"/components/dev/abalone")))
	waitText(t, ctx, "#drift", "Changed outside sagedeploy")
	waitText(t, ctx, `#drift-differences [data-field="instances"]`, "endpoint has 2")
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#adopt"))))
	waitText(t, ctx, "#flash", "Adopted")
	waitText(t, ctx, "#instance-count", "2")
	if n, err := browsertest.Eval[int](ctx, `document.querySelectorAll('#drift').length`); err != nil || n != 0 {
		t.Fatalf("after adopting, the drift callout is still on the page (%d, %v)", n, err)
	}
	if _, d, _ := s.Store().Observation(bg, "dev", "abalone"); d != nil {
		t.Fatalf("after adopting, the store still has drift: %s", d.Summary())
	}
	return ctx
}

func expectInvocationsOnChart(t *testing.T, s *allinone.Stack, ctx context.Context) {
	t.Helper()
	for range 5 {
		allinonetest.Invoke(t, s, "abalone-dev", abalone.SampleCSV())
	}
	allinonetest.WaitFor(t, 30*time.Second, "the agent to report 5 invocations of dev/abalone", func() bool {
		pts, _ := s.Store().MetricPoints(bg, "dev", "abalone", time.Now().Add(-time.Hour))
		sum := 0.0
		for _, p := range pts {
			if p.Metric == releases.MetricInvocations {
				sum += p.Value
			}
		}
		return sum == 5
	})
	must(t, chromedp.Do(ctx, chromedp.Navigate(s.ServerURL()+"/components/dev/abalone")))
	waitText(t, ctx, "#chart-traffic-w1-text", "5 invocations, 0 4xx and 0 5xx errors last hour")
	if n, err := browsertest.Eval[int](ctx, `document.querySelectorAll('#chart-traffic-w1 [data-series="invocations"]').length`); err != nil || n != 1 {
		t.Fatalf("the hour's traffic chart has %d invocation lines (%v), want 1", n, err)
	}
	if path, err := browsertest.Screenshot(ctx, "component-charts.png"); err == nil {
		t.Logf("screenshot of the component page with its charts: %s", path)
	}
}

// TestAutoscaledInstancesAreNotDrift: with the variant registered with Application Auto Scaling
// (1 to 3 instances), a count the scaler could have set is not "changed outside sagedeploy".
func TestAutoscaledInstancesAreNotDrift(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{ObserveInterval: 200 * time.Millisecond})
	dev, err := s.Deployer(bg, "dev", deploy.Options{})
	must(t, err)
	data, _ := abalone.Artifact(1)
	_, err = dev.Register(bg, deploy.RegisterRequest{Model: "abalone", Artifact: "model.tar.gz", ArtifactData: data, Bucket: "models", Approve: true})
	must(t, err)
	_, err = dev.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
	must(t, err)
	aas := applicationautoscaling.NewFromConfig(aws.Config{Region: s.Region(), Credentials: credentials.NewStaticCredentialsProvider(allinone.AccessKeyID, allinone.SecretAccessKey, "")},
		func(o *applicationautoscaling.Options) { o.BaseEndpoint = aws.String(s.LocalURL()) })
	_, err = aas.RegisterScalableTarget(bg, &applicationautoscaling.RegisterScalableTargetInput{
		ServiceNamespace: aastypes.ServiceNamespaceSagemaker, ResourceId: aws.String("endpoint/abalone-dev/variant/" + variantOf(t, s, "abalone-dev")),
		ScalableDimension: aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(3)})
	must(t, err)
	_, err = allinonetest.SageMaker(s).UpdateEndpointWeightsAndCapacities(bg, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName: aws.String("abalone-dev"), DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{
			{VariantName: aws.String(variantOf(t, s, "abalone-dev")), DesiredInstanceCount: aws.Int32(2)}}})
	must(t, err)
	allinonetest.WaitFor(t, 30*time.Second, "the agent to observe 2 instances of dev/abalone within its autoscaling range", func() bool {
		o, _, _ := s.Store().Observation(bg, "dev", "abalone")
		return o != nil && o.InstanceCount == 2 && o.AutoscaleMax == 3
	})
	if _, d, _ := s.Store().Observation(bg, "dev", "abalone"); d != nil {
		t.Fatalf("an autoscaled count is marked as drift: %s", d.Summary())
	}
}
