package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

func TestExampleLoads(t *testing.T) {
	f, err := Parse("example.yaml", Example)
	if err != nil {
		t.Fatalf("the example pipeline file does not load: %v", err)
	}
	if got := f.Names(); !slices.Equal(got, []string{"dev", "prod"}) {
		t.Fatalf("environments = %v, want [dev prod] in file order", got)
	}
	prod, err := f.Lookup("prod")
	if err != nil {
		t.Fatal(err)
	}
	if !prod.Gated() || prod.Strategy.Bake.Duration != 5*time.Minute || prod.Strategy.Percent != 10 || prod.InstanceCount != 2 {
		t.Fatalf("prod = %+v, strategy %+v", prod, prod.Strategy)
	}
	if prod.Line != 20 {
		t.Errorf("prod starts at line %d, want 20", prod.Line)
	}
	if got := f.Environments[0].Endpoint("abalone"); got != "abalone-dev" {
		t.Errorf("dev endpoint = %q, want abalone-dev", got)
	}
}

func TestLookupListsKnownEnvironments(t *testing.T) {
	f, _ := Parse("sagedeploy.yaml", Example)
	_, err := f.Lookup("dvo")
	if err == nil || !strings.Contains(err.Error(), `"dvo"`) || !strings.Contains(err.Error(), "dev, prod") {
		t.Fatalf("Lookup(dvo) = %v, want an error naming dvo and listing dev, prod", err)
	}
}

// TestProblemsNameTheLine: each mistake a user makes in the file is reported at its line, all at once.
func TestProblemsNameTheLine(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string // "line: fragment"
	}{
		{"unknown key with a suggestion", "environments:\n  - name: dev\n    instnace_type: ml.m5.large\n",
			[]string{`3: unknown key "instnace_type" in environment dev (did you mean instance_type?)`}},
		{"unknown nested key", "environments:\n  - name: prod\n    strategy:\n      type: canary\n      percent: 10\n      bakee: 5m\n",
			[]string{`6: unknown key "bakee" in strategy of environment prod (did you mean bake?)`}},
		{"duplicate environment", "environments:\n  - name: dev\n  - name: prod\n  - name: dev\n",
			[]string{"4: environment dev is defined twice (first at line 2)"}},
		{"bad values", "environments:\n  - name: prod\n    region: europe\n    instance_count: 0\n    strategy:\n      type: blue-green\n",
			[]string{`3: region "europe"`, "4: instance_count 0", `6: strategy type "blue-green"`}},
		{"wrong type", "environments:\n  - name: dev\n    instance_count: many\n",
			[]string{"3: cannot use the text `many` where a whole number is expected"}},
		{"bad duration", "environments:\n  - name: dev\n    strategy:\n      type: canary\n      percent: 5\n      bake: soon\n",
			[]string{`6: "soon" is not a duration`}},
		{"role in another account", "environments:\n  - name: prod\n    account: \"111111111111\"\n    role: arn:aws:iam::222222222222:role/deployer\n",
			[]string{"4: role arn:aws:iam::222222222222:role/deployer of environment prod is in account 222222222222"}},
		{"syntax", "environments:\n  - name: dev\n\tregion: x\n", []string{"2: not valid YAML"}}, // the YAML library names the line of the block the tab breaks
		{"no environments", "model: abalone\n", []string{"1: no environments"}},
		{"endpoint settings", "environments:\n  - name: dev\n    instance_type: ml.m5.large\n    serverless:\n      memory_mb: 1000\n      max_concurrency: 5\n    data_capture:\n      enabled: true\n",
			[]string{"4: environment dev sets both serverless and instance_type", "5: memory_mb 1000", "7: data_capture of environment dev needs destination"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("sagedeploy.yaml", []byte(tc.file))
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse = %v, want Problems", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), "sagedeploy.yaml:"+w) {
					t.Errorf("problems:\n%v\nwant one containing %q", err, "sagedeploy.yaml:"+w)
				}
			}
			if len(ps) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(ps), len(tc.want), err)
			}
		})
	}
}

func TestFindWalksUp(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(deep); !errors.Is(err, ErrNotFound) && err != nil {
		t.Fatalf("Find without a file = %v", err)
	}
	want := filepath.Join(root, FileName)
	if err := os.WriteFile(want, Example, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Find(deep)
	if err != nil || got != want {
		t.Fatalf("Find(%s) = %q, %v; want %q", deep, got, err, want)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		t.Fatalf("schema.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("schema.json is not a valid JSON Schema: %v", err)
	}
	return s
}

// asJSON turns YAML into the JSON value an editor's schema check sees.
func asJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemaValidatesExample(t *testing.T) {
	s := compileSchema(t)
	if err := s.Validate(asJSON(t, Example)); err != nil {
		t.Fatalf("the example file does not validate against schema.json: %v", err)
	}
	bad := []byte("environments:\n  - name: dev\n    instnace_type: ml.m5.large\n")
	if err := s.Validate(asJSON(t, bad)); err == nil {
		t.Fatal("schema.json accepts a mistyped key; editors would not flag it")
	}
}

// TestSchemaMatchesStruct: every key the loader accepts is in the schema and the other way
// round, at every level, so editors and `pipeline validate` agree.
func TestSchemaMatchesStruct(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(Schema, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	var check func(where string, node map[string]any, typ reflect.Type)
	check = func(where string, node map[string]any, typ reflect.Type) {
		if ref, ok := node["$ref"].(string); ok {
			node = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
		if items, ok := node["items"].(map[string]any); ok && typ.Kind() == reflect.Slice {
			check(where+"[]", items, typ.Elem())
			return
		}
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[Duration]() {
			return
		}
		props, _ := node["properties"].(map[string]any)
		fields := yamlFields(typ)
		for name, ft := range fields {
			p, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s: key %q of the Go struct is missing from schema.json", where, name)
				continue
			}
			check(where+"."+name, p, ft)
		}
		for name := range props {
			if _, ok := fields[name]; !ok {
				t.Errorf("%s: key %q of schema.json is not read by the loader", where, name)
			}
		}
	}
	check("file", schema, reflect.TypeFor[File]())
}
