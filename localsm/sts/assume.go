package sts

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// assumeRole answers AssumeRole: the caller's credentials (any, locally) become a session of the
// role, in the role's account — how a deployer reaches an environment in another account.
func (h *Handler) assumeRole(w http.ResponseWriter, r *http.Request, p url.Values, start time.Time) {
	const op = "AssumeRole"
	roleArn, sessionName := p.Get("RoleArn"), p.Get("RoleSessionName")
	// AssumeRole shares AssumeRoleWithWebIdentity's rules but for the token.
	q := url.Values{}
	for k, v := range p {
		q[k] = v
	}
	q.Set("WebIdentityToken", "none")
	duration, problems := validateWebIdentity(q)
	if len(problems) > 0 {
		h.fail(w, r, op, start, http.StatusBadRequest, "Sender", "ValidationError",
			fmt.Sprintf("%d validation error(s) detected: %s", len(problems), strings.Join(problems, "; ")))
		return
	}
	m := roleArnPattern.FindStringSubmatch(roleArn)
	if m == nil {
		h.fail(w, r, op, start, http.StatusBadRequest, "Sender", "ValidationError",
			fmt.Sprintf("%s is not a valid role ARN (arn:aws:iam::ACCOUNT:role/NAME)", roleArn))
		return
	}
	res := h.startSession(m[1], m[2], sessionName, h.opts.Now().UTC(), duration)
	type result struct {
		AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
		Credentials     credentials     `xml:"Credentials"`
	}
	h.respond(w, r, op, start, struct {
		XMLName xml.Name `xml:"AssumeRoleResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Result  result   `xml:"AssumeRoleResult"`
		Meta    meta     `xml:"ResponseMetadata"`
	}{Xmlns: namespace, Result: result{AssumedRoleUser: res.AssumedRoleUser, Credentials: res.Credentials}, Meta: meta{RequestID: requestID()}}, "role", res.AssumedRoleUser.Arn)
}
