// Package packaging builds idsync's release artifacts without a container engine: the OCI
// image tarball of `make image` (BuildImage, WriteImage) and the release archives of
// `make dist` (BuildBinary, WriteArchive, WriteSums). Its tests also check the deployment
// files under configs/ (Kubernetes manifests, Prometheus rules, the Grafana dashboard, the
// Dockerfile and the systemd unit) against the code they describe.
package packaging

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/google/go-containerregistry/pkg/name"
)

// The image's layout. The Dockerfile, the Kubernetes manifests and the systemd unit use the
// same paths, user and port; the tests hold them to it.
const (
	BinaryPath  = "/usr/local/bin/idsync"
	ConfigDir   = "/etc/idsync"
	ConfigPath  = ConfigDir + "/idsync.yaml"
	StateDir    = "/var/lib/idsync"
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	UID         = 65532
	UserName    = "nonroot"
	Port        = 8080
	// DefaultCACerts is where Debian's ca-certificates package keeps the bundle.
	DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"
	// DefaultSource is the org.opencontainers.image.source label.
	DefaultSource = "https://github.com/idsync/idsync"
)

// ImageOptions says what goes into the image.
type ImageOptions struct {
	// Binary is the idsync executable: a static Linux ELF (CGO_ENABLED=0). Its machine type
	// sets the image's architecture.
	Binary string
	// CACerts is the PEM bundle copied to CACertsPath (default DefaultCACerts).
	CACerts string
	// Version and Revision fill the OCI version and revision labels.
	Version  string
	Revision string
	// Source is the org.opencontainers.image.source label (default DefaultSource).
	Source string
	// Created is the image's creation time and every file's mtime (zero: the Unix epoch), so
	// that one input gives one image digest.
	Created time.Time
}

// BuildImage assembles the image: an empty base plus one layer with the binary, the CA
// bundle, /etc/passwd and /etc/group naming user 65532, and the state folder owned by it.
func BuildImage(o ImageOptions) (v1.Image, error) {
	if o.Binary == "" {
		return nil, errors.New("no binary given")
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	arch, err := CheckStaticLinux(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Binary, err)
	}
	caPath := o.CACerts
	if caPath == "" {
		caPath = DefaultCACerts
	}
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificates (install the ca-certificates package, or pass another PEM bundle): %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caPath)
	}
	created := o.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC().Truncate(time.Second)
	source := o.Source
	if source == "" {
		source = DefaultSource
	}

	layerTar, err := rootFS(bin, ca, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("making the layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "idsync mkimage: " + BinaryPath + ", CA certificates, user " + strconv.Itoa(UID),
			Comment:   "built without a container engine (internal/packaging)",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: created}
	cf.Author = "The idsync Authors"
	cf.Config = ImageConfig(o.Version, o.Revision, source)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	return img, nil
}

// ImageConfig is the runtime config of the image: user, entrypoint, environment, port,
// volume and OCI labels.
//
// The entrypoint is `idsync run`; Cmd adds `-c /etc/idsync/idsync.yaml` so that the image
// starts with the mounted config whatever the binary's default config path is. IDSYNC_CONFIG
// names the same file for commands run with another Cmd. The working directory is the state
// volume, so the default state path (./idsync.db) lands in it.
func ImageConfig(version, revision, source string) v1.Config {
	if version == "" {
		version = "dev"
	}
	if revision == "" {
		revision = "unknown"
	}
	return v1.Config{
		User:       fmt.Sprintf("%d:%d", UID, UID),
		Entrypoint: []string{BinaryPath, "run"},
		Cmd:        []string{"-c", ConfigPath},
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"IDSYNC_CONFIG=" + ConfigPath,
			"SSL_CERT_FILE=" + CACertsPath,
		},
		WorkingDir:   StateDir,
		ExposedPorts: map[string]struct{}{strconv.Itoa(Port) + "/tcp": {}},
		Volumes:      map[string]struct{}{StateDir: {}},
		StopSignal:   "SIGTERM",
		Labels: map[string]string{
			"org.opencontainers.image.title":       "idsync",
			"org.opencontainers.image.description": "Keeps Jira Cloud users, groups and JSM customers in line with identity providers (miniOrange, SCIM 2.0)",
			"org.opencontainers.image.version":     version,
			"org.opencontainers.image.revision":    revision,
			"org.opencontainers.image.source":      source,
			"org.opencontainers.image.licenses":    "Apache-2.0",
			"org.opencontainers.image.vendor":      "The idsync Authors",
		},
	}
}

// Passwd and Group are the image's /etc/passwd and /etc/group: root (owner of every file but
// the state folder) and the user idsync runs as. Neither has a login shell.
var (
	Passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		fmt.Sprintf("%s:x:%d:%d:idsync:%s:/sbin/nologin\n", UserName, UID, UID, StateDir)
	Group = "root:x:0:\n" + fmt.Sprintf("%s:x:%d:\n", UserName, UID)
)

type fsEntry struct {
	name     string // without a leading slash; folders end in "/"
	mode     int64
	uid, gid int
	data     []byte
}

// rootFS is the layer's tar: folders first in path order, every entry with mtime t.
func rootFS(bin, ca []byte, t time.Time) ([]byte, error) {
	entries := []fsEntry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(Group)},
		{name: "etc/idsync/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte(Passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(CACertsPath, "/"), mode: 0o644, data: ca},
		{name: "tmp/", mode: 0o1777},
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
		{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: bin},
		{name: "var/", mode: 0o755},
		{name: "var/lib/", mode: 0o755},
		{name: strings.TrimPrefix(StateDir, "/") + "/", mode: 0o700, uid: UID, gid: UID},
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: t,
			Format: tar.FormatPAX,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CheckStaticLinux reads an executable's ELF header and returns its Go architecture (amd64,
// arm64). It fails for anything but a statically linked Linux executable: a binary with a
// program interpreter (PT_INTERP) needs a libc the image does not have.
func CheckStaticLinux(r io.ReaderAt) (arch string, err error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return "", fmt.Errorf("not an ELF executable (build it with GOOS=linux): %w", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("ELF type %v is not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("dynamically linked (it has a program interpreter): build it with CGO_ENABLED=0")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	default:
		return "", fmt.Errorf("unsupported machine %v", f.Machine)
	}
}

// Tag is the reference the image is saved under: "idsync:" plus the version, with characters
// a tag may not hold replaced by "-" (a tag is [A-Za-z0-9_.-]{1,128}, not starting with . or -).
func Tag(version string) (name.Tag, error) {
	t := badTagChars.ReplaceAllString(version, "-")
	t = strings.TrimLeft(t, ".-")
	if len(t) > 128 {
		t = t[:128]
	}
	if t == "" {
		t = "dev"
	}
	return name.NewTag("idsync:" + t)
}

var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// WriteImage saves img as a docker-compatible image tarball (manifest.json, the config and the
// gzipped layer), which `docker load` and `podman load` read, tagged tag. It writes through a
// temporary file in the same folder, so path is never left half written.
func WriteImage(path string, tag name.Tag, img v1.Image) error {
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the image: %w", err)
	}
	return os.Rename(tmp, path)
}
