package scim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/reconcile"
)

// idpFixture is a recorded provisioning sequence of one IdP (testdata/*.json): requests with
// the status each must get, values captured from answers (${name} in later paths and bodies),
// and the directory the source must describe at the end.
type idpFixture struct {
	Description string `json:"description"`
	Steps       []struct {
		Name    string            `json:"name"`
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Body    json.RawMessage   `json:"body"`
		Status  int               `json:"status"`
		Capture map[string]string `json:"capture"`
		Expect  map[string]any    `json:"expect"`
	} `json:"steps"`
	Final struct {
		Users []struct {
			UserName    string            `json:"userName"`
			Active      bool              `json:"active"`
			Email       string            `json:"email"`
			GivenName   string            `json:"givenName"`
			FamilyName  string            `json:"familyName"`
			DisplayName string            `json:"displayName"`
			Groups      []string          `json:"groups"`
			Attributes  map[string]string `json:"attributes"`
		} `json:"users"`
		Groups []string `json:"groups"`
	} `json:"final"`
}

func TestIdPFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var fx idpFixture
			if err := json.Unmarshal(raw, &fx); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			f := newFixture(t)
			vars := map[string]string{}
			subst := func(s string) string {
				for k, v := range vars {
					s = strings.ReplaceAll(s, "${"+k+"}", v)
				}
				return s
			}
			for i, st := range fx.Steps {
				body := ""
				if len(st.Body) > 0 {
					body = subst(string(st.Body))
				}
				r := f.corp(st.Method, strings.TrimPrefix(subst(st.Path), "/"), body)
				if r.Code != st.Status {
					t.Fatalf("step %d (%s): status %d, want %d: %s", i, st.Name, r.Code, st.Status, r.Raw)
				}
				for k, path := range st.Capture {
					v, _ := dig(r.Body, path).(string)
					if v == "" {
						t.Fatalf("step %d (%s): nothing at %s to capture: %s", i, st.Name, path, r.Raw)
					}
					vars[k] = v
				}
				for path, want := range st.Expect {
					got := dig(r.Body, path)
					if s, ok := want.(string); ok {
						want = subst(s)
					}
					if !sameJSON(got, want) {
						t.Fatalf("step %d (%s): %s = %v, want %v: %s", i, st.Name, path, got, want, r.Raw)
					}
				}
			}
			// The end state, read through a fresh handler from what the store holds.
			h2, err := NewHandler(HandlerOptions{Store: f.store, Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Logger: zerolog.Nop(), Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer h2.Close()
			dir, err := NewSource("corp", h2).Snapshot(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]reconcile.User{}
			for _, u := range dir.Users {
				byName[u.UserName] = u
			}
			if len(dir.Users) != len(fx.Final.Users) {
				t.Fatalf("%d users in the directory, want %d: %+v", len(dir.Users), len(fx.Final.Users), dir.Users)
			}
			for _, want := range fx.Final.Users {
				u, ok := byName[want.UserName]
				if !ok {
					t.Fatalf("user %s missing from %+v", want.UserName, dir.Users)
				}
				for k, v := range want.Attributes {
					want.Attributes[k] = subst(v)
				}
				got := struct {
					Active                                    bool
					Email, GivenName, FamilyName, DisplayName string
					Groups                                    []string
					Attributes                                map[string]string
				}{u.Active, u.Email, u.GivenName, u.FamilyName, u.DisplayName, u.Groups, u.Attributes}
				exp := struct {
					Active                                    bool
					Email, GivenName, FamilyName, DisplayName string
					Groups                                    []string
					Attributes                                map[string]string
				}{want.Active, want.Email, want.GivenName, want.FamilyName, want.DisplayName, want.Groups, want.Attributes}
				if !reflect.DeepEqual(got, exp) {
					t.Fatalf("user %s =\n%+v\nwant\n%+v", want.UserName, got, exp)
				}
			}
			var groups []string
			for _, g := range dir.Groups {
				groups = append(groups, g.Name)
			}
			sort.Strings(groups)
			if !reflect.DeepEqual(groups, fx.Final.Groups) {
				t.Fatalf("groups = %v, want %v", groups, fx.Final.Groups)
			}
			// Nothing secret was kept.
			for _, r := range f.store.data {
				if strings.Contains(strings.ToLower(string(r.Data)), "password") {
					t.Fatalf("a password reached the store: %s", r.Data)
				}
			}
		})
	}
}

// dig follows a dotted path through decoded JSON; numeric parts index lists. Keys may
// contain dots only as a URN prefix ending in ":User" or ":Group".
func dig(v any, path string) any {
	for path != "" {
		var part string
		if i := strings.Index(path, ":User."); strings.HasPrefix(path, "urn:") && i >= 0 {
			part, path = path[:i+len(":User")], path[i+len(":User."):]
		} else if strings.HasPrefix(path, "urn:") && !strings.Contains(path[strings.LastIndex(path, ":"):], ".") {
			part, path = path, ""
		} else {
			var rest string
			var ok bool
			part, rest, ok = strings.Cut(path, ".")
			if !ok {
				rest = ""
			}
			path = rest
		}
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) == string(jb) {
		return true
	}
	// json.Number vs float64 from the fixture.
	var na, nb any
	_ = json.Unmarshal(ja, &na)
	_ = json.Unmarshal(jb, &nb)
	return reflect.DeepEqual(na, nb)
}
