package server_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// The README's API section is where the 404 of an unknown route sends a user: every route it
// lists must exist (whatever the answer to an empty request, it is not "no API route"), and it
// must list the ones deployers and agents call.
func TestREADMEListsRoutesTheServerHas(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	i := strings.Index(section, "### API")
	if i < 0 {
		t.Fatal("README has no API section")
	}
	section = section[i:]
	section = section[:strings.Index(section, "\n## ")]
	// A row's cell holds routes like `GET /api/v1/x/{id}` and `/reject` (same method and parent).
	route := regexp.MustCompile("`(?:(GET|POST) )?(/[a-z0-9/{}]+)`")
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin()
	fill := strings.NewReplacer("{id}", "r-unknown", "{env}", "dev", "{model}", "abalone", "{command}", "rollback")
	listed := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := strings.Split(line, "|")[1]
		method, parent := "", ""
		for _, m := range route.FindAllStringSubmatch(cell, -1) {
			path := m[2]
			if m[1] != "" {
				method = m[1]
				parent = path[:strings.LastIndex(path, "/")]
			} else if !strings.HasPrefix(path, "/api/") {
				path = parent + path
			}
			listed[method+" "+path] = true
			r := e.Do(method, fill.Replace(path), admin, nil)
			if r.Status == 404 && strings.Contains(r.Error(), "no API route") {
				t.Errorf("README lists %s %s, which the server does not have", method, path)
			}
		}
	}
	for _, want := range []string{"GET /api/v1/me", "POST /api/v1/releases", "POST /api/v1/releases/{id}/events", "POST /api/v1/releases/{id}/finish",
		"POST /api/v1/releases/{id}/cancel", "GET /api/v1/agent/commands/next", "GET /api/v1/releases/{id}/stream"} {
		if !listed[want] {
			t.Errorf("README's API section does not list %s", want)
		}
	}
}
