package cli_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// Pipelines written for circleci/aws-sagemaker 1.0.5 set no DEPLOY_ENVIRONMENT: the environment is
// the one of the release token. Without a token, or when the server cannot say, the deployer stops
// before touching SageMaker and says what to set.
func TestEnvironmentFromTheReleaseToken(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	relURL, token, st := dpReleaseServer(t)
	down := httptest.NewServer(nil)
	down.Close()
	const pipeline = "0e9d8c7b-6a5f-4e3d-8c1b-0a9f8e7d6c5b"
	dpOK(t, l.env("MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models"), "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve")

	for _, tc := range []struct {
		name string
		env  map[string]string
		code int
		want []string
	}{
		{"no token", orbEnv(l, pipeline), 2, []string{"DEPLOY_ENVIRONMENT", "CCI_RELEASE_INTEGRATION_TOKEN"}},
		{"token without server", orbEnv(l, pipeline, "CCI_RELEASE_INTEGRATION_TOKEN", token), 2, []string{"SAGEDEPLOY_RELEASES_URL"}},
		{"unknown token", orbEnv(l, pipeline, "SAGEDEPLOY_RELEASES_URL", relURL, "CCI_RELEASE_INTEGRATION_TOKEN", "not-a-token"), 2, []string{"unknown or was revoked"}},
		{"server down", orbEnv(l, pipeline, "SAGEDEPLOY_RELEASES_URL", down.URL, "SAGEDEPLOY_RELEASES_TOKEN", token), 1, []string{"which environment the token is for"}},
	} {
		for _, step := range []string{"create-endpoint-configuration", "upsert-endpoint"} {
			r := dpRun(t, tc.env, "", "sagemaker", step)
			if r.code != tc.code {
				t.Errorf("%s: %s exit %d, want %d: %s", tc.name, step, r.code, tc.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("%s: %s says %q, not %q", tc.name, step, r.stderr, w)
				}
			}
		}
	}
	if s := dpJSON(t, dpOK(t, l.env(), "status", "-o", "json")); len(s["components"].([]any)) != 0 {
		t.Fatalf("a deploy without an environment changed SageMaker: %v", s)
	}

	env := orbEnv(l, pipeline, "SAGEDEPLOY_RELEASES_URL", relURL, "CCI_RELEASE_INTEGRATION_TOKEN", token)
	cfg := dpJSON(t, dpOK(t, env, "sagemaker", "create-endpoint-configuration", "-o", "json"))
	dep := dpOK(t, env, "sagemaker", "upsert-endpoint", "-o", "json")
	d := dpJSON(t, dep)
	if d["endpoint"] != "abalone-dev" || d["environment"] != "dev" || d["endpoint_config_name"] != cfg["endpoint_config_name"] {
		t.Errorf("deploy with the dev token and no environment = %v (config step made %v)", d, cfg["endpoint_config_name"])
	}
	if !strings.Contains(dep.stderr, "environment taken from the release token") {
		t.Errorf("the deploy does not say where its environment came from: %q", dep.stderr)
	}
	comp, err := st.Component(context.Background(), "dev", "abalone")
	if err != nil || comp.CurrentVersion == nil || comp.CurrentVersion.Number != 1 {
		t.Errorf("the release server's dev component: %+v, %v", comp, err)
	}
}
