package quickstart_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/quickstart"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

var bg = context.Background()

// syncBuffer is the run's output, written from the run's goroutines and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// login signs in as admin: the first start's password, or a reset one.
type login struct{ user, password string }

func adminOf(t *testing.T, s *allinone.Stack) login {
	t.Helper()
	l := s.AdminLogin()
	if l.Password == "" {
		t.Fatal("the stack did not give the admin's password")
	}
	return login{l.User, l.Password}
}

// releasesOf lists the model's releases through the release server's API, oldest first, each
// with its events.
func releasesOf(t *testing.T, s *allinone.Stack, l login, model string) []server.ReleaseView {
	t.Helper()
	var page store.ReleasePage
	if code := allinonetest.API(t, s, l.user, l.password, http.MethodGet, "/api/v1/releases?limit=200&model="+model, nil, &page); code != http.StatusOK {
		t.Fatalf("list releases: HTTP %d", code)
	}
	sort.SliceStable(page.Releases, func(i, j int) bool { return page.Releases[i].CreatedAt.Before(page.Releases[j].CreatedAt) })
	out := make([]server.ReleaseView, 0, len(page.Releases))
	for _, r := range page.Releases {
		var v server.ReleaseView
		if code := allinonetest.API(t, s, l.user, l.password, http.MethodGet, "/api/v1/releases/"+r.ID, nil, &v); code != http.StatusOK {
			t.Fatalf("read release %s: HTTP %d", r.ID, code)
		}
		out = append(out, v)
	}
	return out
}

type wantRelease struct {
	env     string
	kind    releases.Kind
	version int
}

// story is the four releases one run makes.
var story = []wantRelease{
	{"dev", releases.KindDeploy, 1},
	{"prod", releases.KindPromote, 1},
	{"dev", releases.KindDeploy, 2},
	{"dev", releases.KindRollback, 1},
}

func checkReleases(t *testing.T, got []server.ReleaseView, want []wantRelease) {
	t.Helper()
	if len(got) != len(want) {
		var b strings.Builder
		for _, r := range got {
			fmt.Fprintf(&b, "\n  %s %s v%d %s", r.Environment, r.Kind, r.Version.Number, r.Status)
		}
		t.Fatalf("the dashboard has %d releases of abalone, want %d:%s", len(got), len(want), b.String())
	}
	for i, w := range want {
		r := got[i]
		if r.Environment != w.env || r.Kind != w.kind || r.Version.Number != w.version || r.Status != releases.StatusSucceeded {
			t.Errorf("release %d is %s %s v%d %s, want %s %s v%d succeeded", i+1, r.Kind, r.Environment, r.Version.Number, r.Status, w.kind, w.env, w.version)
		}
		if len(r.Events) == 0 {
			t.Errorf("release %d (%s %s v%d) has no progress events", i+1, r.Kind, r.Environment, r.Version.Number)
		}
		if r.Trigger.User != quickstart.TriggerUser {
			t.Errorf("release %d was triggered by %+v, want the quickstart", i+1, r.Trigger)
		}
	}
	if got[1].ApprovedBy == "" {
		t.Error("the promotion to prod records no approval")
	}
}

// versionsInRegistry counts the abalone model packages through the SDK.
func versionsInRegistry(t *testing.T, s *allinone.Stack) int {
	t.Helper()
	out, err := allinonetest.SageMaker(s).ListModelPackages(bg, &sagemaker.ListModelPackagesInput{ModelPackageGroupName: aws.String("abalone")})
	if err != nil {
		t.Fatalf("ListModelPackages: %v", err)
	}
	return len(out.ModelPackageSummaryList)
}

// TestQuickstartEndToEnd runs the whole story with --yes on a fresh data directory, checks what
// every environment serves through the AWS SDK and what the dashboard shows through the release
// server's API, then runs it again on the same directory after a restart.
func TestQuickstartEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := allinonetest.Start(t, allinone.Options{DataDir: dir})
	admin := adminOf(t, s)
	var out syncBuffer
	res, err := quickstart.Run(bg, quickstart.Options{Stack: s, Out: &out, Yes: true})
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out.String())
	}
	text := out.String()
	for i := 1; i <= quickstart.Steps; i++ {
		if !strings.Contains(text, fmt.Sprintf("[%d/%d]", i, quickstart.Steps)) {
			t.Errorf("the output lacks step %d:\n%s", i, text)
		}
	}
	if !strings.Contains(text, s.ServerURL()+"/releases/") || !strings.Contains(text, "RMSE") {
		t.Errorf("the output lacks release links or metrics:\n%s", text)
	}

	// What serves where, through the real SDK: prod and dev both on v1.
	allinonetest.ExpectServes(t, s, "abalone-prod", 1)
	allinonetest.ExpectServes(t, s, "abalone-dev", 1)
	if res.Serving["prod"] != 1 || res.Serving["dev"] != 1 {
		t.Errorf("result says %v", res.Serving)
	}
	// The metrics are the models' real errors: v2, the better model, errs less than v1, and both
	// are in the range a model of abalone rings has (a broken model errs by far more).
	m1, m2 := res.Metrics[1], res.Metrics[2]
	if m1.N != 4177 || m2.N != 4177 || !(m2.RMSE < m1.RMSE) || m1.RMSE > 4 || m2.MAE < 0.5 {
		t.Errorf("metrics v1 %+v, v2 %+v", m1, m2)
	}
	if n := versionsInRegistry(t, s); n != 2 {
		t.Errorf("the registry holds %d versions of abalone, want 2", n)
	}
	checkReleases(t, releasesOf(t, s, admin, "abalone"), story)

	// Again on the same data directory after a restart: the versions are reused, the story is
	// told again in four new releases.
	if err := s.Close(bg); err != nil {
		t.Fatal(err)
	}
	s2 := allinonetest.Start(t, allinone.Options{DataDir: dir, ResetAdminPassword: true})
	admin2 := adminOf(t, s2)
	out = syncBuffer{}
	if _, err := quickstart.Run(bg, quickstart.Options{Stack: s2, Out: &out, Yes: true}); err != nil {
		t.Fatalf("second quickstart on the same data directory: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "already registered") {
		t.Errorf("the second run did not reuse the versions:\n%s", out.String())
	}
	if n := versionsInRegistry(t, s2); n != 2 {
		t.Errorf("after a second run the registry holds %d versions of abalone, want 2", n)
	}
	allinonetest.ExpectServes(t, s2, "abalone-prod", 1)
	allinonetest.ExpectServes(t, s2, "abalone-dev", 1)
	checkReleases(t, releasesOf(t, s2, admin2, "abalone"), append(append([]wantRelease{}, story...), story...))
}

// TestQuickstartWaitsForTheApproval runs without --yes: the promotion waits at prod's gate, the
// output links to it, and an approval through the release server (as a click would) lets the
// run finish.
func TestQuickstartWaitsForTheApproval(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{})
	admin := adminOf(t, s)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := quickstart.Run(bg, quickstart.Options{Stack: s, Out: &out, ApprovalPoll: 50 * time.Millisecond})
		done <- err
	}()
	var pending string
	allinonetest.WaitFor(t, 60*time.Second, "the promotion to wait for an approval, with a link to it", func() bool {
		var list struct {
			Releases []store.ReleaseRecord `json:"releases"`
		}
		allinonetest.API(t, s, admin.user, admin.password, http.MethodGet, "/api/v1/approvals", nil, &list)
		if len(list.Releases) == 1 {
			pending = list.Releases[0].ID
		}
		return pending != "" && strings.Contains(out.String(), s.ServerURL()+"/releases/"+pending)
	})
	// Nothing moves while nobody approves.
	select {
	case err := <-done:
		t.Fatalf("the run ended without an approval: %v\n%s", err, out.String())
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := allinonetest.SageMaker(s).DescribeEndpoint(bg, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("abalone-prod")}); err == nil {
		t.Fatal("prod has an endpoint before the approval")
	}
	if code := allinonetest.API(t, s, admin.user, admin.password, http.MethodPost, "/api/v1/releases/"+pending+"/approve", nil, nil); code != http.StatusOK {
		t.Fatalf("approve: HTTP %d", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("quickstart after the approval: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the run did not finish after the approval:\n%s", out.String())
	}
	allinonetest.ExpectServes(t, s, "abalone-prod", 1)
	rels := releasesOf(t, s, admin, "abalone")
	checkReleases(t, rels, story)
	if rels[1].ApprovedBy != "admin" {
		t.Errorf("the promotion was approved by %q, want admin", rels[1].ApprovedBy)
	}
}

// TestQuickstartInterruptedThenRerun stops a run while it waits for the approval (Ctrl-C): the
// waiting promotion is canceled rather than left at the gate, and the next run finishes the story.
func TestQuickstartInterruptedThenRerun(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{})
	admin := adminOf(t, s)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := quickstart.Run(ctx, quickstart.Options{Stack: s, Out: &out, ApprovalPoll: 50 * time.Millisecond})
		done <- err
	}()
	allinonetest.WaitFor(t, 60*time.Second, "the promotion to wait for an approval", func() bool {
		return strings.Contains(out.String(), "click Approve")
	})
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted at step 4") {
			t.Fatalf("interrupted run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop when interrupted")
	}
	if !strings.Contains(out.String(), "run the quickstart again") {
		t.Errorf("the interrupted run does not say how to continue:\n%s", out.String())
	}
	rels := releasesOf(t, s, admin, "abalone")
	if len(rels) != 2 || rels[1].Environment != "prod" || rels[1].Status != releases.StatusCanceled {
		t.Fatalf("after the interruption the promotion is %+v, want canceled", rels)
	}

	out = syncBuffer{}
	if _, err := quickstart.Run(bg, quickstart.Options{Stack: s, Out: &out, Yes: true}); err != nil {
		t.Fatalf("the run after the interruption: %v\n%s", err, out.String())
	}
	if n := versionsInRegistry(t, s); n != 2 {
		t.Errorf("the registry holds %d versions of abalone, want 2", n)
	}
	allinonetest.ExpectServes(t, s, "abalone-prod", 1)
	allinonetest.ExpectServes(t, s, "abalone-dev", 1)
	rels = releasesOf(t, s, admin, "abalone")
	checkReleases(t, rels[2:], story)
}

// TestQuickstartInterruptedAnywhere stops runs as they enter different steps, then checks that a
// run on the same stack still tells the whole story.
func TestQuickstartInterruptedAnywhere(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{})
	admin := adminOf(t, s)
	for _, step := range []int{1, 2, 3, 5, 7} {
		ctx, cancel := context.WithCancel(bg)
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			_, err := quickstart.Run(ctx, quickstart.Options{Stack: s, Out: &out, Yes: true})
			done <- err
		}()
		mark := fmt.Sprintf("[%d/%d]", step, quickstart.Steps)
		allinonetest.WaitFor(t, 60*time.Second, "step "+mark, func() bool {
			select {
			case err := <-done:
				done <- err
				return true
			default:
				return strings.Contains(out.String(), mark)
			}
		})
		cancel()
		select {
		case err := <-done:
			t.Logf("interrupted at %s: %v", mark, err)
			// Interrupted, or done before the interruption landed: both leave a state to continue from.
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("run interrupted at %s: %v\n%s", mark, err, out.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the run interrupted at %s did not stop", mark)
		}
	}
	before := len(releasesOf(t, s, admin, "abalone"))
	var out syncBuffer
	if _, err := quickstart.Run(bg, quickstart.Options{Stack: s, Out: &out, Yes: true}); err != nil {
		t.Fatalf("the run after the interruptions: %v\n%s", err, out.String())
	}
	if n := versionsInRegistry(t, s); n != 2 {
		t.Errorf("the registry holds %d versions of abalone, want 2", n)
	}
	allinonetest.ExpectServes(t, s, "abalone-prod", 1)
	allinonetest.ExpectServes(t, s, "abalone-dev", 1)
	checkReleases(t, releasesOf(t, s, admin, "abalone")[before:], story)
}

func TestParsePredictions(t *testing.T) {
	got, err := quickstart.ParsePredictions("7.5\n8.25\r\n9,10\n")
	if err != nil || len(got) != 4 || got[0] != 7.5 || got[3] != 10 {
		t.Fatalf("ParsePredictions = %v, %v", got, err)
	}
	if _, err := quickstart.ParsePredictions("7.5\nerror: model failed\n"); err == nil {
		t.Fatal("an answer that is not numbers parsed")
	}
}
