package localsm_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagedeploy/sagedeploy/localsm"
)

const byoImage = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-scorer:1"

// logLines is a slog handler that hands every message to a channel, so a test can wait for a
// log line (warnings and errors) as an event.
type logLines chan string

func (l logLines) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelWarn }
func (l logLines) Handle(_ context.Context, r slog.Record) error {
	select {
	case l <- r.Message:
	default:
	}
	return nil
}
func (l logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logLines) WithGroup(string) slog.Handler      { return l }

func (l logLines) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-l:
			if strings.Contains(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line %q", want)
		}
	}
}

// buildModelServer builds the serving package's test model server, a process container.
func buildModelServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "modelserver")
	out, err := exec.Command("go", "build", "-o", bin, "./serving/testdata/modelserver").CombinedOutput()
	if err != nil {
		t.Fatalf("build the test model server: %v\n%s", err, out)
	}
	return bin
}

// scorer is an endpoint served by the test model server as a process container, pinged every
// 50ms, with the server's warnings and errors in logs.
type scorer struct {
	t    *testing.T
	e    *env
	rt   *sagemakerruntime.Client
	logs logLines
}

// startScorer deploys endpoint "scorer". The first process serves at once; a replacement waits
// until a file named open exists in gate, so that a test can hold an outage open.
func startScorer(t *testing.T, gate string) *scorer {
	isolateAWSConfig(t)
	command := "if [ -e " + gate + "/started ]; then while [ ! -e " + gate + "/open ]; do sleep 0.02; done; fi; touch " +
		gate + "/started; exec " + buildModelServer(t)
	logs := make(logLines, 1000)
	e := startEnvWith(t, localsm.Options{ImageMap: map[string]string{byoImage: command},
		PingInterval: 50 * time.Millisecond, Logger: slog.New(logs)})
	ctx := context.Background()
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("scorer"),
		ExecutionRoleArn: aws.String(roleArn),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(byoImage), ModelDataUrl: aws.String(e.uploadArtifact(1))}}); err != nil {
		t.Fatal(err)
	}
	e.config("scorer-cfg", "scorer", 1)
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("scorer"), EndpointConfigName: aws.String("scorer-cfg")}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("scorer", smtypes.EndpointStatusInService)
	return &scorer{t: t, e: e, rt: sagemakerruntime.NewFromConfig(e.cfg), logs: logs}
}

// invoke returns the pid of the process that answered.
func (s *scorer) invoke(ctx context.Context) (int, error) {
	out, err := s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("scorer"),
		ContentType: aws.String("text/csv"), Body: []byte("1,2")})
	if err != nil {
		return 0, err
	}
	var got struct{ Pid int }
	if err := json.Unmarshal(out.Body, &got); err != nil {
		s.t.Fatalf("answer %q: %v", out.Body, err)
	}
	return got.Pid, nil
}

// waitServedByAnother waits until a process other than old answers.
func (s *scorer) waitServedByAnother(old int) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pid, err := s.invoke(context.Background())
		if err == nil && pid != old {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the endpoint does not serve from a new process 30s after process %d failed (last: pid %d, %v)", old, pid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledProcessContainerIsReplaced: a process container killed with SIGKILL is replaced, as
// SageMaker replaces a failed instance: the death is logged, invocations during the outage fail
// at once with a ModelError instead of hanging, and the endpoint serves again from a new process.
func TestKilledProcessContainerIsReplaced(t *testing.T) {
	gate := t.TempDir()
	s := startScorer(t, gate)
	victim, err := s.invoke(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.logs.wait(t, "model server process exited")
	// A bound, not a timing assertion: a hang would block here until the deadline.
	octx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err = s.invoke(octx)
	cancel()
	apiError(t, err, "ModelError", "killed by signal killed")
	t.Logf("an invocation during the outage failed %s after the kill", time.Since(killed).Round(time.Millisecond))

	opened := time.Now()
	if err := os.WriteFile(filepath.Join(gate, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitServedByAnother(victim)
	t.Logf("a new process serves %s after the replacement was let start", time.Since(opened).Round(time.Millisecond))
	if out := s.e.waitStatus("scorer", smtypes.EndpointStatusInService); aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) != 1 {
		t.Errorf("after the replacement the endpoint reports %d instances", aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount))
	}
}

// TestHungProcessContainerIsReplaced: a process that still exists but no longer answers (here
// stopped with SIGSTOP) fails its pings, is killed and replaced, and both steps are logged.
func TestHungProcessContainerIsReplaced(t *testing.T) {
	gate := t.TempDir()
	if err := os.WriteFile(filepath.Join(gate, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startScorer(t, gate)
	victim, err := s.invoke(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(victim, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s.logs.wait(t, "model server is unhealthy; killing it to be replaced")
	s.logs.wait(t, "model server process exited")
	s.waitServedByAnother(victim)
}
