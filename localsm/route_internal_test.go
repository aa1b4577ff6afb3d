package localsm

import (
	"net/http/httptest"
	"regexp"
	"testing"
)

// TestSigningServiceMatchesScopeGrammar: the hand-written credential scope parser that routes
// every request names the same service as the grammar of a SigV4 scope
// (Credential=AKID/YYYYMMDD/region/service/aws4_request), written here as a regular expression,
// for signed, presigned, malformed and unsigned requests.
func TestSigningServiceMatchesScopeGrammar(t *testing.T) {
	grammar := regexp.MustCompile(`Credential=[^/,\s]+/[0-9]{8}/[a-z0-9-]+/([a-z0-9-]+)/aws4_request`)
	headers := []string{
		"",
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/20261130/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=ab",
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/20261130/eu-west-1/s3/aws4_request,SignedHeaders=host,Signature=ab",
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/20261130/eu-west-1/monitoring/aws4_request",
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/20261130/eu-west-1/application-autoscaling/aws4_request",
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/2026113/us-east-1/sagemaker/aws4_request",     // short date
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/2026113x/us-east-1/sagemaker/aws4_request",    // not a date
		"AWS4-HMAC-SHA256 Credential=/20261130/us-east-1/sagemaker/aws4_request",             // no key id
		"AWS4-HMAC-SHA256 Credential=AK IA/20261130/us-east-1/sagemaker/aws4_request",        // space in key id
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/20261130/US-EAST-1/sagemaker/aws4_request",    // upper case
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/20261130/us-east-1/sagemaker/aws4_requesting", // the regexp's prefix match
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/20261130/us-east-1/sagemaker",                 // cut short
		"AWS4-HMAC-SHA256 Credential=AKIALOCAL/20261130/us-east-1//aws4_request",             // no service
		"Basic dXNlcjpwYXNz",
	}
	for _, h := range headers {
		r := httptest.NewRequest("POST", "/endpoints/x/invocations", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		want := ""
		if m := grammar.FindStringSubmatch(h); m != nil {
			want = m[1]
		}
		if got := signingService(r); got != want {
			t.Errorf("Authorization %q: signing service %q, want %q", h, got, want)
		}
	}
	presigned := httptest.NewRequest("GET", "/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIALOCAL%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ab", nil)
	if got := signingService(presigned); got != "s3" {
		t.Errorf("presigned URL: signing service %q, want s3", got)
	}
}

// TestIsInvocationPath: the runtime's three operations on one endpoint name, nothing else.
func TestIsInvocationPath(t *testing.T) {
	for path, want := range map[string]bool{
		"/endpoints/abalone/invocations":                 true,
		"/endpoints/abalone/async-invocations":           true,
		"/endpoints/abalone/invocations-response-stream": true,
		"/endpoints//invocations":                        false,
		"/endpoints/a/b/invocations":                     false,
		"/endpoints/abalone/invocations/":                false,
		"/endpoints/abalone":                             false,
		"/endpoints/abalone/":                            false,
		"/other/abalone/invocations":                     false,
		"/endpoints/abalone/invocationsx":                false,
		"/":                                              false,
	} {
		if got := isInvocationPath(path); got != want {
			t.Errorf("isInvocationPath(%q) = %v, want %v", path, got, want)
		}
	}
}
