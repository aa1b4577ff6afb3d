package deploy_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// releaseServer is a real sagedeploy release server (SQLite) with dev (no gate) and prod
// (approval required) environments and a token for each.
type releaseServer struct {
	url    string
	st     *store.Store
	tokens map[string]string
}

func startReleaseServer(t *testing.T) *releaseServer {
	t.Helper()
	return startReleaseServerWith(t, server.Options{})
}

// startReleaseServerWith starts the release server with opts (its store and logger set here).
func startReleaseServerWith(t *testing.T, opts server.Options) *releaseServer {
	t.Helper()
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open release store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	rs := &releaseServer{st: st, tokens: map[string]string{}}
	for i, e := range []releases.Environment{{Name: "dev", Kind: "local"}, {Name: "prod", Kind: "local", RequiresApproval: true}} {
		e.Position = i
		if err := st.PutEnvironment(ctx, e); err != nil {
			t.Fatal(err)
		}
		secret, _, err := server.CreateToken(ctx, st, e.Name, "ci", "test")
		if err != nil {
			t.Fatal(err)
		}
		rs.tokens[e.Name] = secret
	}
	opts.Store, opts.Logger, opts.StreamPoll = st, slog.New(slog.DiscardHandler), 20*time.Millisecond
	srv, err := server.New(opts)
	if err != nil {
		t.Fatalf("release server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	rs.url = hs.URL
	return rs
}

func (rs *releaseServer) client(env string) *releases.Client {
	return releases.NewClient(rs.url, rs.tokens[env], nil)
}

func withReleases(c *releases.Client) deployerOpt {
	return func(o *deploy.Options) { o.Releases = c; o.ApprovalPoll = 10 * time.Millisecond }
}

func phases(r releases.Release) string {
	var p []string
	for _, e := range r.Events {
		p = append(p, string(e.Phase))
	}
	return strings.Join(p, " ")
}

func TestReleasesAreReportedToTheReleaseServer(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	dev, _ := l.deployer(nil, withReleases(rs.client("dev")))
	register(t, dev, "abalone", 1, true)
	no, yes := false, true
	res, err := dev.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", PipelineID: pipelineA, ProjectID: "proj", Description: "Abalone age regression",
		RestoreEnabled: &yes, ScaleEnabled: &no})
	if err != nil {
		t.Fatal(err)
	}
	if res.ReleaseID == "" {
		t.Fatal("deploy reported no release")
	}
	rel, err := rs.client("dev").Release(ctx, res.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Status != releases.StatusSucceeded || rel.Kind != releases.KindDeploy || rel.Version.Number != 1 || rel.Version.ModelPackageARN != res.Version.ARN ||
		rel.EndpointName != "abalone-dev" || rel.EndpointConfigName != res.EndpointConfigName || rel.Trigger.Type != "pipeline" || rel.Trigger.PipelineID != pipelineA {
		t.Fatalf("reported release = %+v", rel)
	}
	for _, want := range []string{"resolve", "model", "endpoint-config", "endpoint", "wait"} {
		if !strings.Contains(" "+phases(rel)+" ", " "+want+" ") {
			t.Errorf("release events %q lack phase %s", phases(rel), want)
		}
	}
	comp, err := rs.st.Component(ctx, "dev", "abalone")
	if err != nil {
		t.Fatal(err)
	}
	if comp.CurrentVersion == nil || comp.CurrentVersion.Number != 1 || !comp.RestoreEnabled || comp.ScaleEnabled {
		t.Errorf("component after the release: %+v", comp)
	}

	// A failed update is reported failed, serving the old version.
	registerData(t, dev, "abalone", pickleArtifact(t), true)
	res, err = dev.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"})
	if !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("bad version: %v", err)
	}
	rel, err = rs.client("dev").Release(ctx, res.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Status != releases.StatusFailed || !strings.Contains(rel.FailureReason, "Version 1 is still serving") {
		t.Errorf("failed release reported as %s: %q", rel.Status, rel.FailureReason)
	}
	if comp, _ := rs.st.Component(ctx, "dev", "abalone"); comp.CurrentVersion == nil || comp.CurrentVersion.Number != 1 {
		t.Errorf("after the rolled-back release the dashboard shows %+v, want version 1 serving", comp.CurrentVersion)
	}

	// prod is gated: the deploy waits for the approval, then goes on.
	prod, _ := l.deployer(nil, withReleases(rs.client("prod")))
	done := make(chan error, 1)
	var pres deploy.DeployResult
	go func() {
		var err error
		pres, err = prod.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod", Version: 1})
		done <- err
	}()
	id := waitPending(t, rs)
	if _, _, eps := listNames(t, l); len(eps) != 1 {
		t.Fatalf("endpoints %v exist before the approval: the gate did not hold", eps)
	}
	if _, err := rs.st.Approve(ctx, id, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("gated deploy after approval: %v", err)
	}
	rel, _ = rs.client("prod").Release(ctx, pres.ReleaseID)
	if rel.Status != releases.StatusSucceeded || rel.ApprovedBy != "alice" {
		t.Errorf("gated release: %s approved by %q", rel.Status, rel.ApprovedBy)
	}
	// A rejected release changes nothing and fails the deploy.
	v3 := register(t, prod, "abalone", 2, true)
	models0, configs0, _ := listNames(t, l)
	go func() {
		_, err := prod.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "prod", Version: v3.Version.Number})
		done <- err
	}()
	id = waitPending(t, rs)
	if _, err := rs.st.Reject(ctx, id, "bob", "not today"); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, deploy.ErrRejected) || !strings.Contains(err.Error(), "bob") {
		t.Fatalf("rejected deploy: %v", err)
	}
	expectVersion(t, prod, "abalone-prod", 1)
	if models, configs, _ := listNames(t, l); len(models) != len(models0) || len(configs) != len(configs0) {
		t.Errorf("a release rejected at the gate created resources: models %v → %v, configs %v → %v", models0, models, configs0, configs)
	}
	// A deployer stopped while waiting at the gate cancels its release: nobody can approve a
	// deployment that will never run.
	stopCtx, stop := context.WithCancel(ctx)
	go func() {
		_, err := prod.Deploy(stopCtx, deploy.DeployRequest{Model: "abalone", Environment: "prod", Version: v3.Version.Number})
		done <- err
	}()
	id = waitPending(t, rs)
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("deploy stopped at the gate: %v, want context.Canceled", err)
	}
	if rel, err := rs.client("prod").Release(ctx, id); err != nil || rel.Status != releases.StatusCanceled {
		t.Errorf("release of a deployer stopped at the gate is %s (%v), want canceled", rel.Status, err)
	}
	if p, _ := rs.st.PendingApprovals(ctx); len(p) != 0 {
		t.Errorf("approvals still pending after the deployer stopped: %+v", p)
	}
	expectVersion(t, prod, "abalone-prod", 1)
}

func waitPending(t *testing.T, rs *releaseServer) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		p, err := rs.st.PendingApprovals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 0 {
			return p[0].ID
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no release became pending at the prod gate")
	return ""
}

// A release server that is down never fails a deploy into an ungated environment. (One that
// refuses the token stops it: TestReleaseServerRefusalsStopBeforeSageMaker.)
func TestReportingFailuresNeverFailADeploy(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	down := httptest.NewServer(nil)
	down.Close()
	for name, c := range map[string]*releases.Client{
		"server down": releases.NewClient(down.URL, "x", nil),
	} {
		d, _ := l.deployer(nil, withReleases(c))
		register(t, d, "abalone", 1, true)
		res, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"})
		if err != nil || res.EndpointStatus != "InService" {
			t.Fatalf("%s: deploy failed because reporting failed: %v", name, err)
		}
	}
}

// The agent's executor runs dashboard commands and reports into the command's release.
func TestExecuteRunsDashboardCommands(t *testing.T) {
	t.Parallel()
	l := startLocal(t)
	rs := startReleaseServer(t)
	d, _ := l.deployer(nil, withReleases(rs.client("dev")))
	register(t, d, "abalone", 1, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	register(t, d, "abalone", 2, true)
	if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	command := func(c releases.Command) releases.Release {
		t.Helper()
		c.RequestedBy, c.Environment, c.Model, c.ID = "carol", "dev", "abalone", "cmd-"+string(c.Kind)
		_, rec, err := rs.st.CreateCommand(ctx, c, releases.Release{Environment: "dev", Model: "abalone", Kind: kindOf(c.Kind), Version: releases.Version{Number: c.Version},
			Trigger: releases.Trigger{Type: "user", User: "carol"}}, false)
		if err != nil {
			t.Fatalf("create command: %v", err)
		}
		c.ReleaseID = rec.ID
		if err := d.Execute(ctx, nil, c); err != nil {
			t.Fatalf("execute %s: %v", c.Kind, err)
		}
		rel, err := rs.client("dev").Release(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rel.Status != releases.StatusSucceeded || rel.Trigger.User != "carol" {
			t.Fatalf("%s release: %s by %q (%s)", c.Kind, rel.Status, rel.Trigger.User, rel.FailureReason)
		}
		return rel
	}
	command(releases.Command{Kind: releases.CommandRollback})
	expectVersion(t, d, "abalone-dev", 1)
	command(releases.Command{Kind: releases.CommandRestore, Version: 2})
	expectVersion(t, d, "abalone-dev", 2)
	command(releases.Command{Kind: releases.CommandScale, Instances: 2})
	if n := describe(t, l, "abalone-dev").ProductionVariants[0].CurrentInstanceCount; n == nil || *n != 2 {
		t.Fatalf("scale command left %v instances", n)
	}
	err := d.Execute(ctx, nil, releases.Command{ID: "x", Kind: releases.CommandRestore, Environment: "dev", Model: "abalone"})
	if !errors.Is(err, deploy.ErrInvalid) {
		t.Fatalf("restore without a version: %v", err)
	}
}

func kindOf(k releases.CommandKind) releases.Kind {
	switch k {
	case releases.CommandScale:
		return releases.KindScale
	case releases.CommandPromote:
		return releases.KindPromote
	}
	return releases.KindRestore
}
