// Command genmodel trims botocore's SageMaker service model down to the shapes the local control
// plane serves, so that request validation is driven by AWS's own constraints rather than by
// hand-copied limits. It keeps member order (validation errors are reported in that order) and
// drops documentation.
//
//	go run ./internal/genmodel -in /usr/lib/python3/dist-packages/botocore/data/sagemaker/2017-07-24/service-2.json -out servicemodel.json
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strings"
)

// operations are the SageMaker operations the local control plane implements.
var operations = strings.Fields(`
	CreateModel DescribeModel DeleteModel ListModels
	CreateEndpointConfig DescribeEndpointConfig DeleteEndpointConfig ListEndpointConfigs
	CreateEndpoint UpdateEndpoint UpdateEndpointWeightsAndCapacities DescribeEndpoint ListEndpoints DeleteEndpoint
	CreateModelPackageGroup DescribeModelPackageGroup ListModelPackageGroups
	CreateModelPackage DescribeModelPackage ListModelPackages UpdateModelPackage
	AddTags ListTags DeleteTags`)

// newerShapes are shapes AWS changed after the botocore Debian ships (1.29), written from the
// SageMaker API reference, so that requests the current SDKs send pass validation: rolling
// deployments (RollingUpdatePolicy, April 2023) made BlueGreenUpdatePolicy optional.
var newerShapes = map[string]string{
	"DeploymentConfig": `{"type": "structure", "members": {
		"BlueGreenUpdatePolicy": {"shape": "BlueGreenUpdatePolicy"},
		"RollingUpdatePolicy": {"shape": "RollingUpdatePolicy"},
		"AutoRollbackConfiguration": {"shape": "AutoRollbackConfig"}}}`,
	"RollingUpdatePolicy": `{"type": "structure", "required": ["MaximumBatchSize", "WaitIntervalInSeconds"], "members": {
		"MaximumBatchSize": {"shape": "CapacitySize"},
		"WaitIntervalInSeconds": {"shape": "WaitIntervalInSeconds"},
		"MaximumExecutionTimeoutInSeconds": {"shape": "MaximumExecutionTimeoutInSeconds"},
		"RollbackMaximumBatchSize": {"shape": "CapacitySize"}}}`,
}

type member struct {
	Name  string `json:"name"`
	Shape string `json:"shape"`
}

type shape struct {
	Type     string   `json:"type"`
	Members  []member `json:"members,omitempty"`
	Required []string `json:"required,omitempty"`
	Member   string   `json:"member,omitempty"`
	Key      string   `json:"key,omitempty"`
	Value    string   `json:"value,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Pattern  string   `json:"pattern,omitempty"`
	Enum     []string `json:"enum,omitempty"`
}

type operation struct {
	Input  string `json:"input,omitempty"`
	Output string `json:"output,omitempty"`
}

type model struct {
	Source     string               `json:"source"`
	Operations map[string]operation `json:"operations"`
	// AllOperations names every SageMaker operation, so that a real but unimplemented one can be
	// told apart from a typo.
	AllOperations []string         `json:"allOperations"`
	Shapes        map[string]shape `json:"shapes"`
}

func main() {
	in := flag.String("in", "/usr/lib/python3/dist-packages/botocore/data/sagemaker/2017-07-24/service-2.json", "botocore service-2.json")
	out := flag.String("out", "servicemodel.json", "output file")
	flag.Parse()
	raw, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var src struct {
		Metadata   map[string]any             `json:"metadata"`
		Operations map[string]json.RawMessage `json:"operations"`
		Shapes     map[string]json.RawMessage `json:"shapes"`
	}
	if err := json.Unmarshal(raw, &src); err != nil {
		log.Fatal(err)
	}
	m := model{
		Source:     fmt.Sprintf("botocore sagemaker %v", src.Metadata["apiVersion"]),
		Operations: map[string]operation{},
		Shapes:     map[string]shape{},
	}
	for name := range src.Operations {
		m.AllOperations = append(m.AllOperations, name)
	}
	sort.Strings(m.AllOperations)
	var walk func(string)
	walk = func(name string) {
		if _, ok := m.Shapes[name]; ok || name == "" {
			return
		}
		sh, err := parseShape(src.Shapes[name])
		if err != nil {
			log.Fatalf("shape %s: %v", name, err)
		}
		m.Shapes[name] = sh
		for _, mem := range sh.Members {
			walk(mem.Shape)
		}
		walk(sh.Member)
		walk(sh.Key)
		walk(sh.Value)
	}
	for _, op := range operations {
		var o struct {
			Input  struct{ Shape string } `json:"input"`
			Output struct{ Shape string } `json:"output"`
		}
		if err := json.Unmarshal(src.Operations[op], &o); err != nil {
			log.Fatalf("operation %s: %v", op, err)
		}
		m.Operations[op] = operation{Input: o.Input.Shape, Output: o.Output.Shape}
		walk(o.Input.Shape)
		walk(o.Output.Shape)
	}
	for name, raw := range newerShapes {
		sh, err := parseShape(json.RawMessage(raw))
		if err != nil {
			log.Fatalf("newer shape %s: %v", name, err)
		}
		m.Shapes[name] = sh
	}
	for name := range newerShapes {
		for _, mem := range m.Shapes[name].Members {
			walk(mem.Shape)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(m); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// parseShape reads one botocore shape, keeping the order of structure members.
func parseShape(raw json.RawMessage) (shape, error) {
	var s struct {
		Type     string   `json:"type"`
		Required []string `json:"required"`
		Member   struct{ Shape string }
		Key      struct{ Shape string }
		Value    struct{ Shape string }
		Min      *float64 `json:"min"`
		Max      *float64 `json:"max"`
		Pattern  string   `json:"pattern"`
		Enum     []string `json:"enum"`
		Members  json.RawMessage
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return shape{}, err
	}
	out := shape{Type: s.Type, Required: s.Required, Member: s.Member.Shape, Key: s.Key.Shape,
		Value: s.Value.Shape, Min: s.Min, Max: s.Max, Pattern: s.Pattern, Enum: s.Enum}
	if len(s.Members) > 0 {
		dec := json.NewDecoder(bytes.NewReader(s.Members))
		if _, err := dec.Token(); err != nil { // {
			return shape{}, err
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return shape{}, err
			}
			var mv struct{ Shape string }
			if err := dec.Decode(&mv); err != nil {
				return shape{}, err
			}
			out.Members = append(out.Members, member{Name: tok.(string), Shape: mv.Shape})
		}
		if _, err := dec.Token(); err != nil && err != io.EOF {
			return shape{}, err
		}
	}
	return out, nil
}
