package naming

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

const uuidPipeline = "4e5b8a1c-9f2d-4c3b-a7e6-0d1f2e3c4b5a"

func TestShortNamesAreReadable(t *testing.T) {
	if got := Endpoint("abalone", "dev"); got != "abalone-dev" {
		t.Errorf("Endpoint = %q, want abalone-dev (the orb's {model}-{environment})", got)
	}
	if got := Model("abalone", 3, ""); got != "abalone-v3" {
		t.Errorf("Model without pipeline = %q, want abalone-v3", got)
	}
	m := Model("abalone", 3, uuidPipeline)
	if !strings.HasPrefix(m, "abalone-v3-p") || !strings.HasSuffix(m, PipelineKey(uuidPipeline)) {
		t.Errorf("Model with pipeline = %q, want abalone-v3-<pipeline key>", m)
	}
	c := EndpointConfig("abalone", "dev", 3, uuidPipeline, "ml.t2.medium/1")
	if !strings.HasPrefix(c, "abalone-dev-v3-"+PipelineKey(uuidPipeline)+"-") {
		t.Errorf("EndpointConfig = %q, want abalone-dev-v3-<pipeline key>-<hash>", c)
	}
}

func TestNamesAreStable(t *testing.T) {
	// Separate CI steps (separate processes) must derive the same names.
	a := EndpointConfig("abalone", "prod", 2, uuidPipeline, "x")
	b := EndpointConfig("abalone", "prod", 2, uuidPipeline, "x")
	if a != b {
		t.Fatalf("same inputs, different names: %q %q", a, b)
	}
	if EndpointConfig("abalone", "prod", 2, uuidPipeline, "y") == a {
		t.Errorf("different settings gave the same config name %q", a)
	}
}

func TestLongModelNamesAndUUIDPipelines(t *testing.T) {
	long := strings.Repeat("m", 30) + "-" + strings.Repeat("q", 29) // 60 chars, a valid group name
	if len(long) != 60 {
		t.Fatal(len(long))
	}
	names := map[string]string{}
	add := func(what, n string) {
		t.Helper()
		if !Valid(n) {
			t.Errorf("%s: %q (%d chars) is not a valid SageMaker name", what, n, len(n))
		}
		if prev, dup := names[n]; dup {
			t.Errorf("%s and %s share the name %q", what, prev, n)
		}
		names[n] = what
	}
	p2 := "0d1f2e3c-4b5a-4e5b-8a1c-9f2d4c3ba7e6"
	for _, env := range []string{"dev", "prod", "staging-eu-west-1-blue"} {
		add("endpoint "+env, Endpoint(long, env))
		for _, p := range []string{"", uuidPipeline, p2} {
			for v := 1; v <= 3; v++ {
				add(fmt.Sprintf("config %s v%d %s", env, v, p), EndpointConfig(long, env, v, p, "ml.m5.xlarge/2"))
			}
		}
	}
	for _, p := range []string{"", uuidPipeline, p2} {
		for v := 1; v <= 3; v++ {
			add(fmt.Sprintf("model v%d %s", v, p), Model(long, v, p))
		}
	}
	// Pipeline keys survive shortening: later steps search for them.
	if m := Model(long, 1, uuidPipeline); !strings.Contains(m, PipelineKey(uuidPipeline)) {
		t.Errorf("shortened model name %q lost the pipeline key %s", m, PipelineKey(uuidPipeline))
	}
	if c := EndpointConfig(long, "prod", 1, p2, "s"); !strings.Contains(c, PipelineKey(p2)) {
		t.Errorf("shortened config name %q lost the pipeline key %s", c, PipelineKey(p2))
	}
}

func TestInvalidPartsAreSanitizedWithoutCollisions(t *testing.T) {
	a := EndpointConfig("abalone", "dev_1", 1, "", "s")
	b := EndpointConfig("abalone", "dev-1", 1, "", "s")
	c := EndpointConfig("abalone", "Dev-1", 1, "", "s")
	for _, n := range []string{a, b, c} {
		if !Valid(n) {
			t.Errorf("%q is not valid", n)
		}
	}
	if a == b || b == c || a == c {
		t.Errorf("dev_1, dev-1 and Dev-1 must give distinct configs: %q %q %q", a, b, c)
	}
	if e := Endpoint("abalone", "dev_1"); !Valid(e) || e == "abalone-dev-1" {
		t.Errorf("Endpoint(abalone, dev_1) = %q: want a valid name distinct from abalone-dev-1", e)
	}
}

// 10k random inputs, long and short, clean and not: every name valid, and distinct inputs never
// share a name.
func TestRandomInputsNeverCollide(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
	word := func(max int) string {
		n := 1 + rng.IntN(max)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet)-1)] // no dash
			if i > 0 && i < n-1 && rng.IntN(6) == 0 {
				b[i] = '-'
			}
		}
		if rng.IntN(20) == 0 {
			b[0] = 'A' // case and invalid characters take the hashed path
		}
		if rng.IntN(30) == 0 {
			b[len(b)/2] = '_'
		}
		return string(b)
	}
	type in struct {
		model, env, pipeline string
		version              int
		settings             string
	}
	models := map[string]in{}
	configs := map[string]in{}
	for range 10000 {
		x := in{model: word(63), env: word(20), version: 1 + rng.IntN(40), settings: word(12)}
		if rng.IntN(2) == 0 {
			x.pipeline = fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
		}
		m := Model(x.model, x.version, x.pipeline)
		if !Valid(m) {
			t.Fatalf("Model(%+v) = %q is not valid", x, m)
		}
		mk := in{model: x.model, version: x.version, pipeline: x.pipeline}
		if prev, ok := models[m]; ok && prev != mk {
			t.Fatalf("models %+v and %+v share the name %q", prev, mk, m)
		}
		models[m] = mk
		c := EndpointConfig(x.model, x.env, x.version, x.pipeline, x.settings)
		if !Valid(c) {
			t.Fatalf("EndpointConfig(%+v) = %q is not valid", x, c)
		}
		if prev, ok := configs[c]; ok && prev != x {
			t.Fatalf("configs %+v and %+v share the name %q", prev, x, c)
		}
		configs[c] = x
		if e := Endpoint(x.model, x.env); !Valid(e) {
			t.Fatalf("Endpoint(%q, %q) = %q is not valid", x.model, x.env, e)
		}
	}
}

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "abalone-dev": true, "a--b": true, "-a": false, "a-": false, "a_b": false,
		strings.Repeat("a", 63): true, strings.Repeat("a", 64): false, "": false,
	} {
		if Valid(s) != want {
			t.Errorf("Valid(%q) = %v, want %v", s, !want, want)
		}
	}
}

// A later step finds the pipeline's model and configurations by name: every name Model and
// EndpointConfig make parses back to its version for its own model, environment and pipeline, and
// never for another's — clean names, shortened ones, and models whose names end in "-v2" alike.
func TestNamesParseBackToTheirVersion(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	models := []string{"abalone", "abalone-v2", "a-b", "a", "churn-model-with-a-very-long-name-that-needs-shortening-soon", "Upper_Case"}
	envs := []string{"dev", "prod", "b-dev", "eu-west-production-environment-name"}
	pipelines := []string{"pipeline-1", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "other"}
	for range 2000 {
		m, e, p := models[rng.IntN(len(models))], envs[rng.IntN(len(envs))], pipelines[rng.IntN(len(pipelines))]
		v := 1 + rng.IntN(120)
		name := Model(m, v, p)
		if got, ok := ModelVersion(name, m, p); !ok || got != v {
			t.Fatalf("ModelVersion(%q, %q, %q) = %d, %v; want %d", name, m, p, got, ok, v)
		}
		cfg := EndpointConfig(m, e, v, p, fmt.Sprintf("model|ml.m5.large|%d", rng.IntN(5)))
		if got, ok := EndpointConfigVersion(cfg, m, e, p); !ok || got != v {
			t.Fatalf("EndpointConfigVersion(%q, %q, %q, %q) = %d, %v; want %d", cfg, m, e, p, got, ok, v)
		}
		for _, m2 := range models {
			if _, ok := ModelVersion(name, m2, p); ok && m2 != m {
				t.Fatalf("model %q of %q parses as one of %q", name, m, m2)
			}
			for _, e2 := range envs {
				// Dashes make model "a" in "b-dev" and model "a-b" in "dev" one prefix: the caller
				// tells them apart by the model the configuration serves.
				if _, ok := EndpointConfigVersion(cfg, m2, e2, p); ok && m2+"-"+e2 != m+"-"+e {
					t.Fatalf("configuration %q of %q in %q parses as one of %q in %q", cfg, m, e, m2, e2)
				}
			}
		}
		for _, p2 := range pipelines {
			if _, ok := ModelVersion(name, m, p2); ok && p2 != p {
				t.Fatalf("model %q of pipeline %q parses as one of pipeline %q", name, p, p2)
			}
			if _, ok := EndpointConfigVersion(cfg, m, e, p2); ok && p2 != p {
				t.Fatalf("configuration %q of pipeline %q parses as one of pipeline %q", cfg, p, p2)
			}
		}
	}
	for _, bad := range []string{"", "abalone", "abalone-v1", "abalone-dev-v0-pxxxxxxxx-abcdefgh", "x-v01-" + PipelineKey("pipeline-1")} {
		if _, ok := ModelVersion(bad, "abalone", "pipeline-1"); ok {
			t.Errorf("ModelVersion(%q) parsed", bad)
		}
		if _, ok := EndpointConfigVersion(bad, "abalone", "dev", "pipeline-1"); ok {
			t.Errorf("EndpointConfigVersion(%q) parsed", bad)
		}
	}
	if _, ok := ModelVersion(Model("abalone", 3, ""), "abalone", ""); ok {
		t.Error("a name made without a pipeline parsed as a pipeline's")
	}
}
