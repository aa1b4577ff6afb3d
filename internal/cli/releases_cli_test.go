package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// Through the CLI only: every release-making command prints its release's link; releases carry
// the CI user and the kind rollback; `releases list|show|approve` drive a gated promote; a
// rollback after `scale --instances 3` keeps 3 instances.
func TestReleasesCommandsAndLinks(t *testing.T) {
	t.Parallel()
	l := dpStart(t)
	rs := servertest.Start(t, servertest.Options{Environments: []releases.Environment{
		{Name: "dev", Kind: "local", Position: 0}, {Name: "prod", Kind: "local", Position: 1, RequiresApproval: true}}})
	alicePW := rs.AddUser("alice", "deployer")
	env := func(name string, kv ...string) map[string]string {
		return l.env(append([]string{"MODEL_NAME", "abalone", "S3_BUCKET_NAME", "models", "SAGEDEPLOY_RELEASES_URL", rs.URL,
			"SAGEDEPLOY_RELEASES_TOKEN", rs.Token(name), "CIRCLE_USERNAME", "octocat"}, kv...)...)
	}
	dpOK(t, env("dev"), "register", "--artifact", filepath.Join(l.dir, "model-v1.tar.gz"), "--approve")
	dpOK(t, env("dev"), "deploy", "--env", "dev")
	dpOK(t, env("dev"), "register", "--artifact", filepath.Join(l.dir, "model-v2.tar.gz"), "--approve")
	dep := dpOK(t, env("dev"), "deploy", "--env", "dev")
	if !strings.Contains(dep.stdout, "release: "+rs.URL+"/releases/") || !strings.Contains(dep.stderr, "Deploy of abalone to dev: "+rs.URL+"/releases/") {
		t.Errorf("deploy does not print its release's link:\nstdout: %s\nstderr: %s", dep.stdout, dep.stderr)
	}
	if sc := dpOK(t, env("dev"), "scale", "--env", "dev", "--instances", "3"); !strings.Contains(sc.stdout, "release: "+rs.URL+"/releases/") {
		t.Errorf("scale does not print its release's link: %s", sc.stdout)
	}
	rb := dpOK(t, env("dev"), "rollback", "--env", "dev")
	if !strings.Contains(rb.stdout, "serves version 1 of abalone on ml.t2.medium × 3") || !strings.Contains(rb.stdout, "release: ") {
		t.Errorf("rollback after scale --instances 3:\n%s", rb.stdout)
	}
	if n := aws.ToInt32(l.describe("abalone-dev").ProductionVariants[0].CurrentInstanceCount); n != 3 {
		t.Errorf("dev runs %d instances after scale --instances 3 and rollback; want 3", n)
	}

	list := dpOK(t, env("dev"), "releases", "list", "--env", "dev", "-o", "json")
	var rels []releases.Release
	if err := json.Unmarshal([]byte(list.stdout), &rels); err != nil || len(rels) != 4 {
		t.Fatalf("releases list -o json: %v\n%s", err, list.stdout)
	}
	if rels[0].Kind != releases.KindRollback || rels[0].Trigger.User != "octocat" || rels[0].Status != releases.StatusSucceeded {
		t.Errorf("newest release: kind %s, by %q, %s; want a succeeded rollback by octocat", rels[0].Kind, rels[0].Trigger.User, rels[0].Status)
	}
	show := dpOK(t, env("dev"), "releases", "show", rels[0].ID)
	for _, want := range []string{"rollback of abalone to dev, version 1: succeeded", "triggered by octocat", "[preflight]", "release: " + rs.URL + "/releases/" + rels[0].ID} {
		if !strings.Contains(show.stdout, want) {
			t.Errorf("releases show lacks %q:\n%s", want, show.stdout)
		}
	}

	// A promote into gated prod waits; its link names the release; alice approves it by CLI.
	done := make(chan dpResult, 1)
	go func() { done <- dpRun(t, env("prod"), "", "promote", "--from", "dev", "--to", "prod") }()
	var pending []releases.Release
	for len(pending) == 0 {
		out := dpOK(t, env("prod"), "releases", "list", "--status", "pending", "-o", "json")
		if err := json.Unmarshal([]byte(out.stdout), &pending); err != nil {
			t.Fatal(err)
		}
	}
	if r := dpRun(t, env("prod"), "", "releases", "approve", pending[0].ID); r.code != 2 || !strings.Contains(r.stderr, "needs a dashboard user") {
		t.Errorf("approve with a token: exit %d %s", r.code, r.stderr)
	}
	ap := dpOK(t, env("prod", "SAGEDEPLOY_USER", "alice", "SAGEDEPLOY_PASSWORD", alicePW), "releases", "approve", pending[0].ID)
	if !strings.Contains(ap.stdout, "approved release "+pending[0].ID) {
		t.Errorf("approve: %s", ap.stdout)
	}
	pr := <-done
	if pr.code != 0 || !strings.Contains(pr.stderr, "approve it at "+rs.URL+"/releases/"+pending[0].ID) {
		t.Errorf("gated promote: exit %d\n%s", pr.code, pr.stderr)
	}
}
