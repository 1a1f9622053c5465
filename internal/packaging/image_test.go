package packaging

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// A stand-in CA bundle, so the test does not depend on the host's ca-certificates package.
const fakeCABundle = "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"

// releaseBinary writes the Linux binary of the dist test build to a file.
func releaseBinary(t *testing.T) (path string, data []byte) {
	t.Helper()
	_, entries := distBuild(t)
	for _, e := range entries {
		if strings.HasSuffix(e.hdr.Name, "/idsync") {
			p := filepath.Join(t.TempDir(), "idsync-linux")
			if err := os.WriteFile(p, e.data, 0o755); err != nil {
				t.Fatal(err)
			}
			return p, e.data
		}
	}
	t.Fatal("no binary in the archive")
	return "", nil
}

func writeFakeCA(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, []byte(fakeCABundle), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImage builds the image from the release binary with mkimage (the command `make image`
// runs) and reads it back: the tarball docker load reads, the config and the one layer.
func TestImage(t *testing.T) {
	binPath, bin := releaseBinary(t)
	caPath := writeFakeCA(t)
	out := filepath.Join(t.TempDir(), "idsync-image.tar")
	msg := run(t, "mkimage", "-bin", binPath, "-out", out, "-version", testVersion, "-revision", testRevision,
		"-cacerts", caPath, "-created", strconv.FormatInt(testMTime.Unix(), 10))
	if !strings.Contains(msg, "idsync:v0.0.0-test-build-1") {
		t.Errorf("mkimage said %q", msg)
	}
	tag, err := Tag(testVersion)
	if err != nil {
		t.Fatal(err)
	}
	if tag.String() != "idsync:v0.0.0-test-build-1" {
		t.Errorf("tag %s", tag)
	}

	// What docker load and podman load read: manifest.json naming the tag, the config and
	// the layer, each present in the tarball.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	outer := readTar(t, f)
	f.Close()
	files := map[string][]byte{}
	for _, e := range outer {
		files[e.hdr.Name] = e.data
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{"idsync:v0.0.0-test-build-1"}) || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json = %+v", manifest)
	}
	for _, p := range append([]string{manifest[0].Config}, manifest[0].Layers...) {
		if _, ok := files[p]; !ok {
			t.Errorf("manifest.json names %s, which the tarball lacks", p)
		}
	}

	// Read back through go-containerregistry, as a registry push would.
	back, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	// The same inputs built in this process give the same config (which names the layer's
	// uncompressed digest, so the same files, modes and times): one input, one image.
	img, err := BuildImage(ImageOptions{
		Binary: binPath, CACerts: caPath,
		Version: testVersion, Revision: testRevision, Created: testMTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantConfig, _ := img.ConfigName()
	if got, err := back.ConfigName(); err != nil || got != wantConfig {
		t.Errorf("config digest read back %v (%v), built here %v", got, err, wantConfig)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != testTarget.Arch {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !cf.Created.Time.Equal(testMTime) {
		t.Errorf("created %v, want %v", cf.Created.Time, testMTime)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/idsync", "run"}) {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if !slices.Equal(c.Cmd, []string{"-c", "/etc/idsync/idsync.yaml"}) {
		t.Errorf("cmd %q", c.Cmd)
	}
	if !slices.Contains(c.Env, "IDSYNC_CONFIG=/etc/idsync/idsync.yaml") {
		t.Errorf("env %q lacks IDSYNC_CONFIG", c.Env)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/var/lib/idsync"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes %v", c.Volumes)
	}
	if c.WorkingDir != "/var/lib/idsync" {
		t.Errorf("working dir %q", c.WorkingDir)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": testRevision,
		"org.opencontainers.image.source":   "https://github.com/idsync/idsync",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.title":    "idsync",
	} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if c.Labels["org.opencontainers.image.description"] == "" {
		t.Error("no description label")
	}

	// The one layer: the binary, CA bundle, passwd/group and the state folder.
	layers, err := back.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	fs := map[string]*tarEntry{}
	var order []string
	for _, e := range readTar(t, rc) {
		fs[e.hdr.Name] = &e
		order = append(order, e.hdr.Name)
		if !e.hdr.ModTime.Equal(testMTime) {
			t.Errorf("%s: mtime %v", e.hdr.Name, e.hdr.ModTime)
		}
	}
	rc.Close()
	if !slices.IsSorted(order) {
		t.Errorf("layer entries not sorted: %q", order)
	}
	for _, p := range []string{"usr/local/bin/", "usr/local/", "usr/", "etc/ssl/certs/", "etc/idsync/", "var/lib/"} {
		if e := fs[p]; e == nil || e.hdr.Typeflag != tar.TypeDir {
			t.Errorf("no folder %s (every parent is in the layer)", p)
		}
	}
	be := fs["usr/local/bin/idsync"]
	if be == nil {
		t.Fatal("no usr/local/bin/idsync in the layer")
	}
	if be.hdr.Mode != 0o755 || be.hdr.Uid != 0 || !bytes.Equal(be.data, bin) {
		t.Errorf("binary entry: mode %o uid %d, same bytes %v", be.hdr.Mode, be.hdr.Uid, bytes.Equal(be.data, bin))
	}
	if _, err := CheckStaticLinux(bytes.NewReader(be.data)); err != nil {
		t.Errorf("binary in the image: %v", err)
	}
	if e := fs["etc/ssl/certs/ca-certificates.crt"]; e == nil || string(e.data) != fakeCABundle {
		t.Error("CA bundle missing or not the given one")
	}
	if e := fs["etc/passwd"]; e == nil || !strings.Contains(string(e.data), "\nnonroot:x:65532:65532:") {
		t.Errorf("etc/passwd lacks user 65532: %v", e)
	}
	if e := fs["etc/group"]; e == nil || !strings.Contains(string(e.data), "\nnonroot:x:65532:") {
		t.Errorf("etc/group lacks group 65532: %v", e)
	}
	if e := fs["var/lib/idsync/"]; e == nil || e.hdr.Typeflag != tar.TypeDir || e.hdr.Uid != 65532 || e.hdr.Gid != 65532 || e.hdr.Mode != 0o700 {
		t.Errorf("state folder: %+v", e)
	}
	if e := fs["tmp/"]; e == nil || e.hdr.Mode != 0o1777 {
		t.Errorf("tmp folder: %+v", e)
	}

}

func TestImageRefusesWhatCannotRun(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildImage(ImageOptions{Binary: notELF, CACerts: writeFakeCA(t)}); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("a shell script: %v", err)
	}
	// A dynamically linked executable of the host is refused.
	tested := false
	for _, p := range []string{"/bin/sh", "/bin/ls", "/usr/bin/env"} {
		if !hasInterp(p) {
			continue
		}
		_, err := CheckStaticLinux(mustOpen(t, p))
		if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
			t.Errorf("%s (dynamically linked): %v", p, err)
		}
		tested = true
		break
	}
	if !tested {
		t.Log("no dynamically linked executable on this host: that refusal is not checked")
	}
	binPath, _ := releaseBinary(t)
	_, err := BuildImage(ImageOptions{Binary: binPath, CACerts: filepath.Join(dir, "missing.crt")})
	if err == nil || !strings.Contains(err.Error(), "CA certificates") {
		t.Errorf("a missing CA bundle: %v", err)
	}
	empty := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildImage(ImageOptions{Binary: binPath, CACerts: empty}); err == nil {
		t.Error("an empty CA bundle was accepted")
	}
}

// hasInterp reports whether p is an ELF file with a program interpreter.
func hasInterp(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestTag(t *testing.T) {
	for in, want := range map[string]string{
		"v0.1.0":             "idsync:v0.1.0",
		"84fde27-dirty":      "idsync:84fde27-dirty",
		"v1.0.0+meta/branch": "idsync:v1.0.0-meta-branch",
		"":                   "idsync:dev",
		"..x":                "idsync:x",
	} {
		tag, err := Tag(in)
		if err != nil || tag.String() != want {
			t.Errorf("Tag(%q) = %v, %v; want %s", in, tag, err, want)
		}
	}
	long, err := Tag(strings.Repeat("a", 200))
	if err != nil || len(long.TagStr()) != 128 {
		t.Errorf("a long version: %v, %v", long, err)
	}
}
