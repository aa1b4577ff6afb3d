package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// APIError is an error as SageMaker's JSON 1.1 front end returns it: a code that the SDKs turn
// into an exception type, a message, and an HTTP status.
type APIError struct {
	Code    string
	Message string
	Status  int
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

// errValidation is SageMaker's catch-all client error: bad values, missing resources, wrong states.
func errValidation(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "ValidationException", format, args...)
}

func errSerialization(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "SerializationException", format, args...)
}

func errResourceNotFound(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "ResourceNotFound", format, args...)
}

func errConflict(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "ConflictException", format, args...)
}

func errInternal(err error) *APIError {
	return apiErr(http.StatusInternalServerError, "InternalFailure", "%v", err)
}

// writeJSON answers with an AWS JSON 1.1 body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"__type":"InternalFailure","message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers with an error body as AWS does: __type names the error, message says why.
// X-Amzn-ErrorType carries the code as well, for clients that read the header.
func writeError(w http.ResponseWriter, err error) *APIError {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = errInternal(err)
	}
	w.Header().Set("X-Amzn-ErrorType", ae.Code)
	writeJSON(w, ae.Status, map[string]string{"__type": ae.Code, "message": ae.Message})
	return ae
}
