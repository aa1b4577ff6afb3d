package localsm_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
)

// captureLine is one line of a SageMaker data capture file, decoded by SageMaker's field names.
type captureLine struct {
	CaptureData struct {
		EndpointInput  *capturePayload `json:"endpointInput"`
		EndpointOutput *capturePayload `json:"endpointOutput"`
	} `json:"captureData"`
	EventMetadata struct {
		EventID       string `json:"eventId"`
		InferenceTime string `json:"inferenceTime"`
	} `json:"eventMetadata"`
	EventVersion string `json:"eventVersion"`
}

type capturePayload struct {
	ObservedContentType string `json:"observedContentType"`
	Mode                string `json:"mode"`
	Data                string `json:"data"`
	Encoding            string `json:"encoding"`
}

// captureConfig creates an endpoint configuration of model whose data capture writes every
// invocation, request and answer, under s3://models/capture.
func (e *env) captureConfig(name, model string) {
	e.t.Helper()
	if _, err := e.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(model),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}},
		DataCaptureConfig: &smtypes.DataCaptureConfig{
			EnableCapture: aws.Bool(true), InitialSamplingPercentage: aws.Int32(100),
			DestinationS3Uri:         aws.String("s3://" + bucket + "/capture"),
			CaptureOptions:           []smtypes.CaptureOption{{CaptureMode: smtypes.CaptureModeInput}, {CaptureMode: smtypes.CaptureModeOutput}},
			CaptureContentTypeHeader: &smtypes.CaptureContentTypeHeader{CsvContentTypes: []string{"text/csv"}},
		},
	}); err != nil {
		e.t.Fatalf("create endpoint config %s: %v", name, err)
	}
}

// captured waits until the capture files under prefix hold want records, as a user polls S3,
// and returns the records with the keys of their files.
func (e *env) captured(prefix string, want int) (keys []string, lines []captureLine) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys, lines = e.readCapture(prefix)
		if len(lines) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(lines) != want {
		e.t.Fatalf("capture files under %s hold %d records, want %d (files %v)", prefix, len(lines), want, keys)
	}
	return keys, lines
}

func (e *env) readCapture(prefix string) (keys []string, lines []captureLine) {
	e.t.Helper()
	ctx := context.Background()
	pages := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			e.t.Fatalf("list %s: %v", prefix, err)
		}
		for _, obj := range page.Contents {
			keys = append(keys, aws.ToString(obj.Key))
		}
	}
	for _, key := range keys {
		obj, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			e.t.Fatalf("get %s: %v", key, err)
		}
		sc := bufio.NewScanner(obj.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l captureLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				e.t.Fatalf("capture file %s: line %q is not JSON: %v", key, sc.Text(), err)
			}
			lines = append(lines, l)
		}
		obj.Body.Close()
	}
	return keys, lines
}

func (e *env) invokeTimes(endpoint string, n int) [][]byte {
	e.t.Helper()
	rt := sagemakerruntime.NewFromConfig(e.cfg)
	var answers [][]byte
	for range n {
		out, err := rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String(endpoint), ContentType: aws.String("text/csv"), Body: abalone.SampleCSV()})
		if err != nil {
			e.t.Fatalf("invoke %s: %v", endpoint, err)
		}
		answers = append(answers, out.Body)
	}
	return answers
}

func (e *env) updateTo(endpoint, config string) {
	e.t.Helper()
	if _, err := e.sm.UpdateEndpoint(context.Background(), &sagemaker.UpdateEndpointInput{EndpointName: aws.String(endpoint),
		EndpointConfigName: aws.String(config)}); err != nil {
		e.t.Fatalf("update %s to %s: %v", endpoint, config, err)
	}
	e.waitLeaves(endpoint, smtypes.EndpointStatusUpdating)
	if d := e.waitStatus(endpoint, smtypes.EndpointStatusInService); aws.ToString(d.EndpointConfigName) != config {
		t := e.t
		t.Fatalf("endpoint %s serves %s after the update, want %s (%s)", endpoint, aws.ToString(d.EndpointConfigName), config, aws.ToString(d.FailureReason))
	}
}

var captureKey = regexp.MustCompile(`^capture/abalone/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$`)

// TestDataCaptureWritesSageMakerFilesAcrossUpdates: every invocation of an endpoint with data
// capture lands in S3 in SageMaker's layout and record shape, and capture goes on after an
// update to another configuration with the same capture and after going back to the first.
func TestDataCaptureWritesSageMakerFilesAcrossUpdates(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnvWith(t, localsm.Options{CaptureFlushInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	ctx := context.Background()
	e.deployable("abalone-v1", "plain", e.uploadArtifact(1), 1)
	e.captureConfig("captured-1", "abalone-v1")
	e.captureConfig("captured-2", "abalone-v1")
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("abalone"), EndpointConfigName: aws.String("captured-1")}); err != nil {
		t.Fatal(err)
	}
	d := e.waitStatus("abalone", smtypes.EndpointStatusInService)
	if dc := d.DataCaptureConfig; dc == nil || !aws.ToBool(dc.EnableCapture) || dc.CaptureStatus != smtypes.CaptureStatusStarted ||
		aws.ToInt32(dc.CurrentSamplingPercentage) != 100 || aws.ToString(dc.DestinationS3Uri) != "s3://models/capture" {
		t.Errorf("DescribeEndpoint DataCaptureConfig = %+v", dc)
	}

	answers := e.invokeTimes("abalone", 3)
	keys, lines := e.captured("capture/", 3)
	for _, k := range keys {
		if !captureKey.MatchString(k) {
			t.Errorf("capture file %s is not at ENDPOINT/VARIANT/yyyy/mm/dd/hh/MM-SS-mmm-UUID.jsonl", k)
		}
	}
	ids := map[string]bool{}
	for _, l := range lines {
		in, out := l.CaptureData.EndpointInput, l.CaptureData.EndpointOutput
		if in == nil || in.Mode != "INPUT" || in.Encoding != "CSV" || in.ObservedContentType != "text/csv" || in.Data != string(abalone.SampleCSV()) {
			t.Errorf("endpointInput = %+v", in)
		}
		if out == nil || out.Mode != "OUTPUT" || out.Encoding != "CSV" || !strings.HasPrefix(out.ObservedContentType, "text/csv") ||
			!slices.ContainsFunc(answers, func(a []byte) bool { return bytes.Equal(a, []byte(out.Data)) }) {
			t.Errorf("endpointOutput = %+v, want one of the answers", out)
		}
		if _, err := time.Parse(time.RFC3339, l.EventMetadata.InferenceTime); err != nil || l.EventVersion != "0" || ids[l.EventMetadata.EventID] {
			t.Errorf("eventMetadata %+v, eventVersion %q: want a unique eventId, an RFC 3339 inferenceTime and version 0", l.EventMetadata, l.EventVersion)
		}
		ids[l.EventMetadata.EventID] = true
	}

	e.updateTo("abalone", "captured-2")
	e.invokeTimes("abalone", 2)
	e.captured("capture/", 5)
	e.updateTo("abalone", "captured-1") // back to the first configuration, as a rollback does
	e.invokeTimes("abalone", 2)
	e.captured("capture/", 7)
}

// TestDataCaptureHonoursOptions: capturing only the input leaves the output out, content types
// not listed as CSV or JSON are captured as base64, and a sampling percentage of 0 captures
// nothing.
func TestDataCaptureHonoursOptions(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnvWith(t, localsm.Options{CaptureFlushInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	ctx := context.Background()
	e.deployable("abalone-v1", "plain", e.uploadArtifact(1), 1)
	for name, pct := range map[string]int32{"inputs": 100, "none": 0} {
		if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
			EndpointConfigName: aws.String(name),
			ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("abalone-v1"),
				InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}},
			DataCaptureConfig: &smtypes.DataCaptureConfig{InitialSamplingPercentage: aws.Int32(pct),
				DestinationS3Uri: aws.String("s3://" + bucket + "/" + name),
				CaptureOptions:   []smtypes.CaptureOption{{CaptureMode: smtypes.CaptureModeInput}}},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitStatus("inputs", smtypes.EndpointStatusInService)
	e.waitStatus("none", smtypes.EndpointStatusInService)
	e.invokeTimes("none", 5)
	e.invokeTimes("inputs", 2)
	_, lines := e.captured("inputs/", 2)
	for _, l := range lines {
		in := l.CaptureData.EndpointInput
		if l.CaptureData.EndpointOutput != nil || in == nil || in.Encoding != "BASE64" || in.Data == string(abalone.SampleCSV()) {
			t.Errorf("input-only capture without content types = %+v / %+v, want a BASE64 input and no output", in, l.CaptureData.EndpointOutput)
		}
	}
	// Files of the same flushes as "inputs" have been written; a 0% endpoint wrote none.
	if keys, _ := e.readCapture("none/"); len(keys) != 0 {
		t.Errorf("sampling percentage 0 captured %v", keys)
	}
}

// TestDataCaptureConfigValidation: what SageMaker refuses is refused in its words.
func TestDataCaptureConfigValidation(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	e.deployable("abalone-v1", "plain", e.uploadArtifact(1), 1)
	_, err := e.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("bad"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("abalone-v1"),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}},
		DataCaptureConfig: &smtypes.DataCaptureConfig{InitialSamplingPercentage: aws.Int32(10),
			DestinationS3Uri: aws.String("https://example.com/capture"),
			CaptureOptions:   []smtypes.CaptureOption{{CaptureMode: smtypes.CaptureModeInput}}},
	})
	apiError(t, err, "ValidationException", "must be an s3://BUCKET[/PREFIX] URL")
}

// TestDataCaptureFlushedOnCloseAndAfterRestart: records still buffered when the server closes
// are written, and a restarted server captures for the endpoints it brings back.
func TestDataCaptureFlushedOnCloseAndAfterRestart(t *testing.T) {
	isolateAWSConfig(t)
	dir := t.TempDir()
	ctx := context.Background()
	restart := func(e *env) *env {
		t.Helper()
		closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := e.srv.Close(closeCtx); err != nil {
			t.Fatal(err)
		}
		// An hour between flushes: only Close writes the files.
		return startEnvWith(t, localsm.Options{DataDir: dir, CaptureFlushInterval: time.Hour, Logger: testLogger(t)})
	}
	first := startEnvWith(t, localsm.Options{DataDir: dir, CaptureFlushInterval: time.Hour, Logger: testLogger(t)})
	first.deployable("abalone-v1", "plain", first.uploadArtifact(1), 1)
	first.captureConfig("captured", "abalone-v1")
	if _, err := first.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("abalone"), EndpointConfigName: aws.String("captured")}); err != nil {
		t.Fatal(err)
	}
	first.waitStatus("abalone", smtypes.EndpointStatusInService)
	first.invokeTimes("abalone", 2)

	second := restart(first)
	if _, lines := second.readCapture("capture/"); len(lines) != 2 {
		t.Fatalf("after Close the capture files hold %d records, want the 2 buffered ones", len(lines))
	}
	second.waitStatus("abalone", smtypes.EndpointStatusInService)
	second.invokeTimes("abalone", 1)
	third := restart(second)
	if _, lines := third.readCapture("capture/"); len(lines) != 3 {
		t.Errorf("after a restart and an invocation the capture files hold %d records, want 3", len(lines))
	}
}
