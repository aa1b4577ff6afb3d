// Package sts is the local SageMaker's Security Token Service: AssumeRoleWithWebIdentity and
// GetCallerIdentity over STS's query protocol (form POST, XML answers), so that a deployer's OIDC
// credentials path runs end to end without AWS. Tokens are read but their signatures are not
// verified: this is a development endpoint, not a security boundary.
package sts

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

const namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// Options configure the STS handler.
type Options struct {
	// Account answers GetCallerIdentity for callers that did not assume a role here.
	Account string
	Logger  *slog.Logger
	Now     func() time.Time
}

// Handler answers STS query-protocol requests.
type Handler struct {
	opts Options

	mu sync.Mutex
	// sessions maps access key ids issued by AssumeRoleWithWebIdentity to the role session, so
	// GetCallerIdentity signed with them names the assumed role, as on AWS.
	sessions map[string]session
}

type session struct {
	arn, userID, account string
	expires              time.Time
}

// New returns an STS handler.
func New(opts Options) *Handler {
	if opts.Account == "" {
		opts.Account = "000000000000"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{opts: opts, sessions: map[string]session{}}
}

// maxForm bounds a request: a web identity token is at most 20,000 characters.
const maxForm = 64 << 10

// ServeHTTP answers one STS call. Parameters come from the query string or a form body.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	params := url.Values{}
	for k, v := range r.URL.Query() {
		params[k] = v
	}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxForm+1))
		if err != nil || len(body) > maxForm {
			h.fail(w, r, "", start, http.StatusBadRequest, "Sender", "ValidationError", "Request body is unreadable or larger than 64 KiB")
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			h.fail(w, r, "", start, http.StatusBadRequest, "Sender", "MalformedInput", "Request body is not a URL-encoded form: "+err.Error())
			return
		}
		for k, v := range form {
			params[k] = v
		}
	}
	action := params.Get("Action")
	switch action {
	case "AssumeRoleWithWebIdentity":
		h.assumeRoleWithWebIdentity(w, r, params, start)
	case "AssumeRole":
		h.assumeRole(w, r, params, start)
	case "GetCallerIdentity":
		h.getCallerIdentity(w, r, start)
	case "":
		h.fail(w, r, action, start, http.StatusBadRequest, "Sender", "MissingAction", "Missing Action parameter")
	default:
		h.fail(w, r, action, start, http.StatusBadRequest, "Sender", "InvalidAction",
			fmt.Sprintf("Could not find operation %s for version %s (the local STS implements AssumeRole, AssumeRoleWithWebIdentity and GetCallerIdentity)", action, params.Get("Version")))
	}
}

var (
	roleArnPattern     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::([0-9]{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

func (h *Handler) assumeRoleWithWebIdentity(w http.ResponseWriter, r *http.Request, p url.Values, start time.Time) {
	const op = "AssumeRoleWithWebIdentity"
	roleArn, sessionName, token := p.Get("RoleArn"), p.Get("RoleSessionName"), p.Get("WebIdentityToken")
	duration, problems := validateWebIdentity(p)
	if len(problems) > 0 {
		noun := "errors"
		if len(problems) == 1 {
			noun = "error"
		}
		h.fail(w, r, op, start, http.StatusBadRequest, "Sender", "ValidationError",
			fmt.Sprintf("%d validation %s detected: %s", len(problems), noun, strings.Join(problems, "; ")))
		return
	}
	m := roleArnPattern.FindStringSubmatch(roleArn)
	if m == nil {
		h.fail(w, r, op, start, http.StatusBadRequest, "Sender", "ValidationError",
			fmt.Sprintf("%s is not a valid role ARN (arn:aws:iam::ACCOUNT:role/NAME)", roleArn))
		return
	}
	claims, err := parseJWT(token)
	if err != nil {
		h.fail(w, r, op, start, http.StatusBadRequest, "Sender", "InvalidIdentityToken", err.Error())
		return
	}
	now := h.opts.Now().UTC()
	if claims.Exp != 0 && now.Unix() >= claims.Exp {
		h.fail(w, r, op, start, http.StatusBadRequest, "Sender", "ExpiredTokenException",
			fmt.Sprintf("Token expired: current date/time %d must be before the expiration date/time %d", now.Unix(), claims.Exp))
		return
	}
	res := h.startSession(m[1], m[2], sessionName, now, duration)
	res.SubjectFromWebIdentityToken, res.Audience, res.Provider = claims.Sub, claims.audience(), providerOf(claims.Iss)
	h.respond(w, r, op, start, struct {
		XMLName xml.Name          `xml:"AssumeRoleWithWebIdentityResponse"`
		Xmlns   string            `xml:"xmlns,attr"`
		Result  webIdentityResult `xml:"AssumeRoleWithWebIdentityResult"`
		Meta    meta              `xml:"ResponseMetadata"`
	}{Xmlns: namespace, Result: res, Meta: meta{RequestID: requestID()}}, "role", res.AssumedRoleUser.Arn)
}

// validateWebIdentity checks AssumeRoleWithWebIdentity's parameters as STS does, returning every
// problem in STS's words, and the session duration asked for (an hour by default).
func validateWebIdentity(p url.Values) (time.Duration, []string) {
	roleArn, sessionName, token := p.Get("RoleArn"), p.Get("RoleSessionName"), p.Get("WebIdentityToken")
	var problems []string
	check := func(ok bool, msg string) {
		if !ok {
			problems = append(problems, msg)
		}
	}
	check(roleArn != "", "Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	check(sessionName != "", "Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	check(token != "", "Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null")
	if sessionName != "" {
		check(sessionNamePattern.MatchString(sessionName), fmt.Sprintf("Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", sessionName))
	}
	if token != "" {
		check(len(token) >= 4 && len(token) <= 20000, "Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000")
	}
	d := p.Get("DurationSeconds")
	if d == "" {
		return time.Hour, problems
	}
	n, err := strconv.Atoi(d)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must be a number", d))
	case n < 900:
		problems = append(problems, fmt.Sprintf("Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", n))
	case n > 43200:
		problems = append(problems, fmt.Sprintf("Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200", n))
	}
	return time.Duration(n) * time.Second, problems
}

type assumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

// webIdentityResult is AssumeRoleWithWebIdentityResult.
type webIdentityResult struct {
	SubjectFromWebIdentityToken string          `xml:"SubjectFromWebIdentityToken"`
	Audience                    string          `xml:"Audience,omitempty"`
	AssumedRoleUser             assumedRoleUser `xml:"AssumedRoleUser"`
	Credentials                 credentials     `xml:"Credentials"`
	Provider                    string          `xml:"Provider,omitempty"`
}

// startSession issues temporary credentials for the role and remembers them, so that
// GetCallerIdentity signed with them names the assumed role. Expired sessions are forgotten.
func (h *Handler) startSession(account, roleName, sessionName string, now time.Time, duration time.Duration) webIdentityResult {
	keyID := "ASIA" + randomString(16, upperAlnum)
	roleID := "AROA" + randomString(17, upperAlnum)
	creds := credentials{
		AccessKeyID:     keyID,
		SecretAccessKey: randomString(40, secretChars),
		SessionToken:    base64.StdEncoding.EncodeToString([]byte(randomString(96, secretChars))),
		Expiration:      now.Add(duration).Format(time.RFC3339),
	}
	assumed := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, roleName, sessionName)
	h.mu.Lock()
	for id, s := range h.sessions {
		if now.After(s.expires) {
			delete(h.sessions, id)
		}
	}
	h.sessions[keyID] = session{arn: assumed, userID: roleID + ":" + sessionName, account: account, expires: now.Add(duration)}
	h.mu.Unlock()
	return webIdentityResult{Credentials: creds,
		AssumedRoleUser: assumedRoleUser{Arn: assumed, AssumedRoleID: roleID + ":" + sessionName}}
}

// providerOf is STS's Provider for an issuer URL: its host and path.
func providerOf(iss string) string {
	if u, err := url.Parse(iss); err == nil && u.Host != "" {
		return u.Host + strings.TrimSuffix(u.Path, "/")
	}
	return iss
}

func (h *Handler) getCallerIdentity(w http.ResponseWriter, r *http.Request, start time.Time) {
	keyID := accessKeyID(r)
	arn, userID, account := fmt.Sprintf("arn:aws:iam::%s:root", h.opts.Account), h.opts.Account, h.opts.Account
	h.mu.Lock()
	if s, ok := h.sessions[keyID]; ok && h.opts.Now().Before(s.expires) {
		arn, userID, account = s.arn, s.userID, s.account
	}
	h.mu.Unlock()
	type result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	}
	h.respond(w, r, "GetCallerIdentity", start, struct {
		XMLName xml.Name `xml:"GetCallerIdentityResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Result  result   `xml:"GetCallerIdentityResult"`
		Meta    meta     `xml:"ResponseMetadata"`
	}{Xmlns: namespace, Result: result{Arn: arn, UserID: userID, Account: account}, Meta: meta{RequestID: requestID()}}, "arn", arn)
}

var accessKeyPattern = regexp.MustCompile(`Credential=([^/,\s]+)/`)

// accessKeyID is the key a request was signed with (SigV4 header or presigned query).
func accessKeyID(r *http.Request) string {
	if m := accessKeyPattern.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1]
	}
	if c := r.URL.Query().Get("X-Amz-Credential"); c != "" {
		return strings.SplitN(c, "/", 2)[0]
	}
	return ""
}

type credentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type meta struct {
	RequestID string `xml:"RequestId"`
}

func (h *Handler) respond(w http.ResponseWriter, r *http.Request, op string, start time.Time, v any, attrs ...any) {
	body, err := xml.Marshal(v)
	if err != nil {
		h.fail(w, r, op, start, http.StatusInternalServerError, "Receiver", "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
	h.opts.Logger.Info("sts call", append([]any{"op", op, "outcome", "ok", "duration", time.Since(start)}, attrs...)...)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, op string, start time.Time, status int, typ, code, msg string) {
	type errorBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body, _ := xml.Marshal(struct {
		XMLName   xml.Name  `xml:"ErrorResponse"`
		Xmlns     string    `xml:"xmlns,attr"`
		Error     errorBody `xml:"Error"`
		RequestID string    `xml:"RequestId"`
	}{Xmlns: namespace, Error: errorBody{Type: typ, Code: code, Message: msg}, RequestID: requestID()})
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
	h.opts.Logger.Info("sts call", "op", op, "outcome", code, "error", msg, "duration", time.Since(start))
}

// jwtClaims are the claims AWS reports back from a web identity token.
type jwtClaims struct {
	Sub string          `json:"sub"`
	Iss string          `json:"iss"`
	Aud json.RawMessage `json:"aud"`
	Exp int64           `json:"exp"`
}

func (c jwtClaims) audience() string {
	var s string
	if json.Unmarshal(c.Aud, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(c.Aud, &list) == nil && len(list) > 0 {
		return list[0]
	}
	return ""
}

// parseJWT reads a token's claims without verifying its signature.
func parseJWT(token string) (jwtClaims, error) {
	var c jwtClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("the web identity token is not a JWT: expected three base64url parts separated by dots, found %d", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return c, fmt.Errorf("the web identity token's payload is not base64url: %v", err)
	}
	var raw struct {
		Sub string          `json:"sub"`
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
		Exp json.Number     `json:"exp"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return c, fmt.Errorf("the web identity token's payload is not a JSON object of claims: %v", err)
	}
	c = jwtClaims{Sub: raw.Sub, Iss: raw.Iss, Aud: raw.Aud}
	if raw.Exp != "" {
		f, err := raw.Exp.Float64()
		if err != nil {
			return c, fmt.Errorf("the web identity token's exp claim is not a number")
		}
		c.Exp = int64(f)
	}
	if c.Sub == "" {
		return c, fmt.Errorf("the web identity token has no sub (subject) claim")
	}
	return c, nil
}

const (
	upperAlnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

func requestID() string {
	r := randomString(32, "0123456789abcdef")
	return r[:8] + "-" + r[8:12] + "-" + r[12:16] + "-" + r[16:20] + "-" + r[20:]
}
