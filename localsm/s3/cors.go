package s3

import (
	"fmt"
	"html"
	"net/http"
	"strings"
)

// allowOrigin keeps web pages away from the artifacts. Browsers name the page's origin in every
// cross-origin request (and in same-origin POSTs); SDKs and CLIs never send Origin. A request
// from an origin other than the configured one is refused before it reaches the store, so that
// neither a read (CORS would only hide the answer) nor a form POST upload (a "simple" request,
// sent without preflight) can happen. A preflight from the configured origin is answered here.
// It reports whether the request may go on.
func (s *Store) allowOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if s.corsOrigin == "" || origin != s.corsOrigin {
		msg := fmt.Sprintf("CORSResponse: requests from web pages are not allowed (origin %s). "+
			"To let one web app call the local S3 API, start sagedeploy local with --s3-cors-origin ORIGIN.", origin)
		if s.corsOrigin != "" {
			msg = fmt.Sprintf("CORSResponse: origin %s is not allowed; only %s is (--s3-cors-origin).", origin, s.corsOrigin)
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Error><Code>AccessForbidden</Code><Message>%s</Message></Error>", html.EscapeString(msg))
		return false
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, POST, DELETE")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", "600")
		h.Add("Vary", "Origin")
		w.WriteHeader(http.StatusOK)
		return false
	}
	return true
}

// fixHeaders corrects what gofakes3 writes before the headers go out: its CORS headers (it
// allows every origin every method) are replaced by ours, and a multipart object's ETag
// replaces the MD5 it reports.
type fixHeaders struct {
	http.ResponseWriter
	origin string // of an allowed request, or ""
	done   bool
}

func (f *fixHeaders) fix() {
	if f.done {
		return
	}
	f.done = true
	h := f.Header()
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	if f.origin != "" {
		h.Set("Access-Control-Allow-Origin", f.origin)
		h.Set("Access-Control-Expose-Headers", "ETag, x-amz-request-id, x-amz-version-id")
		h.Add("Vary", "Origin")
	}
	if tag, ok := h[multipartETagMeta]; ok {
		if len(tag) > 0 && tag[0] != "" {
			h.Set("ETag", tag[0])
		}
		delete(h, multipartETagMeta)
	}
}

func (f *fixHeaders) WriteHeader(code int) {
	f.fix()
	f.ResponseWriter.WriteHeader(code)
}

func (f *fixHeaders) Write(p []byte) (int, error) {
	f.fix()
	return f.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController access to the underlying writer.
func (f *fixHeaders) Unwrap() http.ResponseWriter { return f.ResponseWriter }
