package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// fake replaces the build info and the ldflags values for one test.
func fake(t *testing.T, ver, rev string, bi *debug.BuildInfo) {
	t.Helper()
	oldV, oldR, oldRead := Version, Revision, readBuildInfo
	t.Cleanup(func() { Version, Revision, readBuildInfo = oldV, oldR, oldRead })
	Version, Revision = ver, rev
	readBuildInfo = func() (*debug.BuildInfo, bool) { return bi, bi != nil }
}

func TestLdflagsWin(t *testing.T) {
	fake(t, "v1.2.3", "0123456789abcdef0123456789abcdef01234567", &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Version: "v9.9.9"},
		Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "ffff"}},
	})
	got := Get()
	want := Info{Version: "v1.2.3", Revision: "0123456789abcdef0123456789abcdef01234567", GoVersion: "go1.26.8"}
	if got != want {
		t.Fatalf("Get() = %+v, want %+v", got, want)
	}
}

func TestBuildInfoFallback(t *testing.T) {
	fake(t, "dev", "", &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Version: "v0.1.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"},
			{Key: "vcs.modified", Value: "true"},
		},
	})
	got := Get()
	want := Info{Version: "v0.1.0", Revision: "abc123-dirty", GoVersion: "go1.26.8"}
	if got != want {
		t.Fatalf("Get() = %+v, want %+v", got, want)
	}
	if l := Long(); !strings.HasPrefix(l, "idsync v0.1.0 (revision abc123-dirty, go1.26.8, ") {
		t.Fatalf("Long() = %q", l)
	}
}

func TestNothingKnown(t *testing.T) {
	fake(t, "dev", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
	got := Get()
	want := Info{Version: "dev", Revision: Unknown, GoVersion: runtime.Version()}
	if got != want {
		t.Fatalf("Get() = %+v, want %+v", got, want)
	}
	fake(t, "", "", nil)
	if got := Get(); got != want {
		t.Fatalf("without build info: Get() = %+v, want %+v", got, want)
	}
}
