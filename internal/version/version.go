// Package version carries the build's identity: the version, the VCS revision and the Go
// version. `make build`, `make image` and `make dist` set Version and Revision with -ldflags
// (-X github.com/idsync/idsync/internal/version.Version=... and ...Revision=...); a binary
// built without them (go build, go install) falls back to what the Go toolchain recorded in
// the binary (runtime/debug.ReadBuildInfo: the module version, vcs.revision, vcs.modified).
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is overridden by `make build` with the git description.
var Version = "dev"

// Revision is overridden by `make build` with the full commit hash.
var Revision = ""

// Unknown is what Revision returns when neither -ldflags nor the build info name a revision
// (a build outside a git work tree, or with -buildvcs=false).
const Unknown = "unknown"

// Info is the whole build identity, as `idsync version`, /api/v1/status and the
// idsync_build_info metric show it.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"go_version"`
}

// readBuildInfo is debug.ReadBuildInfo, replaced in tests.
var readBuildInfo = debug.ReadBuildInfo

// String returns the version, falling back to the module version when built with `go install`.
func String() string {
	if Version != "dev" && Version != "" {
		return Version
	}
	if bi, ok := readBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// RevisionString returns the VCS revision: the -ldflags value first, else the build info's
// vcs.revision (with a "-dirty" suffix when vcs.modified is true), else Unknown.
func RevisionString() string {
	if Revision != "" {
		return Revision
	}
	if bi, ok := readBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			if modified == "true" {
				rev += "-dirty"
			}
			return rev
		}
	}
	return Unknown
}

// GoVersion returns the Go toolchain the binary was built with ("go1.26.8").
func GoVersion() string {
	if bi, ok := readBuildInfo(); ok && bi.GoVersion != "" {
		return bi.GoVersion
	}
	return runtime.Version()
}

// Get returns the whole build identity.
func Get() Info {
	return Info{Version: String(), Revision: RevisionString(), GoVersion: GoVersion()}
}

// Long is the one-line form `idsync version` prints:
// "idsync v0.1.0 (revision 84fde27..., go1.26.8, linux/amd64)".
func Long() string {
	i := Get()
	return "idsync " + i.Version + " (revision " + i.Revision + ", " + i.GoVersion + ", " +
		runtime.GOOS + "/" + runtime.GOARCH + ")"
}
