package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Running is a release server listening on a port: what `sagedeploy server` and `sagedeploy up`
// run. Stop it with Stop.
type Running struct {
	// URL is where it listens, e.g. http://127.0.0.1:4571.
	URL    string
	Server *Server
	// FirstAdminPassword is the password of the user "admin" when this start created it (the
	// store had no user); empty otherwise. Show it to the user once.
	FirstAdminPassword string

	http     *http.Server
	done     chan struct{} // closed when serving ended
	serveErr error         // why, when not by Stop; read after done

	stopOnce sync.Once
	stopErr  error
}

// Listen listens on addr ("127.0.0.1:0" picks a free port), builds a server from opts, creates the
// first admin when the store has no user (see Running.FirstAdminPassword), and serves in the
// background until Stop.
func Listen(ctx context.Context, addr string, opts Options) (*Running, error) {
	if opts.Store == nil {
		return nil, errors.New("release server: no store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another server running there? pick another address)", addr, err)
	}
	opts.Webhooks.LinkBase = cmp.Or(opts.Webhooks.LinkBase, "http://"+ln.Addr().String())
	srv, err := New(opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	pw, created, err := EnsureFirstAdmin(ctx, opts.Store, opts.PasswordCost)
	if err != nil {
		srv.Close()
		ln.Close()
		return nil, fmt.Errorf("create the first admin: %w", err)
	}
	r := &Running{URL: "http://" + ln.Addr().String(), Server: srv, done: make(chan struct{})}
	if created {
		r.FirstAdminPassword = pw
	}
	r.http = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)}
	go func() {
		err := r.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.serveErr = err
		close(r.done)
	}()
	return r, nil
}

// Done is closed when the server stopped serving: after Stop, or on its own (see Err).
func (r *Running) Done() <-chan struct{} { return r.done }

// Err is why serving ended, once Done is closed: nil after Stop.
func (r *Running) Err() error {
	select {
	case <-r.done:
		return r.serveErr
	default:
		return nil
	}
}

// Stop ends open streams and long polls, then shuts the HTTP server down gracefully (waiting for
// requests in flight until ctx ends). Calling it again returns the first result. The store stays
// open: it belongs to the caller.
func (r *Running) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.Server.Close()
		r.stopErr = r.http.Shutdown(ctx)
		select {
		case <-r.done:
			if r.stopErr == nil {
				r.stopErr = r.serveErr
			}
		case <-ctx.Done():
			if r.stopErr == nil {
				r.stopErr = ctx.Err()
			}
		}
	})
	return r.stopErr
}
