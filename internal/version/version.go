// Package version carries the build's version string, set with -ldflags at build time.
package version

import "runtime/debug"

// Version is overridden by `make build` with the git description.
var Version = "dev"

// String returns the version, falling back to the module version when built with `go install`.
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}
