// Package naming derives the names of the SageMaker resources sagedeploy creates — models,
// endpoint configurations, endpoints — from the model, environment, version and pipeline they
// serve. Names are deterministic (separate CI steps find each other's resources by name), always
// valid SageMaker names, and distinct for distinct inputs: a name that would be too long or
// invalid is shortened and gets a hash of the full input instead of being cut into a collision.
package naming

import (
	"crypto/sha256"
	"encoding/base32"
	"regexp"
	"strconv"
	"strings"
)

// MaxLen is SageMaker's limit for model, endpoint-config and endpoint names.
const MaxLen = 63

// validRe is SageMaker's pattern for those names, anchored.
var validRe = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

// cleanRe is what a name part may hold to be used as is in a derived name: lowercase, so that
// names differing only in case (SageMaker compares some names case-insensitively) never meet.
var cleanRe = regexp.MustCompile(`^[a-z0-9](-*[a-z0-9])*$`)

// Valid reports whether s is a valid SageMaker model, endpoint-config or endpoint name.
func Valid(s string) bool { return len(s) <= MaxLen && validRe.MatchString(s) }

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Hash returns n lowercase base32 characters of the SHA-256 of parts, each part length-prefixed so
// that ("ab","c") and ("a","bc") hash differently.
func Hash(n int, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	s := b32.EncodeToString(h.Sum(nil))
	return s[:n]
}

// PipelineKey is the short, stable token that marks names made for one CI pipeline: "p" and 8
// characters of a hash of the pipeline id. Steps of the same pipeline list resources whose names
// contain it. Empty when pipelineID is empty.
func PipelineKey(pipelineID string) string {
	if pipelineID == "" {
		return ""
	}
	return "p" + Hash(8, "pipeline", pipelineID)
}

// Endpoint is the default endpoint of a model in an environment: "{model}-{environment}", as the
// CircleCI orb names it, shortened with a hash when that is not a valid name. Unlike the other
// names it keeps the user's case, to match endpoints the orb created.
func Endpoint(model, env string) string {
	raw := model + "-" + env
	if Valid(raw) {
		return raw
	}
	return shorten([]string{model, env}, nil, "endpoint")
}

// Model is the SageMaker model of one model package version: "{model}-v{version}", with the
// pipeline key appended when a pipeline made it, so each pipeline owns the models it created and a
// retried step finds them.
func Model(model string, version int, pipelineID string) string {
	tail := []string{"v" + strconv.Itoa(version)}
	if k := PipelineKey(pipelineID); k != "" {
		tail = append(tail, k)
	}
	return build([]string{model}, tail, "model", pipelineID)
}

// EndpointConfig is the endpoint configuration of a model in an environment:
// "{model}-{env}-v{version}[-{pipeline key}]-{hash}", where the hash covers every input including
// settings (the SageMaker model name, instance type and count, …), so that a config is reused
// exactly when all of them match.
func EndpointConfig(model, env string, version int, pipelineID, settings string) string {
	v := strconv.Itoa(version)
	tail := []string{"v" + v}
	if k := PipelineKey(pipelineID); k != "" {
		tail = append(tail, k)
	}
	tail = append(tail, Hash(8, "config", model, env, v, pipelineID, settings))
	return build([]string{model, env}, tail, "config", pipelineID)
}

// build joins head and tail with "-" when every head part is clean and the result fits; otherwise
// it shortens the head.
func build(head, tail []string, kind string, extra ...string) string {
	clean := true
	for _, h := range head {
		if !cleanRe.MatchString(h) {
			clean = false
			break
		}
	}
	raw := strings.Join(append(append([]string{}, head...), tail...), "-")
	if clean && len(raw) <= MaxLen {
		return raw
	}
	return shorten(head, tail, kind, extra...)
}

// shorten renders head sanitized and cut to fit, then a hash of all inputs, then tail (kept whole,
// so that pipeline keys stay searchable).
func shorten(head, tail []string, kind string, extra ...string) string {
	all := append(append(append([]string{kind}, head...), tail...), extra...)
	h := Hash(8, all...)
	suffix := h
	if len(tail) > 0 {
		suffix += "-" + strings.Join(tail, "-")
	}
	room := MaxLen - len(suffix) - 1
	s := sanitize(strings.Join(head, "-"))
	if len(s) > room {
		s = strings.TrimRight(s[:room], "-")
	}
	if s == "" {
		return suffix
	}
	return s + "-" + suffix
}

// sanitize lowercases s, turns every run of characters SageMaker does not allow into one "-", and
// trims dashes at both ends.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// ModelVersion reports whether name is the model Model makes for model and pipelineID, and of
// which version. The name alone identifies it — Model is deterministic and keeps its tail whole —
// so a later step finds the pipeline's model in a list without reading its tags.
func ModelVersion(name, model, pipelineID string) (int, bool) {
	key := PipelineKey(pipelineID)
	rest, ok := strings.CutSuffix(name, "-"+key)
	if key == "" || !ok {
		return 0, false
	}
	n, ok := trailingVersion(rest)
	if !ok || Model(model, n, pipelineID) != name {
		return 0, false
	}
	return n, true
}

// EndpointConfigVersion reports whether name is an endpoint configuration EndpointConfig makes for
// model, env and pipelineID (with any settings), and of which version. The settings' hash ends the
// name, so the name can be rebuilt from its own tail and compared whole. One ambiguity is left:
// where model and env join with a dash as they are, model "a" in "b-dev" and model "a-b" in "dev"
// make the same prefix — the caller tells them apart by the model the configuration serves.
func EndpointConfigVersion(name, model, env, pipelineID string) (int, bool) {
	key := PipelineKey(pipelineID)
	const hashLen = 8
	if key == "" || len(name) <= hashLen {
		return 0, false
	}
	settings := name[len(name)-hashLen:]
	rest, ok := strings.CutSuffix(name[:len(name)-hashLen], "-"+key+"-")
	if !ok {
		return 0, false
	}
	n, ok := trailingVersion(rest)
	if !ok || build([]string{model, env}, []string{"v" + strconv.Itoa(n), key, settings}, "config", pipelineID) != name {
		return 0, false
	}
	return n, true
}

// trailingVersion parses the "-v{n}" that ends s.
func trailingVersion(s string) (int, bool) {
	i := strings.LastIndex(s, "-v")
	if i < 0 {
		return 0, false
	}
	digits := s[i+2:]
	n, err := strconv.Atoi(digits)
	if err != nil || n <= 0 || strconv.Itoa(n) != digits {
		return 0, false
	}
	return n, true
}
