package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
	"github.com/sagedeploy/sagedeploy/xgboost"
)

// Source is where Prepare finds what a container needs.
type Source struct {
	Artifacts spec.Artifacts
	// Store holds extracted artifacts for process containers.
	Store *Store
	// ImageMap maps images to local commands (see Resolve).
	ImageMap map[string]string
	// MaxModelBytes caps what an artifact may unpack to; 0 means DefaultMaxModelBytes.
	MaxModelBytes int64
}

// Model is one container of a variant made ready to run: its image resolved, its artifact
// fetched and either loaded (built-in XGBoost) or extracted (process container). Instances
// started from one Model share it.
type Model struct {
	kind    Kind
	image   string
	url     string
	command string
	env     map[string]string
	dir     string
	release func()
	xgb     *xgbServer
}

// Prepare readies a container. Its errors name the image or artifact and say what to do, in
// words fit for an endpoint's FailureReason.
func Prepare(ctx context.Context, c spec.Container, src Source) (*Model, error) {
	kind, command, err := Resolve(c.Image, src.ImageMap)
	if err != nil {
		return nil, err
	}
	if c.ModelDataURL != "" && src.Artifacts == nil {
		return nil, fmt.Errorf("cannot fetch model artifact %s: no artifact store configured", c.ModelDataURL)
	}
	m := &Model{kind: kind, image: c.Image, url: c.ModelDataURL, command: command, env: maps.Clone(c.Environment), release: func() {}}
	switch kind {
	case KindXGBoost:
		if c.ModelDataURL == "" {
			return nil, fmt.Errorf("image %s is SageMaker's XGBoost image, which needs ModelDataUrl pointing at a model.tar.gz holding the model file xgboost-model", c.Image)
		}
		booster, err := loadXGBoost(ctx, src.Artifacts, c.ModelDataURL, src.MaxModelBytes)
		if err != nil {
			return nil, err
		}
		if m.xgb, err = newXGBServer(booster, c.Environment); err != nil {
			return nil, fmt.Errorf("model %s: %w", c.ModelDataURL, err)
		}
	case KindProcess:
		if src.Store == nil {
			return nil, errors.New("process containers need a model store")
		}
		if c.ModelDataURL == "" {
			m.dir, m.release, err = src.Store.Empty()
			if err != nil {
				return nil, err
			}
			break
		}
		rc, err := src.Artifacts.Open(ctx, c.ModelDataURL)
		if err != nil {
			return nil, fmt.Errorf("fetch model artifact: %w", err)
		}
		defer rc.Close()
		m.dir, m.release, err = src.Store.Extract(ctx, c.ModelDataURL, rc, src.MaxModelBytes)
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

func loadXGBoost(ctx context.Context, artifacts spec.Artifacts, url string, limit int64) (*xgboost.Model, error) {
	candidates, err := modelFiles(ctx, artifacts, url, limit)
	if err != nil {
		return nil, err
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("model artifact %s holds no model file; SageMaker's XGBoost container expects a file named xgboost-model at the top of the archive", url)
	}
	var errs []string
	for _, f := range candidates {
		data, err := f.read(ctx)
		if err != nil {
			return nil, err
		}
		booster, err := xgboost.Load(data)
		if err == nil {
			return booster, nil
		}
		if len(candidates) == 1 {
			return nil, fmt.Errorf("model artifact %s: file %s: %w", url, f.name, err)
		}
		errs = append(errs, fmt.Sprintf("%s: %v", f.name, err))
	}
	return nil, fmt.Errorf("model artifact %s has no file the XGBoost server can load (name the model file xgboost-model): %s",
		url, strings.Join(errs, "; "))
}

// Kind is how the model is served.
func (m *Model) Kind() Kind { return m.kind }

// Describe says what serves the model, for progress messages.
func (m *Model) Describe() string {
	switch m.kind {
	case KindXGBoost:
		return fmt.Sprintf("built-in XGBoost server (%s, %d features)", m.xgb.objective, m.xgb.features)
	case KindProcess:
		return fmt.Sprintf("process container %q", m.command)
	}
	return m.kind.String()
}

// Release gives back what Prepare took (the extracted artifact); call it once every instance
// started from the model has stopped.
func (m *Model) Release() { m.release() }

// StartOptions say which instance to start and where its output goes.
type StartOptions struct {
	Endpoint, Variant, InstanceID string
	// LogPath is the file a process container's output is appended to.
	LogPath string
	// HealthTimeout bounds how long a process may take to answer GET /ping.
	HealthTimeout time.Duration
	// PingInterval is how often a healthy process is pinged again (GET /ping) while it serves;
	// one failing maxPingFailures pings in a row is killed, and OnExit replaces it. 0 means
	// DefaultPingInterval; negative turns the checks off.
	PingInterval time.Duration
	// Ports hands out process ports; share one between all instances of a runtime.
	Ports *Ports
	// OnExit is called (on its own goroutine) when a process stops without being asked to.
	OnExit func()
	Logger *slog.Logger
}

// Start starts one instance and returns once it is healthy.
func (m *Model) Start(ctx context.Context, o StartOptions) (Instance, error) {
	switch m.kind {
	case KindXGBoost:
		return xgbInstance{srv: m.xgb}, nil
	case KindProcess:
		return startProcess(ctx, m, o)
	}
	return nil, fmt.Errorf("cannot start %s", m.kind)
}
