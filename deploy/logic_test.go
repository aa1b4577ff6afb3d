package deploy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/releases"
)

func TestVerifyExpectations(t *testing.T) {
	for _, tc := range []struct {
		expect, body string
		ok           bool
		problem      string
	}{
		{"1..30", "7.5\n9.1\n12\n", true, ""},
		{"1..30", "7.5,9.1,12", true, ""},
		{"1..30", "7.5\n31\n", false, "line 2: 31 is outside 1..30"},
		{"1..30", "7.5\nNaN\n", false, "line 2"},
		{"1..30", "abc\n", false, `"abc" is not a number`},
		{"..0", "-3\n-0.5\n", true, ""},
		{"-1.5..", "-1.5\n1e9\n", true, ""},
		{"-1.5..", "-2\n", false, "outside -1.5.."},
		{"0.5 .. 0.75", "0.6\n", true, ""},
		{`^\d+(\.\d+)?$`, "7.5\n9\n", true, ""},
		{`^\d+(\.\d+)?$`, "7.5\nerror: bad input\n", false, `line 2 "error: bad input" does not match`},
		{"label", `{"label": 1}`, true, ""},
		{"", "anything", true, ""},
		{"", "  \n", false, "empty body"},
		{"1..30", "", false, "empty body"},
	} {
		e, err := ParseExpectation(tc.expect)
		if err != nil {
			t.Fatalf("ParseExpectation(%q): %v", tc.expect, err)
		}
		err = e.Check([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("expect %q on %q: err = %v, want ok=%v", tc.expect, tc.body, err, tc.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("expect %q on %q: error %q does not say %q", tc.expect, tc.body, err, tc.problem)
		}
	}
	for _, bad := range []string{"30..1", "([", "*x"} {
		if _, err := ParseExpectation(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseExpectation(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestStrategyMapsToDeploymentConfig(t *testing.T) {
	dc, err := Strategy{}.DeploymentConfig()
	if err != nil || dc != nil {
		t.Fatalf("default strategy: %v %+v, want no DeploymentConfig (SageMaker's all at once)", err, dc)
	}
	dc, err = Strategy{Type: Canary, Percent: 10, Bake: 5 * time.Minute, RollbackAlarms: []string{"p99-latency", "errors"}}.DeploymentConfig()
	if err != nil {
		t.Fatal(err)
	}
	r := dc.BlueGreenUpdatePolicy.TrafficRoutingConfiguration
	if r.Type != types.TrafficRoutingConfigTypeCanary || r.CanarySize.Type != types.CapacitySizeTypeCapacityPercent || aws.ToInt32(r.CanarySize.Value) != 10 || aws.ToInt32(r.WaitIntervalInSeconds) != 300 || r.LinearStepSize != nil {
		t.Errorf("canary routing = %+v", r)
	}
	if got := aws.ToInt32(dc.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds); got < 600 || got <= 300 {
		t.Errorf("canary MaximumExecutionTimeout = %d: must be ≥ 600 and exceed the bake", got)
	}
	if a := dc.AutoRollbackConfiguration; a == nil || len(a.Alarms) != 2 || aws.ToString(a.Alarms[1].AlarmName) != "errors" {
		t.Errorf("auto rollback = %+v", a)
	}
	dc, err = Strategy{Type: Linear, Percent: 20, Bake: 2 * time.Minute}.DeploymentConfig()
	if err != nil {
		t.Fatal(err)
	}
	r = dc.BlueGreenUpdatePolicy.TrafficRoutingConfiguration
	if r.Type != types.TrafficRoutingConfigTypeLinear || aws.ToInt32(r.LinearStepSize.Value) != 20 || aws.ToInt32(r.WaitIntervalInSeconds) != 120 || dc.AutoRollbackConfiguration != nil {
		t.Errorf("linear routing = %+v", r)
	}
	// 5 steps of 2 minutes bake: SageMaker's bound must exceed 10 minutes.
	if got := aws.ToInt32(dc.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds); got <= 600 {
		t.Errorf("linear MaximumExecutionTimeout = %d, must exceed the 600 s of baking", got)
	}
	dc, err = Strategy{Type: AllAtOnce, RollbackAlarms: []string{"errors"}}.DeploymentConfig()
	if err != nil || dc.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.Type != types.TrafficRoutingConfigTypeAllAtOnce || len(dc.AutoRollbackConfiguration.Alarms) != 1 {
		t.Errorf("all at once with an alarm: %v %+v", err, dc)
	}
	for _, bad := range []Strategy{
		{Type: Canary, Percent: 0, Bake: time.Minute},
		{Type: Canary, Percent: 60, Bake: time.Minute},
		{Type: Canary, Percent: 10},
		{Type: Linear, Percent: 5, Bake: time.Minute},
		{Type: Linear, Percent: 20, Bake: 2 * time.Hour},
		{Type: Linear, Percent: 10, Bake: 1500 * time.Millisecond},
		{Type: Linear, Percent: 10, Bake: 30 * time.Minute}, // 10 steps × 30 min > SageMaker's 4 h
		{Type: "blue-green"},
		{Type: AllAtOnce, RollbackAlarms: []string{""}},
	} {
		if _, err := bad.DeploymentConfig(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestPollScheduleGrowsToItsMax(t *testing.T) {
	p := PollSchedule{Initial: 250 * time.Millisecond, Max: 10 * time.Second, Factor: 1.5}
	var got []time.Duration
	d := time.Duration(0)
	for range 12 {
		d = p.next(d)
		got = append(got, d)
	}
	if got[0] != 250*time.Millisecond || got[1] != 375*time.Millisecond || got[len(got)-1] != 10*time.Second {
		t.Errorf("schedule %v: want 250ms, 375ms, … capped at 10s", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Errorf("schedule shrinks: %v", got)
		}
	}
}

func TestHistoryAndMarkerTagsRoundTrip(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	tags := map[string]string{
		historyKey(2):  HistoryEntry{Time: at, Version: 3, EndpointConfigName: "abalone-prod-v3-x", Kind: "deploy"}.tagValue(),
		historyKey(1):  HistoryEntry{Time: at.Add(-time.Hour), Version: 2, EndpointConfigName: "abalone-prod-v2-y", Kind: "observed"}.tagValue(),
		historyKey(10): HistoryEntry{Time: at.Add(time.Hour), Version: 2, EndpointConfigName: "abalone-prod-v2-y", Kind: "restore"}.tagValue(),
		TagModel:       "abalone",
	}
	h := parseHistory(tags)
	if len(h) != 3 || h[0].Seq != 1 || h[1].Version != 3 || h[2].Kind != "restore" || !h[1].Time.Equal(at) || h[2].EndpointConfigName != "abalone-prod-v2-y" {
		t.Fatalf("history = %+v", h)
	}
	m := deployMarker{ID: "abcd1234", Version: 4, Config: "c", Release: "rel-1", Started: at, By: "pipe line/1"}
	got, ok := parseMarker(m.tagValue())
	if !ok || got.ID != m.ID || got.Version != 4 || got.Config != "c" || got.Release != "rel-1" || got.By != "pipe_line/1" || !got.Started.Equal(at) {
		t.Fatalf("marker round trip = %+v", got)
	}
	if v := tagValue("a|b<c>é"); v != "a_b_c_é" {
		t.Errorf("tagValue = %q", v)
	}
}

func TestXGBoostImages(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":  "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
		"eu-west-1":  "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
		"cn-north-1": "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1",
	} {
		if got, err := XGBoostImage(region); err != nil || got != want {
			t.Errorf("XGBoostImage(%s) = %q, %v; want %q", region, got, err, want)
		}
	}
	if _, err := XGBoostImage("mars-north-1"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "--image") {
		t.Errorf("unknown region: %v", err)
	}
}

func TestPackArtifact(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := dir + "/" + name
		if err := osWriteFile(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	model := write("model.json", `{"learner":{}}`)
	tgz, err := packArtifact(model, true)
	if err != nil || !isTarGz(tgz) {
		t.Fatalf("pack a model file: %v", err)
	}
	names := tarNames(t, tgz)
	if len(names) != 1 || names[0] != "xgboost-model" {
		t.Errorf("packed %v, want xgboost-model for the XGBoost image", names)
	}
	again, _ := packArtifact(model, true)
	if string(again) != string(tgz) {
		t.Error("packing is not deterministic: the same file would be uploaded under a new key")
	}
	same, err := packArtifact(write("model.tar.gz", string(tgz)), true)
	if err != nil || string(same) != string(tgz) {
		t.Errorf("a model.tar.gz is not uploaded as is: %v", err)
	}
	if _, err := packArtifact(dir+"/missing", true); !errors.Is(err, ErrInvalid) {
		t.Errorf("missing artifact: %v", err)
	}
}

func TestFailureReasonClassifiesErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want releases.Reason
	}{
		{nil, ""},
		{errorf(ErrRolledBack, "rolled back"), releases.ReasonRolledBack},
		{fmt.Errorf("promote: %w", errorf(ErrVerification, "bad answer")), releases.ReasonVerificationFailed},
		{errorf(ErrTimeout, "still Updating"), releases.ReasonTimedOut},
		{errorf(ErrDeployFailed, "endpoint is Failed"), releases.ReasonFailed},
		{errorf(ErrRejected, "rejected"), releases.ReasonRejected},
		{errorf(ErrBusy, "busy"), releases.ReasonErrored},
		{errors.New("describe endpoint: connection refused"), releases.ReasonErrored},
	} {
		if got := FailureReason(tc.err); got != tc.want {
			t.Errorf("FailureReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
