package runtime

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"
)

// Errors are written as SageMaker's runtime writes them (restJson1): the code in
// X-Amzn-ErrorType, the members in a JSON body. aws-sdk-go-v2 turns them into typed errors
// (types.ModelError with OriginalStatusCode and OriginalMessage, types.ValidationError) and the
// AWS CLI prints "An error occurred (ModelError) when calling the InvokeEndpoint operation: ...".

type apiError struct {
	Message            string `json:"Message"`
	OriginalStatusCode *int   `json:"OriginalStatusCode,omitempty"`
	OriginalMessage    string `json:"OriginalMessage,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code string, body apiError) {
	data, _ := json.Marshal(body)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Amzn-Errortype"] = []string{code}
	// SDKs quote the request id in error messages; answers that succeed skip it to stay lean.
	h["X-Amzn-Requestid"] = []string{uuid.NewString()}
	w.WriteHeader(status)
	w.Write(data)
}

func validationError(w http.ResponseWriter, status int, format string, args ...any) {
	writeError(w, status, "ValidationError", apiError{Message: fmt.Sprintf(format, args...)})
}

// modelError reports a model server's non-2xx answer as SageMaker does: 424, with the model's
// status and message inside.
func modelError(w http.ResponseWriter, variant string, status int, msg []byte, logPath string) {
	kind := "client"
	if status >= 500 {
		kind = "server"
	}
	text := string(msg)
	m := fmt.Sprintf("Received %s error (%d) from primary (variant %s) with message %q.", kind, status, variant, text)
	if logPath != "" {
		m += " See " + logPath + " for more information."
	}
	writeError(w, 424, "ModelError", apiError{Message: m, OriginalStatusCode: &status, OriginalMessage: text})
}

// unreachableModel reports a model server that gave no answer at all.
func unreachableModel(w http.ResponseWriter, variant string, err error, logPath string) {
	m := fmt.Sprintf("The model server of variant %s did not answer: %v.", variant, err)
	if logPath != "" {
		m += " See " + logPath + " for more information."
	}
	writeError(w, 424, "ModelError", apiError{Message: m})
}
