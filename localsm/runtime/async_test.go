package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// memObjects is a spec.Objects over a map of s3:// URLs, safe for concurrent use.
type memObjects struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (m *memObjects) Put(ctx context.Context, url string, body []byte, contentType string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		m.objs = map[string][]byte{}
	}
	m.objs[url] = bytes.Clone(body)
	return nil
}

func (m *memObjects) Get(ctx context.Context, url string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[url]
	if !ok {
		return nil, fmt.Errorf("no object %s", url)
	}
	return b, nil
}

func (m *memObjects) get(url string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[url]
	return b, ok
}

// TestAsyncInvocationsQueueBehindTheirLimit: with MaxConcurrentInvocationsPerInstance 1, a
// second async invocation waits while the first is held, counts in the backlog, and runs once
// the first is done; both results land at OUTPUT/ID.out.
func TestAsyncInvocationsQueueBehindTheirLimit(t *testing.T) {
	objs := &memObjects{}
	e := newEnv(t, func(o *Options) { o.Objects = objs })
	dep := e.processDeployment(t, "queue", "scorer", 1, nil)
	dep.Async = &spec.Async{S3OutputPath: "s3://results/out", MaxConcurrentInvocationsPerInstance: 1}
	e.deploy(t, dep)
	hold := filepath.Join(t.TempDir(), "hold")
	if err := syscall.Mkfifo(hold, 0o600); err != nil {
		t.Skipf("named pipes are needed to hold a request open: %v", err)
	}
	objs.Put(context.Background(), "s3://inputs/held", []byte("fifo:"+hold), "")
	objs.Put(context.Background(), "s3://inputs/second", []byte("second"), "")
	invoke := func(input string) string {
		t.Helper()
		out, err := e.client.InvokeEndpointAsync(context.Background(), &sagemakerruntime.InvokeEndpointAsyncInput{
			EndpointName: aws.String("queue"), InputLocation: aws.String(input), ContentType: aws.String("text/plain")})
		if err != nil {
			t.Fatalf("InvokeEndpointAsync %s: %v", input, err)
		}
		return aws.ToString(out.OutputLocation)
	}

	held := invoke("s3://inputs/held")
	// Opening the pipe for writing returns once the model server holds the request.
	opened := make(chan *os.File, 1)
	go func() {
		if f, err := os.OpenFile(hold, os.O_WRONLY, 0); err == nil {
			opened <- f
		}
	}()
	var w *os.File
	select {
	case w = <-opened:
	case <-time.After(30 * time.Second):
		failure, _ := objs.get(strings.TrimSuffix(held, ".out") + "-error.out")
		t.Fatalf("the model server did not take the held request within 30s (failure: %q)", failure)
	}
	second := invoke("s3://inputs/second")
	if n, ok := e.rt.AsyncBacklog(id("queue")); !ok || n != 2 {
		t.Errorf("backlog with one invocation running and one waiting = %d (%v), want 2", n, ok)
	}
	if _, done := objs.get(second); done {
		t.Error("the second invocation ran while the first held the only slot")
	}
	w.Close()
	for _, url := range []string{held, second} {
		waitFor(t, url+" written", func() bool { _, ok := objs.get(url); return ok })
	}
	if b, _ := objs.get(second); !strings.Contains(string(b), `"body":"second"`) {
		t.Errorf("second output %s", b)
	}
	waitFor(t, "backlog empty", func() bool { n, _ := e.rt.AsyncBacklog(id("queue")); return n == 0 })
}
