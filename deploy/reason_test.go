package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/releases"
)

// finishes records the ReleaseFinish bodies a deployer sends to the (real) release server.
type finishes struct {
	mu  sync.Mutex
	all []releases.ReleaseFinish
}

func (f *finishes) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/finish") && r.Body != nil {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var fin releases.ReleaseFinish
		if err := json.Unmarshal(body, &fin); err != nil {
			return nil, fmt.Errorf("finish body %q: %w", body, err)
		}
		f.mu.Lock()
		f.all = append(f.all, fin)
		f.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (f *finishes) last(t *testing.T) releases.ReleaseFinish {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.all) == 0 {
		t.Fatal("the deployer finished no release")
	}
	return f.all[len(f.all)-1]
}

// A failed release says why in a word a dashboard and a script can branch on — SageMaker rolled
// it back, the verification failed, or sagedeploy itself could not go on — both in the result
// (`-o json`) and in what the deployer reports to the release server, next to the message.
func TestFailedReleasesSayWhy(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	rec := &finishes{}
	client := releases.NewClient(rs.url, rs.tokens["dev"], &http.Client{Transport: rec})
	d, _ := l.deployer(nil, withReleases(client))
	register(t, d, "abalone", 1, true)
	res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"})
	if err != nil || res.Reason != "" {
		t.Fatalf("good deploy: %v, reason %q", err, res.Reason)
	}
	if f := rec.last(t); f.Status != releases.StatusSucceeded || f.Reason != "" {
		t.Errorf("good deploy finished as %s (%q)", f.Status, f.Reason)
	}

	registerData(t, d, "abalone", pickleArtifact(t), true)
	res, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"})
	checkReason(t, "rolled-back deploy", res, err, deploy.ErrRolledBack, releases.ReasonRolledBack, rec.last(t))

	res, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1,
		Verify: &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation("100..200")}})
	checkReason(t, "verification", res, err, deploy.ErrVerification, releases.ReasonVerificationFailed, rec.last(t))

	res, err = d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 9})
	if !errors.Is(err, deploy.ErrVersionNotFound) || res.Reason != releases.ReasonErrored {
		t.Errorf("deploy of a missing version: %v, reason %q, want %q", err, res.Reason, releases.ReasonErrored)
	}
}

func checkReason(t *testing.T, what string, res deploy.DeployResult, err, kind error, want releases.Reason, f releases.ReleaseFinish) {
	t.Helper()
	if !errors.Is(err, kind) || res.Reason != want {
		t.Errorf("%s: %v, result reason %q, want %q", what, err, res.Reason, want)
	}
	if f.Status != releases.StatusFailed || f.Reason != want || err == nil || f.FailureReason != err.Error() {
		t.Errorf("%s finished its release as %s, %q (%q), want failed, %q with the error's message", what, f.Status, f.Reason, f.FailureReason, want)
	}
}
