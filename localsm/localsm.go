// Package localsm is the local SageMaker: one listener that routes by protocol, like a cloud edge,
// to the control plane (AWS JSON 1.1), the runtime (invocations), STS (query protocol) and S3.
package localsm

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
)

// CONTRACT STUB: the localsm owner replaces this file; Options, Start and the Server methods
// below are the fixed API that the CLI, the deployer's tests and `sagedeploy up` build on.

// Options configure a local SageMaker.
type Options struct {
	// Addr to listen on; "127.0.0.1:0" picks a free port (tests). Default "127.0.0.1:4570".
	Addr string
	// DataDir holds the state, the S3 objects, extracted artifacts and logs.
	DataDir string
	// Account is the AWS account id in ARNs; default "000000000000".
	Account string
	// ImageMap maps container image URIs to local commands (bring-your-own serving containers).
	ImageMap map[string]string
	// MaxBodyBytes bounds invocation bodies; 0 means SageMaker's 6 MB.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Server is a running local SageMaker.
type Server struct{}

// Start listens, restores every endpoint that was InService when it last stopped, and serves in
// the background until Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	return nil, errors.New("localsm: not implemented")
}

// URL is the base URL to export as AWS_ENDPOINT_URL, e.g. http://127.0.0.1:4570.
func (s *Server) URL() string { return "" }

// Handler is the whole edge, for embedding under another listener.
func (s *Server) Handler() http.Handler { return http.NotFoundHandler() }

// Close stops accepting requests, drains in-flight ones, stops every model server and closes the
// state store.
func (s *Server) Close(ctx context.Context) error { return nil }
