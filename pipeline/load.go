package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong in a pipeline file, at a line.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (p Problem) Error() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message) }

// Problems are every problem found in a pipeline file, in line order. Load returns them as its
// error so that one run of `sagedeploy pipeline validate` shows them all.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// ErrNotFound is returned by Find when no pipeline file is in the directory or above it.
var ErrNotFound = errors.New("no " + FileName + " in this directory or any above it")

// Find looks for sagedeploy.yaml in dir and each directory above it, the way git finds its
// repository: a command run anywhere in the user's repository uses the repository's file.
func Find(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", FileName, err)
	}
	for {
		p := filepath.Join(dir, FileName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("find %s: %w", FileName, err)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", ErrNotFound
		}
		dir = up
	}
}

// Load reads and validates the pipeline file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline file: %w", err)
	}
	return Parse(path, data)
}

// Parse validates data as the pipeline file named name. The error, when the file has problems,
// is Problems.
func Parse(name string, data []byte) (*File, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, Problems{{File: name, Line: syntaxLine(err), Message: "not valid YAML: " + stripLine(err.Error())}}
	}
	if len(doc.Content) == 0 {
		return nil, Problems{{File: name, Line: 1, Message: "the file is empty: list the environments under environments:"}}
	}
	c := &checker{file: name}
	root := doc.Content[0]
	c.keys(root, reflect.TypeFor[File](), "the file")
	// Unknown keys do not stop decoding (the decoder skips them), so one run reports them
	// together with the rules the values break; values of the wrong type do stop it.
	f := &File{Path: name}
	keyProblems := len(c.problems)
	c.decode(root, f)
	if len(c.problems) == keyProblems {
		c.rules(root, f)
	}
	if len(c.problems) > 0 {
		sort.SliceStable(c.problems, func(i, j int) bool { return c.problems[i].Line < c.problems[j].Line })
		return nil, c.problems
	}
	return f, nil
}

// syntaxLine digs the line out of a YAML syntax error ("yaml: line 3: ...").
func syntaxLine(err error) int {
	var n int
	if _, e := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &n); e == nil {
		return n
	}
	return 1
}

type checker struct {
	file     string
	problems Problems
}

func (c *checker) add(line int, format string, args ...any) {
	c.problems = append(c.problems, Problem{File: c.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

// keys checks every mapping key below n against the yaml names of t's fields, recursively, so
// that a mistyped key is reported at its line instead of being silently ignored.
func (c *checker) keys(n *yaml.Node, t reflect.Type, where string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && t != reflect.TypeFor[Duration]():
		if n.Kind != yaml.MappingNode {
			c.add(n.Line, "%s must be a mapping of keys to values, not %s", where, describe(n))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				c.add(k.Line, "unknown key %q in %s%s", k.Value, where, suggest(k.Value, slices.Sorted(maps.Keys(fields))))
				continue
			}
			c.keys(v, ft, fmt.Sprintf("%s of %s", k.Value, where))
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			c.keys(item, t.Elem(), itemName(item, i, where))
		}
	}
}

// itemName names a list item for messages: an environment by its name.
func itemName(item *yaml.Node, i int, where string) string {
	if item.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(item.Content); j += 2 {
			if item.Content[j].Value == "name" && item.Content[j+1].Value != "" {
				return fmt.Sprintf("environment %s", item.Content[j+1].Value)
			}
		}
	}
	return fmt.Sprintf("item %d of %s", i+1, where)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "this"
}

// yamlFields maps the yaml key of each field of struct t to the field's type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// suggest proposes the closest known key, the way a mistyped flag gets one.
func suggest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(got, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return fmt.Sprintf(" (known keys: %s)", strings.Join(known, ", "))
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// decode fills f from the checked document; values of the wrong type become problems.
func (c *checker) decode(root *yaml.Node, f *File) {
	err := root.Decode(f)
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			c.add(syntaxLine(errors.New(msg)), "%s", typeMessage(msg))
		}
		return
	}
	c.add(syntaxLine(err), "%s", stripLine(err.Error()))
}

// stripLine drops "yaml: line N: " from a message: the problem names its line already.
func stripLine(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
		return rest
	}
	return msg
}

// typeMessage rewords the YAML library's "cannot unmarshal !!str `x` into int" for a user.
func typeMessage(msg string) string {
	_, rest, ok := strings.Cut(msg, ": ")
	if !ok {
		return msg
	}
	r := strings.NewReplacer("!!str", "the text", "!!int", "the number", "!!seq", "a list", "!!map", "a mapping",
		"!!bool", "the boolean", "into int", "where a whole number is expected", "into bool", "where true or false is expected",
		"into string", "where text is expected", "into pipeline.Duration", "where a duration (5m) is expected",
		"cannot unmarshal", "cannot use")
	return r.Replace(rest)
}
