package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/internal/cli"
)

// Without any credentials the SDK's chain fails with a list of every provider it tried; the user
// must instead read what to do: a profile or keys, CircleCI's OIDC role, or a local SageMaker.
func TestMissingCredentialsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), []string{"status", "--model", "abalone"}, cli.Process{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: cli.EnvMap(nil)})
	msg := errb.String()
	if code == 0 {
		t.Fatalf("status without credentials succeeded: %s", out.String())
	}
	for _, want := range []string{"no AWS credentials found for us-east-1", "AWS_PROFILE", "SAGEMAKER_EXECUTION_ROLE_ARN", "AWS_ENDPOINT_URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "get identity") || strings.Contains(msg, "operation error SageMaker") {
		t.Errorf("error still carries the SDK's operation wrapping:\n%s", msg)
	}
}
