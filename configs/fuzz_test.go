package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load and Validate: they must never panic, and every error
// must be a *Problems whose problems carry a field path, or are file-level (syntax with its
// line where YAML gives one, empty file, unreadable file).
//
//	go test ./configs -run '^$' -fuzz FuzzLoad -fuzztime 30s
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	seeds = append(seeds, "idsync.example.yaml", "demo.yaml")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("schedule: CRON_TZ=UTC\n"))
	f.Add([]byte("a: &a [*a, *a]\nsources: [{name: x, type: scim, push: {token: ${HOME}}}]\n"))
	f.Add([]byte("? [a, b]\n: c\n1: 2\nnull: ~\n"))
	f.Add([]byte("listen: x\nlog: \xff\x01\n"))

	// Secret files named by seeds resolve against testdata/, like the fixtures.
	base := filepath.Join("testdata", "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, ps := loadBytes(data, base, nil)
		if cfg == nil && ps.Err() == nil {
			t.Fatal("no config and no problem")
		}
		if cfg != nil {
			if err := cfg.Validate(); err != nil {
				var vps *Problems
				if !errors.As(err, &vps) {
					t.Fatalf("Validate error %T: %v", err, err)
				}
				for _, p := range vps.List {
					if p.Path == "" {
						t.Fatalf("validation problem without a path: %q", p.Error())
					}
				}
			}
			_ = cfg.Redacted()
			_ = cfg.Warnings()
		}
		for _, p := range ps.List {
			if p.Path != "" {
				continue
			}
			switch {
			case errors.Is(p, ErrSyntax):
				if !strings.Contains(p.Msg, "line ") {
					t.Fatalf("syntax error without a line: %q", p.Msg)
				}
			case errors.Is(p, ErrEmpty), errors.Is(p, ErrWrongType) && strings.Contains(p.Msg, "top level"):
			default:
				t.Fatalf("file-level problem of an unexpected kind: %q (%v)", p.Error(), p.Err)
			}
		}
	})
}
