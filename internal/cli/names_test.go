package cli_test

import (
	"strings"
	"testing"
)

// The CLI refuses model and environment names SageMaker would refuse before it touches AWS, for
// the deployer's commands and for `server env add`.
func TestCLIRefusesNamesSageMakerWouldRefuse(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{l.env("MODEL_NAME", "a/b"), []string{"deploy", "--env", "dev"}, `model name "a/b" is not valid`},
		{l.env("MODEL_NAME", "<abalone>"), []string{"register", "--artifact", "x.tar.gz"}, `model name "<abalone>" is not valid`},
		{l.env("MODEL_NAME", "abalone"), []string{"scale", "--env", "pre_prod", "--instances", "2"}, `environment name "pre_prod" is not valid`},
		{l.env("MODEL_NAME", "abalone"), []string{"rollback", "--env", "dev/x"}, `environment name "dev/x" is not valid`},
		{nil, []string{"server", "env", "add", "a<b", "--kind", "local", "--data-dir", t.TempDir()}, `environment name "a<b" is not valid`},
	} {
		r := dpRun(t, tc.env, "", tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "letters, digits and hyphens") {
			t.Errorf("sagedeploy %s: exit %d, stderr %q; want a refusal saying %q and the rule", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	if st := dpJSON(t, dpOK(t, l.env(), "status", "-o", "json")); len(st["components"].([]any)) != 0 {
		t.Errorf("a refused name left endpoints: %v", st)
	}
}
