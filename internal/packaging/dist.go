package packaging

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// MainPackage is the import path of the idsync command.
const MainPackage = "github.com/idsync/idsync/cmd/idsync"

// Target is one platform of the release.
type Target struct{ OS, Arch string }

func (t Target) String() string { return t.OS + "/" + t.Arch }

// Targets are the platforms `make dist` builds.
var Targets = []Target{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
}

// ParseTargets reads "linux/amd64,darwin/arm64".
func ParseTargets(s string) ([]Target, error) {
	var ts []Target
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		goos, goarch, ok := strings.Cut(f, "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("target %q: want OS/ARCH", f)
		}
		ts = append(ts, Target{goos, goarch})
	}
	if len(ts) == 0 {
		return nil, errors.New("no target")
	}
	return ts, nil
}

// ArchiveDocs are the files every archive holds besides the binary, relative to the
// repository root; they keep these paths inside the archive.
var ArchiveDocs = []string{"LICENSE", "README.md", "CHANGELOG.md", "configs/idsync.example.yaml"}

// ArchiveDirs are folders every archive holds whole (each regular file under them, at its
// path relative to the repository root): the guides the README links to.
var ArchiveDirs = []string{"docs"}

// ArchiveFiles lists what an archive holds besides the binary, read from root: ArchiveDocs,
// then every regular file under ArchiveDirs (sorted), as slash-separated paths relative to
// root. A missing file or folder, or an empty folder, is an error: an archive must never ship
// without them.
func ArchiveFiles(root string) ([]string, error) {
	out := append([]string(nil), ArchiveDocs...)
	for _, d := range ArchiveDocs {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(d))); err != nil {
			return nil, fmt.Errorf("a file the archives hold is missing: %w", err)
		}
	}
	for _, dir := range ArchiveDirs {
		var found []string
		err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(dir)), func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !de.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			found = append(found, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("a folder the archives hold: %w", err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("the folder %s the archives hold has no files", dir)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// SumsFile is the checksum file beside the archives, in sha256sum's format.
const SumsFile = "SHA256SUMS"

// BuildOptions says how to compile the idsync binary.
type BuildOptions struct {
	Go      string // the go command (default "go" from PATH)
	LDFlags string // -ldflags, e.g. the Makefile's version flags
	Target  Target
	Out     string // the binary's path
	Stderr  io.Writer
}

// BuildBinary compiles cmd/idsync as a release binary: CGO_ENABLED=0 (static, no libc),
// -trimpath (no build paths in it) and the given -ldflags, for the given OS and architecture.
func BuildBinary(ctx context.Context, o BuildOptions) error {
	goBin := o.Go
	if goBin == "" {
		goBin = "go"
	}
	args := []string{"build", "-trimpath"}
	if o.LDFlags != "" {
		args = append(args, "-ldflags", o.LDFlags)
	}
	args = append(args, "-o", o.Out, MainPackage)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+o.Target.OS, "GOARCH="+o.Target.Arch)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if o.Stderr != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, o.Stderr), io.MultiWriter(&out, o.Stderr)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", o.Target, err, out.String())
	}
	return nil
}

// ArchiveBase is an archive's name without ".tar.gz", also the folder it unpacks to:
// idsync_VERSION_OS_ARCH.
func ArchiveBase(version string, t Target) string {
	v := strings.NewReplacer("/", "-", "\\", "-", " ", "-").Replace(version)
	return "idsync_" + v + "_" + t.OS + "_" + t.Arch
}

// WriteArchive writes the release archive out (a .tar.gz) holding, under the folder
// ArchiveBase: the binary as "idsync" (mode 0755) and ArchiveFiles read from root (mode 0644).
// Entries are sorted, owned by 0:0 and dated mtime, and the gzip header carries no name or
// time, so the same inputs give the same bytes.
func WriteArchive(out, root, binary, version string, t Target, mtime time.Time) (err error) {
	base := ArchiveBase(version, t)
	docs, err := ArchiveFiles(root)
	if err != nil {
		return err
	}
	type entry struct {
		name string
		mode int64
		src  string // "" for a folder
	}
	entries := []entry{
		{base + "/", 0o755, ""},
		{base + "/idsync", 0o755, binary},
	}
	dirs := map[string]bool{}
	for _, d := range docs {
		for dir := filepath.ToSlash(filepath.Dir(d)); dir != "."; dir = filepath.ToSlash(filepath.Dir(dir)) {
			if !dirs[dir] {
				dirs[dir] = true
				entries = append(entries, entry{base + "/" + dir + "/", 0o755, ""})
			}
		}
		entries = append(entries, entry{base + "/" + d, 0o644, filepath.Join(root, filepath.FromSlash(d))})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	gz, err := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	mtime = mtime.UTC().Truncate(time.Second)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		var data []byte
		if e.src == "" {
			h.Typeflag = tar.TypeDir
		} else {
			if data, err = os.ReadFile(e.src); err != nil {
				return err
			}
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(data))
		}
		if err = tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err = tw.Write(data); err != nil {
			return err
		}
	}
	if err = tw.Close(); err != nil {
		return err
	}
	if err = gz.Close(); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// WriteSums writes dir/SHA256SUMS for files (names in dir): one "HEX  NAME" line each, sorted
// by name, as `sha256sum` prints them and `sha256sum -c` reads them.
func WriteSums(dir string, files []string) error {
	names := append([]string(nil), files...)
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), n)
	}
	return os.WriteFile(filepath.Join(dir, SumsFile), []byte(b.String()), 0o644)
}

// DistOptions says what `make dist` builds.
type DistOptions struct {
	Version string
	LDFlags string
	Targets []Target
	Root    string    // the repository root (the docs are read from it)
	OutDir  string    // where the archives and SHA256SUMS go (created)
	MTime   time.Time // every archive entry's mtime
	Go      string
	Log     io.Writer // progress, one line per archive (nil: none)
}

// Dist builds one archive per target and the SHA256SUMS file over them; it returns the
// archives' names (in OutDir).
func Dist(ctx context.Context, o DistOptions) ([]string, error) {
	if _, err := ArchiveFiles(o.Root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "idsync-dist-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var names []string
	for _, t := range o.Targets {
		bin := filepath.Join(work, t.OS+"-"+t.Arch, "idsync")
		if err := BuildBinary(ctx, BuildOptions{Go: o.Go, LDFlags: o.LDFlags, Target: t, Out: bin}); err != nil {
			return nil, err
		}
		name := ArchiveBase(o.Version, t) + ".tar.gz"
		if err := WriteArchive(filepath.Join(o.OutDir, name), o.Root, bin, o.Version, t, o.MTime); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if o.Log != nil {
			if st, err := os.Stat(filepath.Join(o.OutDir, name)); err == nil {
				fmt.Fprintf(o.Log, "%s (%.1f MiB)\n", filepath.Join(o.OutDir, name), float64(st.Size())/(1<<20))
			}
		}
		names = append(names, name)
	}
	if err := WriteSums(o.OutDir, names); err != nil {
		return nil, err
	}
	return names, nil
}
