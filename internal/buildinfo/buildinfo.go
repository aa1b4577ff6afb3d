// Package buildinfo holds the version, commit and build date stamped into the binary at release time.
package buildinfo

import "runtime/debug"

// Set by the release build with -ldflags "-X github.com/sagedeploy/sagedeploy/internal/buildinfo.version=...".
// They are only written by the linker, never at run time.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// Info describes the running binary.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// Get returns the stamped build information, falling back to the VCS data Go records in the binary.
func Get() Info {
	i := Info{Version: version, Commit: commit, Date: date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.time":
				if i.Date == "" {
					i.Date = s.Value
				}
			}
		}
	}
	return i
}

// Version is the short version string, e.g. "v0.1.0" or "dev".
func Version() string { return version }
