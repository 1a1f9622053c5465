package scimpull

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newSource(t *testing.T, url string, edit func(*configs.SCIMPullConfig, *Options)) *Source {
	t.Helper()
	cfg := configs.SCIMPullConfig{BaseURL: url, Token: testToken, PageSize: 7}
	opts := Options{Metrics: metrics.New(), RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond, MaxRetryAfter: time.Millisecond}
	if edit != nil {
		edit(&cfg, &opts)
	}
	s, err := New("idp", cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSnapshot(t *testing.T) {
	f, url := newFakeSCIM(t, 40, 5)
	f.maxCount = 5 // smaller than the 7 asked: legal
	m := metrics.New()
	dir, err := newSource(t, url, func(_ *configs.SCIMPullConfig, o *Options) { o.Metrics = m }).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if dir.Source != "idp" || len(dir.Users) != 40 || len(dir.Groups) != 5 {
		t.Fatalf("read %d users, %d groups", len(dir.Users), len(dir.Groups))
	}
	for i, u := range dir.Users {
		if u.Key != f.users[i]["id"] || u.UserName != f.users[i]["userName"] {
			t.Fatalf("user %d = %+v: order or ids lost", i, u)
		}
		if u.Active != (i%10 != 9) {
			t.Errorf("user %d active = %v", i, u.Active)
		}
	}
	u := dir.Users[3]
	if u.Email != "User3@Example.com" || u.GivenName != "Given3" || u.FamilyName != "Family" || u.DisplayName != "User 3" {
		t.Errorf("user 3 = %+v (email case must be kept)", u)
	}
	if !slices.Equal(u.Groups, []string{"Group 03", "Group 04"}) {
		t.Errorf("user 3 groups %v", u.Groups)
	}
	if dir.Groups[2] != (reconcile.Group{Key: "g-02", Name: "Group 02"}) {
		t.Errorf("group 2 = %+v", dir.Groups[2])
	}
	if got := f.callCount("/Users"); got != 8 {
		t.Errorf("users listing took %d pages, want 8 (40 at a cap of 5)", got)
	}
	if got := metrics.Value(m.APIRequests.WithLabelValues("scimpull", "/Users", "GET", "200")); got != 8 {
		t.Errorf("metric counted %v /Users requests, want 8", got)
	}
}

func TestConversion(t *testing.T) {
	f, url := newFakeSCIM(t, 0, 2)
	f.users = []map[string]any{
		{"id": "a", "userName": "ann", "active": "True",
			"emails": []any{
				map[string]any{"value": "home@x.org", "type": "home"},
				map[string]any{"value": "Ann@Work.example", "type": "work"},
			},
			"name":         map[string]any{"formatted": "Dr. Ann Lee", "givenName": "Ann", "familyName": "Lee", "middleName": "Q"},
			"phoneNumbers": []any{map[string]any{"value": "+1 555", "type": "mobile"}},
			"title":        "CTO",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{
				"employeeNumber": "42", "department": "R&D", "manager": map[string]any{"value": "b", "displayName": "Bob"},
			},
		},
		{"id": "b", "userName": "bob", "active": "False",
			"emails": []any{
				map[string]any{"value": "bob@work.example", "type": "work"},
				map[string]any{"value": "Bob@Primary.example", "type": "other", "primary": "true"},
			},
			"name": map[string]any{"givenName": "Bob", "familyName": "Ng"}},
		{"id": 17, "userName": "carl", "active": "true", "emails": []any{map[string]any{"value": "c@x.org"}}},
		{"id": "d", "userName": "dee", "active": false},
	}
	f.groups = []map[string]any{
		{"id": "g1", "displayName": "Eng", "members": []any{
			map[string]any{"value": "a"}, map[string]any{"value": "g2", "type": "Group"}, map[string]any{"value": "g2"},
		}},
		{"id": "g2", "displayName": "Ops", "members": []any{map[string]any{"value": "b", "type": "User"}}},
	}
	dir, err := newSource(t, url, nil).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	by := map[string]reconcile.User{}
	for _, u := range dir.Users {
		by[u.UserName] = u
	}
	ann := by["ann"]
	if !ann.Active || ann.Email != "Ann@Work.example" || ann.DisplayName != "Dr. Ann Lee" || ann.GivenName != "Ann" {
		t.Errorf("ann = %+v", ann)
	}
	for k, v := range map[string]string{"employeeNumber": "42", "department": "R&D", "manager": "b", "phone": "+1 555", "title": "CTO", "middleName": "Q"} {
		if ann.Attributes[k] != v {
			t.Errorf("ann attribute %s = %q, want %q", k, ann.Attributes[k], v)
		}
	}
	if !slices.Equal(ann.Groups, []string{"Eng"}) {
		t.Errorf("ann groups %v (nested group members must not count)", ann.Groups)
	}
	bob := by["bob"]
	if bob.Active || bob.Email != "Bob@Primary.example" || bob.DisplayName != "Bob Ng" || !slices.Equal(bob.Groups, []string{"Ops"}) {
		t.Errorf("bob = %+v", bob)
	}
	carl := by["carl"]
	if carl.Key != "17" || !carl.Active || carl.Email != "c@x.org" || carl.DisplayName != "carl" || carl.Groups != nil {
		t.Errorf("carl = %+v (numeric id, \"true\" = active, first email)", carl)
	}
	if by["dee"].Active || by["dee"].Email != "" {
		t.Errorf("dee = %+v", by["dee"])
	}
}

func TestSnapshotIncomplete(t *testing.T) {
	cases := []struct {
		name  string
		setup func(f *fakeSCIM)
		want  string
	}{
		{"users page keeps failing", func(f *fakeSCIM) {
			f.before = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == "/Users" && r.URL.Query().Get("startIndex") == "15" {
					scimErr(w, http.StatusInternalServerError, "", "backend down")
					return true
				}
				return false
			}
		}, "backend down"},
		{"groups page SCIM error", func(f *fakeSCIM) {
			f.before = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == "/Groups" {
					scimErr(w, http.StatusBadRequest, "tooMany", "narrow the query")
					return true
				}
				return false
			}
		}, "(tooMany): narrow the query"},
		{"no totalResults", func(f *fakeSCIM) {
			f.edit = func(path string, _ int, p map[string]any) { delete(p, "totalResults") }
		}, "no totalResults"},
		{"totalResults changes mid-read", func(f *fakeSCIM) {
			f.edit = func(path string, start int, p map[string]any) {
				if path == "/Users" && start > 1 {
					p["totalResults"] = 31
				}
			}
		}, "totalResults changed from 30 to 31"},
		{"short read", func(f *fakeSCIM) {
			f.edit = func(path string, _ int, p map[string]any) {
				if path == "/Users" {
					p["totalResults"] = 32
				}
			}
		}, "listing ended at 30 of totalResults 32"},
		{"server ignores startIndex", func(f *fakeSCIM) {
			f.before = func(w http.ResponseWriter, r *http.Request) bool {
				q := r.URL.Query()
				q.Set("startIndex", "1")
				r.URL.RawQuery = q.Encode()
				return false
			}
		}, "listed twice"},
		{"member the Users listing lacks", func(f *fakeSCIM) {
			ms := f.groups[1]["members"].([]any)
			f.groups[1]["members"] = append(ms, map[string]any{"value": "u-9999"})
		}, `"u-9999" in "Group 01"`},
		{"unknown active value", func(f *fakeSCIM) { f.users[4]["active"] = "maybe" }, "want a boolean"},
		{"two groups with one name", func(f *fakeSCIM) { f.groups[2]["displayName"] = "Group 01" }, "two groups are named"},
		{"resource without id", func(f *fakeSCIM) { delete(f.users[8], "id") }, "has no id"},
		{"user without userName", func(f *fakeSCIM) { delete(f.users[8], "userName") }, "has no userName"},
		{"bad token", func(f *fakeSCIM) { f.setTokens("other") }, "check the source's bearer token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, url := newFakeSCIM(t, 30, 4)
			tc.setup(f)
			var logs strings.Builder
			dir, err := newSource(t, url, func(_ *configs.SCIMPullConfig, o *Options) {
				o.Logger = zerolog.New(zerolog.SyncWriter(&logs)).Level(zerolog.DebugLevel)
			}).Snapshot(context.Background())
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Snapshot error = %v, want ErrIncomplete", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(logs.String(), testToken) {
				t.Error("the token leaked into an error or a log")
			}
			if dir.Users != nil || dir.Groups != nil {
				t.Error("a failed read returned a directory")
			}
		})
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	f, url := newFakeSCIM(t, 30, 4)
	var mu sync.Mutex
	failures := map[string]int{}
	f.before = func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		key := r.URL.Path + "?" + r.URL.Query().Get("startIndex")
		failures[key]++
		switch {
		case key == "/Users?8" && failures[key] <= 2:
			w.Header().Set("Retry-After", "1")
			scimErr(w, http.StatusTooManyRequests, "", "slow down")
			return true
		case key == "/Groups?1" && failures[key] == 1:
			scimErr(w, http.StatusServiceUnavailable, "", "try later")
			return true
		case key == "/Users?15" && failures[key] == 1:
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
			return true
		}
		return false
	}
	m := metrics.New()
	dir, err := newSource(t, url, func(_ *configs.SCIMPullConfig, o *Options) { o.Metrics = m }).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if len(dir.Users) != 30 {
		t.Errorf("%d users", len(dir.Users))
	}
	if got := metrics.Value(m.Throttled.WithLabelValues("scimpull")); got != 3 {
		t.Errorf("throttled metric %v, want 3 (two 429s, one 503)", got)
	}
}

func TestClientRateLimit(t *testing.T) {
	_, url := newFakeSCIM(t, 30, 4)
	m := metrics.New()
	src := newSource(t, url, func(c *configs.SCIMPullConfig, o *Options) {
		c.RateLimit = configs.RateLimit{RequestsPerSecond: 500, Burst: 1}
		o.Metrics = m
	})
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := metrics.Value(m.RateLimitWait.WithLabelValues("scimpull")); got <= 0 {
		t.Error("no rate-limit wait recorded")
	}
}

func TestUser(t *testing.T) {
	f, url := newFakeSCIM(t, 30, 4)
	src := newSource(t, url, nil)

	u, err := src.User(context.Background(), "USER3@example.com")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if u.Key != "u-0003" || u.Email != "User3@Example.com" || !slices.Equal(u.Groups, []string{"Group 00", "Group 03"}) {
		t.Errorf("User = %+v", u)
	}
	if u, err := src.User(context.Background(), "user9@example.com"); err != nil || u.Active {
		t.Errorf("disabled user: %+v, %v", u, err)
	}
	if _, err := src.User(context.Background(), "nobody@example.com"); !errors.Is(err, reconcile.ErrUserNotFound) {
		t.Errorf("unknown user: %v, want ErrUserNotFound", err)
	}

	t.Run("quotes in userName are escaped", func(t *testing.T) {
		f.mu.Lock()
		f.users = append(f.users, map[string]any{"id": "q", "userName": `o"hara\x`, "active": true, "groups": []any{}})
		f.mu.Unlock()
		u, err := src.User(context.Background(), `o"hara\x`)
		if err != nil || u.Key != "q" || u.Groups != nil {
			t.Errorf("User(quoted) = %+v, %v", u, err)
		}
	})
	t.Run("groups by members filter when the user has no groups attribute", func(t *testing.T) {
		f.mu.Lock()
		delete(f.users[5], "groups")
		f.mu.Unlock()
		u, err := src.User(context.Background(), "user5@example.com")
		if err != nil || !slices.Equal(u.Groups, []string{"Group 01", "Group 02"}) {
			t.Errorf("User = %+v, %v", u, err)
		}
		f.noMembersFilter = true
		_, err = src.User(context.Background(), "user5@example.com")
		var se *Error
		if err == nil || errors.Is(err, reconcile.ErrUserNotFound) || !errors.As(err, &se) || se.SCIMType != "invalidFilter" {
			t.Errorf("without a members filter: %v, want an invalidFilter error", err)
		}
	})
	t.Run("group refs without display are resolved", func(t *testing.T) {
		f.mu.Lock()
		f.users[6]["groups"] = []any{map[string]any{"value": "g-03"}}
		f.mu.Unlock()
		u, err := src.User(context.Background(), "user6@example.com")
		if err != nil || !slices.Equal(u.Groups, []string{"Group 03"}) {
			t.Errorf("User = %+v, %v", u, err)
		}
	})
	t.Run("a server that ignores the filter is not not-found", func(t *testing.T) {
		f.before = func(w http.ResponseWriter, r *http.Request) bool {
			q := r.URL.Query()
			q.Del("filter")
			r.URL.RawQuery = q.Encode()
			return false
		}
		defer func() { f.before = nil }()
		_, err := src.User(context.Background(), "user25@example.com")
		if err == nil || errors.Is(err, reconcile.ErrUserNotFound) || !strings.Contains(err.Error(), "may not support filtering") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("server error is not not-found", func(t *testing.T) {
		f.before = func(w http.ResponseWriter, r *http.Request) bool {
			scimErr(w, http.StatusBadRequest, "invalidFilter", "no filters here")
			return true
		}
		defer func() { f.before = nil }()
		if _, err := src.User(context.Background(), "user1@example.com"); err == nil || errors.Is(err, reconcile.ErrUserNotFound) {
			t.Errorf("error = %v", err)
		}
	})
}

func TestFilterValue(t *testing.T) {
	for in, want := range map[string]string{
		`plain@x.org`: `"plain@x.org"`,
		`a"b`:         `"a\"b"`,
		`a\b`:         `"a\\b"`,
		`<&>`:         `"<&>"`,
	} {
		if got := filterValue(in); got != want {
			t.Errorf("filterValue(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := New("idp", configs.SCIMPullConfig{BaseURL: "idp.example.com", Token: "x"}, Options{}); err == nil {
		t.Error("a URL without scheme was accepted")
	}
	if _, err := New("idp", configs.SCIMPullConfig{BaseURL: "https://idp.example.com/scim/v2"}, Options{}); err == nil {
		t.Error("an empty token was accepted")
	}
	s, err := New("idp", configs.SCIMPullConfig{BaseURL: "https://idp.example.com/scim/v2", Token: "x"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if s.pageSize != DefaultPageSize || s.Name() != "idp" {
		t.Errorf("defaults: page %d name %q", s.pageSize, s.Name())
	}
}

func TestEndpointLabel(t *testing.T) {
	for in, want := range map[string]string{
		"/scim/v2/Users": "/Users", "/scim/v2/Groups": "/Groups", "/scim/v2/Groups/abc": "/Groups/{id}", "/other": "/other",
	} {
		if got := endpointLabel(in); got != want {
			t.Errorf("endpointLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
