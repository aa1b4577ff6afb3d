package releases

import (
	"errors"
	"fmt"
)

// Error codes of the release domain. The server maps each to one HTTP status in one place; the
// store and the lifecycle rules return them without knowing about HTTP.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule of the domain
	ENOTFOUND     = "not_found"    // no such release, command, environment, token or user
	ECONFLICT     = "conflict"     // the thing is not in a state that allows the change
	EUNAUTHORIZED = "unauthorized" // no valid credentials
	EFORBIDDEN    = "forbidden"    // valid credentials, but not for this
	EINTERNAL     = "internal"     // a fault of the server (storage, a bug)
)

// Error is an error of the release domain: a code to branch on and a message a user can act on.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for any other error, and ""
// for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the *Error in err's chain, or a generic message for any
// other error so internal details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	}
	return "internal error"
}
