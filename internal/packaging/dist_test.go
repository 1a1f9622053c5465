package packaging

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

// readTarGz returns every entry of a .tar.gz, in order.
func readTarGz(t *testing.T, path string) []tarEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return readTar(t, gz)
}

func readTar(t *testing.T, r io.Reader) []tarEntry {
	t.Helper()
	tr := tar.NewReader(r)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, data})
	}
}

func TestDistArchive(t *testing.T) {
	outDir, entries := distBuild(t)
	base := "idsync_v0.0.0-test+build-1_" + testTarget.OS + "_" + testTarget.Arch
	names := dirNames(t, outDir)
	if !slices.Equal(names, []string{SumsFile, base + ".tar.gz"}) {
		t.Fatalf("mkdist wrote %v, want %s and %s.tar.gz", names, SumsFile, base)
	}

	want := wantArchive(t, base)
	if len(entries) != len(want) {
		var got []string
		for _, e := range entries {
			got = append(got, e.hdr.Name)
		}
		t.Fatalf("archive entries = %q, want %d entries", got, len(want))
	}
	var bin []byte
	for i, w := range want {
		h := entries[i].hdr
		if h.Name != w.name || h.Mode != w.mode || (h.Typeflag == tar.TypeDir) != w.dir {
			t.Errorf("entry %d = %s mode %o type %c, want %s mode %o dir %v", i, h.Name, h.Mode, h.Typeflag, w.name, w.mode, w.dir)
		}
		if !h.ModTime.Equal(testMTime) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want %v 0 0", h.Name, h.ModTime, h.Uid, h.Gid, testMTime)
		}
		if doc, ok := strings.CutPrefix(w.name, base+"/"); ok && !w.dir && doc != "idsync" {
			src, err := os.ReadFile(filepath.Join(repoRoot, doc))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(src, entries[i].data) {
				t.Errorf("%s differs from the repository's %s", h.Name, doc)
			}
		}
		if w.name == base+"/idsync" {
			bin = entries[i].data
		}
	}
	if len(bin) == 0 {
		t.Fatal("no binary in the archive")
	}

	// The binary is a static release build carrying the version flags.
	arch, err := CheckStaticLinux(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("binary in the archive: %v", err)
	}
	if arch != testTarget.Arch {
		t.Errorf("binary architecture %s, want %s", arch, testTarget.Arch)
	}
	binPath := filepath.Join(t.TempDir(), "idsync")
	if err := os.WriteFile(binPath, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	bi, err := buildinfo.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": "linux", "GOARCH": testTarget.Arch} {
		if settings[k] != v {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], v)
		}
	}
	if bi.Path != MainPackage {
		t.Errorf("binary's main package %q, want %q", bi.Path, MainPackage)
	}
	if runtime.GOOS == "linux" {
		out, err := exec.Command(binPath, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("idsync version: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), testVersion) {
			t.Errorf("idsync version printed %q, want the version %q in it", out, testVersion)
		}
		// Once the command prints the revision, it must be the one given with -ldflags
		// (-trimpath keeps -ldflags out of the build info, so this is where it shows).
		if strings.Contains(string(out), "revision") && !strings.Contains(string(out), testRevision) {
			t.Errorf("idsync version printed %q, want the revision %q in it", out, testRevision)
		}
	}
}

type wantEntry struct {
	name string
	mode int64
	dir  bool
}

// wantArchive is what an archive must hold, in order: the license, the README, the
// changelog, the example config, every file under docs/ (found here by walking the
// repository, not by asking the code under test), their folders, and the binary.
func wantArchive(t *testing.T, base string) []wantEntry {
	t.Helper()
	files := []string{"LICENSE", "README.md", "CHANGELOG.md", "configs/idsync.example.yaml"}
	err := fs.WalkDir(os.DirFS(repoRoot), "docs", func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, "docs/README.md") {
		t.Fatalf("no docs/README.md in the repository (found %v)", files)
	}
	out := []wantEntry{{base + "/", 0o755, true}, {base + "/idsync", 0o755, false}}
	dirs := map[string]bool{}
	for _, f := range files {
		out = append(out, wantEntry{base + "/" + f, 0o644, false})
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				out = append(out, wantEntry{base + "/" + d + "/", 0o755, true})
			}
		}
	}
	slices.SortFunc(out, func(a, b wantEntry) int { return strings.Compare(a.name, b.name) })
	return out
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestDistSums(t *testing.T) {
	outDir, _ := distBuild(t)
	var names []string
	for _, n := range dirNames(t, outDir) {
		if n != SumsFile {
			names = append(names, n)
		}
	}
	data, err := os.ReadFile(filepath.Join(outDir, SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	sc := bufio.NewScanner(bytes.NewReader(data))
	var listed []string
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("%s line %q is not in sha256sum format", SumsFile, sc.Text())
		}
		f, err := os.ReadFile(filepath.Join(outDir, m[2]))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(f)
		if hex.EncodeToString(sum[:]) != m[1] {
			t.Errorf("%s: listed %s, file hashes to %x", m[2], m[1], sum)
		}
		listed = append(listed, m[2])
	}
	if strings.Join(listed, ",") != strings.Join(names, ",") {
		t.Errorf("%s lists %v, want %v", SumsFile, listed, names)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Errorf("%s does not end with a line break", SumsFile)
	}
	// The file is what sha256sum itself checks, where the tool is installed.
	if p, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(p, "-c", "--strict", SumsFile)
		cmd.Dir = outDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	}
}

// TestArchiveReproducible: the same inputs give the same bytes; another mtime does not.
func TestArchiveReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-idsync")
	if err := os.WriteFile(bin, []byte("not really a binary"), 0o700); err != nil {
		t.Fatal(err)
	}
	tgt := Target{"darwin", "arm64"}
	write := func(name string, mtime time.Time) []byte {
		p := filepath.Join(dir, name)
		if err := WriteArchive(p, repoRoot, bin, "v1.2.3", tgt, mtime); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := write("a.tar.gz", testMTime)
	b := write("b.tar.gz", testMTime)
	c := write("c.tar.gz", testMTime.Add(time.Hour))
	if !bytes.Equal(a, b) {
		t.Error("two archives of the same inputs differ")
	}
	if bytes.Equal(a, c) {
		t.Error("archives with different mtimes are equal: the mtime is not applied")
	}
	entries := readTarGz(t, filepath.Join(dir, "a.tar.gz"))
	last := entries[len(entries)-1]
	if last.hdr.Name != "idsync_v1.2.3_darwin_arm64/idsync" || last.hdr.Mode != 0o755 {
		t.Errorf("binary entry %s mode %o", last.hdr.Name, last.hdr.Mode)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.tar.gz.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestParseTargets(t *testing.T) {
	got, err := ParseTargets("linux/amd64, darwin/arm64,")
	if err != nil || len(got) != 2 || got[0] != (Target{"linux", "amd64"}) || got[1] != (Target{"darwin", "arm64"}) {
		t.Fatalf("ParseTargets = %v, %v", got, err)
	}
	for _, bad := range []string{"", "linux", "linux/", "/amd64"} {
		if _, err := ParseTargets(bad); err == nil {
			t.Errorf("ParseTargets(%q) accepted", bad)
		}
	}
	if len(Targets) != 4 {
		t.Errorf("release targets %v, want linux and darwin on amd64 and arm64", Targets)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if got, err := SourceDateEpoch(""); err != nil || got.Unix() != 1700000000 {
		t.Errorf("from the environment: %v, %v", got, err)
	}
	if got, err := SourceDateEpoch("5"); err != nil || got.Unix() != 5 {
		t.Errorf("given: %v, %v", got, err)
	}
	if _, err := SourceDateEpoch("yesterday"); err == nil {
		t.Error("a non-number was accepted")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if got, err := SourceDateEpoch(""); err != nil || got.Unix() != 0 {
		t.Errorf("default: %v, %v", got, err)
	}
}

// TestArchiveNeedsTheDocs: an archive is never written without the guides, and a file the
// archives hold that is missing is named.
func TestArchiveNeedsTheDocs(t *testing.T) {
	root := t.TempDir()
	for _, f := range ArchiveDocs {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, "fake-idsync")
	if err := os.WriteFile(bin, []byte("bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "a.tar.gz")
	err := WriteArchive(out, root, bin, "v1", Target{"linux", "amd64"}, testMTime)
	if err == nil || !strings.Contains(err.Error(), "docs") {
		t.Fatalf("archive without docs/: %v, want an error naming docs", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "docs", "sources"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "docs", "sources", "x.md"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(out, root, bin, "v1", Target{"linux", "amd64"}, testMTime); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range readTarGz(t, out) {
		names = append(names, e.hdr.Name)
	}
	for _, want := range []string{"idsync_v1_linux_amd64/docs/", "idsync_v1_linux_amd64/docs/sources/", "idsync_v1_linux_amd64/docs/sources/x.md"} {
		if !slices.Contains(names, want) {
			t.Errorf("archive %v lacks %s", names, want)
		}
	}
	if err := os.Remove(filepath.Join(root, "CHANGELOG.md")); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(out, root, bin, "v1", Target{"linux", "amd64"}, testMTime); err == nil || !strings.Contains(err.Error(), "CHANGELOG.md") {
		t.Fatalf("archive without CHANGELOG.md: %v, want an error naming it", err)
	}
}
