package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/allinone"
)

// stack is what `sagedeploy up` runs — allinone's local SageMaker, release server (dev, then
// prod behind an approval gate) and agent — in this process. The flows reach the local SageMaker
// and the release server through edges of their own that serve the stack's handlers and count
// every API call they answer.
type stack struct {
	smURL, relURL string
	tokens        map[string]string // environment → integration token
	adminPassword string

	sm  *sdkCounter // SageMaker (and STS, S3) calls, counted by a middleware on every SDK client
	rel *counter    // release server API, counted at its edge

	closers []func()
}

const benchRegion = allinone.DefaultRegion

func startStack(ctx context.Context, dir string) (*stack, error) {
	s := &stack{tokens: map[string]string{}, sm: newSDKCounter(), rel: newCounter(releaseRoute)}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	// The approver signs in with basic auth on every call: bcrypt's cheapest cost keeps that from
	// weighing on the flow (a dashboard user's session costs no hash at all).
	up, err := allinone.Start(ctx, allinone.Options{DataDir: dir, LocalAddr: "127.0.0.1:0", ServerAddr: "127.0.0.1:0",
		PasswordCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		up.Close(ctx)
	})
	s.adminPassword = up.AdminLogin().Password
	if s.adminPassword == "" {
		return nil, errors.New("the stack did not create its admin user")
	}
	for _, env := range []string{"dev", "prod"} {
		if s.tokens[env], err = up.Token(ctx, env); err != nil {
			return nil, err
		}
	}
	s.smURL = up.LocalURL()
	if s.relURL, err = s.serve(s.rel.wrap(up.Server().Handler())); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// serve listens on a free loopback port until close.
func (s *stack) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go hs.Serve(ln)
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String(), nil
}

func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// approve lets a release through its gate as the admin does from the dashboard.
func (s *stack) approve(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.relURL+"/api/v1/releases/"+url.PathEscape(id)+"/approve", strings.NewReader(`{}`))
	if err != nil {
		return err
	}
	req.SetBasicAuth("admin", s.adminPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("approve release %s: HTTP %d: %s", id, resp.StatusCode, b)
	}
	return nil
}

// sdkCounter counts the AWS API calls of the SDK clients it is installed on, by operation: a
// middleware at the end of the finalize step, after the retryer, so that every attempt sent
// counts, as it does against SageMaker's rate limits.
type sdkCounter struct {
	mu  sync.Mutex
	ops map[string]int
	// tl, when set (-trace), records each call with its time and the deployer function that made it.
	tl *timeline
}

// timeline records calls to SageMaker and to the release server as they happen (-trace).
type timeline struct {
	mu  sync.Mutex
	all []traced
}

// traced is one call: when it began, how long it took, what it was.
type traced struct {
	at   time.Time
	took time.Duration
	what string
}

func (t *timeline) add(at time.Time, what string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.all = append(t.all, traced{at: at, took: time.Since(at), what: what})
	t.mu.Unlock()
}

// take returns the calls since the last take, by start time.
func (t *timeline) take() []traced {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.all
	t.all = nil
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

func newSDKCounter() *sdkCounter { return &sdkCounter{ops: map[string]int{}} }

// apiOption installs the counter on an SDK client's stack (aws.Config.APIOptions,
// deploy.Options.APIOptions).
func (c *sdkCounter) apiOption(st *middleware.Stack) error {
	return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("BenchCountCalls",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			if svc := awsmiddleware.GetServiceID(ctx); svc != "SageMaker" {
				op = strings.ToLower(strings.ReplaceAll(svc, " ", "-")) + ":" + op
			}
			c.mu.Lock()
			c.ops[op]++
			c.mu.Unlock()
			if c.tl == nil {
				return next.HandleFinalize(ctx, in)
			}
			at, caller := time.Now(), deployCaller()
			out, md, err := next.HandleFinalize(ctx, in)
			c.tl.add(at, op+" ← "+caller)
			return out, md, err
		}), middleware.After)
}

// take returns the counts since the last take and starts again from zero.
func (c *sdkCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ops
	c.ops = map[string]int{}
	return out
}

// deployCaller names the innermost function of package deploy on the calling goroutine's stack
// (the deployer code that made an SDK call), or "?" when none.
func deployCaller() string {
	pcs := make([]uintptr, 256) // S3's middleware stack alone is deeper than 64 frames
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if i := strings.Index(f.Function, "/sagedeploy/deploy."); i >= 0 {
			return f.Function[i+len("/sagedeploy/"):]
		}
		if !more {
			return "?"
		}
	}
}

// counter counts the calls an edge answers, by operation, between resets.
type counter struct {
	name func(*http.Request) string
	mu   sync.Mutex
	ops  map[string]int
	tl   *timeline // -trace
}

func newCounter(name func(*http.Request) string) *counter {
	return &counter{name: name, ops: map[string]int{}}
}

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := c.name(r)
		c.mu.Lock()
		c.ops[op]++
		c.mu.Unlock()
		at := time.Now()
		h.ServeHTTP(w, r)
		c.tl.add(at, "release server: "+op)
	})
}

// take returns the counts since the last take and starts again from zero.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ops
	c.ops = map[string]int{}
	return out
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var idSegment = regexp.MustCompile(`/[0-9a-f]{8}-[0-9a-f-]{27,}`)

// releaseRoute names a release server API call by method and route, ids left out.
func releaseRoute(r *http.Request) string {
	return r.Method + " " + idSegment.ReplaceAllString(r.URL.Path, "/{id}")
}

// machine describes where the figures come from.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("%s, load average %s", model, load)
}
