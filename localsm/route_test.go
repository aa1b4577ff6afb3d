package localsm_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRoutingInvocationLookalikes: a POST to /endpoints/NAME/invocations is an invocation only
// when nothing says otherwise — signed for S3, an S3 multipart upload, signed for CloudWatch or
// carrying a JSON target, it goes where SageMaker's edge would send it.
func TestRoutingInvocationLookalikes(t *testing.T) {
	isolateAWSConfig(t)
	e := startEnv(t, "")
	scope := func(service string) string {
		return "AWS4-HMAC-SHA256 Credential=AKIALOCALTEST/20261130/eu-west-1/" + service +
			"/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
	}
	for _, tc := range []struct {
		name, query string
		header      map[string]string
		want        string // in the answer
	}{
		{"unsigned", "", nil, "Endpoint nothing-here of account 000000000000 not found"},
		{"signed for SageMaker", "", map[string]string{"Authorization": scope("sagemaker")}, "Endpoint nothing-here of account 000000000000 not found"},
		{"signed for S3", "", map[string]string{"Authorization": scope("s3")}, "<Error>"}, // S3's XML error
		{"S3 multipart upload", "?uploads", nil, "NoSuchBucket"},
		{"signed for CloudWatch", "", map[string]string{"Authorization": scope("monitoring")}, "InvalidAction"},
		{"JSON target", "", map[string]string{"X-Amz-Target": "SageMaker.ListEndpoints"}, `"__type":"SerializationException"`}, // the control plane reads the body
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL()+"/endpoints/nothing-here/invocations"+tc.query, strings.NewReader("1,2,3"))
			req.Header.Set("Content-Type", "text/csv")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), tc.want) {
				t.Errorf("%d %s\nwant an answer with %q", resp.StatusCode, body, tc.want)
			}
		})
	}
}
