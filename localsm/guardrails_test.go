package localsm_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	lcw "github.com/sagedeploy/sagedeploy/localsm/cloudwatch"
)

// flakyImage is served by testdata/flaky_server.py, which answers 500 to every other invocation.
const flakyImage = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flaky-model:2"

// guardrailScale runs CloudWatch and deployment waits 100 times faster than real time: a
// 10-second alarm period lasts 0.1 s, a 10-minute bake 6 s.
const guardrailScale = 0.01

// startGuardrailEnv starts a local SageMaker serving v1 (XGBoost, variant Blue) on endpoint
// name, with model v2 (the flaky container, variant Green) ready as configuration "v2", both on
// instances instances, and an alarm on Green's Invocation5XXErrors.
func startGuardrailEnv(t *testing.T, name, alarm string, instances int32) *env {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is needed to run the flaky model container (testdata/flaky_server.py)")
	}
	script, err := filepath.Abs("testdata/flaky_server.py")
	if err != nil {
		t.Fatal(err)
	}
	isolateAWSConfig(t)
	e := startEnvWith(t, localsm.Options{Logger: testLogger(t),
		ImageMap:   map[string]string{flakyImage: python + " " + script},
		CloudWatch: lcw.Options{PeriodScale: guardrailScale}})
	ctx := context.Background()
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("scorer-v1"), ExecutionRoleArn: aws.String(roleArn),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(xgbImage), ModelDataUrl: aws.String(e.uploadArtifact(1))}}); err != nil {
		t.Fatalf("create model scorer-v1: %v", err)
	}
	e.variantConfig("v1", "scorer-v1", "Blue", instances)
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("scorer-v2"),
		ExecutionRoleArn: aws.String(roleArn), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(flakyImage)}}); err != nil {
		t.Fatalf("create model scorer-v2: %v", err)
	}
	e.variantConfig("v2", "scorer-v2", "Green", instances)
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String("v1")}); err != nil {
		t.Fatalf("create endpoint %s: %v", name, err)
	}
	e.waitStatus(name, smtypes.EndpointStatusInService)

	cw := cloudwatch.NewFromConfig(e.cfg)
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(alarm), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocation5XXErrors"),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("EndpointName"), Value: aws.String(name)}, {Name: aws.String("VariantName"), Value: aws.String("Green")}},
		Statistic:  cwtypes.StatisticSum, Period: aws.Int32(10), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("notBreaching"),
	}); err != nil {
		t.Fatalf("put metric alarm %s: %v", alarm, err)
	}
	return e
}

// variantConfig creates an endpoint configuration with one variant named variant.
func (e *env) variantConfig(configName, model, variant string, instances int32) {
	e.t.Helper()
	if _, err := e.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(configName),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String(variant), ModelName: aws.String(model),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(instances)}},
	}); err != nil {
		e.t.Fatalf("create endpoint config %s: %v", configName, err)
	}
}

// traffic invokes an endpoint from a few clients until stopped, counting answers and failures
// per variant (X-Amzn-Invoked-Production-Variant, or the variant a ModelError names).
type traffic struct {
	mu     sync.Mutex
	ok     map[string]int
	failed map[string]int
	errs   []string
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startTraffic(e *env, endpoint string, clients int) *traffic {
	tr := &traffic{ok: map[string]int{}, failed: map[string]int{}, stop: make(chan struct{})}
	rt := sagemakerruntime.NewFromConfig(e.cfg)
	for range clients {
		tr.wg.Go(func() {
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				tr.invoke(rt, endpoint)
			}
		})
	}
	return tr
}

func (tr *traffic) invoke(rt *sagemakerruntime.Client, endpoint string) {
	out, err := rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if err == nil {
		tr.ok[aws.ToString(out.InvokedProductionVariant)]++
		return
	}
	variant := "unknown"
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Header.Get("X-Amzn-Invoked-Production-Variant") != "" {
		variant = re.Response.Header.Get("X-Amzn-Invoked-Production-Variant")
	} else if _, rest, ok := strings.Cut(err.Error(), "(variant "); ok {
		variant, _, _ = strings.Cut(rest, ")")
	}
	tr.failed[variant]++
	if variant != "Green" && len(tr.errs) < 5 {
		tr.errs = append(tr.errs, err.Error())
	}
}

// end stops the clients and returns the counts.
func (tr *traffic) end() (ok, failed map[string]int, errs []string) {
	close(tr.stop)
	tr.wg.Wait()
	return tr.ok, tr.failed, tr.errs
}

// waitRolledBack polls DescribeEndpoint until the update settles, recording whether it was seen
// shifting (PendingDeploymentSummary), and returns the settled description.
func (e *env) waitSettledUpdate(name string) (final *sagemaker.DescribeEndpointOutput, sawPending bool) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		out, err := e.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if err != nil {
			e.t.Fatalf("describe endpoint %s: %v", name, err)
		}
		if out.PendingDeploymentSummary != nil {
			sawPending = true
		}
		if out.EndpointStatus != smtypes.EndpointStatusUpdating {
			return out, sawPending
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("endpoint %s is still Updating after 90s", name)
	return nil, false
}

// TestGuardrailAlarmRollsBack is issue 12's end-to-end guardrail through the AWS SDK: v1 serves;
// v2 answers 500 to every other request; v2 goes out with a guardrail on an alarm on
// Invocation5XXErrors; under traffic the alarm fires, the local SageMaker rolls the endpoint back
// to v1 with a FailureReason naming the alarm, and no request failed on v1.
func TestGuardrailAlarmRollsBack(t *testing.T) {
	cases := []struct {
		name      string
		instances int32
		config    *smtypes.DeploymentConfig
	}{
		{"canary 20% with a 10-minute bake", 1, &smtypes.DeploymentConfig{
			BlueGreenUpdatePolicy: &smtypes.BlueGreenUpdatePolicy{
				TrafficRoutingConfiguration: &smtypes.TrafficRoutingConfig{Type: smtypes.TrafficRoutingConfigTypeCanary,
					CanarySize:            &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeCapacityPercent, Value: aws.Int32(20)},
					WaitIntervalInSeconds: aws.Int32(600)},
				MaximumExecutionTimeoutInSeconds: aws.Int32(3600)},
		}},
		{"all at once with a 10-minute bake", 1, &smtypes.DeploymentConfig{
			BlueGreenUpdatePolicy: &smtypes.BlueGreenUpdatePolicy{
				TrafficRoutingConfiguration: &smtypes.TrafficRoutingConfig{Type: smtypes.TrafficRoutingConfigTypeAllAtOnce,
					WaitIntervalInSeconds: aws.Int32(600)}},
		}},
		{"rolling one instance of two at a time", 2, &smtypes.DeploymentConfig{
			RollingUpdatePolicy: &smtypes.RollingUpdatePolicy{
				MaximumBatchSize:         &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeInstanceCount, Value: aws.Int32(1)},
				WaitIntervalInSeconds:    aws.Int32(600),
				RollbackMaximumBatchSize: &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeInstanceCount, Value: aws.Int32(1)}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const name, alarm = "scorer-prod", "scorer-prod-green-5xx"
			e := startGuardrailEnv(t, name, alarm, tc.instances)
			ctx := context.Background()
			tr := startTraffic(e, name, 3)
			dc := *tc.config
			dc.AutoRollbackConfiguration = &smtypes.AutoRollbackConfig{Alarms: []smtypes.Alarm{{AlarmName: aws.String(alarm)}}}
			if _, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String(name),
				EndpointConfigName: aws.String("v2"), DeploymentConfig: &dc}); err != nil {
				tr.end()
				t.Fatalf("update endpoint to v2: %v", err)
			}
			final, sawPending := e.waitSettledUpdate(name)
			ok, failed, errs := tr.end()
			t.Logf("answers per variant %v, failures per variant %v", ok, failed)

			if final.EndpointStatus != smtypes.EndpointStatusInService {
				t.Fatalf("after the rollback the endpoint is %s (%s), want InService", final.EndpointStatus, aws.ToString(final.FailureReason))
			}
			if got := aws.ToString(final.EndpointConfigName); got != "v1" {
				t.Errorf("EndpointConfigName = %s after the rollback, want v1", got)
			}
			reason := aws.ToString(final.FailureReason)
			if !strings.Contains(reason, alarm) || !strings.Contains(reason, "rolled back") {
				t.Errorf("FailureReason = %q, want it to say the deployment rolled back and name alarm %s", reason, alarm)
			}
			if len(final.ProductionVariants) != 1 || aws.ToString(final.ProductionVariants[0].VariantName) != "Blue" {
				t.Errorf("variants after the rollback = %+v, want Blue alone", final.ProductionVariants)
			}
			if !sawPending {
				t.Error("DescribeEndpoint never showed a PendingDeploymentSummary while v2 was being deployed")
			}
			if failed["Green"] == 0 {
				t.Errorf("no request failed on v2 (failures %v); the alarm cannot have fired from its errors", failed)
			}
			if n := failed["Blue"] + failed["unknown"]; n != 0 {
				t.Errorf("%d requests failed outside v2 (failures %v): %q", n, failed, errs)
			}
			if ok["Blue"] == 0 {
				t.Errorf("v1 answered nothing during the deployment (answers %v)", ok)
			}
			// v1 serves everything again.
			after := startTraffic(e, name, 1)
			e.waitAnswers(after, 20)
			ok, failed, errs = after.end()
			if failed["Blue"]+failed["Green"]+failed["unknown"] != 0 || ok["Green"] != 0 {
				t.Errorf("after the rollback: answers %v, failures %v (%q); want every request answered by Blue", ok, failed, errs)
			}
		})
	}
}

// waitAnswers waits until tr has counted n answers or failures.
func (e *env) waitAnswers(tr *traffic, n int) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		tr.mu.Lock()
		total := 0
		for _, m := range []map[string]int{tr.ok, tr.failed} {
			for _, c := range m {
				total += c
			}
		}
		tr.mu.Unlock()
		if total >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("fewer than %d invocations answered within 30s", n)
}

// TestGuardrailRefusesUnknownAlarm: a guardrail on an alarm CloudWatch does not know could never
// fire, so the update is refused before anything changes.
func TestGuardrailRefusesUnknownAlarm(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	ctx := context.Background()
	e.deployable("m1", "c1", e.uploadArtifact(1), 1)
	_, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("c1"),
		DeploymentConfig: &smtypes.DeploymentConfig{AutoRollbackConfiguration: &smtypes.AutoRollbackConfig{
			Alarms: []smtypes.Alarm{{AlarmName: aws.String("no-such-alarm")}}}}})
	apiError(t, err, "ValidationException", "no-such-alarm in AutoRollbackConfiguration do not exist in CloudWatch")
}
