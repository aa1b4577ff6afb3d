package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

var ctx = context.Background()

func mustEnv(t *testing.T, s *store.Store, e releases.Environment) {
	t.Helper()
	if err := s.PutEnvironment(ctx, e); err != nil {
		t.Fatalf("put environment %s: %v", e.Name, err)
	}
}

func devProd(t *testing.T, s *store.Store) {
	mustEnv(t, s, releases.Environment{Name: "dev", Kind: "sagemaker", Region: "eu-west-1", Position: 0})
	mustEnv(t, s, releases.Environment{Name: "prod", Kind: "sagemaker", Region: "eu-west-1", Position: 1, RequiresApproval: true})
}

func v(n int) releases.Version {
	return releases.Version{Number: n, ModelPackageARN: fmt.Sprintf("arn:aws:sagemaker:eu-west-1:123456789012:model-package/abalone/%d", n)}
}

// deploy runs a whole successful deploy of version n of abalone into env through the store.
func deploy(t *testing.T, s *store.Store, env string, n, instances int) store.ReleaseRecord {
	t.Helper()
	r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: env, Model: "abalone", Kind: releases.KindDeploy, Version: v(n),
		EndpointName: "abalone-" + env, InstanceType: "ml.m5.large", InstanceCount: instances, Trigger: releases.Trigger{Type: "pipeline", PipelineID: "p1"}})
	if err != nil {
		t.Fatalf("start deploy of v%d in %s: %v", n, env, err)
	}
	if r.Status != releases.StatusRunning {
		t.Fatalf("deploy of v%d in %s: status %s, want running", n, env, r.Status)
	}
	sv := v(n)
	r, err = s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &sv, EndpointStatus: "InService", InstanceCount: instances})
	if err != nil {
		t.Fatalf("finish deploy of v%d in %s: %v", n, env, err)
	}
	return r
}

func TestMigrationsApplyOnFreshDatabaseAndReapplyIdempotently(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.cfg)
			got, err := s.AppliedMigrations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []int{}
			for i := 1; i <= store.SchemaVersion(); i++ {
				want = append(want, i)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("applied migrations on a fresh %s database = %v, want %v", b.name, got, want)
			}
			mustEnv(t, s, releases.Environment{Name: "dev", Kind: "local", EndpointURL: "http://127.0.0.1:9000"})
			s.Close()

			// Opening again applies nothing twice and keeps the data.
			s2 := open(t, b.cfg)
			got2, err := s2.AppliedMigrations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got2, want) {
				t.Fatalf("after reopening, applied migrations = %v, want %v", got2, want)
			}
			envs, err := s2.Environments(ctx)
			if err != nil || len(envs) != 1 || envs[0].Name != "dev" {
				t.Fatalf("after reopening, environments = %v, %v; want [dev]", envs, err)
			}
		})
	}
}

func TestOpenUpgradesAnOlderSchema(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.cfg)
			mustEnv(t, s, releases.Environment{Name: "dev", Kind: "local"})
			s.Close()
			// Turn the database back into one that an older sagedeploy (schema 1) left behind.
			driver, dsn := "sqlite", filepath.Join(b.cfg.DataDir, store.SQLiteFile)
			if b.cfg.DatabaseURL != "" {
				driver, dsn = "pgx", b.cfg.DatabaseURL
			}
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"DROP INDEX releases_env_model_status", "ALTER TABLE releases DROP COLUMN reason",
				"ALTER TABLE environments DROP COLUMN allow_self_approval", "ALTER TABLE commands DROP COLUMN claimed_by_token",
				"DROP TABLE component_observations", "DROP TABLE metric_points", "ALTER TABLE components DROP COLUMN endpoint_modified_at",
				"DELETE FROM schema_migrations WHERE version > 1"} {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()

			s2 := open(t, b.cfg)
			got, _ := s2.AppliedMigrations(ctx)
			if len(got) != store.SchemaVersion() || got[len(got)-1] != store.SchemaVersion() {
				t.Fatalf("after upgrade, applied migrations = %v", got)
			}
			// The data of schema 1 is still there, and the new index serves its query.
			if envs, _ := s2.Environments(ctx); len(envs) != 1 {
				t.Fatalf("environments after upgrade: %v", envs)
			}
			if _, err := s2.ActiveRelease(ctx, "dev", "abalone"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenRejectsUnsupportedDatabaseURL(t *testing.T) {
	_, err := store.Open(ctx, store.Config{DatabaseURL: "mysql://root:secret@db/x"})
	if err == nil || !strings.Contains(err.Error(), "postgres://") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open(mysql URL) error = %v; want a hint to use postgres:// without echoing the password", err)
	}
}

func TestWriteSurvivesReopen(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.cfg)
			devProd(t, s)
			r := deploy(t, s, "dev", 3, 2)
			if err := s.AddAudit(ctx, store.AuditEntry{Actor: "alice", Action: "sign-in", Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s2 := open(t, b.cfg)
			got, err := s2.Release(ctx, r.ID)
			if err != nil {
				t.Fatalf("release %s after reopening: %v", r.ID, err)
			}
			if got.Status != releases.StatusSucceeded || got.Version.Number != 3 {
				t.Fatalf("release after reopening: status %s version %d, want succeeded v3", got.Status, got.Version.Number)
			}
			c, err := s2.Component(ctx, "dev", "abalone")
			if err != nil || c.CurrentVersion == nil || c.CurrentVersion.Number != 3 || c.InstanceCount != 2 {
				t.Fatalf("component after reopening: %+v, %v", c, err)
			}
		})
	}
}

// TestAcknowledgedWriteSurvivesKill9 writes from a child process that is killed with SIGKILL right
// after the write was acknowledged, then reads it back.
func TestAcknowledgedWriteSurvivesKill9(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "SAGEDEPLOY_STORE_HELPER=1", "SAGEDEPLOY_STORE_HELPER_DIR="+b.cfg.DataDir, "SAGEDEPLOY_STORE_HELPER_URL="+b.cfg.DatabaseURL)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			var id string
			deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
			defer deadline.Stop()
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
					id = rest
					break
				}
			}
			if id == "" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("writer process never acknowledged its write")
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()

			s := open(t, b.cfg)
			r, err := s.Release(ctx, id)
			if err != nil {
				t.Fatalf("acknowledged release %s lost after kill -9: %v", id, err)
			}
			evs, err := s.Events(ctx, id, 0)
			if err != nil || len(evs) != 1 || evs[0].Message != "acknowledged event" {
				t.Fatalf("acknowledged event lost after kill -9: %v, %v", evs, err)
			}
			if r.Status != releases.StatusRunning {
				t.Fatalf("status after kill -9 = %s, want running", r.Status)
			}
		})
	}
}

// TestMain doubles as the writer process of TestAcknowledgedWriteSurvivesKill9 when started
// with SAGEDEPLOY_STORE_HELPER=1.
func TestMain(m *testing.M) {
	if os.Getenv("SAGEDEPLOY_STORE_HELPER") == "1" {
		writeAndWaitForKill()
		return
	}
	os.Exit(m.Run())
}

func writeAndWaitForKill() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(2)
	}
	s, err := store.Open(ctx, store.Config{DataDir: os.Getenv("SAGEDEPLOY_STORE_HELPER_DIR"), DatabaseURL: os.Getenv("SAGEDEPLOY_STORE_HELPER_URL")})
	if err != nil {
		fail(err)
	}
	if err := s.PutEnvironment(ctx, releases.Environment{Name: "dev", Kind: "local"}); err != nil {
		fail(err)
	}
	r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v(1)})
	if err != nil {
		fail(err)
	}
	if _, err := s.AddEvent(ctx, r.ID, releases.Event{Phase: "endpoint", Message: "acknowledged event"}); err != nil {
		fail(err)
	}
	fmt.Println("ACK " + r.ID)
	time.Sleep(time.Minute) // killed here, with the database still open
	os.Exit(3)
}

func TestDeployUpdatesComponentAndHistory(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy,
			Version: releases.Version{Number: 1, ModelPackageARN: "arn:1", Description: "first", Commit: "abc123"}, EndpointName: "abalone-dev",
			InstanceType: "ml.m5.large", InstanceCount: 1, Trigger: releases.Trigger{Type: "pipeline", PipelineID: "pipe-9", ProjectID: "proj"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != releases.StatusRunning || r.StartedAt == nil {
			t.Fatalf("deploy into ungated dev: status %s started %v, want running with a start time", r.Status, r.StartedAt)
		}
		clk.Advance(time.Second)
		e1, err := s.AddEvent(ctx, r.ID, releases.Event{Phase: "model", Message: "created model"})
		if err != nil {
			t.Fatal(err)
		}
		e2, err := s.AddEvent(ctx, r.ID, releases.Event{Phase: "wait", Message: "endpoint Creating", EndpointStatus: "Creating"})
		if err != nil {
			t.Fatal(err)
		}
		if e1.Seq != 1 || e2.Seq != 2 {
			t.Fatalf("event seqs = %d, %d; want 1, 2", e1.Seq, e2.Seq)
		}
		c, err := s.Component(ctx, "dev", "abalone")
		if err != nil {
			t.Fatal(err)
		}
		if c.EndpointStatus != "Creating" || c.CurrentVersion != nil || c.LastReleaseStatus != releases.StatusRunning {
			t.Fatalf("component during first deploy: %+v; want Creating, no version yet, last release running", c)
		}
		clk.Advance(2 * time.Minute)
		sv := releases.Version{Number: 1}
		r, err = s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &sv, EndpointStatus: "InService", InstanceCount: 1})
		if err != nil {
			t.Fatal(err)
		}
		if d := r.Duration(clk.Now()); d != 2*time.Minute+time.Second {
			t.Fatalf("duration = %v, want 2m1s", d)
		}
		c, err = s.Component(ctx, "dev", "abalone")
		if err != nil {
			t.Fatal(err)
		}
		want := "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/endpoints/abalone-dev"
		if c.CurrentVersion == nil || c.CurrentVersion.Number != 1 || c.CurrentVersion.Description != "first" || c.CurrentVersion.Commit != "abc123" ||
			c.InstanceCount != 1 || c.InstanceType != "ml.m5.large" || c.EndpointStatus != "InService" || c.ConsoleURL != want || c.EndpointName != "abalone-dev" {
			t.Fatalf("component after deploy: %+v (version %+v)", c, c.CurrentVersion)
		}

		clk.Advance(time.Hour)
		deploy(t, s, "dev", 2, 3)
		prev, err := s.PreviousVersion(ctx, "dev", "abalone")
		if err != nil || prev.Number != 1 {
			t.Fatalf("previous version = %+v, %v; want 1", prev, err)
		}
		hist, err := s.ServedVersions(ctx, "dev", "abalone")
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[0].Number != 2 || !hist[0].Current || hist[1].Number != 1 || hist[1].Current {
			t.Fatalf("history = %+v; want v2 (current) then v1", hist)
		}

		// A failed deploy after which SageMaker kept v2 does not change what dev serves.
		r3, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v(3)})
		if err != nil {
			t.Fatal(err)
		}
		keep := releases.Version{Number: 2}
		r3, err = s.FinishRelease(ctx, r3.ID, releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: "health check failed", ServingVersion: &keep, EndpointStatus: "InService"})
		if err != nil {
			t.Fatal(err)
		}
		c, _ = s.Component(ctx, "dev", "abalone")
		if c.CurrentVersion.Number != 2 || c.LastReleaseStatus != releases.StatusFailed || c.InstanceCount != 3 {
			t.Fatalf("component after failed deploy: version %d, last release %s, instances %d; want 2, failed, 3", c.CurrentVersion.Number, c.LastReleaseStatus, c.InstanceCount)
		}
		// Finishing again with the same status is harmless; with another it is a conflict.
		if _, err := s.FinishRelease(ctx, r3.ID, releases.ReleaseFinish{Status: releases.StatusFailed}); err != nil {
			t.Fatalf("repeated finish: %v", err)
		}
		if _, err := s.FinishRelease(ctx, r3.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("finish a failed release as succeeded: %v, want conflict", err)
		}
		if _, err := s.AddEvent(ctx, r3.ID, releases.Event{Message: "late"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("event on a finished release: %v, want conflict", err)
		}
		models, _ := s.Models(ctx)
		if !reflect.DeepEqual(models, []string{"abalone"}) {
			t.Fatalf("models = %v", models)
		}
	})
}

func TestUnknownEnvironmentErrorNamesKnownOnes(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		_, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "staging", Model: "abalone", Kind: releases.KindDeploy, Version: v(1)})
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `"staging"`) || !strings.Contains(err.Error(), "dev, prod") {
			t.Fatalf("start into unknown environment: %v", err)
		}
		_, err = s.Component(ctx, "dev", "iris")
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "iris") || !strings.Contains(err.Error(), "dev") {
			t.Fatalf("unknown component: %v", err)
		}
		_, err = s.Version(ctx, "abalone", 7)
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "version 7 of model abalone") {
			t.Fatalf("unknown version: %v", err)
		}
		if err := s.PutEnvironment(ctx, releases.Environment{Name: "qa", Kind: "azure"}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "sagemaker") {
			t.Fatalf("bad kind: %v", err)
		}
	})
}

func TestApprovalGate(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		deploy(t, s, "dev", 4, 1)
		r, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: v(4)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != releases.StatusPending || !r.AwaitingApproval() || r.StartedAt != nil {
			t.Fatalf("promote into gated prod: %+v; want pending at the gate", r)
		}
		if _, err := s.Component(ctx, "prod", "abalone"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a release waiting at the gate must not create the component yet: %v", err)
		}
		pend, _ := s.PendingApprovals(ctx)
		if len(pend) != 1 || pend[0].ID != r.ID {
			t.Fatalf("pending approvals = %v", pend)
		}
		// Restores and scaling are not gated.
		rs, err := s.StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "iris", Kind: releases.KindScale, InstanceCount: 2})
		if err != nil || rs.Status != releases.StatusRunning {
			t.Fatalf("scale into prod: %v %v; want running", rs.Status, err)
		}
		if _, err := s.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("succeed before approval: %v, want conflict", err)
		}
		a, err := s.Approve(ctx, r.ID, "carol")
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != releases.StatusRunning || a.ApprovedBy != "carol" || a.StartedAt == nil {
			t.Fatalf("approved: %+v", a)
		}
		if _, err := s.Approve(ctx, r.ID, "dave"); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "carol") {
			t.Fatalf("second approval: %v", err)
		}
		evs, _ := s.Events(ctx, r.ID, 0)
		if len(evs) != 2 || evs[0].Phase != "approval" || !strings.Contains(evs[1].Message, "Approved by carol") {
			t.Fatalf("approval events = %+v", evs)
		}

		r2, _ := s.StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "churn", Kind: releases.KindDeploy, Version: releases.Version{Number: 1}})
		rej, err := s.Reject(ctx, r2.ID, "carol", "metrics regressed")
		if err != nil {
			t.Fatal(err)
		}
		if rej.Status != releases.StatusCanceled || rej.RejectedBy != "carol" || !strings.Contains(rej.FailureReason, "metrics regressed") {
			t.Fatalf("rejected: %+v", rej)
		}
		if _, err := s.Component(ctx, "prod", "churn"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a rejected first release must leave no component: %v", err)
		}
		if pend, _ := s.PendingApprovals(ctx); len(pend) != 0 {
			t.Fatalf("pending approvals after decisions = %v", pend)
		}
	})
}

func TestCommandsFlowThroughQueueAndGate(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		deploy(t, s, "dev", 1, 1)
		deploy(t, s, "dev", 2, 1)
		cmd, rel, err := s.CreateCommand(ctx, releases.Command{Kind: releases.CommandRestore, Environment: "dev", Model: "abalone", Version: 1, RequestedBy: "alice"},
			releases.Release{Environment: "dev", Model: "abalone", Kind: releases.KindRestore, Version: v(1), Trigger: releases.Trigger{Type: "user", User: "alice"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.State != store.CommandQueued || rel.Status != releases.StatusPending || cmd.ReleaseID != rel.ID || rel.CommandID != cmd.ID {
			t.Fatalf("new command %+v, release %+v", cmd, rel)
		}
		if _, _, err := s.CreateCommand(ctx, releases.Command{Kind: releases.CommandScale, Environment: "dev", Model: "abalone", Instances: 3},
			releases.Release{Environment: "dev", Model: "abalone", Kind: releases.KindScale}, false); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), rel.ID) {
			t.Fatalf("second command on a busy component: %v; want a conflict naming release %s", err, rel.ID)
		}
		if got, err := s.ClaimCommand(ctx, "prod"); err != nil || got != nil {
			t.Fatalf("prod agent claimed %+v, %v; want nothing", got, err)
		}
		got, err := s.ClaimCommand(ctx, "dev")
		if err != nil || got == nil || got.ID != cmd.ID || got.State != store.CommandDispatched {
			t.Fatalf("dev agent claimed %+v, %v", got, err)
		}
		if again, _ := s.ClaimCommand(ctx, "dev"); again != nil {
			t.Fatalf("command claimed twice")
		}
		started, err := s.StartRelease(ctx, releases.ReleaseStart{ID: rel.ID, Environment: "dev", Model: "abalone", Kind: releases.KindRestore, Version: v(1), EndpointConfigName: "abalone-dev-v1"})
		if err != nil || started.Status != releases.StatusRunning || started.Trigger.User != "alice" || started.EndpointConfigName != "abalone-dev-v1" {
			t.Fatalf("start command release: %+v, %v", started, err)
		}
		if _, err := s.StartRelease(ctx, releases.ReleaseStart{ID: rel.ID, Environment: "prod", Model: "abalone", Kind: releases.KindRestore}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("start into the wrong environment: %v", err)
		}
		one := v(1)
		if _, err := s.FinishRelease(ctx, rel.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &one}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteCommand(ctx, cmd.ID, "prod", releases.CommandResult{Status: releases.StatusSucceeded}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("prod completing a dev command: %v, want not found", err)
		}
		done, err := s.CompleteCommand(ctx, cmd.ID, "dev", releases.CommandResult{Status: releases.StatusSucceeded})
		if err != nil || done.State != store.CommandSucceeded || done.FinishedAt == nil {
			t.Fatalf("complete: %+v, %v", done, err)
		}
		c, _ := s.Component(ctx, "dev", "abalone")
		if c.CurrentVersion.Number != 1 {
			t.Fatalf("after restore dev serves %d, want 1", c.CurrentVersion.Number)
		}

		// A promotion into gated prod waits for approval before any agent sees it.
		pc, pr, err := s.CreateCommand(ctx, releases.Command{Kind: releases.CommandPromote, Environment: "prod", FromEnvironment: "dev", Model: "abalone", RequestedBy: "alice"},
			releases.Release{Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: v(1)}, true)
		if err != nil {
			t.Fatal(err)
		}
		if pc.State != store.CommandAwaitingApproval || !pr.AwaitingApproval() {
			t.Fatalf("gated promote: command %s, release %+v", pc.State, pr)
		}
		if got, _ := s.ClaimCommand(ctx, "prod"); got != nil {
			t.Fatal("an agent received a promotion that was not approved")
		}
		ap, err := s.Approve(ctx, pr.ID, "carol")
		if err != nil || ap.Status != releases.StatusPending || ap.ApprovedBy != "carol" {
			t.Fatalf("approve command release: %+v, %v; want still pending (for the agent), approved by carol", ap, err)
		}
		got, _ = s.ClaimCommand(ctx, "prod")
		if got == nil || got.ID != pc.ID {
			t.Fatalf("prod agent did not get the approved promotion: %+v", got)
		}
		// The agent fails without finishing: completing the command fails the release too.
		done, err = s.CompleteCommand(ctx, pc.ID, "prod", releases.CommandResult{Status: releases.StatusFailed, Message: "no credentials"})
		if err != nil || done.State != store.CommandFailed {
			t.Fatalf("complete failed: %+v %v", done, err)
		}
		fr, _ := s.Release(ctx, pr.ID)
		if fr.Status != releases.StatusFailed || !strings.Contains(fr.FailureReason, "no credentials") {
			t.Fatalf("release of a failed command: %s %q", fr.Status, fr.FailureReason)
		}
	})
}

func TestRejectAndCancelCommand(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		_, pr, err := s.CreateCommand(ctx, releases.Command{Kind: releases.CommandPromote, Environment: "prod", FromEnvironment: "dev", Model: "abalone"},
			releases.Release{Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: v(1)}, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Reject(ctx, pr.ID, "carol", ""); err != nil {
			t.Fatal(err)
		}
		c, _ := s.Command(ctx, pr.CommandID)
		if c.State != store.CommandCanceled {
			t.Fatalf("command of a rejected release is %s, want canceled", c.State)
		}
		qc, qr, err := s.CreateCommand(ctx, releases.Command{Kind: releases.CommandScale, Environment: "dev", Model: "abalone", Instances: 2},
			releases.Release{Environment: "dev", Model: "abalone", Kind: releases.KindScale, InstanceCount: 2}, false)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := s.Cancel(ctx, qr.ID, "alice")
		if err != nil || cr.Status != releases.StatusCanceled {
			t.Fatalf("cancel queued: %+v %v", cr, err)
		}
		c, _ = s.Command(ctx, qc.ID)
		if c.State != store.CommandCanceled {
			t.Fatalf("command after cancel: %s", c.State)
		}
		if got, _ := s.ClaimCommand(ctx, "dev"); got != nil {
			t.Fatal("a canceled command reached an agent")
		}
	})
}

func TestSweeperFailsStaleReleasesAndNotesUnclaimedCommands(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		stuck, _ := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: v(1)})
		cmd, _, err := s.CreateCommand(ctx, releases.Command{Kind: releases.CommandScale, Environment: "dev", Model: "iris", Instances: 2},
			releases.Release{Environment: "dev", Model: "iris", Kind: releases.KindScale}, false)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute)
		fresh, _ := s.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "churn", Kind: releases.KindDeploy, Version: releases.Version{Number: 1}})

		failed, err := s.FailStaleReleases(ctx, clk.Now().Add(-5*time.Minute), "no progress for 5m")
		if err != nil {
			t.Fatal(err)
		}
		if len(failed) != 1 || failed[0].ID != stuck.ID {
			t.Fatalf("stale releases failed = %v; want only %s", failed, stuck.ID)
		}
		r, _ := s.Release(ctx, stuck.ID)
		if r.Status != releases.StatusFailed || r.FailureReason != "no progress for 5m" {
			t.Fatalf("stale release: %s %q", r.Status, r.FailureReason)
		}
		if r, _ := s.Release(ctx, fresh.ID); r.Status != releases.StatusRunning {
			t.Fatalf("a release with recent progress was failed")
		}
		n, err := s.NoteUnclaimedCommands(ctx, clk.Now().Add(-5*time.Minute), "no agent took it")
		if err != nil || n != 1 {
			t.Fatalf("noted %d, %v", n, err)
		}
		c, _ := s.Command(ctx, cmd.ID)
		if c.State != store.CommandQueued || c.Note != "no agent took it" {
			t.Fatalf("unclaimed command: state %s note %q; want still queued with a note", c.State, c.Note)
		}

		// An agent that took a command and died before starting it.
		got, _ := s.ClaimCommand(ctx, "dev")
		clk.Advance(10 * time.Minute)
		failed, err = s.FailStaleReleases(ctx, clk.Now().Add(-5*time.Minute), "agent went away")
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, f := range failed {
			ids[f.ID] = true
		}
		if !ids[got.ReleaseID] || !ids[fresh.ID] {
			t.Fatalf("failed %v; want the dispatched command's release and the now-stale running one", ids)
		}
		c, _ = s.Command(ctx, cmd.ID)
		if c.State != store.CommandFailed {
			t.Fatalf("command of a stale release: %s", c.State)
		}
	})
}

func TestListReleasesPagesNewestFirst(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		base := clk.Now()
		var recs []store.ReleaseRecord
		for i := 0; i < 230; i++ {
			env := []string{"dev", "prod"}[i%2]
			model := []string{"abalone", "iris", "churn"}[i%3]
			at := base.Add(time.Duration(i/2) * time.Second) // pairs share a timestamp: ids break ties
			fin := at.Add(time.Second)
			recs = append(recs, store.ReleaseRecord{Release: releases.Release{Environment: env, Model: model, Kind: releases.KindDeploy,
				Status: releases.StatusSucceeded, Version: releases.Version{Number: i}, CreatedAt: at, StartedAt: &at, FinishedAt: &fin}})
		}
		if err := s.ImportReleases(ctx, recs); err != nil {
			t.Fatal(err)
		}
		for _, f := range []store.ReleaseFilter{{}, {Environment: "dev"}, {Model: "iris"}, {Environment: "prod", Model: "churn"}} {
			var want []int
			for i := len(recs) - 1; i >= 0; i-- {
				if (f.Environment == "" || recs[i].Environment == f.Environment) && (f.Model == "" || recs[i].Model == f.Model) {
					want = append(want, i)
				}
			}
			var got []int
			var pages []store.ReleasePage
			f.Limit = 20
			for {
				p, err := s.ListReleases(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range p.Releases {
					if (f.Environment != "" && r.Environment != f.Environment) || (f.Model != "" && r.Model != f.Model) {
						t.Fatalf("filter %+v returned %s/%s", f, r.Environment, r.Model)
					}
					got = append(got, r.Version.Number)
				}
				pages = append(pages, p)
				if p.Older == "" {
					break
				}
				f.Before = p.Older
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("filter env=%q model=%q: paged versions %v\nwant %v", f.Environment, f.Model, got, want)
			}
			// Going back from the second page with its Newer cursor gives the first page again.
			if len(pages) > 1 {
				f.Before, f.After = "", pages[1].Newer
				back, err := s.ListReleases(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(back.Releases) != len(pages[0].Releases) || back.Releases[0].ID != pages[0].Releases[0].ID || back.Newer != "" {
					t.Fatalf("newer page from page 2 does not match page 1 (got %d releases, newer=%q)", len(back.Releases), back.Newer)
				}
				f.After = ""
			}
		}
		if _, err := s.ListReleases(ctx, store.ReleaseFilter{Before: "garbage!"}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("bad cursor: %v", err)
		}
		counts, err := s.CountByStatus(ctx)
		if err != nil || counts[releases.StatusSucceeded] != 230 {
			t.Fatalf("counts = %v, %v", counts, err)
		}
	})
}

func TestTokensUsersSessionsAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		tok, err := s.CreateToken(ctx, store.Token{Environment: "dev", Name: "ci", Hash: "h1", Hint: "sdt_abcd", CreatedBy: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateToken(ctx, store.Token{Environment: "qa", Hash: "h2"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token for unknown environment: %v", err)
		}
		got, err := s.TokenByHash(ctx, "h1")
		if err != nil || got.ID != tok.ID || got.Environment != "dev" {
			t.Fatalf("token by hash: %+v %v", got, err)
		}
		if _, err := s.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked token still found: %v", err)
		}
		if _, err := s.RevokeToken(ctx, tok.ID); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("revoking twice: %v", err)
		}
		list, _ := s.Tokens(ctx)
		if len(list) != 1 || list[0].RevokedAt == nil {
			t.Fatalf("tokens = %+v", list)
		}

		if err := s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "x", Role: store.RoleDeployer}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "y", Role: store.RoleAdmin}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate user: %v", err)
		}
		if err := s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "y", Role: "root"}); err == nil {
			t.Fatal("accepted role root")
		}
		if err := s.CreateSession(ctx, store.Session{IDHash: "sess", Username: "alice", CSRF: "c", CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		se, u, err := s.Session(ctx, "sess")
		if err != nil || se.CSRF != "c" || u.Role != store.RoleDeployer {
			t.Fatalf("session: %+v %+v %v", se, u, err)
		}
		clk.Advance(2 * time.Hour)
		if _, _, err := s.Session(ctx, "sess"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session still valid: %v", err)
		}

		for i := 0; i < 5; i++ {
			if err := s.AddAudit(ctx, store.AuditEntry{Actor: "alice", Action: fmt.Sprintf("a%d", i), Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
		page, _ := s.Audit(ctx, 3, 0)
		if len(page) != 3 || page[0].Action != "a4" || page[2].Action != "a2" {
			t.Fatalf("audit page 1 = %+v", page)
		}
		page2, _ := s.Audit(ctx, 3, page[2].ID)
		if len(page2) != 2 || page2[0].Action != "a1" {
			t.Fatalf("audit page 2 = %+v", page2)
		}
	})
}
