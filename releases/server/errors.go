package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sagedeploy/sagedeploy/releases"
)

// httpError is a refusal of the HTTP layer itself (a body too large, a method not allowed) that no
// domain code describes. Its message is shown to the user as it is.
type httpError struct {
	status     int
	msg        string
	retryAfter int // seconds, for 429 and 503 answers; 0 leaves the header out
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// codeStatus is the one place where the release domain's error codes become HTTP statuses.
func codeStatus(code string) int {
	switch code {
	case releases.EINVALID:
		return http.StatusBadRequest
	case releases.ENOTFOUND:
		return http.StatusNotFound
	case releases.ECONFLICT:
		return http.StatusConflict
	case releases.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case releases.EFORBIDDEN:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// statusOf maps an error to its HTTP status: by its domain code, or the HTTP layer's own status.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	return codeStatus(releases.ErrorCode(err))
}

// publicMessage is what the user sees for err: its own message, except for unexpected errors,
// whose details stay in the server log.
func (s *Server) publicMessage(r *http.Request, err error) string {
	if statusOf(err) == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return "internal error of the release server (details are in its log); try again, and report it if it persists"
	}
	return err.Error()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	setRetryAfter(w, err)
	writeJSON(w, statusOf(err), map[string]string{"error": s.publicMessage(r, err)})
}

// decodeJSON reads a JSON body into v, rejecting unknown fields and trailing data, with messages
// that point at the problem. what names the body in those messages ("the release start").
func decodeJSON(r *http.Request, v any, what string) error { return decodeBody(r, v, what, false) }

// decodeOptionalJSON is decodeJSON for bodies that may be left out entirely.
func decodeOptionalJSON(r *http.Request, v any, what string) error {
	return decodeBody(r, v, what, true)
}

func decodeBody(r *http.Request, v any, what string, optional bool) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return releases.Errorf(releases.EINVALID, "read %s: %v", what, err)
	}
	if len(data) > 1<<20 {
		return errorf(http.StatusRequestEntityTooLarge, "%s is larger than 1 MiB", what)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return releases.Errorf(releases.EINVALID, "the request has no body: send %s as a JSON object", what)
	}
	// The Content-Type is not checked: `curl -d` labels JSON as a form, and cross-site forms cannot
	// use this API anyway (sessions need the CSRF header, tokens are never sent by a browser).
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return releases.Errorf(releases.EINVALID, "%s is not valid JSON (at byte %d): %v", what, se.Offset, err)
		case errors.As(err, &te):
			return releases.Errorf(releases.EINVALID, "%s: field %q must be %s, not %s", what, te.Field, jsonType(te.Type.Kind().String()), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return releases.Errorf(releases.EINVALID, "%s: %s", what, strings.TrimPrefix(err.Error(), "json: "))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return releases.Errorf(releases.EINVALID, "%s is not valid JSON: it ends too early", what)
		}
		return releases.Errorf(releases.EINVALID, "%s is not valid JSON: %v", what, err)
	}
	if dec.More() {
		return releases.Errorf(releases.EINVALID, "%s: unexpected data after the JSON object", what)
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int64", "int32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "ptr":
		return "an object"
	}
	return kind
}

// missing builds the "missing fields" error for a body.
func missing(what string, fields []string, example string) error {
	if len(fields) == 0 {
		return nil
	}
	return releases.Errorf(releases.EINVALID, "%s is missing %s; for example %s", what, strings.Join(fields, ", "), example)
}
