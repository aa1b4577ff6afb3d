// Package web holds the dashboard's templates and static assets, embedded in the binary: plain
// html/template pages, one stylesheet and a small hand-written script (no front-end build).
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
)

//go:embed templates static
var files embed.FS

// Static is the tree served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}

// Pages parses every page template together with the layout and the shared partials
// (partials*.html). The map is
// keyed by page name ("overview", "release", ...); execute its "layout" template.
func Pages(funcs template.FuncMap) (map[string]*template.Template, error) {
	base, err := template.New("layout").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials*.html", "templates/parts/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse dashboard layout: %w", err)
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || strings.HasPrefix(name, "partials") {
			continue
		}
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.ParseFS(files, n); err != nil {
			return nil, fmt.Errorf("parse dashboard page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}
