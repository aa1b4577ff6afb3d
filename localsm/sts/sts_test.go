package sts

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func call(h *Handler, method, target, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func jwt(payload string) string {
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

// TestQueryProtocol: parameters from the query string or the form, XML answers in STS's
// namespace, and STS's error codes for bad input.
func TestQueryProtocol(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	h := New(Options{Account: "111122223333", Now: func() time.Time { return now }})

	rec := call(h, http.MethodGet, "/?Action=GetCallerIdentity&Version=2011-06-15", "", nil)
	var id struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
		Arn     string   `xml:"GetCallerIdentityResult>Arn"`
		Account string   `xml:"GetCallerIdentityResult>Account"`
		ReqID   string   `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &id); err != nil || rec.Code != 200 {
		t.Fatalf("GetCallerIdentity: %d %v %s", rec.Code, err, rec.Body)
	}
	if id.Arn != "arn:aws:iam::111122223333:root" || id.Account != "111122223333" || id.ReqID == "" {
		t.Fatalf("caller = %+v", id)
	}

	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn": {"arn:aws:iam::444455556666:role/path/deployer"}, "RoleSessionName": {"gha-1"},
		"WebIdentityToken": {jwt(`{"sub":"repo:org/app:ref:refs/heads/main","aud":["sts.amazonaws.com","x"],"iss":"https://token.actions.githubusercontent.com","exp":` +
			"1900000000" + `}`)}}
	rec = call(h, http.MethodPost, "/", form.Encode(), nil)
	var out struct {
		Subject  string `xml:"AssumeRoleWithWebIdentityResult>SubjectFromWebIdentityToken"`
		Audience string `xml:"AssumeRoleWithWebIdentityResult>Audience"`
		Provider string `xml:"AssumeRoleWithWebIdentityResult>Provider"`
		Arn      string `xml:"AssumeRoleWithWebIdentityResult>AssumedRoleUser>Arn"`
		KeyID    string `xml:"AssumeRoleWithWebIdentityResult>Credentials>AccessKeyId"`
		Expires  string `xml:"AssumeRoleWithWebIdentityResult>Credentials>Expiration"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
		t.Fatalf("AssumeRoleWithWebIdentity: %d %v %s", rec.Code, err, rec.Body)
	}
	if out.Arn != "arn:aws:sts::444455556666:assumed-role/deployer/gha-1" || out.Subject != "repo:org/app:ref:refs/heads/main" ||
		out.Audience != "sts.amazonaws.com" || out.Provider != "token.actions.githubusercontent.com" || out.Expires != "2025-06-01T13:00:00Z" {
		t.Fatalf("assumed = %+v", out)
	}
	// Calls signed with the temporary key are the assumed role.
	rec = call(h, http.MethodPost, "/", "Action=GetCallerIdentity&Version=2011-06-15",
		map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + out.KeyID + "/20250601/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=x"})
	if !strings.Contains(rec.Body.String(), "<Arn>arn:aws:sts::444455556666:assumed-role/deployer/gha-1</Arn>") {
		t.Fatalf("caller with the temporary key: %s", rec.Body)
	}

	for _, tc := range []struct {
		body, code, msg string
	}{
		{"Version=2011-06-15", "MissingAction", "Missing Action"},
		{"Action=DecodeAuthorizationMessage", "InvalidAction", "Could not find operation DecodeAuthorizationMessage"},
		{"Action=AssumeRoleWithWebIdentity", "ValidationError", "3 validation errors detected: Value null at 'roleArn'"},
		{"Action=AssumeRoleWithWebIdentity&RoleArn=arn:aws:iam::444455556666:role/r&RoleSessionName=a b&WebIdentityToken=" + jwt(`{"sub":"s"}`),
			"ValidationError", "at 'roleSessionName' failed to satisfy constraint"},
		{"Action=AssumeRoleWithWebIdentity&RoleArn=arn:aws:iam::444455556666:role/r&RoleSessionName=ok&WebIdentityToken=" + jwt(`{"aud":"x"}`),
			"InvalidIdentityToken", "no sub"},
		{"Action=AssumeRoleWithWebIdentity&RoleArn=arn:aws:iam::444455556666:role/r&RoleSessionName=ok&DurationSeconds=50000&WebIdentityToken=" + jwt(`{"sub":"s"}`),
			"ValidationError", "less than or equal to 43200"},
		{"%zz", "MalformedInput", "not a URL-encoded form"},
	} {
		rec := call(h, http.MethodPost, "/", tc.body, nil)
		var e struct {
			Code    string `xml:"Error>Code"`
			Type    string `xml:"Error>Type"`
			Message string `xml:"Error>Message"`
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != 400 || e.Code != tc.code || e.Type != "Sender" || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%q: %d %+v, want %s containing %q (%v)", tc.body, rec.Code, e, tc.code, tc.msg, err)
		}
	}
}
