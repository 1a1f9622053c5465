package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository root, seen from this package's folder (where go test runs).
const repoRoot = "../.."

// Release-build values the tests look for in what they built.
const (
	testVersion  = "v0.0.0-test+build/1"
	testRevision = "0123456789abcdef0123456789abcdef01234567"
)

var testLDFlags = "-X github.com/idsync/idsync/internal/version.Version=" + testVersion +
	" -X github.com/idsync/idsync/internal/version.Revision=" + testRevision

// testTarget is the one platform the tests build: Linux (the image's OS) on this machine's
// architecture, so the binary also runs here when the tests run on Linux.
var testTarget = Target{OS: "linux", Arch: runtime.GOARCH}

var testMTime = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "idsync-packaging-test-")
	if err != nil {
		panic(err)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goCmd runs the go command (go test puts its own GOROOT/bin first on PATH).
func goCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "go", args...)
}

var (
	toolsOnce sync.Once
	toolsErr  error
)

// tool returns the path of one of this package's commands (mkdist, mkimage), built once
// without -race: the archive and the layer are gzipped in those processes, which under the
// race detector would take 10 to 30 times longer.
func tool(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(workDir, "tools")
	toolsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := goCmd(ctx, "build", "-o", dir+string(os.PathSeparator), "./cmd/mkdist", "./cmd/mkimage")
		if out, err := cmd.CombinedOutput(); err != nil {
			toolsErr = &cmdError{"go build ./cmd/...", err, string(out)}
		}
	})
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
	return filepath.Join(dir, name)
}

type cmdError struct {
	what string
	err  error
	out  string
}

func (e *cmdError) Error() string { return e.what + ": " + e.err.Error() + "\n" + e.out }

// run runs a built tool and fails t with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	distOnce    sync.Once
	distEntries []tarEntry
	distFailed  bool
	distTook    time.Duration
)

// distBuild runs `mkdist` once for testTarget (as `make dist` does for every target: one real
// go build, a few seconds with a warm build cache) and returns the output folder and the
// entries of its one archive; the dist and image tests share them.
func distBuild(t *testing.T) (outDir string, entries []tarEntry) {
	t.Helper()
	outDir = filepath.Join(workDir, "dist")
	distOnce.Do(func() {
		distFailed = true
		start := time.Now()
		run(t, "mkdist", "-targets", testTarget.String(), "-version", testVersion, "-ldflags", testLDFlags,
			"-root", repoRoot, "-out", outDir, "-mtime", strconv.FormatInt(testMTime.Unix(), 10))
		distTook = time.Since(start)
		distEntries = readTarGz(t, filepath.Join(outDir, ArchiveBase(testVersion, testTarget)+".tar.gz"))
		distFailed = false
	})
	if distFailed {
		t.Fatal("the dist build failed (see the first test that ran it)")
	}
	t.Logf("mkdist for %s took %v", testTarget, distTook.Round(time.Millisecond))
	return outDir, distEntries
}
