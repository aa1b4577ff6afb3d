package runtime

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// TestBodyLimitIsSixMiB: SageMaker's service model allows 6 MiB (6291456 bytes): a body of
// exactly that size is predicted, one byte more is refused as SageMaker refuses it, and a
// missing endpoint is named with its account.
func TestBodyLimitIsSixMiB(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Account = "123456789012" })
	ctx := context.Background()
	e.deploy(t, xgbDeployment("abalone", 1, 1))

	const limit = 6291456
	row := strings.SplitN(string(abalone.SampleCSV()), "\n", 2)[0] + "\n"
	body := bytes.Repeat([]byte(row), limit/len(row))
	// Pad the last row's first number with leading zeros to land on the limit exactly.
	pad := limit - len(body)
	body = append(body[:len(body)-len(row)], append(bytes.Repeat([]byte("0"), pad), row...)...)
	if len(body) != limit {
		t.Fatalf("built a body of %d bytes", len(body))
	}
	out, err := e.client.InvokeEndpoint(ctx, invokeInput("abalone", body, "text/csv", ""))
	if err != nil {
		t.Fatalf("a body of exactly 6291456 bytes was refused: %v", err)
	}
	if n := bytes.Count(out.Body, []byte("\n")); n != limit/len(row) {
		t.Errorf("%d predictions for %d rows", n, limit/len(row))
	}

	_, err = e.client.InvokeEndpoint(ctx, invokeInput("abalone", append(body, '\n'), "text/csv", ""))
	var ve *types.ValidationError
	if !errors.As(err, &ve) || status(err) != 413 || !strings.HasPrefix(ve.ErrorMessage(), "HTTP content length exceeded 6291456 bytes.") {
		t.Errorf("a body of 6291457 bytes: %v (status %d); want ValidationError 413 naming the limit", err, status(err))
	}

	_, err = e.client.InvokeEndpoint(ctx, invokeInput("nope", abalone.SampleCSV(), "text/csv", ""))
	if !errors.As(err, &ve) || ve.ErrorMessage() != "Endpoint nope of account 123456789012 not found." {
		t.Errorf("missing endpoint: %v; want SageMaker's \"Endpoint nope of account 123456789012 not found.\"", err)
	}
}
