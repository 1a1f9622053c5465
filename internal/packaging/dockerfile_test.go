package packaging

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerInstructions reads a Dockerfile into (instruction, arguments) pairs, joining
// continued lines and dropping comments.
func dockerInstructions(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		ins, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(ins), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDockerfileMatchesImage holds the Dockerfile (not built in CI: no container engine) to
// the layout of the image `make image` builds: user, port, volume, config path, entrypoint,
// labels, and a static, trimmed build on the Go version go.mod names.
func TestDockerfileMatchesImage(t *testing.T) {
	ins := dockerInstructions(t, filepath.Join(repoRoot, "Dockerfile"))
	want := ImageConfig("v", "r", DefaultSource)
	var froms, copies, runs []string
	last := map[string]string{}
	labels := map[string]bool{}
	for _, in := range ins {
		switch in[0] {
		case "FROM":
			froms = append(froms, in[1])
		case "COPY":
			copies = append(copies, in[1])
		case "RUN":
			runs = append(runs, in[1])
		case "LABEL":
			for _, m := range regexp.MustCompile(`([a-z.]+)=`).FindAllStringSubmatch(in[1], -1) {
				labels[m[1]] = true
			}
		}
		last[in[0]] = in[1]
	}

	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if goVer == nil {
		t.Fatal("no go directive in go.mod")
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:"+string(goVer[1])+" ") ||
		froms[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("stages %q: want golang:%s as the builder, then gcr.io/distroless/static-debian12:nonroot", froms, goVer[1])
	}
	build := strings.Join(runs, "\n")
	for _, s := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/idsync",
		"github.com/idsync/idsync/internal/version.Version=", "github.com/idsync/idsync/internal/version.Revision="} {
		if !strings.Contains(build, s) {
			t.Errorf("the build step lacks %s", s)
		}
	}
	if !slices.ContainsFunc(copies, func(c string) bool { return strings.HasSuffix(c, " "+BinaryPath) }) {
		t.Errorf("no COPY to %s in %q", BinaryPath, copies)
	}
	if !slices.ContainsFunc(copies, func(c string) bool {
		return strings.Contains(c, "--chown="+strconv.Itoa(UID)+":"+strconv.Itoa(UID)) && strings.HasSuffix(c, " "+StateDir)
	}) {
		t.Errorf("the state folder %s is not created for user %d: %q", StateDir, UID, copies)
	}
	if last["USER"] != want.User {
		t.Errorf("USER %q, the image builder's %q", last["USER"], want.User)
	}
	if last["VOLUME"] != StateDir {
		t.Errorf("VOLUME %q, want %s", last["VOLUME"], StateDir)
	}
	if last["WORKDIR"] != want.WorkingDir {
		t.Errorf("WORKDIR %q, want %s", last["WORKDIR"], want.WorkingDir)
	}
	for p := range want.ExposedPorts {
		if last["EXPOSE"] != p {
			t.Errorf("EXPOSE %q, want %s", last["EXPOSE"], p)
		}
	}
	if env := last["ENV"]; !slices.Contains(want.Env, env) || !strings.HasPrefix(env, "IDSYNC_CONFIG=") {
		t.Errorf("ENV %q, want IDSYNC_CONFIG=%s as the image builder sets it", env, ConfigPath)
	}
	for ins, wantArgs := range map[string][]string{"ENTRYPOINT": want.Entrypoint, "CMD": want.Cmd} {
		var got []string
		if err := json.Unmarshal([]byte(last[ins]), &got); err != nil || !slices.Equal(got, wantArgs) {
			t.Errorf("%s %s, want the exec form %q (%v)", ins, last[ins], wantArgs, err)
		}
	}
	for k := range want.Labels {
		if !labels[k] {
			t.Errorf("the Dockerfile lacks label %s", k)
		}
	}

	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(ignore), "\n") {
		l = strings.TrimSpace(l)
		if l == "go.mod" || l == "go.sum" || l == "cmd" || l == "*.go" || l == "**/*.go" {
			t.Errorf(".dockerignore drops %s, which the build needs", l)
		}
	}
	if !strings.Contains(string(ignore), "\nbin\n") && !strings.HasPrefix(string(ignore), "bin\n") {
		t.Error(".dockerignore does not keep bin/ (build outputs, image tarballs) out of the context")
	}
}

// TestSystemdUnitMatchesLayout: the unit runs the binary where the archives and the image put
// it, as the user the sysusers.d entry creates, with the state folder of the image.
func TestSystemdUnitMatchesLayout(t *testing.T) {
	dir := filepath.Join(repoRoot, "configs", "systemd")
	unit, err := os.ReadFile(filepath.Join(dir, "idsync.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, l := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			keys[k] = v
		}
	}
	if f := strings.Fields(keys["ExecStart"]); len(f) < 4 || f[0] != BinaryPath || f[1] != "run" || f[2] != "-c" || f[3] != ConfigPath {
		t.Errorf("ExecStart=%s, want %s run -c %s", keys["ExecStart"], BinaryPath, ConfigPath)
	}
	if "/var/lib/"+keys["StateDirectory"] != StateDir || keys["StateDirectoryMode"] != "0700" {
		t.Errorf("StateDirectory=%s (mode %s), want %s with 0700", keys["StateDirectory"], keys["StateDirectoryMode"], StateDir)
	}
	sysusers, err := os.ReadFile(filepath.Join(dir, "idsync.sysusers"))
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, l := range strings.Split(string(sysusers), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "u" {
			users = append(users, f[1])
		}
	}
	if !slices.Contains(users, keys["User"]) || keys["Group"] != keys["User"] {
		t.Errorf("the unit runs as %s:%s, idsync.sysusers creates %v", keys["User"], keys["Group"], users)
	}
}
