package main

import (
	"bytes"
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
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/allinone"
)

// stack is what `sagedeploy up` runs — allinone's local SageMaker, release server (dev, then
// prod behind an approval gate) and agent — in this process. The flows reach the local SageMaker
// and the release server through edges of their own that serve the stack's handlers and count
// every API call they answer.
type stack struct {
	smURL, relURL string
	// rawSMURL is the local SageMaker's own listener, not counted: set-up and measurements use it.
	rawSMURL      string
	tokens        map[string]string // environment → integration token
	adminPassword string

	sm  *counter // SageMaker edge: control plane, runtime, STS, S3
	rel *counter // release server API

	closers []func()
}

const benchRegion = allinone.DefaultRegion

func startStack(ctx context.Context, dir string) (*stack, error) {
	s := &stack{tokens: map[string]string{}, sm: newCounter(smOperation), rel: newCounter(releaseRoute)}
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
	s.rawSMURL = up.LocalURL()
	if s.smURL, err = s.serve(s.sm.wrap(up.Local().Handler())); err != nil {
		return nil, err
	}
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

// counter counts the calls an edge answers, by operation, between resets.
type counter struct {
	name func(*http.Request) string
	mu   sync.Mutex
	ops  map[string]int
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
		h.ServeHTTP(w, r)
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

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var credentialService = regexp.MustCompile(`Credential=[^/,\s]+/[0-9]{8}/[a-z0-9-]+/([a-z0-9-]+)/aws4_request`)

// smOperation names a call to the local SageMaker's edge as AWS names operations: the control
// plane's X-Amz-Target, the runtime's InvokeEndpoint, STS's Action, or S3's method.
func smOperation(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return strings.TrimPrefix(t, "SageMaker.")
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/endpoints/") && strings.HasSuffix(r.URL.Path, "/invocations") {
		return "runtime:InvokeEndpoint"
	}
	service := ""
	if m := credentialService.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		service = m[1]
	}
	if service == "sts" || r.URL.Query().Get("Action") != "" {
		action := r.URL.Query().Get("Action")
		if action == "" && r.Body != nil {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, err := url.ParseQuery(string(body)); err == nil {
				action = form.Get("Action")
			}
		}
		return "sts:" + action
	}
	return "s3:" + r.Method
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
