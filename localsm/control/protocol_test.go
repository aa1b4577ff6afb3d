package control_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/localsm/control"
)

// TestProtocolErrors: malformed bodies, wrong types, missing members and unknown targets get
// AWS-style JSON errors (HTTP 400, __type and message) and never a crash.
func TestProtocolErrors(t *testing.T) {
	c := newCP(t, cpOptions{})
	cases := []struct {
		name, op, body string
		status         int
		code, message  string
	}{
		{"malformed JSON", "CreateModel", `{"ModelName": "m1",`, 400, "SerializationException", "not valid JSON"},
		{"not an object", "ListModels", `[1,2]`, 400, "SerializationException", "must be a JSON object"},
		{"trailing data", "ListModels", `{} {}`, 400, "SerializationException", "more than one JSON value"},
		{"string for integer", "ListModels", `{"MaxResults":"10"}`, 400, "SerializationException", "'maxResults'"},
		{"number for string", "DescribeEndpoint", `{"EndpointName":42}`, 400, "SerializationException", "Expected a string at 'endpointName', found a number"},
		{"object for list", "CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":{}}`, 400, "SerializationException", "Expected a list at 'productionVariants'"},
		{"fraction for integer", "CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"A","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":1.5}]}`,
			400, "SerializationException", "initialInstanceCount"},
		{"integer overflow", "ListEndpoints", `{"MaxResults":99999999999}`, 400, "SerializationException", "maxResults"},
		{"bad timestamp", "ListEndpoints", `{"CreationTimeAfter":true}`, 400, "SerializationException", "creationTimeAfter"},
		{"missing required", "DescribeEndpoint", `{}`, 400, "ValidationException",
			"1 validation error detected: Value null at 'endpointName' failed to satisfy constraint: Member must not be null"},
		{"null required", "DescribeEndpoint", `{"EndpointName":null}`, 400, "ValidationException", "Value null at 'endpointName'"},
		{"nested required", "CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"A"}]}`, 400, "ValidationException",
			"Value null at 'productionVariants.1.member.modelName' failed to satisfy constraint: Member must not be null"},
		{"empty list", "CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[]}`, 400, "ValidationException",
			"Value '[]' at 'productionVariants' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"bad enum", "ListEndpoints", `{"StatusEquals":"Sleeping"}`, 400, "ValidationException", "Member must satisfy enum value set: [OutOfService, Creating"},
		{"bad map key", "CreateModel", `{"ModelName":"m","ExecutionRoleArn":"arn:aws:iam::000000000000:role/r","PrimaryContainer":{"Image":"i","Environment":{"1BAD":"x"}}}`,
			400, "ValidationException", "at 'primaryContainer.environment' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern"},
		{"name ending in dash", "DescribeModelPackageGroup", `{"ModelPackageGroupName":"abalone-"}`, 400, "ValidationException", "'modelPackageGroupName'"},
		{"unknown operation", "MakeCoffee", `{}`, 400, "UnknownOperationException", "MakeCoffee"},
		{"real but unimplemented", "CreateTrainingJob", `{}`, 400, "UnknownOperationException", "does not implement"},
		{"empty body is {}", "ListModels", ``, 200, "", ""},
		{"unknown members ignored", "ListModels", `{"SomethingNew":true}`, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.call(tc.op, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			var got struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body is not JSON: %q", body)
			}
			if got.Type != tc.code || !strings.Contains(got.Message, tc.message) {
				t.Fatalf("got %s %q, want %s containing %q", got.Type, got.Message, tc.code, tc.message)
			}
		})
	}

	// Wrong method and oversized bodies.
	resp, err := http.Get(c.srv.URL + "/")
	if err == nil {
		resp.Body.Close()
	}
	req, _ := http.NewRequest(http.MethodGet, c.srv.URL+"/", nil)
	req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "UnknownOperationException") {
		t.Fatalf("GET with a target: %d %s", resp.StatusCode, b)
	}
	status, body := c.call("CreateModel", `{"ModelName":"`+strings.Repeat("a", 3<<20)+`"}`)
	if status != 413 || !strings.Contains(body, "larger than") {
		t.Fatalf("3 MiB body: %d %.200s", status, body)
	}
	// The server is still fine.
	if status, body := c.call("ListModels", `{}`); status != 200 {
		t.Fatalf("after bad requests: %d %s", status, body)
	}
}

// TestSigningRegion: ARNs take the region from the SigV4 credential scope, or the default.
func TestSigningRegion(t *testing.T) {
	for _, tc := range []struct{ auth, query, want string }{
		{"AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-central-1/sagemaker/aws4_request, SignedHeaders=host, Signature=abc", "", "eu-central-1"},
		{"", "X-Amz-Credential=AKID%2F20250101%2Fap-south-1%2Fs3%2Faws4_request", "ap-south-1"},
		{"Bearer xyz", "", "us-east-1"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/?"+tc.query, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := control.SigningRegion(r, "us-east-1"); got != tc.want {
			t.Errorf("SigningRegion(%q, %q) = %s, want %s", tc.auth, tc.query, got, tc.want)
		}
	}
}

// newBareControl is a control plane without an HTTP server, for the fuzz test.
func newBareControl(t testing.TB) *control.Control {
	store, err := control.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := control.New(context.Background(), control.Options{Store: store, Serving: newGatedServing(false),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctl.Close(context.Background())
		store.Close()
	})
	return ctl
}

var fuzzOps = []string{"CreateModel", "DescribeModel", "DeleteModel", "ListModels", "CreateEndpointConfig", "DescribeEndpointConfig",
	"DeleteEndpointConfig", "ListEndpointConfigs", "CreateEndpoint", "UpdateEndpoint", "UpdateEndpointWeightsAndCapacities",
	"DescribeEndpoint", "ListEndpoints", "DeleteEndpoint", "CreateModelPackageGroup", "DescribeModelPackageGroup",
	"ListModelPackageGroups", "CreateModelPackage", "DescribeModelPackage", "ListModelPackages", "UpdateModelPackage",
	"AddTags", "ListTags", "DeleteTags", "Nope"}

// FuzzRequest throws arbitrary bodies at every operation: the answer is always a well-formed
// JSON 1.1 response, 200 or a 4xx with __type, never a 5xx (a crash or an internal error).
func FuzzRequest(f *testing.F) {
	seeds := []struct {
		op   int
		body string
	}{
		{0, `{"ModelName":"m","ExecutionRoleArn":"arn:aws:iam::000000000000:role/r","PrimaryContainer":{"Image":"i","ModelDataUrl":"s3://b/k"}}`},
		{0, `{"ModelName":"m","ExecutionRoleArn":"arn:aws:iam::000000000000:role/r","PrimaryContainer":{"ModelPackageName":"g/1"}}`},
		{4, `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"A","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":1,"InitialVariantWeight":0.5}]}`},
		{8, `{"EndpointName":"e","EndpointConfigName":"c","DeploymentConfig":{"BlueGreenUpdatePolicy":{"TrafficRoutingConfiguration":{"Type":"CANARY","WaitIntervalInSeconds":1,"CanarySize":{"Type":"INSTANCE_COUNT","Value":1}}}}}`},
		{9, `{"EndpointName":"e","EndpointConfigName":"c","RetainAllVariantProperties":true,"ExcludeRetainedVariantProperties":[{"VariantPropertyType":"DesiredWeight"}]}`},
		{10, `{"EndpointName":"e","DesiredWeightsAndCapacities":[{"VariantName":"A","DesiredWeight":2,"DesiredInstanceCount":3}]}`},
		{12, `{"SortBy":"Status","SortOrder":"Ascending","MaxResults":1,"NextToken":"eyJvcCI6Ikxpc3RFbmRwb2ludHMifQ","CreationTimeAfter":1.7e9,"LastModifiedTimeBefore":"2025-01-01T00:00:00Z"}`},
		{14, `{"ModelPackageGroupName":"g","Tags":[{"Key":"k","Value":"v"}]}`},
		{17, `{"ModelPackageGroupName":"g","ModelApprovalStatus":"Approved","ClientToken":"t","InferenceSpecification":{"Containers":[{"Image":"i","ModelDataUrl":"s3://b/k"}],"SupportedContentTypes":[],"SupportedResponseMIMETypes":[]},"CustomerMetadataProperties":{"a":"b"}}`},
		{20, `{"ModelPackageArn":"arn:aws:sagemaker:us-east-1:000000000000:model-package/g/1","ModelApprovalStatus":"Rejected","CustomerMetadataPropertiesToRemove":["a"],"AdditionalInferenceSpecificationsToAdd":[{"Name":"x","Containers":[{"Image":"i"}]}]}`},
		{21, `{"ResourceArn":"arn:aws:sagemaker:us-east-1:000000000000:model/m","Tags":[{"Key":"k","Value":"v"}]}`},
		{3, `{"NameContains":"a","MaxResults":100}`},
		{3, `{"MaxResults":1e400}`},
		{3, "\x00\xff"},
		{1, `{"ModelName":"\u0000"}`},
	}
	for _, s := range seeds {
		f.Add(s.op, s.body)
	}
	ctl := newBareControl(f)
	f.Fuzz(func(t *testing.T, op int, body string) {
		if op < 0 {
			op = -op
		}
		name := fuzzOps[op%len(fuzzOps)]
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "SageMaker."+name)
		rec := httptest.NewRecorder()
		ctl.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", name, body, rec.Code, rec.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %q: response is not a JSON object: %q", name, body, rec.Body)
		}
		if rec.Code != 200 {
			if typ, _ := out["__type"].(string); typ == "" {
				t.Fatalf("%s %q: error without __type: %s", name, body, rec.Body)
			}
		}
	})
}
