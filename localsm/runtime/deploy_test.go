package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// answeringVersion invokes an abalone endpoint and says which model version answered.
func (e *env) answeringVersion(t *testing.T, endpoint string) int {
	t.Helper()
	out, err := e.client.InvokeEndpoint(context.Background(), invokeInput(endpoint, abalone.SampleCSV(), "text/csv", ""))
	if err != nil {
		t.Fatalf("invoke %s: %v", endpoint, err)
	}
	return version(t, out.Body, expected(t, 1), expected(t, 2))
}

// processAnswer invokes a process endpoint and returns what the model server said.
func (e *env) processAnswer(t *testing.T, endpoint, body string) map[string]any {
	t.Helper()
	out, err := e.client.InvokeEndpoint(context.Background(), invokeInput(endpoint, []byte(body), "text/csv", ""))
	if err != nil {
		t.Fatalf("invoke %s: %v", endpoint, err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Body, &got); err != nil {
		t.Fatalf("answer %s: %v", out.Body, err)
	}
	return got
}

// reaped reports whether a process is gone entirely (exited and waited for).
func reaped(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return os.IsNotExist(err)
}

// notRunning reports whether a process is gone or a zombie (orphans are init's to reap).
func notRunning(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] == "Z"
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFailedUpdateLeavesTheOldVersionServing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.HealthTimeout = 1500 * time.Millisecond })
	e.deploy(t, xgbDeployment("abalone", 1, 2))
	pickle, err := os.ReadFile("../serving/testdata/pickle.pkl")
	if err != nil {
		t.Fatal(err)
	}
	pickleURL := "s3://sagedeploy-models/abalone/pickled/model.tar.gz"
	e.arts.put(pickleURL, tarGz(t, map[string]string{"xgboost-model": string(pickle)}))
	pickled := xgbDeployment("abalone", 3, 1)
	pickled.Variants[0].Containers[0].ModelDataURL = pickleURL

	exits := e.processDeployment(t, "abalone", "exits", 1, map[string]string{"MODEL_SERVER_MODE": "exit"})
	unhealthy := e.processDeployment(t, "abalone", "unhealthy", 2, map[string]string{"MODEL_SERVER_MODE": "unhealthy"})
	unmapped := xgbDeployment("abalone", 2, 1)
	unmapped.Variants[0].Containers[0].Image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn-inference:1.2"
	missing := xgbDeployment("abalone", 2, 1)
	missing.Variants[0].Containers[0].ModelDataURL = "s3://sagedeploy-models/abalone/v9/model.tar.gz"

	for _, tc := range []struct {
		name  string
		dep   spec.Deployment
		words []string
	}{
		{"pickle", pickled, []string{"variant AllTraffic (model abalone-v3)", pickleURL, "xgboost-model", "pickle"}},
		{"process exits", exits, []string{"exited with status 3", "cannot load the model"}},
		{"never healthy", unhealthy, []string{"did not pass its health check", "503"}},
		{"unmapped image", unmapped, []string{"sklearn-inference:1.2", "--image-map"}},
		{"missing artifact", missing, []string{"s3://sagedeploy-models/abalone/v9/model.tar.gz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.rt.Deploy(context.Background(), tc.dep, e.progress)
			if err == nil {
				t.Fatal("Deploy succeeded")
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if v := e.answeringVersion(t, "abalone"); v != 1 {
				t.Errorf("after a failed update version %d answers, want 1", v)
			}
			states, ok := e.rt.Variants(id("abalone"))
			if !ok || len(states) != 1 || states[0].CurrentInstanceCount != 2 || states[0].VariantName != "AllTraffic" {
				t.Errorf("Variants = %v, %v; want the old variant with 2 instances", states, ok)
			}
		})
	}
	events := strings.Join(e.drainEvents(), "\n")
	if !strings.Contains(events, "the new configuration failed to start; endpoint config abalone-config-v1 keeps serving") {
		t.Errorf("progress did not say the old config keeps serving:\n%s", events)
	}
	// No process of a failed deployment is left running.
	logs, _ := filepath.Glob(filepath.Join(e.workDir, "logs", "abalone", "*", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if !regexp.MustCompile(`instance \d+ (exited|was killed)`).Match(b) {
			t.Errorf("instance of %s was not stopped:\n%s", l, b)
		}
	}

	// A first deployment that fails leaves no endpoint behind.
	bad := pickled
	bad.Endpoint = "fresh"
	if err := e.rt.Deploy(context.Background(), bad, nil); err == nil {
		t.Fatal("Deploy of a pickle succeeded")
	}
	if _, ok := e.rt.Variants(id("fresh")); ok {
		t.Error("a failed first deployment left variants")
	}
	_, err = e.client.InvokeEndpoint(context.Background(), invokeInput("fresh", abalone.SampleCSV(), "text/csv", ""))
	var ve *types.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("invoking a failed endpoint: %v, want ValidationError", err)
	}
}

// TestBlueGreenUnderLoad sends requests from several goroutines without pause while the endpoint
// is updated all at once, by canary and linearly, between the built-in server and process
// containers, and scaled out and in: no request may fail, and traffic ends on the last version.
func TestBlueGreenUnderLoad(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	want1, want2 := expected(t, 1), expected(t, 2)
	e.deploy(t, xgbDeployment("abalone", 1, 2))

	const (
		phaseSetup = iota
		phaseCanary
		phaseFinal
	)
	var (
		phase    atomic.Int32
		stop     atomic.Bool
		requests atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		canary   = map[int]int{} // answers by version while the canary step bakes
		final    = map[int]int{} // answers by version after the last deployment returned
		pids     = map[int]bool{}
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				p := phase.Load()
				out, err := e.client.InvokeEndpoint(ctx, invokeInput("abalone", abalone.SampleCSV(), "text/csv", ""))
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				v := -1
				if bytes.HasPrefix(out.Body, []byte("{")) {
					var got map[string]any
					json.Unmarshal(out.Body, &got)
					if got["model"] == "scorer-v3" {
						v = 3
						mu.Lock()
						pids[int(got["pid"].(float64))] = true
						mu.Unlock()
					}
				} else {
					v = version(t, out.Body, want1, want2)
				}
				if v <= 0 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, "unexpected answer: "+string(out.Body))
				}
				mu.Lock()
				switch p {
				case phaseCanary:
					canary[v]++
				case phaseFinal:
					final[v]++
				}
				mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	waitFor(t, "load to start", func() bool { return requests.Load() > 20 })

	step := func(what string, f func() error) {
		t.Helper()
		before := requests.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		waitFor(t, "requests after "+what, func() bool { return requests.Load() > before+20 })
	}
	deploy := func(dep spec.Deployment, s *spec.Strategy) func() error {
		dep.Strategy = s
		return func() error { return e.rt.Deploy(ctx, dep, e.progress) }
	}
	count := func(n int) func() error {
		return func() error {
			return e.rt.UpdateVariants(ctx, id("abalone"), []spec.VariantUpdate{{VariantName: "AllTraffic", InstanceCount: &n}})
		}
	}

	step("all at once to v2", deploy(xgbDeployment("abalone", 2, 2), nil))
	canaryDep := xgbDeployment("abalone", 1, 2)
	canaryDep.Strategy = &spec.Strategy{Type: "CANARY", Canary: &spec.CapacitySize{Type: "CAPACITY_PERCENT", Value: 25},
		WaitInterval: 400 * time.Millisecond, TerminationWait: 50 * time.Millisecond}
	step("canary to v1", func() error {
		return e.rt.Deploy(ctx, canaryDep, func(ev spec.Event) {
			e.progress(ev)
			switch {
			case strings.HasPrefix(ev.Message, "traffic shifted 25%"):
				phase.Store(phaseCanary)
			case strings.HasPrefix(ev.Message, "traffic shifted 100%"):
				phase.Store(phaseSetup)
			}
		})
	})
	step("scale out to 4", count(4))
	step("linear to v2", deploy(xgbDeployment("abalone", 2, 3), &spec.Strategy{Type: "LINEAR",
		Linear: &spec.CapacitySize{Type: "CAPACITY_PERCENT", Value: 34}, WaitInterval: 100 * time.Millisecond}))
	step("scale in to 1", count(1))
	step("all at once to a process container", deploy(e.processDeployment(t, "abalone", "scorer-v3", 2,
		map[string]string{"MODEL_SERVER_MODE": "abrupt", "MODEL_SERVER_DELAY": "5ms"}), nil))
	step("scale the processes out to 3", count(3))
	step("scale the processes in to 2", count(2))
	step("canary by instance count back to v2", deploy(xgbDeployment("abalone", 2, 2), &spec.Strategy{Type: "CANARY",
		Canary: &spec.CapacitySize{Type: "INSTANCE_COUNT", Value: 1}, WaitInterval: 200 * time.Millisecond}))
	phase.Store(phaseFinal)
	before := requests.Load()
	waitFor(t, "requests on the final version", func() bool { return requests.Load() > before+100 })
	stop.Store(true)
	wg.Wait()

	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during updates; first: %v", n, requests.Load(), firstErr.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if final[2] == 0 || len(final) != 1 {
		t.Errorf("after the last deployment answers came from %v, want version 2 only", final)
	}
	if canary[1] == 0 || canary[2] == 0 {
		t.Errorf("while the 25%% canary baked answers came from %v, want both versions", canary)
	}
	for pid := range pids {
		if !reaped(pid) {
			t.Errorf("process container %d still exists after it was replaced", pid)
		}
	}
	if len(pids) < 2 {
		t.Errorf("the process fleet served from %d processes, want 2 or more", len(pids))
	}
	events := strings.Join(e.drainEvents(), "\n")
	for _, w := range []string{
		"traffic shifted 25% to endpoint config abalone-config-v1 (75% stays on abalone-config-v2)",
		"baking for 400ms",
		"traffic shifted 34% to endpoint config abalone-config-v2",
		"traffic shifted 68% to endpoint config abalone-config-v2",
		"traffic shifted 50% to endpoint config abalone-config-v2 (50% stays on abalone-scorer-v3)",
		"draining 2 old instance(s) of endpoint config abalone-scorer-v3",
		"healthy (2 of 2)",
	} {
		if !strings.Contains(events, w) {
			t.Errorf("progress does not say %q:\n%s", w, events)
		}
	}
	t.Logf("%d requests, no failures; canary answers %v; final answers %v", requests.Load(), canary, final)
}

func TestSwapDrainsInFlightRequests(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// An abrupt server dies on SIGTERM with requests in flight: only draining saves them.
	e.deploy(t, e.processDeployment(t, "slow", "slow-v1", 1, map[string]string{"MODEL_SERVER_MODE": "abrupt"}))
	oldPid := int(e.processAnswer(t, "slow", "hello")["pid"].(float64))

	const inflight = 5
	answers := make(chan map[string]any, inflight)
	errs := make(chan error, inflight)
	for range inflight {
		go func() {
			out, err := e.client.InvokeEndpoint(ctx, invokeInput("slow", []byte("sleep:800ms"), "text/csv", ""))
			if err != nil {
				errs <- err
				return
			}
			var got map[string]any
			json.Unmarshal(out.Body, &got)
			answers <- got
		}()
	}
	inst := e.rt.lookup(e.rt.key(id("slow"))).table.Load().all.sets[0].insts[0]
	waitFor(t, "the slow requests to be in flight", func() bool { return inst.inflight.Load() == inflight })

	e.deploy(t, e.processDeployment(t, "slow", "slow-v2", 1, nil))
	// The old process was stopped only after the slow requests were answered: had it been
	// stopped earlier, they would fail.
	for range inflight {
		select {
		case err := <-errs:
			t.Errorf("an in-flight request failed across the swap: %v", err)
		case got := <-answers:
			if got["model"] != "slow-v1" {
				t.Errorf("an in-flight request was answered by %v, want the old model", got["model"])
			}
		case <-time.After(20 * time.Second):
			t.Fatal("in-flight requests never answered")
		}
	}
	if got := e.processAnswer(t, "slow", "x"); got["model"] != "slow-v2" {
		t.Errorf("after the swap %v answers", got["model"])
	}
	if !reaped(oldPid) {
		t.Errorf("old process %d still exists after the swap", oldPid)
	}
}

func TestWeightsRouteTrafficInProportion(t *testing.T) {
	e := newEnv(t, nil)
	dep := xgbDeployment("ab", 1, 1)
	dep.Variants[0].Name, dep.Variants[0].Weight = "Blue", 3
	green := xgbDeployment("ab", 2, 2).Variants[0]
	green.Name, green.Weight = "Green", 1
	dep.Variants = append(dep.Variants, green)
	e.deploy(t, dep)

	client := &http.Client{}
	// share sends n requests (optionally targeted) and returns the fraction Blue answered,
	// checking that each variant answers with its own model.
	share := func(n int, target string) float64 {
		t.Helper()
		blue := 0
		want := map[string][]float32{"Blue": expected(t, 1), "Green": expected(t, 2)}
		for range n {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/endpoints/ab/invocations", bytes.NewReader(abalone.SampleCSV()))
			req.Header.Set("Content-Type", "text/csv")
			if target != "" {
				req.Header.Set("X-Amzn-SageMaker-Target-Variant", target)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			v := resp.Header.Get("X-Amzn-Invoked-Production-Variant")
			if !equal(parseFloats(t, body.Bytes()), want[v]) {
				t.Fatalf("variant %q answered %s", v, body.Bytes())
			}
			if v == "Blue" {
				blue++
			}
		}
		return float64(blue) / float64(n)
	}
	// 2000 draws: the standard deviation of the share is under 0.01; allow 0.05.
	if got := share(2000, ""); got < 0.70 || got > 0.80 {
		t.Errorf("weights 3:1 sent %.3f of traffic to Blue, want 0.75±0.05", got)
	}
	if got := share(50, "Green"); got != 0 {
		t.Errorf("X-Amzn-SageMaker-Target-Variant: Green got %.2f to Blue", got)
	}

	w3, n3 := 3.0, 3
	if err := e.rt.UpdateVariants(context.Background(), id("ab"), []spec.VariantUpdate{
		{VariantName: "Green", Weight: &w3},
		{VariantName: "Blue", InstanceCount: &n3},
	}); err != nil {
		t.Fatal(err)
	}
	if got := share(2000, ""); got < 0.45 || got > 0.55 {
		t.Errorf("weights 3:3 sent %.3f of traffic to Blue, want 0.50±0.05", got)
	}
	states, ok := e.rt.Variants(id("ab"))
	want := []spec.VariantState{{VariantName: "Blue", Weight: 3, CurrentInstanceCount: 3}, {VariantName: "Green", Weight: 3, CurrentInstanceCount: 2}}
	if !ok || len(states) != 2 || states[0] != want[0] || states[1] != want[1] {
		t.Errorf("Variants = %v, want %v", states, want)
	}

	zero := 0
	for _, u := range []spec.VariantUpdate{{VariantName: "Red", Weight: &w3}, {VariantName: "Blue", InstanceCount: &zero}} {
		if err := e.rt.UpdateVariants(context.Background(), id("ab"), []spec.VariantUpdate{u}); err == nil {
			t.Errorf("UpdateVariants(%+v) succeeded", u)
		}
	}
	if err := e.rt.UpdateVariants(context.Background(), id("nope"), nil); err == nil || !strings.Contains(err.Error(), "nope is not serving") {
		t.Errorf("UpdateVariants on an unknown endpoint: %v", err)
	}
}

func TestRemoveAndCloseLeaveNoProcesses(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.deploy(t, e.processDeployment(t, "one", "one-v1", 2, map[string]string{"MODEL_SERVER_MODE": "child"}))
	e.deploy(t, e.processDeployment(t, "two", "two-v1", 1, nil))

	pidsOf := func(endpoint string, n int) []int {
		seen := map[int]bool{}
		for range 4 * n {
			seen[int(e.processAnswer(t, endpoint, "x")["pid"].(float64))] = true
		}
		var pids []int
		for p := range seen {
			pids = append(pids, p)
		}
		if len(pids) != n {
			t.Fatalf("%s answered from %d processes, want %d", endpoint, len(pids), n)
		}
		return pids
	}
	one, two := pidsOf("one", 2), pidsOf("two", 1)
	var children []int
	logs, _ := filepath.Glob(filepath.Join(e.workDir, "logs", "one", "*", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for _, m := range regexp.MustCompile(`child pid (\d+)`).FindAllStringSubmatch(string(b), -1) {
			pid, _ := strconv.Atoi(m[1])
			children = append(children, pid)
		}
	}
	if len(children) != 2 {
		t.Fatalf("found %d child processes in the logs, want 2", len(children))
	}

	if err := e.rt.Remove(ctx, id("one")); err != nil {
		t.Fatal(err)
	}
	for _, pid := range one {
		if !reaped(pid) {
			t.Errorf("model server %d of a removed endpoint still exists", pid)
		}
	}
	for _, pid := range children {
		waitFor(t, "a model server's child to die", func() bool { return notRunning(pid) })
	}
	_, err := e.client.InvokeEndpoint(ctx, invokeInput("one", []byte("x"), "text/csv", ""))
	var ve *types.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("invoking a removed endpoint: %v, want ValidationError", err)
	}
	if err := e.rt.Remove(ctx, id("one")); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	if _, ok := e.rt.Variants(id("one")); ok {
		t.Error("a removed endpoint still has variants")
	}

	if err := e.rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range two {
		if !reaped(pid) {
			t.Errorf("model server %d still exists after Close", pid)
		}
	}
	if err := e.rt.Deploy(ctx, xgbDeployment("late", 1, 1), nil); err == nil {
		t.Error("Deploy after Close succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Join(e.workDir, "models")); len(entries) > 1 {
		t.Errorf("extracted artifacts left after Close: %v", entries)
	}
}

func TestRestartServesTheSameVersion(t *testing.T) {
	workDir := t.TempDir()
	first := newEnv(t, func(o *Options) { o.WorkDir = workDir })
	proc := first.processDeployment(t, "scorer", "scorer-v4", 1, nil)
	first.deploy(t, proc)
	first.deploy(t, xgbDeployment("abalone", 2, 1))
	first.rt.Close(context.Background())

	// A new runtime over the same work directory, asked to deploy what was InService.
	second := newEnv(t, func(o *Options) { o.WorkDir = workDir })
	second.arts = first.arts
	second.rt.opts.Artifacts = first.arts
	second.deploy(t, proc)
	second.deploy(t, xgbDeployment("abalone", 2, 1))
	if got := second.processAnswer(t, "scorer", "x"); got["model"] != "scorer-v4" {
		t.Errorf("after restart the process serves %v", got["model"])
	}
	if v := second.answeringVersion(t, "abalone"); v != 2 {
		t.Errorf("after restart version %d answers, want 2", v)
	}
}

func TestShiftRollsBackWhenCancelled(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.deploy(t, xgbDeployment("abalone", 1, 1))

	// MaximumExecutionTimeout shorter than the bake: the deployment fails and v1 keeps serving.
	dep := xgbDeployment("abalone", 2, 1)
	dep.Strategy = &spec.Strategy{Type: "CANARY", Canary: &spec.CapacitySize{Type: "CAPACITY_PERCENT", Value: 10},
		WaitInterval: time.Minute, MaximumExecutionTimeout: 300 * time.Millisecond}
	err := e.rt.Deploy(ctx, dep, e.progress)
	if err == nil || !strings.Contains(err.Error(), "MaximumExecutionTimeout of 300ms") {
		t.Fatalf("Deploy past its MaximumExecutionTimeout: %v", err)
	}
	for range 20 {
		if v := e.answeringVersion(t, "abalone"); v != 1 {
			t.Fatalf("after the rollback version %d answers", v)
		}
	}

	// Remove during a long bake ends the deployment at once and stops everything.
	slow := e.processDeployment(t, "abalone", "scorer-v5", 1, nil)
	slow.Strategy = &spec.Strategy{Type: "LINEAR", Linear: &spec.CapacitySize{Type: "CAPACITY_PERCENT", Value: 50}, WaitInterval: time.Minute}
	shifted := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- e.rt.Deploy(ctx, slow, func(ev spec.Event) {
			if strings.HasPrefix(ev.Message, "traffic shifted 50%") {
				close(shifted)
			}
		})
	}()
	<-shifted
	pid := 0
	for pid == 0 { // half the traffic goes to the process now
		out, err := e.client.InvokeEndpoint(ctx, invokeInput("abalone", []byte("1"), "text/csv", ""))
		if err == nil && bytes.HasPrefix(out.Body, []byte("{")) {
			var got map[string]any
			json.Unmarshal(out.Body, &got)
			pid = int(got["pid"].(float64))
		}
	}
	start := time.Now()
	if err := e.rt.Remove(ctx, id("abalone")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("a deployment interrupted by Remove succeeded")
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("Remove took %s during a bake", time.Since(start))
	}
	if !reaped(pid) {
		t.Errorf("process %d of the interrupted deployment still exists", pid)
	}
	if _, ok := e.rt.Variants(id("abalone")); ok {
		t.Error("removed endpoint still reports variants")
	}
	_ = aws.String
}

func TestStoppedInstanceIsReplaced(t *testing.T) {
	e := newEnv(t, nil)
	e.deploy(t, e.processDeployment(t, "scorer", "scorer-v6", 2, nil))
	pids := map[int]bool{}
	for len(pids) < 2 {
		pids[int(e.processAnswer(t, "scorer", "x")["pid"].(float64))] = true
	}
	var victim int
	for p := range pids {
		victim = p
		break
	}
	syscall.Kill(victim, syscall.SIGKILL)
	// The dead instance gets no traffic, and a new one takes its place. (A request that reached
	// it as it died may fail: the test does not count those.)
	waitFor(t, "a replacement instance", func() bool {
		seen := map[int]bool{}
		for range 8 {
			out, err := e.client.InvokeEndpoint(context.Background(), invokeInput("scorer", []byte("x"), "text/csv", ""))
			if err != nil {
				return false
			}
			var got map[string]any
			json.Unmarshal(out.Body, &got)
			seen[int(got["pid"].(float64))] = true
		}
		return len(seen) == 2 && !seen[victim]
	})
	if !reaped(victim) {
		t.Errorf("the dead process %d was not reaped", victim)
	}
	if states, _ := e.rt.Variants(id("scorer")); len(states) != 1 || states[0].CurrentInstanceCount != 2 {
		t.Errorf("Variants after the replacement: %v", states)
	}
}
