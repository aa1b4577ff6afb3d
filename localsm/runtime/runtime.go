// Package runtime runs the model servers behind local SageMaker endpoints and answers
// invocations: routing by variant weight across instances, blue/green swaps, live capacity.
package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// CONTRACT STUB: the runtime owner replaces this file; Options, New, the spec.Serving methods
// and ServeHTTP are the fixed API the rest of localsm builds on.

// Options configure a Runtime.
type Options struct {
	// Artifacts reads model.tar.gz files by s3:// URL.
	Artifacts spec.Artifacts
	// ImageMap maps a container image URI to a local command line that serves it under the
	// SageMaker serving contract (bring-your-own containers as processes).
	ImageMap map[string]string
	// WorkDir holds extracted artifacts and per-endpoint logs.
	WorkDir string
	// MaxBodyBytes bounds an invocation body (SageMaker's limit is 6 MB); 0 means 6 MiB.
	MaxBodyBytes int64
	// HealthTimeout bounds how long a new instance may take to answer GET /ping; 0 means 60s.
	HealthTimeout time.Duration
	Logger        *slog.Logger
}

// Runtime implements spec.Serving and serves POST /endpoints/{name}/invocations.
type Runtime struct{ opts Options }

var _ spec.Serving = (*Runtime)(nil)

// New returns a Runtime serving nothing yet.
func New(opts Options) (*Runtime, error) { return &Runtime{opts: opts}, nil }

// Deploy implements spec.Serving.
func (r *Runtime) Deploy(ctx context.Context, dep spec.Deployment, progress func(spec.Event)) error {
	for _, v := range dep.Variants {
		for _, c := range v.Containers {
			if c.ModelDataURL == "" {
				continue
			}
			rc, err := r.opts.Artifacts.Open(ctx, c.ModelDataURL)
			if err != nil {
				return err
			}
			rc.Close()
		}
	}
	return nil
}

// UpdateVariants implements spec.Serving.
func (r *Runtime) UpdateVariants(ctx context.Context, endpoint string, updates []spec.VariantUpdate) error {
	return errors.New("not implemented")
}

// Variants implements spec.Serving.
func (r *Runtime) Variants(endpoint string) ([]spec.VariantState, bool) { return nil, false }

// Remove implements spec.Serving.
func (r *Runtime) Remove(ctx context.Context, endpoint string) error { return nil }

// Close implements spec.Serving.
func (r *Runtime) Close(ctx context.Context) error { return nil }

// ServeHTTP answers POST /endpoints/{name}/invocations as SageMaker's runtime does.
func (r *Runtime) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}
