package miniorange

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

func TestSnapshotDefaultOrg(t *testing.T) {
	srv := miniorangetest.NewServer(t, miniorangetest.Options{})
	src := newSource(t, srv.URL, func(c *configs.MiniOrangeConfig, _ *Options) { c.PageSize = 500 })
	dir, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	want := srv.Users()
	if dir.Source != "corp" || len(dir.Users) != 200 || len(want) != 200 {
		t.Fatalf("source %q, %d users (simulator has %d), want corp and 200", dir.Source, len(dir.Users), len(want))
	}
	disabled := 0
	for i, u := range dir.Users {
		w := want[i]
		if u.Key != w.ID || u.UserName != w.UserName || u.Email != w.Email {
			t.Fatalf("user %d = %+v, want id/username/email of %+v", i, u, w)
		}
		if u.GivenName != w.FirstName || u.FamilyName != w.LastName || u.DisplayName != w.FirstName+" "+w.LastName {
			t.Errorf("user %q names: given %q family %q display %q", u.UserName, u.GivenName, u.FamilyName, u.DisplayName)
		}
		if u.Active == w.Disabled {
			t.Errorf("user %q active = %v, simulator disabled = %v", u.UserName, u.Active, w.Disabled)
		}
		if !u.Active {
			disabled++
		}
		wantGroups := append(slices.Clone(w.Groups), miniorangetest.DefaultGroup)
		sort.Strings(wantGroups)
		if !slices.Equal(u.Groups, wantGroups) {
			t.Errorf("user %q groups = %v, want %v", u.UserName, u.Groups, wantGroups)
		}
		wantAttrs := maps.Clone(w.Attributes)
		wantAttrs["phone"] = w.Phone
		if !maps.Equal(u.Attributes, wantAttrs) {
			t.Errorf("user %q attributes = %v, want %v", u.UserName, u.Attributes, wantAttrs)
		}
	}
	if disabled != 5 {
		t.Errorf("%d disabled users, want 5", disabled)
	}
	var names []string
	for _, g := range dir.Groups {
		names = append(names, g.Name)
		if g.Key == "" {
			t.Errorf("group %q has no key", g.Name)
		}
	}
	for _, n := range []string{"DEFAULT", "Engineering", "Sales", "Support", "Jira-Service-group"} {
		if !slices.Contains(names, n) {
			t.Errorf("groups %v lack %q", names, n)
		}
	}
	if len(dir.Groups) != 16 {
		t.Errorf("%d groups, want 15 and DEFAULT", len(dir.Groups))
	}
	// Every member of a group holds the listing's copy of its name.
	byName := map[string]*byte{}
	for _, g := range dir.Groups {
		byName[g.Name] = unsafe.StringData(g.Name)
	}
	for _, u := range dir.Users {
		for _, g := range u.Groups {
			if p, ok := byName[g]; ok && unsafe.StringData(g) != p {
				t.Fatalf("user %q holds its own copy of group name %q", u.UserName, g)
			}
		}
	}
}

func TestSnapshotConversionDetails(t *testing.T) {
	org := &miniorangetest.Org{
		Groups: []miniorangetest.Group{{ID: "g1", Name: "Engineering", Description: "Builders"}, {Name: "Jira-Service-group"}},
		Users: []miniorangetest.User{
			{ID: "u1", UserName: "Jane.Doe", Email: "Jane.Doe@Example.COM", FirstName: "Jane", LastName: "Doe",
				Groups: []string{"Engineering"}, Attributes: map[string]string{"department": "R&D", "phone": "custom"}, Phone: "+1 555 0100"},
			{ID: "u2", UserName: "zoe", Email: "zoe@example.com", FirstName: "Zoë", LastName: "Ø'Brien-Lefèvre", Disabled: true},
			{ID: "u3", UserName: "mononym@example.com", Email: "mononym@example.com", FirstName: "Teller"},
			{ID: "u4", UserName: "nameless@example.com", Email: "nameless@example.com", Groups: []string{"Jira-Service-group"}},
		},
	}
	srv := miniorangetest.NewServer(t, miniorangetest.Options{Org: org})
	dir, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	byName := map[string]reconcile.User{}
	for _, u := range dir.Users {
		byName[u.UserName] = u
	}
	jane := byName["Jane.Doe"]
	if jane.Key != "u1" || jane.Email != "Jane.Doe@Example.COM" {
		t.Errorf("jane: key %q email %q (email case must be kept)", jane.Key, jane.Email)
	}
	if jane.Attributes["department"] != "R&D" || jane.Attributes["phone"] != "+1 555 0100" {
		t.Errorf("jane attributes %v: custom kept, profile phone wins", jane.Attributes)
	}
	if !slices.Equal(jane.Groups, []string{"DEFAULT", "Engineering"}) || !jane.Active {
		t.Errorf("jane groups %v active %v", jane.Groups, jane.Active)
	}
	zoe := byName["zoe"]
	if zoe.Active || zoe.DisplayName != "Zoë Ø'Brien-Lefèvre" || zoe.FamilyName != "Ø'Brien-Lefèvre" {
		t.Errorf("zoe: %+v", zoe)
	}
	if zoe.Attributes != nil {
		t.Errorf("zoe has attributes %v, want none", zoe.Attributes)
	}
	if u := byName["mononym@example.com"]; u.DisplayName != "Teller" {
		t.Errorf("first name only: display %q", u.DisplayName)
	}
	if u := byName["nameless@example.com"]; u.DisplayName != "nameless@example.com" || !slices.Equal(u.Groups, []string{"DEFAULT", "Jira-Service-group"}) {
		t.Errorf("no names: display %q groups %v", u.DisplayName, u.Groups)
	}
	if dir.Groups[0].Name != "DEFAULT" || dir.Groups[1] != (reconcile.Group{Key: "g1", Name: "Engineering", Description: "Builders"}) {
		t.Errorf("groups = %+v", dir.Groups)
	}
}

func TestSnapshotEmptyOrg(t *testing.T) {
	srv := miniorangetest.NewServer(t, miniorangetest.Options{Org: &miniorangetest.Org{}})
	dir, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if len(dir.Users) != 0 || len(dir.Groups) != 1 || dir.Groups[0].Name != "DEFAULT" {
		t.Errorf("empty org read as %+v", dir)
	}
}

func TestSnapshotHonoursServerBatchCap(t *testing.T) {
	for _, cap := range []int{1, 7, 10, 25, 200} {
		t.Run(fmt.Sprint("cap ", cap), func(t *testing.T) {
			srv := startSim(t, func(o *miniorangetest.Options) { o.BatchCap = cap })
			dir, err := newSource(t, srv.URL, func(c *configs.MiniOrangeConfig, _ *Options) { c.PageSize = 20 }).Snapshot(context.Background())
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			want := srv.Users()
			if len(dir.Users) != len(want) {
				t.Fatalf("%d users, want %d", len(dir.Users), len(want))
			}
			for i := range want {
				if dir.Users[i].Key != want[i].ID {
					t.Fatalf("user %d is %q, want %q: listing order lost", i, dir.Users[i].Key, want[i].ID)
				}
			}
			eff := min(cap, 20)
			if got, wantPages := srv.Calls()[miniorangetest.PathUsersList], (len(want)+eff-1)/eff; got != wantPages {
				t.Errorf("users listing took %d pages, want %d", got, wantPages)
			}
		})
	}
}

func TestSnapshotBoundsConcurrency(t *testing.T) {
	srv := startSim(t, nil)
	srv.SetLatency(2*time.Millisecond, 0)
	fl := &inflight{h: srv.Handler()}
	src := newSource(t, serve(t, fl), func(_ *configs.MiniOrangeConfig, o *Options) { o.Concurrency = 3 })
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if got := fl.max.Load(); got > 3 || got < 2 {
		t.Errorf("at most %d requests in flight, want 2..3 (parallel but bounded)", got)
	}
}

// TestSnapshotIncomplete covers every way a read can fall short: each must return an error
// wrapping ErrIncomplete and no directory.
func TestSnapshotIncomplete(t *testing.T) {
	type tc struct {
		name    string
		fault   *miniorangetest.Fault
		rewrite func(h *miniorangetest.Server) string // returns the URL to read from
		want    string
	}
	fault := func(f miniorangetest.Fault) *miniorangetest.Fault { return &f }
	cases := []tc{
		{name: "users page fails", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultStatus, Endpoint: miniorangetest.PathUsersList, Page: 2}), want: "HTTP 500"},
		{name: "users page body error", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultBodyError, Endpoint: miniorangetest.PathUsersList, Page: 3}), want: "status ERROR"},
		{name: "users page keeps resetting", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultReset, Endpoint: miniorangetest.PathUsersList, Page: 1}), want: "users listing"},
		{name: "groups page fails", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultBodyError, Endpoint: miniorangetest.PathGroupsList, Page: 0}), want: "groups listing"},
		{name: "members page fails", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultStatus, Status: 502, Endpoint: miniorangetest.PathGroupMembers, Group: "DEFAULT", Page: 3}), want: `members of group "DEFAULT"`},
		{name: "short read: listing ends before totalCount", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultTotalSkew, Delta: 1, Endpoint: miniorangetest.PathUsersList, Page: miniorangetest.AnyPage}), want: "listing ended at 50 of totalCount 51"},
		{name: "totalCount changes mid-read (skew)", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultTotalSkew, Delta: -2, Endpoint: miniorangetest.PathUsersList, Page: 3}), want: "totalCount changed from 50 to 48"},
		{name: "totalCount changes mid-read (a hire)", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultHireAfter, Endpoint: miniorangetest.PathUsersList, Page: 0, Times: 1}), want: "totalCount changed from 50 to 51"},
		{name: "duplicate user ids (page shifted)", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultShift, Endpoint: miniorangetest.PathUsersList, Page: 2}), want: "listed twice"},
		{name: "users listing understates its total", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultTotalSkew, Delta: -1, Endpoint: miniorangetest.PathUsersList, Page: miniorangetest.AnyPage}), want: "users listing did not return"},
		{name: "members listing disagrees with its totalCount", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultTotalSkew, Delta: 3, Endpoint: miniorangetest.PathGroupMembers, Group: "Sales", Page: miniorangetest.AnyPage}), want: `members of group "Sales"`},
		{name: "members page shifted", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultShift, Endpoint: miniorangetest.PathGroupMembers, Group: "DEFAULT", Page: 2}), want: "listed twice"},
		{name: "groups page shifted", fault: fault(miniorangetest.Fault{Kind: miniorangetest.FaultShift, Endpoint: miniorangetest.PathGroupsList, Page: 1}), want: "listed twice"},
		{name: "answer without totalCount", rewrite: func(s *miniorangetest.Server) string {
			return serve(t, rewrite(s.Handler(), miniorangetest.PathUsersList, func(b map[string]any) { delete(b, "totalCount") }))
		}, want: "has no totalCount"},
		{name: "unknown user status", rewrite: func(s *miniorangetest.Server) string {
			return serve(t, rewrite(s.Handler(), miniorangetest.PathUsersList, func(b map[string]any) {
				if us, ok := b["users"].([]any); ok && len(us) > 0 {
					us[0].(map[string]any)["status"] = "PENDING_APPROVAL"
				}
			}))
		}, want: `unknown user status "PENDING_APPROVAL"`},
		{name: "user record without the username its group listings name", rewrite: func(s *miniorangetest.Server) string {
			return serve(t, rewrite(s.Handler(), miniorangetest.PathUsersList, func(b map[string]any) {
				if us, ok := b["users"].([]any); ok && len(us) > 1 {
					delete(us[1].(map[string]any), "username")
				}
			}))
		}, want: "did not return"},
		{name: "answer is not JSON", rewrite: func(s *miniorangetest.Server) string {
			return serve(t, rewrite(s.Handler(), miniorangetest.PathGroupsList, func(b map[string]any) { b["groups"] = "oops" }))
		}, want: "decoding"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startSim(t, nil)
			url := srv.URL
			if c.fault != nil {
				srv.AddFault(*c.fault)
			}
			if c.rewrite != nil {
				url = c.rewrite(srv)
			}
			dir, err := newSource(t, url, nil).Snapshot(context.Background())
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Snapshot error = %v, want ErrIncomplete", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if dir.Users != nil || dir.Groups != nil || dir.Source != "" {
				t.Errorf("a failed read returned a directory: %d users", len(dir.Users))
			}
		})
	}
}

func TestSnapshotCancelled(t *testing.T) {
	srv := startSim(t, nil)
	srv.SetLatency(50*time.Millisecond, 0)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	dir, err := newSource(t, srv.URL, nil).Snapshot(ctx)
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Snapshot error = %v, want ErrIncomplete and context.Canceled", err)
	}
	if dir.Users != nil {
		t.Error("a cancelled read returned users")
	}
}

func TestSnapshotMembershipUnion(t *testing.T) {
	srv := startSim(t, nil)
	// The user listing forgets every groups field: memberships come from member listings.
	url := serve(t, rewrite(srv.Handler(), miniorangetest.PathUsersList, func(b map[string]any) {
		for _, u := range b["users"].([]any) {
			delete(u.(map[string]any), "groups")
		}
	}))
	dir, err := newSource(t, url, nil).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	for i, w := range srv.Users() {
		want := append(slices.Clone(w.Groups), "DEFAULT")
		sort.Strings(want)
		if !slices.Equal(dir.Users[i].Groups, want) {
			t.Fatalf("user %q groups %v, want %v from member listings", w.UserName, dir.Users[i].Groups, want)
		}
	}

	// A user's groups field names a group its member listing lacks: the union keeps it.
	victim := srv.Users()[0].UserName
	url = serve(t, rewrite(srv.Handler(), miniorangetest.PathUsersList, func(b map[string]any) {
		for _, u := range b["users"].([]any) {
			m := u.(map[string]any)
			if m["username"] == victim {
				m["groups"] = append(m["groups"].([]any), "Ghosts")
			}
		}
	}))
	dir, err = newSource(t, url, nil).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if !slices.Contains(dir.Users[0].Groups, "Ghosts") {
		t.Errorf("union lost the groups-field membership: %v", dir.Users[0].Groups)
	}
}

func TestSnapshotSeesMutations(t *testing.T) {
	srv := startSim(t, nil)
	src := newSource(t, srv.URL, nil)
	users := srv.Users()
	a, b, c := users[0].UserName, users[1].UserName, users[2].UserName
	if err := srv.Leave(a); err != nil {
		t.Fatal(err)
	}
	if err := srv.Disable(b); err != nil {
		t.Fatal(err)
	}
	if err := srv.Rename(c, miniorangetest.Profile{Email: "New.Mail@Example.com", LastName: "Renamed"}); err != nil {
		t.Fatal(err)
	}
	g := users[2].Groups[0]
	other := miniorangetest.GroupName(0)
	if other == g {
		other = miniorangetest.GroupName(1)
	}
	_ = srv.RemoveFromGroup(c, other)
	if err := srv.Move(c, g, other); err != nil {
		t.Fatal(err)
	}
	hired := srv.HireN(2)
	dir, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	got := map[string]reconcile.User{}
	for _, u := range dir.Users {
		got[u.UserName] = u
	}
	if _, ok := got[a]; ok {
		t.Errorf("%s left but is still listed", a)
	}
	if got[b].Active {
		t.Errorf("%s disabled but active", b)
	}
	if u := got[c]; u.Email != "New.Mail@Example.com" || u.FamilyName != "Renamed" || u.Key != users[2].ID ||
		slices.Contains(u.Groups, g) || !slices.Contains(u.Groups, other) {
		t.Errorf("%s after rename and move: %+v", c, u)
	}
	for _, h := range hired {
		if _, ok := got[h.UserName]; !ok {
			t.Errorf("hired %s missing", h.UserName)
		}
	}
	if len(dir.Users) != 51 {
		t.Errorf("%d users, want 51", len(dir.Users))
	}
}

func TestUser(t *testing.T) {
	srv := startSim(t, nil)
	src := newSource(t, srv.URL, nil)
	users := srv.Users()
	var active, disabled miniorangetest.User
	for _, u := range users {
		if u.Disabled && disabled.ID == "" {
			disabled = u
		}
		if !u.Disabled && active.ID == "" && len(u.Groups) > 0 {
			active = u
		}
	}

	t.Run("found, case-insensitive", func(t *testing.T) {
		u, err := src.User(context.Background(), strings.ToUpper(active.UserName))
		if err != nil {
			t.Fatalf("User: %v", err)
		}
		want := append(slices.Clone(active.Groups), "DEFAULT")
		sort.Strings(want)
		if u.Key != active.ID || u.UserName != active.UserName || u.Email != active.Email || !u.Active ||
			u.DisplayName != active.FirstName+" "+active.LastName || !slices.Equal(u.Groups, want) ||
			u.Attributes["employeeId"] != active.Attributes["employeeId"] || u.Attributes["phone"] != active.Phone {
			t.Errorf("User = %+v, want %+v", u, active)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		u, err := src.User(context.Background(), disabled.UserName)
		if err != nil || u.Active {
			t.Errorf("User(disabled) = %+v, %v; want inactive", u, err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, err := src.User(context.Background(), "nobody@example.com")
		if !errors.Is(err, reconcile.ErrUserNotFound) {
			t.Errorf("User(nobody) error = %v, want ErrUserNotFound", err)
		}
	})
	t.Run("matches Snapshot", func(t *testing.T) {
		dir, err := src.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range dir.Users[:10] {
			got, err := src.User(context.Background(), want.UserName)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("User(%s) = %+v\nSnapshot has %+v", want.UserName, got, want)
			}
		}
	})
	t.Run("answer without groups is an error", func(t *testing.T) {
		url := serve(t, rewrite(srv.Handler(), miniorangetest.PathUserGet, func(b map[string]any) { delete(b, "groups") }))
		_, err := newSource(t, url, nil).User(context.Background(), active.UserName)
		if err == nil || errors.Is(err, reconcile.ErrUserNotFound) || !strings.Contains(err.Error(), "no groups field") {
			t.Errorf("error = %v, want a missing-groups error", err)
		}
	})
	t.Run("answer for another user", func(t *testing.T) {
		url := serve(t, rewrite(srv.Handler(), miniorangetest.PathUserGet, func(b map[string]any) { b["username"] = "someone.else" }))
		_, err := newSource(t, url, nil).User(context.Background(), active.UserName)
		if err == nil || !strings.Contains(err.Error(), "someone.else") {
			t.Errorf("error = %v, want a mismatch error", err)
		}
	})
	t.Run("server error is not not-found", func(t *testing.T) {
		url := serve(t, rewrite(srv.Handler(), miniorangetest.PathUserGet, func(b map[string]any) {
			clear(b)
			b["status"] = "ERROR"
			b["message"] = "Internal error"
		}))
		_, err := newSource(t, url, nil).User(context.Background(), active.UserName)
		if err == nil || errors.Is(err, reconcile.ErrUserNotFound) {
			t.Errorf("error = %v, want a plain error", err)
		}
	})
	t.Run("empty userName", func(t *testing.T) {
		if _, err := src.User(context.Background(), " "); err == nil {
			t.Error("empty userName accepted")
		}
	})
}

func TestImplausibleTotalIsRejected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		total any
		want  string
	}{
		{"huge", 1 << 40, "totalCount 1099511627776 is more than max_objects (1000000)"},
		{"negative", -1, "negative totalCount -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, nil)
			url := serve(t, rewrite(srv.Handler(), miniorangetest.PathUsersList, func(b map[string]any) { b["totalCount"] = tc.total }))
			_, err := newSource(t, url, nil).Snapshot(context.Background())
			if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want ErrIncomplete and %q", err, tc.want)
			}
		})
	}
}

// One user without a username (everywhere) must not stop everyone's sync: with an id it is
// passed on for the engine to skip with a warning (its key keeps any link to it safe); with
// neither id nor username it is dropped.
func TestSnapshotPassesUserWithoutUsername(t *testing.T) {
	srv := startSim(t, nil)
	// Chosen before serving: pages are read concurrently, so the handlers only read these.
	users := srv.Users()
	blanked, dropped := users[1].UserName, users[2].UserName
	h := rewrite(srv.Handler(), miniorangetest.PathUsersList, func(b map[string]any) {
		us, _ := b["users"].([]any)
		for _, x := range us {
			u := x.(map[string]any)
			switch u["username"] {
			case blanked:
				u["username"] = ""
			case dropped:
				u["username"] = ""
				delete(u, "id")
			}
		}
	})
	h = rewrite(h, miniorangetest.PathGroupMembers, func(b map[string]any) {
		ms, _ := b["members"].([]any)
		for i, m := range ms {
			if m == blanked || m == dropped {
				ms[i] = ""
			}
		}
	})
	dir, err := newSource(t, serve(t, h), nil).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	var blank, total int
	for _, u := range dir.Users {
		total++
		if u.UserName == "" {
			blank++
			if u.Key == "" {
				t.Errorf("blank user passed on as %+v, want its id as key", u)
			}
		}
	}
	if blank != 1 || total != 49 {
		t.Fatalf("users = %d with %d blank, want 49 with 1 (the one without an id dropped)", total, blank)
	}
}
