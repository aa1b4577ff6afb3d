// Package orb packs the CircleCI orb source under orb/src into the single YAML document CircleCI
// publishes, the way `circleci orb pack` does, so that tests can check the orb the users get.
package orb

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sections are the orb source folders whose files become keys of the packed orb.
var sections = []string{"commands", "jobs", "executors", "examples"}

var includeRe = regexp.MustCompile(`<<\s*include\(([^)]+)\)\s*>>`)

// Pack reads an orb source tree (the folder holding @orb.yml) and returns the packed orb as a
// YAML-decoded map, with every <<include(file)>> replaced by that file's text.
func Pack(srcDir string) (map[string]any, error) {
	top, err := readYAML(filepath.Join(srcDir, "@orb.yml"), srcDir)
	if err != nil {
		return nil, err
	}
	for _, sec := range sections {
		files, err := filepath.Glob(filepath.Join(srcDir, sec, "*.yml"))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", sec, err)
		}
		sort.Strings(files)
		if len(files) == 0 {
			continue
		}
		m := map[string]any{}
		for _, f := range files {
			v, err := readYAML(f, srcDir)
			if err != nil {
				return nil, err
			}
			m[strings.TrimSuffix(filepath.Base(f), ".yml")] = v
		}
		top[sec] = m
	}
	return top, nil
}

// PackYAML is Pack rendered back to YAML text, ready to publish.
func PackYAML(srcDir string) ([]byte, error) {
	m, err := Pack(srcDir)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(m)
}

func readYAML(path, srcDir string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read orb source: %w", err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if err := resolveIncludes(v, srcDir); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// resolveIncludes walks decoded YAML and inlines included files into string values.
func resolveIncludes(v any, srcDir string) error {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if s, ok := e.(string); ok {
				r, err := include(s, srcDir)
				if err != nil {
					return err
				}
				t[k] = r
				continue
			}
			if err := resolveIncludes(e, srcDir); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if s, ok := e.(string); ok {
				r, err := include(s, srcDir)
				if err != nil {
					return err
				}
				t[i] = r
				continue
			}
			if err := resolveIncludes(e, srcDir); err != nil {
				return err
			}
		}
	}
	return nil
}

func include(s, srcDir string) (string, error) {
	m := includeRe.FindStringSubmatch(s)
	if m == nil {
		return s, nil
	}
	if strings.TrimSpace(s) != m[0] {
		return "", fmt.Errorf("<<include(%s)>> must be the whole value, as CircleCI requires", m[1])
	}
	b, err := os.ReadFile(filepath.Join(srcDir, filepath.FromSlash(m[1])))
	if err != nil {
		return "", fmt.Errorf("include %s: %w", m[1], err)
	}
	return string(b), nil
}
