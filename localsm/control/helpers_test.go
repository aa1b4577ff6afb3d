package control_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"

	"github.com/sagedeploy/sagedeploy/localsm/control"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// gatedServing is a serving layer whose deploys wait until the test lets them finish, so that a
// test can watch an endpoint while it is Creating or Updating. It stands in for localsm/runtime
// only where timing must be controlled; end-to-end tests in package localsm use the real one.
type gatedServing struct {
	mu       sync.Mutex
	gated    bool
	results  chan error // a gated Deploy or UpdateVariants returns the next value sent here
	started  chan string
	serving  map[string]spec.Deployment
	deploys  []spec.Deployment
	updates  [][]spec.VariantUpdate
	removed  []string
	failWith map[string]error // by endpoint config: Deploy fails at once with this error
	panicOn  string           // Deploy of this endpoint config panics
}

func newGatedServing(gated bool) *gatedServing {
	return &gatedServing{gated: gated, results: make(chan error), started: make(chan string, 100),
		serving: map[string]spec.Deployment{}, failWith: map[string]error{}}
}

func (g *gatedServing) Deploy(ctx context.Context, dep spec.Deployment, progress func(spec.Event)) error {
	g.mu.Lock()
	g.deploys = append(g.deploys, dep)
	fail := g.failWith[dep.Config]
	gated := g.gated
	panicking := g.panicOn != "" && g.panicOn == dep.Config
	g.mu.Unlock()
	if panicking {
		panic("serving layer bug")
	}
	g.note("deploy " + dep.Endpoint + " " + dep.Config)
	if progress != nil {
		progress(spec.Event{Time: time.Now(), Message: "starting " + dep.Config})
	}
	if fail != nil {
		return fail
	}
	if gated {
		select {
		case err := <-g.results:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	g.serving[dep.Endpoint] = dep
	g.mu.Unlock()
	return nil
}

func (g *gatedServing) UpdateVariants(ctx context.Context, id spec.EndpointID, updates []spec.VariantUpdate) error {
	endpoint := id.Name
	g.mu.Lock()
	g.updates = append(g.updates, updates)
	gated := g.gated
	g.mu.Unlock()
	g.note("update " + endpoint)
	if gated {
		select {
		case err := <-g.results:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	dep := g.serving[endpoint]
	for _, u := range updates {
		for i := range dep.Variants {
			if dep.Variants[i].Name == u.VariantName {
				if u.Weight != nil {
					dep.Variants[i].Weight = *u.Weight
				}
				if u.InstanceCount != nil {
					dep.Variants[i].InstanceCount = *u.InstanceCount
				}
			}
		}
	}
	g.serving[endpoint] = dep
	return nil
}

// note tells waitStarted what the serving layer was asked; nobody may be listening.
func (g *gatedServing) note(s string) {
	select {
	case g.started <- s:
	default:
	}
}

func (g *gatedServing) Variants(id spec.EndpointID) ([]spec.VariantState, bool) {
	endpoint := id.Name
	g.mu.Lock()
	defer g.mu.Unlock()
	dep, ok := g.serving[endpoint]
	if !ok {
		return nil, false
	}
	var out []spec.VariantState
	for _, v := range dep.Variants {
		out = append(out, spec.VariantState{VariantName: v.Name, Weight: v.Weight, CurrentInstanceCount: v.InstanceCount})
	}
	return out, true
}

func (g *gatedServing) Remove(ctx context.Context, id spec.EndpointID) error {
	endpoint := id.Name
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.serving, endpoint)
	g.removed = append(g.removed, endpoint)
	return nil
}

func (g *gatedServing) Close(ctx context.Context) error { return nil }

// finish lets the deploy in flight end with err (nil: success).
func (g *gatedServing) finish(t *testing.T, err error) {
	t.Helper()
	select {
	case g.results <- err:
	case <-time.After(30 * time.Second):
		t.Fatal("no deploy was waiting to finish")
	}
}

// waitStarted waits until the serving layer was asked to do want ("deploy EP CONFIG", "update EP").
func (g *gatedServing) waitStarted(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case got := <-g.started:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("serving layer never saw %q", want)
		}
	}
}

// cp is a control plane behind an HTTP test server, with a SageMaker client pointed at it.
type cp struct {
	t       *testing.T
	ctl     *control.Control
	store   *control.SQLiteStore
	srv     *httptest.Server
	sm      *sagemaker.Client
	serving *gatedServing
	closed  bool
}

type cpOptions struct {
	dir          string
	serving      *gatedServing
	now          func() time.Time
	rollbackHold time.Duration
	quota        func(instanceType string) float64
}

func newCP(t *testing.T, o cpOptions) *cp {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.serving == nil {
		o.serving = newGatedServing(false)
	}
	if o.rollbackHold == 0 {
		o.rollbackHold = 50 * time.Millisecond
	}
	ctx := context.Background()
	store, err := control.OpenSQLite(ctx, filepath.Join(o.dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := control.New(ctx, control.Options{Store: store, Serving: o.serving, Now: o.now, RollbackHold: o.rollbackHold,
		EndpointQuota: o.quota, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c := &cp{t: t, ctl: ctl, store: store, srv: httptest.NewServer(ctl), serving: o.serving}
	c.sm = sagemaker.New(sagemaker.Options{
		Region:           "us-west-2",
		BaseEndpoint:     aws.String(c.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
	t.Cleanup(c.close)
	return c
}

// close stops the control plane as a shutdown would: background deploys are abandoned where
// they are, to be resumed by the next start.
func (c *cp) close() {
	if c.closed {
		return
	}
	c.closed = true
	c.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.ctl.Close(ctx); err != nil {
		c.t.Errorf("close control plane: %v", err)
	}
	if err := c.store.Close(); err != nil {
		c.t.Errorf("close store: %v", err)
	}
}

func (c *cp) model(name string) {
	c.t.Helper()
	if _, err := c.sm.CreateModel(context.Background(), &sagemaker.CreateModelInput{ModelName: aws.String(name),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("img:" + name), ModelDataUrl: aws.String("s3://b/" + name + ".tar.gz")}}); err != nil {
		c.t.Fatalf("create model %s: %v", name, err)
	}
}

func (c *cp) config(name string, variants ...smtypes.ProductionVariant) {
	c.t.Helper()
	if _, err := c.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name), ProductionVariants: variants}); err != nil {
		c.t.Fatalf("create endpoint config %s: %v", name, err)
	}
}

func variant(name, model string, count int32, weight float32) smtypes.ProductionVariant {
	return smtypes.ProductionVariant{VariantName: aws.String(name), ModelName: aws.String(model),
		InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(count), InitialVariantWeight: aws.Float32(weight)}
}

func (c *cp) describe(name string) *sagemaker.DescribeEndpointOutput {
	c.t.Helper()
	out, err := c.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if err != nil {
		c.t.Fatalf("describe endpoint %s: %v", name, err)
	}
	return out
}

func (c *cp) waitStatus(name string, want smtypes.EndpointStatus) *sagemaker.DescribeEndpointOutput {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := c.describe(name)
		if out.EndpointStatus == want {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("endpoint %s is %s after 30s, want %s (%s)", name, out.EndpointStatus, want, aws.ToString(out.FailureReason))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLeaves polls until the endpoint's status is no longer from and returns what it became: the
// next status a client sees, so a test can assert the transition itself.
func (c *cp) waitLeaves(name string, from smtypes.EndpointStatus) *sagemaker.DescribeEndpointOutput {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := c.describe(name)
		if out.EndpointStatus != from {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("endpoint %s is still %s after 30s", name, from)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// call posts a raw JSON 1.1 request and returns the status and decoded body.
func (c *cp) call(op, body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "SageMaker."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func apiError(t *testing.T, err error, code, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %s (%q), got success", code, want)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("expected API error %s, got %T: %v", code, err, err)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), want) {
		t.Fatalf("got %s: %q; want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), code, want)
	}
}

func names[T any](items []T, name func(T) *string) string {
	var out []string
	for _, it := range items {
		out = append(out, aws.ToString(name(it)))
	}
	return strings.Join(out, ",")
}

func sleepTick() { time.Sleep(5 * time.Millisecond) }
