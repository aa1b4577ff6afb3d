package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/smithy-go/middleware"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// local is a local SageMaker started for one test.
type local struct {
	t   testing.TB
	srv *localsm.Server
	url string
}

func startLocal(t testing.TB) *local {
	t.Helper()
	srv := localsmtest.Start(t, localsm.Options{})
	return &local{t: t, srv: srv, url: srv.URL()}
}

// calls records the AWS operations a deployer made, in order.
type calls struct {
	mu  sync.Mutex
	ops map[string]int
	seq []call
	// accepted counts the calls SageMaker answered without an error, by operation.
	accepted map[string]int
}

// call is one recorded operation, with the resource it names when it names one by name.
type call struct{ op, resource string }

func (c *calls) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("record", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		op := awsmiddleware.GetServiceID(ctx) + "/" + awsmiddleware.GetOperationName(ctx)
		c.mu.Lock()
		if c.ops == nil {
			c.ops = map[string]int{}
		}
		c.ops[op]++
		c.seq = append(c.seq, call{op: op, resource: resourceOf(in.Parameters)})
		c.mu.Unlock()
		out, md, err := next.HandleInitialize(ctx, in)
		if err == nil {
			c.mu.Lock()
			if c.accepted == nil {
				c.accepted = map[string]int{}
			}
			c.accepted[op]++
			c.mu.Unlock()
		}
		return out, md, err
	}), middleware.After)
}

// resourceOf is the name or ARN an input of the calls a rollback makes names.
func resourceOf(in any) string {
	switch in := in.(type) {
	case *sagemaker.DescribeEndpointInput:
		return aws.ToString(in.EndpointName)
	case *sagemaker.DescribeEndpointConfigInput:
		return aws.ToString(in.EndpointConfigName)
	case *sagemaker.ListTagsInput:
		return aws.ToString(in.ResourceArn)
	case *sagemaker.DescribeModelInput:
		return aws.ToString(in.ModelName)
	case *sagemaker.DescribeModelPackageInput:
		return aws.ToString(in.ModelPackageName)
	}
	return ""
}

// before counts the calls made before the first call of op, by operation and resource
// ("SageMaker/DescribeEndpointConfig abalone-dev-v1-…"), and by operation alone.
func (c *calls) before(op string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, k := range c.seq {
		if k.op == op {
			break
		}
		out[k.op]++
		if k.resource != "" {
			out[k.op+" "+k.resource]++
		}
	}
	return out
}

// readsTwice lists the reads (Describe*, ListTags) of one resource made more than once before
// the first call of op (all calls when op is not called): the waits after op poll by design.
func (c *calls) readsTwice(op string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := map[string]int{}
	var out []string
	for _, k := range c.seq {
		if k.op == op {
			break
		}
		if k.resource == "" {
			continue
		}
		key := k.op + " " + k.resource
		if n[key]++; n[key] == 2 {
			out = append(out, key)
		}
	}
	return out
}

// withoutPolls counts the SageMaker calls, leaving out the DescribeEndpoint polls that follow a
// CreateEndpoint or UpdateEndpoint (how many depends on how fast the endpoint comes up).
func (c *calls) withoutPolls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, waiting := 0, false
	for _, k := range c.seq {
		switch {
		case k.op == "SageMaker/CreateEndpoint" || k.op == "SageMaker/UpdateEndpoint":
			waiting = true
		case waiting && k.op == "SageMaker/DescribeEndpoint":
			continue
		case !strings.HasPrefix(k.op, "SageMaker/"):
			continue
		}
		n++
	}
	return n
}

func (c *calls) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

// acceptedCount is how many calls of op SageMaker answered without an error.
func (c *calls) acceptedCount(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted[op]
}

func (c *calls) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.ops))
	for k := range c.ops {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// events collects progress events.
type events struct {
	mu  sync.Mutex
	all []deploy.Event
}

func (e *events) add(ev deploy.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.all {
		if !ev.Tick {
			fmt.Fprintf(&b, "[%s] %s\n", ev.Phase, ev.Message)
		}
	}
	return b.String()
}

type deployerOpt func(*deploy.Options)

// deployer builds a deployer against the local SageMaker, recording its calls.
func (l *local) deployer(rec *calls, opts ...deployerOpt) (*deploy.Deployer, *events) {
	l.t.Helper()
	ev := &events{}
	o := deploy.Options{
		Region:      "us-east-1",
		EndpointURL: l.url,
		Credentials: credentials.NewStaticCredentialsProvider("AKIADEPLOYTEST", "secret", ""),
		Progress:    ev.add,
		Logger:      slog.New(slog.DiscardHandler),
	}
	if rec != nil {
		o.APIOptions = append(o.APIOptions, rec.middleware)
	}
	for _, f := range opts {
		f(&o)
	}
	d, err := deploy.New(context.Background(), o)
	if err != nil {
		l.t.Fatalf("deploy.New: %v", err)
	}
	return d, ev
}

// register adds abalone version v (its artifact) to group, approved or not.
func register(t testing.TB, d *deploy.Deployer, group string, v int, approve bool) deploy.RegisterResult {
	t.Helper()
	data, err := abalone.Artifact(v)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Register(context.Background(), deploy.RegisterRequest{
		Model: group, Artifact: fmt.Sprintf("model-v%d.tar.gz", v), ArtifactData: data, Bucket: "models", Approve: approve,
	})
	if err != nil {
		t.Fatalf("register %s v%d: %v", group, v, err)
	}
	return res
}

// registerData adds an arbitrary artifact as a version.
func registerData(t *testing.T, d *deploy.Deployer, group string, data []byte, approve bool) deploy.RegisterResult {
	t.Helper()
	res, err := d.Register(context.Background(), deploy.RegisterRequest{Model: group, Artifact: "x.tar.gz", ArtifactData: data, Bucket: "models", Approve: approve})
	if err != nil {
		t.Fatalf("register %s: %v", group, err)
	}
	return res
}

// sm is a plain SageMaker client on the local SageMaker, for assertions.
func (l *local) sm() *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(l.url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAASSERT", "secret", ""),
	})
}

// predictions parses an answer of one number per line (or comma-separated).
func predictions(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, f := range strings.FieldsFunc(strings.TrimSpace(body), func(r rune) bool { return r == '\n' || r == ',' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

var _ = bytes.NewReader

// deleteObject removes an uploaded artifact, to make a version whose artifact is missing.
func deleteObject(t *testing.T, l *local, url string) {
	t.Helper()
	rest := strings.TrimPrefix(url, "s3://")
	bucket, key, _ := strings.Cut(rest, "/")
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAASSERT", "secret", "")})
	if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("delete %s: %v", url, err)
	}
}

func describeModel(t *testing.T, l *local, name string) string {
	t.Helper()
	out, err := l.sm().DescribeModel(context.Background(), &sagemaker.DescribeModelInput{ModelName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ExecutionRoleArn)
}

func abaloneArtifact(v int) ([]byte, error) { return abalone.Artifact(v) }
