package scimpull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/scim"
)

var (
	fullCtx        = reconcile.WithFullRead(context.Background(), true)
	incrementalCtx = reconcile.WithFullRead(context.Background(), false)
)

// clock is a settable clock shared by a listener and a source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// memStore keeps a listener's resources in memory.
type memStore struct {
	mu   sync.Mutex
	data map[string]scim.Resource
}

func (m *memStore) PutSCIM(r scim.Resource) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Data = append([]byte(nil), r.Data...)
	m.data[r.Source+"/"+r.Type+"/"+r.ID] = r
	return nil
}

func (m *memStore) DeleteSCIM(source, typ, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data, source+"/"+typ+"/"+id)
	return nil
}

func (m *memStore) SCIMResources(source, typ string) ([]scim.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []scim.Resource
	for _, r := range m.data {
		if r.Source == source && r.Type == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// listener is idsync's own SCIM listener on loopback, with one push source "hr", a clock,
// and a count of the requests it served.
type listener struct {
	t     *testing.T
	url   string // the source's SCIM base URL
	clock *clock
	mu    sync.Mutex
	reqs  []string // method path?query
}

const listenerToken = "listener-token-7c1d"

func newListener(t *testing.T) *listener {
	t.Helper()
	l := &listener{t: t, clock: &clock{now: time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)}}
	h, err := scim.NewHandler(scim.HandlerOptions{
		Store:   &memStore{data: map[string]scim.Resource{}},
		Sources: []scim.SourceOptions{{Name: "hr", Token: configs.Secret(listenerToken)}},
		Now:     l.clock.Now,
		Logger:  zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/scim/v2/hr")+"?"+r.URL.RawQuery)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); _ = h.Close() })
	l.url = srv.URL + "/scim/v2/hr"
	return l
}

// do sends a request to the listener and decodes the answer's id, if any.
func (l *listener) do(method, path, body string, want int) string {
	l.t.Helper()
	req, _ := http.NewRequest(method, l.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+listenerToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		l.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	var out struct{ ID string }
	_ = json.Unmarshal(b, &out)
	return out.ID
}

func (l *listener) user(name string, active bool) string {
	return l.do("POST", "/Users", fmt.Sprintf(`{"userName":%q,"displayName":%q,"emails":[{"value":%q,"primary":true}],"active":%v}`, name, name, name, active), http.StatusCreated)
}

// patch sends one PATCH operation; the listener answers a user PATCH with the user (200)
// and a group PATCH with 204.
func (l *listener) patch(path, op, attr, value string) {
	want := http.StatusNoContent
	if strings.HasPrefix(path, "/Users/") {
		want = http.StatusOK
	}
	l.do("PATCH", path, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":%q,"path":%q,"value":%s}]}`, op, attr, value), want)
}

// gets counts the GET requests since the last call whose path?query contains every part.
func (l *listener) gets(parts ...string) (n, all int) {
	l.mu.Lock()
	defer l.mu.Unlock()
outer:
	for _, r := range l.reqs {
		if !strings.HasPrefix(r, "GET ") {
			continue
		}
		all++
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue outer
			}
		}
		n++
	}
	l.reqs = nil
	return n, all
}

// sorted is a directory in a stable order, for comparisons.
func sorted(d reconcile.Directory) reconcile.Directory {
	d.Users = slices.Clone(d.Users)
	d.Groups = slices.Clone(d.Groups)
	slices.SortFunc(d.Users, func(a, b reconcile.User) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(d.Groups, func(a, b reconcile.Group) int { return strings.Compare(a.Key, b.Key) })
	return d
}

func sameDirectory(t *testing.T, what string, got, want reconcile.Directory) {
	t.Helper()
	got, want = sorted(got), sorted(want)
	if len(got.Users) != len(want.Users) || len(got.Groups) != len(want.Groups) {
		t.Fatalf("%s: %d users and %d groups, want %d and %d", what, len(got.Users), len(got.Groups), len(want.Users), len(want.Groups))
	}
	for i := range got.Users {
		g, w := got.Users[i], want.Users[i]
		if g.Key != w.Key || g.UserName != w.UserName || g.DisplayName != w.DisplayName || g.Active != w.Active || !slices.Equal(g.Groups, w.Groups) {
			t.Errorf("%s: user %s = %+v, want %+v", what, w.Key, g, w)
		}
	}
	if !slices.Equal(got.Groups, want.Groups) {
		t.Errorf("%s: groups %v, want %v", what, got.Groups, want.Groups)
	}
}

func userNamed(d reconcile.Directory, name string) (reconcile.User, bool) {
	for _, u := range d.Users {
		if u.UserName == name {
			return u, true
		}
	}
	return reconcile.User{}, false
}

// Against idsync's own listener: an incremental read asks for what changed and for ids, far
// fewer requests than a full read, and gives the directory a full read would.
func TestIncrementalReadOfListener(t *testing.T) {
	l := newListener(t)
	const n = 120
	ids := make([]string, n)
	for i := range ids {
		ids[i] = l.user(fmt.Sprintf("p%03d@example.com", i), true)
	}
	groups := make([]string, 4)
	for g := range groups {
		var ms []string
		for i := g; i < n; i += 4 {
			ms = append(ms, fmt.Sprintf(`{"value":%q}`, ids[i]))
		}
		groups[g] = l.do("POST", "/Groups", fmt.Sprintf(`{"displayName":"Team %d","members":[%s]}`, g, strings.Join(ms, ",")), http.StatusCreated)
	}
	src := newSource(t, l.url, func(c *configs.SCIMPullConfig, o *Options) {
		c.Token = listenerToken
		o.Now = l.clock.Now
	})
	l.clock.advance(10 * time.Minute)
	full, err := src.Snapshot(fullCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, all := l.gets(); all != 18+1 { // 120 users at 7 a page, and one page of groups
		t.Fatalf("the full read made %d requests, want 19", all)
	}
	if len(full.Users) != n {
		t.Fatalf("full read: %d users", len(full.Users))
	}

	// An hour later: one user renamed and disabled, one deleted (it leaves its group), one
	// created and added to a group, one moved between groups.
	l.clock.advance(time.Hour)
	l.patch("/Users/"+ids[3], "replace", "displayName", `"Three Renamed"`)
	l.patch("/Users/"+ids[3], "replace", "active", `false`)
	l.do("DELETE", "/Users/"+ids[7], "", http.StatusNoContent)
	hired := l.user("hired@example.com", true)
	l.patch("/Groups/"+groups[2], "add", "members", fmt.Sprintf(`[{"value":%q}]`, hired))
	l.patch("/Groups/"+groups[1], "add", "members", fmt.Sprintf(`[{"value":%q}]`, ids[8])) // 8 is in Team 0
	l.do("PATCH", "/Groups/"+groups[0], fmt.Sprintf(`{"Operations":[{"op":"remove","path":"members[value eq \"%s\"]"}]}`, ids[8]), http.StatusNoContent)
	l.gets()

	inc, err := src.Snapshot(incrementalCtx)
	if err != nil {
		t.Fatalf("incremental read: %v", err)
	}
	filtered, all := l.gets(`filter=meta.lastModified+gt+%222026-05-04T08%3A05%3A00Z%22`)
	if filtered != 2 || all != 5 {
		t.Errorf("the incremental read made %d filtered and %d requests in all, want 2 and 5 (the config, a filtered page and an id page of each type)", filtered, all)
	}
	if u, ok := userNamed(inc, "p003@example.com"); !ok || u.Active || u.DisplayName != "Three Renamed" {
		t.Errorf("the changed user reads %+v", u)
	}
	if _, ok := userNamed(inc, "p007@example.com"); ok {
		t.Error("the deleted user is still in the directory")
	}
	if u, ok := userNamed(inc, "hired@example.com"); !ok || !slices.Equal(u.Groups, []string{"Team 2"}) {
		t.Errorf("the new user reads %+v", u)
	}
	if u, _ := userNamed(inc, "p008@example.com"); !slices.Equal(u.Groups, []string{"Team 1"}) {
		t.Errorf("the moved user is in %v, want only Team 1", u.Groups)
	}
	// The merged read is what a full read of the listener now gives.
	fresh := newSource(t, l.url, func(c *configs.SCIMPullConfig, o *Options) { c.Token = listenerToken })
	want, err := fresh.Snapshot(fullCtx)
	if err != nil {
		t.Fatal(err)
	}
	sameDirectory(t, "incremental read", inc, want)

	// Nothing changed since: the next incremental read gets nothing new and the same answer.
	l.clock.advance(time.Hour)
	l.gets()
	again, err := src.Snapshot(incrementalCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, all := l.gets(); all != 4 {
		t.Errorf("a quiet incremental read made %d requests, want 4 (the config is read once)", all)
	}
	sameDirectory(t, "quiet incremental read", again, want)

	// A full read is full, whatever the source holds.
	if _, err := src.Snapshot(fullCtx); err != nil {
		t.Fatal(err)
	}
	if n, all := l.gets("filter="); n != 0 || all != 19 {
		t.Errorf("a full read made %d filtered requests of %d, want 0 of 19", n, all)
	}
	// So is the first read of a source, and any read of a context that says nothing.
	first := newSource(t, l.url, func(c *configs.SCIMPullConfig, o *Options) { c.Token = listenerToken })
	if _, err := first.Snapshot(incrementalCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, all := l.gets("filter="); n != 0 || all != 38 {
		t.Errorf("a first read and a read without a mode made %d filtered requests of %d, want 0 of 38", n, all)
	}
}

// incrementalFake is a fake server that supports incremental reads, read once in full at
// t0; its resources carry meta.lastModified t0 - 1h.
func incrementalFake(t *testing.T, users, groups int) (*fakeSCIM, *Source, *clock) {
	t.Helper()
	f, url := newFakeSCIM(t, users, groups)
	f.lastModifiedFilter = true
	f.spc = map[string]any{"filter": map[string]any{"supported": true, "maxResults": 200}}
	c := &clock{now: time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)}
	for _, list := range [][]map[string]any{f.users, f.groups} {
		for _, r := range list {
			r["meta"] = map[string]any{"lastModified": c.now.Add(-time.Hour).Format(time.RFC3339)}
		}
	}
	src := newSource(t, url, func(_ *configs.SCIMPullConfig, o *Options) { o.Now = c.Now })
	if _, err := src.Snapshot(fullCtx); err != nil {
		t.Fatal(err)
	}
	c.advance(30 * time.Minute)
	f.resetRequests()
	return f, src, c
}

// modified stamps a fake's resource as changed at the clock's time.
func modified(r map[string]any, c *clock) {
	r["meta"] = map[string]any{"lastModified": c.Now().Format(time.RFC3339)}
}

func TestIncrementalDeletedUserIsGone(t *testing.T) {
	f, src, _ := incrementalFake(t, 30, 4)
	// User 5 is deleted; the server does not touch the groups that listed it.
	f.mu.Lock()
	f.users = slices.Delete(f.users, 5, 6)
	f.mu.Unlock()
	dir, err := src.Snapshot(incrementalCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := userNamed(dir, "user5@example.com"); ok || len(dir.Users) != 29 {
		t.Errorf("after the delete: %d users, user5 present = %v", len(dir.Users), ok)
	}
	if got := f.requestsLike("attributes=id"); got != 2 {
		t.Errorf("%d id listings, want 2", got)
	}
	if got := f.requestsLike("/Users?", "count=200"); got != 1 {
		t.Errorf("the user ids were not listed in one page of maxResults: %v", f.requests)
	}
}

// A group read later than a user decides whether the user is in it; a user read later adds
// the groups its attribute names.
func TestIncrementalMembershipFreshness(t *testing.T) {
	f, src, c := incrementalFake(t, 30, 4)
	f.mu.Lock()
	// User 3 is in Group 03 and Group 00. It leaves Group 03: the server updates the group
	// (and its lastModified) but not the user, whose groups attribute was read earlier.
	g3 := f.groups[3]
	var kept []any
	for _, m := range g3["members"].([]any) {
		if m.(map[string]any)["value"] != "u-0003" {
			kept = append(kept, m)
		}
	}
	g3["members"] = kept
	modified(g3, c)
	// User 10 joins Group 01 through its groups attribute only.
	u10 := f.users[10]
	u10["groups"] = append(u10["groups"].([]any), map[string]any{"value": "g-01", "display": "Group 01"})
	modified(u10, c)
	f.mu.Unlock()
	dir, err := src.Snapshot(incrementalCtx)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := userNamed(dir, "user3@example.com"); !slices.Equal(u.Groups, []string{"Group 00"}) {
		t.Errorf("user 3 groups %v, want [Group 00]: the group read later decides", u.Groups)
	}
	if u, _ := userNamed(dir, "user10@example.com"); !slices.Equal(u.Groups, []string{"Group 01", "Group 02", "Group 03"}) {
		t.Errorf("user 10 groups %v", u.Groups)
	}
	if got := f.requestsLike("filter=meta.lastModified"); got != 2 {
		t.Errorf("%d filtered requests, want 2", got)
	}
}

// A server that rejects the filter makes the source read in full, at once and for the rest
// of the process, with one warning.
func TestIncrementalFilterRejected(t *testing.T) {
	f, url := newFakeSCIM(t, 30, 4)
	f.spc = map[string]any{"filter": map[string]any{"supported": true}} // but it does not take lastModified
	var logs strings.Builder
	src := newSource(t, url, func(_ *configs.SCIMPullConfig, o *Options) {
		o.Logger = zerolog.New(zerolog.SyncWriter(&logs))
	})
	for i, ctx := range []context.Context{fullCtx, incrementalCtx, incrementalCtx, incrementalCtx} {
		dir, err := src.Snapshot(ctx)
		if err != nil || len(dir.Users) != 30 {
			t.Fatalf("read %d: %d users, %v", i, len(dir.Users), err)
		}
		if got := f.requestsLike("filter=meta.lastModified"); (i == 1) != (got > 0) {
			t.Errorf("read %d made %d filtered requests; only the first incremental one may try", i, got)
		}
		if got := f.requestsExactly("/Users?count=7&startIndex=1"); got != 1 {
			t.Errorf("read %d made %d full user listings, want 1", i, got)
		}
		f.resetRequests()
	}
	if got := strings.Count(logs.String(), `"level":"warn"`); got != 1 {
		t.Errorf("%d warnings, want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "every read of this source is full from now on") {
		t.Errorf("the warning does not say what follows:\n%s", logs.String())
	}
}

// A server without filtering, or without a ServiceProviderConfig, is read in full.
func TestIncrementalNeedsFilterSupport(t *testing.T) {
	for name, spc := range map[string]map[string]any{
		"filter not supported":     {"filter": map[string]any{"supported": false}},
		"no filter block":          {"patch": map[string]any{"supported": true}},
		"no ServiceProviderConfig": nil,
	} {
		t.Run(name, func(t *testing.T) {
			f, url := newFakeSCIM(t, 20, 2)
			f.lastModifiedFilter = true
			f.spc = spc
			src := newSource(t, url, nil)
			for range 3 {
				if _, err := src.Snapshot(incrementalCtx); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.requestsLike("filter="); got != 0 {
				t.Errorf("%d filtered requests, want 0", got)
			}
			if got := f.requestsLike("/ServiceProviderConfig"); got != 1 {
				t.Errorf("ServiceProviderConfig read %d times, want once", got)
			}
			if src.inc.held != nil {
				t.Error("a source that reads in full holds its last read")
			}
		})
	}
}

// An incremental read that fails changes nothing the source holds, returns no directory,
// and makes the next read full.
func TestIncrementalReadFailsWhole(t *testing.T) {
	cases := []struct {
		name  string
		setup func(f *fakeSCIM, c *clock)
		want  string
	}{
		{"id listing fails", func(f *fakeSCIM, _ *clock) {
			f.before = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == "/Groups" && r.URL.Query().Get("attributes") == "id" {
					scimErr(w, http.StatusInternalServerError, "", "index down")
					return true
				}
				return false
			}
		}, "group ids: page at startIndex 1"},
		{"filtered page fails", func(f *fakeSCIM, _ *clock) {
			f.before = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Query().Get("filter") != "" && r.URL.Path == "/Users" {
					scimErr(w, http.StatusServiceUnavailable, "", "busy")
					return true
				}
				return false
			}
		}, "HTTP 503"},
		{"changed user without active", func(f *fakeSCIM, c *clock) {
			delete(f.users[4], "active")
			modified(f.users[4], c)
		}, "1 of 29 users have no active attribute"},
		{"changed group names a user nobody listed", func(f *fakeSCIM, c *clock) {
			f.groups[1]["members"] = append(f.groups[1]["members"].([]any), map[string]any{"value": "u-9999"})
			modified(f.groups[1], c)
		}, `"u-9999" in "Group 01"`},
		{"too many ids the filter missed", func(f *fakeSCIM, _ *clock) {
			more, _ := directory(30+maxFetch+1, 0)
			for _, u := range more[30:] {
				u["id"] = "x" + u["id"].(string)
				u["userName"] = "x" + u["userName"].(string)
			}
			f.users = append(f.users, more[30:]...)
		}, "resources are listed by id but were neither held nor returned"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, src, c := incrementalFake(t, 30, 4)
			held := src.inc.held
			heldCopy := *held
			heldCopy.users = slices.Clone(held.users)
			heldCopy.groups = slices.Clone(held.groups)
			f.mu.Lock()
			f.users = slices.Delete(f.users, 2, 3) // a delete the failed read must not apply half-way
			tc.setup(f, c)
			f.mu.Unlock()
			dir, err := src.Snapshot(incrementalCtx)
			if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want ErrIncomplete mentioning %q", err, tc.want)
			}
			if dir.Users != nil || dir.Groups != nil {
				t.Error("a failed read returned a directory")
			}
			if src.inc.held != held || held.start != heldCopy.start || held.gen != heldCopy.gen ||
				!slices.EqualFunc(held.users, heldCopy.users, func(a, b heldUser) bool { return a.gen == b.gen && a.u.ID == b.u.ID && a.u.Groups == b.u.Groups }) ||
				!slices.EqualFunc(held.groups, heldCopy.groups, func(a, b heldGroup) bool { return a.gen == b.gen && a.g.ID == b.g.ID && a.g.Members == b.g.Members }) {
				t.Error("the failed read changed what the source holds")
			}
			// The next read is full, whatever the context asks.
			f.mu.Lock()
			f.before = nil
			f.requests = nil
			f.mu.Unlock()
			_, _ = src.Snapshot(incrementalCtx)
			if got := f.requestsLike("filter="); got != 0 {
				t.Errorf("the read after a failed one made %d filtered requests, want a full read", got)
			}
		})
	}
}

// Ids listed but neither held nor returned by the filter (created during the last read, or
// missed by the filter) are fetched one by one; one deleted before its fetch is gone.
func TestIncrementalFetchesWhatTheFilterMissed(t *testing.T) {
	f, src, c := incrementalFake(t, 30, 4)
	more, _ := directory(33, 0)
	f.mu.Lock()
	for _, u := range more[30:] {
		u["meta"] = map[string]any{"lastModified": c.Now().Add(-2 * time.Hour).Format(time.RFC3339)} // backdated
		f.users = append(f.users, u)
	}
	f.before = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/Users/u-0031" {
			scimErr(w, http.StatusNotFound, "", "deleted meanwhile")
			return true
		}
		return false
	}
	f.mu.Unlock()
	dir, err := src.Snapshot(incrementalCtx)
	if err != nil {
		t.Fatal(err)
	}
	_, has30 := userNamed(dir, "user30@example.com")
	_, has31 := userNamed(dir, "user31@example.com")
	if len(dir.Users) != 32 || !has30 || has31 {
		t.Errorf("%d users; user30 %v, user31 %v: want 32, the first fetched and the second gone", len(dir.Users), has30, has31)
	}
	if got := f.requestsLike("/Users/u-00"); got != 3 {
		t.Errorf("%d users fetched one by one, want 3", got)
	}
}

// A group deleted at the server leaves the groups attribute of users read before.
func TestIncrementalDeletedGroup(t *testing.T) {
	f, src, _ := incrementalFake(t, 20, 4)
	f.mu.Lock()
	f.groups = slices.Delete(f.groups, 2, 3)
	f.mu.Unlock()
	dir, err := src.Snapshot(incrementalCtx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dir.Groups) != 3 {
		t.Errorf("%d groups after the delete, want 3", len(dir.Groups))
	}
	for _, u := range dir.Users {
		if slices.Contains(u.Groups, "Group 02") {
			t.Errorf("user %s is still in the deleted group: %v", u.UserName, u.Groups)
		}
	}
}
