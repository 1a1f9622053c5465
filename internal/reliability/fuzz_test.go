package reliability

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fuzzTarget matches the declarations internal/fuzz.sh runs.
var fuzzTarget = regexp.MustCompile(`^func (Fuzz[A-Za-z0-9_]+)\(`)

// TestReliabilityFuzzTargets checks that `make fuzz` (internal/fuzz.sh, run by CI for a fixed
// time per target) has fuzz targets for every parser of outside input the issue names: the
// config loader, SCIM filters and SCIM PATCH bodies.
func TestReliabilityFuzzTargets(t *testing.T) {
	timed(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "fuzz.sh")); err != nil {
		t.Fatalf("internal/fuzz.sh: %v", err)
	}
	var targets []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := fuzzTarget.FindStringSubmatch(sc.Text()); m != nil {
				targets = append(targets, rel+" "+m[1])
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(targets)
	for _, want := range []struct{ what, target string }{
		{"the config loader", "configs FuzzLoad"},
		{"SCIM filters", "sources/scim/filter FuzzFilter"},
		{"SCIM PATCH bodies", "sources/scim FuzzPatch"},
	} {
		if !slices.Contains(targets, want.target) {
			t.Errorf("no fuzz target for %s (want %q); targets: %v", want.what, want.target, targets)
		}
	}
	t.Logf("fuzz targets run by make fuzz: %v", targets)
	figures.update(func(r *report) { r.FuzzTargets = targets })
}
