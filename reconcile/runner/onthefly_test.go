package runner_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

// Live groups of a site: site-admins and jira-admins grant admin rights, jira-software-users
// and jira-servicedesk-users grant product access; a0 is the site admin.
func accessGroups(members map[string][]string) []reconcile.LiveGroup {
	mk := func(id, name string, admin, product bool) reconcile.LiveGroup {
		g := grp(id, name, members[name]...)
		g.Admin, g.ProductAccess = admin, product
		if g.Members == nil {
			g.Members = []string{}
		}
		return g
	}
	return []reconcile.LiveGroup{
		mk("g-sa", "site-admins", true, false),
		mk("g-ja", "jira-admins", true, false),
		mk("g-jsu", "jira-software-users", false, true),
		mk("g-jsd", "jira-servicedesk-users", false, true),
	}
}

// groupChanges lists a plan's group items (create, add, remove) for one Jira group.
func groupChanges(c reconcile.Changes, group string) []reconcile.Change {
	var out []reconcile.Change
	for _, l := range [][]reconcile.Change{c.CreateGroups, c.AddMembers, c.RemoveMembers} {
		for _, ch := range l {
			if ch.Group != nil && strings.EqualFold(ch.Group.Name, group) {
				out = append(out, ch)
			}
		}
	}
	return out
}

func hasNote(c reconcile.Changes, parts ...string) bool {
	for _, n := range c.Notes {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(n, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func adds(c reconcile.Changes, group, account string) bool {
	for _, ch := range c.AddMembers {
		if strings.EqualFold(ch.Group.Name, group) && ch.AccountID == account {
			return true
		}
	}
	return false
}

func TestOnTheFlyNeverGrantsAdminOrProductAccess(t *testing.T) {
	accounts := []reconcile.Account{acc("a0", "admin@example.com"), acc("a1", "alice@example.com"),
		acc("a2", "bob@example.com"), acc("a3", "carol@example.com"), acc("a4", "dave@example.com"), acc("a5", "erin@example.com")}
	links := []reconcile.Link{link("1", "alice", "a1"), link("2", "bob", "a2"), link("3", "carol", "a3"),
		link("4", "dave", "a4"), link("5", "erin", "a5"), link("6", "fay", "a-gone")}
	cases := []struct {
		name    string
		m       func(*configs.MappingConfig)
		users   []reconcile.User
		members map[string][]string
		owned   []reconcile.Owned
		opts    reconcile.PlanOptions
		check   func(t *testing.T, c reconcile.Changes)
	}{
		{
			name: "admin group: no create, add or remove, and a note names both groups",
			users: []reconcile.User{user("1", "alice", "alice@example.com", "site-admins", "Eng"),
				user("3", "carol", "carol@example.com", "Jira-Admins"),
				// fay's linked account is gone: the matching notes it before groups are planned.
				user("6", "fay", "fay@example.com")},
			// dave was added to site-admins by an earlier version's on-the-fly import (owned):
			// he is not in the IdP group any more, and still nothing is removed.
			members: map[string][]string{"site-admins": {"a0", "a4"}, "jira-admins": {"a0"}, "jira-software-users": {"a0", "a1", "a3", "a4"}},
			owned:   []reconcile.Owned{ownM("g-sa", "site-admins", "a4")},
			check: func(t *testing.T, c reconcile.Changes) {
				for _, g := range []string{"site-admins", "jira-admins", "Jira-Admins"} {
					if ch := groupChanges(c, g); len(ch) > 0 {
						t.Errorf("changes to %s: %+v", g, ch)
					}
				}
				if !hasNote(c, "IdP group site-admins matches Jira group site-admins, which grants admin rights",
					"map it explicitly under mapping.groups to sync it") {
					t.Errorf("no note for site-admins: %q", c.Notes)
				}
				if !hasNote(c, "IdP group Jira-Admins matches Jira group jira-admins, which grants admin rights") {
					t.Errorf("no note for Jira-Admins (case-insensitive match): %q", c.Notes)
				}
				// Other on-the-fly groups still work.
				if !adds(c, "Eng", "a1") || len(c.CreateGroups) != 1 || c.CreateGroups[0].Group.Name != "Eng" {
					t.Errorf("on-the-fly Eng not planned: creates %+v adds %+v", c.CreateGroups, c.AddMembers)
				}
				if len(c.Notes) < 3 || !strings.HasPrefix(c.Notes[0], "IdP group ") || !strings.HasPrefix(c.Notes[1], "IdP group ") ||
					!hasNote(c, "fay: linked account a-gone is not in Jira any more") {
					t.Errorf("access-group notes do not lead the list: %q", c.Notes)
				}
			},
		},
		{
			name:    "product-access group: no add, no remove",
			users:   []reconcile.User{user("2", "bob", "bob@example.com", "jira-servicedesk-users")},
			members: map[string][]string{"jira-servicedesk-users": {"a0", "a5"}, "jira-software-users": {"a0", "a2"}},
			owned:   []reconcile.Owned{ownM("g-jsd", "jira-servicedesk-users", "a5")},
			check: func(t *testing.T, c reconcile.Changes) {
				if ch := groupChanges(c, "jira-servicedesk-users"); len(ch) > 0 {
					t.Errorf("changes to jira-servicedesk-users: %+v", ch)
				}
				if !hasNote(c, "IdP group jira-servicedesk-users matches Jira group jira-servicedesk-users, which grants product access") {
					t.Errorf("no note: %q", c.Notes)
				}
			},
		},
		{
			name: "explicit mapping still works, and wins over a same-name import",
			m: func(m *configs.MappingConfig) {
				m.Groups = []configs.GroupMapping{{IdP: "Admins", Jira: []string{"site-admins"}}}
			},
			users: []reconcile.User{
				user("1", "alice", "alice@example.com", "Admins"),
				user("2", "bob", "bob@example.com", "site-admins"),
				// IdP group order must not matter: carol is granted by Admins.
				user("3", "carol", "carol@example.com", "site-admins", "Admins"),
				user("4", "dave", "dave@example.com", "site-admins"),
				user("5", "erin", "erin@example.com"),
			},
			members: map[string][]string{"site-admins": {"a0", "a4", "a5"}, "jira-software-users": {"a0", "a1", "a2", "a3", "a4", "a5"}},
			owned:   []reconcile.Owned{ownM("g-sa", "site-admins", "a4"), ownM("g-sa", "site-admins", "a5")},
			check: func(t *testing.T, c reconcile.Changes) {
				if !adds(c, "site-admins", "a1") || !adds(c, "site-admins", "a3") {
					t.Errorf("explicit mapping not applied: %+v", c.AddMembers)
				}
				for _, ch := range c.AddMembers {
					if ch.AccountID == "a3" && ch.Reason != "in IdP group Admins -> site-admins" {
						t.Errorf("carol's add reason %q, want the explicit mapping", ch.Reason)
					}
				}
				if adds(c, "site-admins", "a2") {
					t.Error("bob added to site-admins through the same-name IdP group")
				}
				// dave holds only the refused grant: his membership stays as it is. erin is in
				// no IdP group: the explicit mapping removes her. (The site admin a0 is in the
				// raw plan too; the ownership guard drops what idsync does not own.)
				var removed []string
				for _, ch := range c.RemoveMembers {
					if ch.Group.Name == "site-admins" && ch.AccountID != "a0" {
						removed = append(removed, ch.AccountID)
					}
				}
				if !slices.Equal(removed, []string{"a5"}) {
					t.Errorf("removals from site-admins %v, want [a5]", removed)
				}
				if len(c.CreateGroups) != 0 {
					t.Errorf("creates %+v", c.CreateGroups)
				}
				if !hasNote(c, "IdP group site-admins matches Jira group site-admins", "only mapping.groups and mapping.default_groups") {
					t.Errorf("no note: %q", c.Notes)
				}
			},
		},
		{
			name:    "default group still works for a member of the same-name IdP group",
			users:   []reconcile.User{user("2", "bob", "bob@example.com", "jira-software-users"), user("9", "zed", "zed@example.com", "jira-software-users")},
			members: map[string][]string{"jira-software-users": {"a0"}},
			check: func(t *testing.T, c reconcile.Changes) {
				if !adds(c, "jira-software-users", "a2") {
					t.Errorf("bob not added to his default group: %+v", c.AddMembers)
				}
				var zed bool
				for _, ch := range c.AddMembers {
					if ch.UserName == "zed" && ch.Group.Name == "jira-software-users" {
						zed = ch.AccountID == "" && ch.Reason == "default group for licensed users"
					}
					if ch.Group.Name == "jira-software-users" && ch.Reason != "default group for licensed users" {
						t.Errorf("add %+v not made by default_groups", ch)
					}
				}
				if !zed {
					t.Errorf("new user zed not given the default group: %+v", c.AddMembers)
				}
				if !hasNote(c, "IdP group jira-software-users matches Jira group jira-software-users, which grants product access") {
					t.Errorf("no note: %q", c.Notes)
				}
			},
		},
		{
			name:    "targeted pass refuses too",
			users:   []reconcile.User{user("1", "alice", "alice@example.com", "site-admins", "jira-servicedesk-users")},
			members: map[string][]string{"jira-software-users": {"a1"}},
			opts:    reconcile.PlanOptions{Targeted: true},
			check: func(t *testing.T, c reconcile.Changes) {
				for _, g := range []string{"site-admins", "jira-servicedesk-users"} {
					if ch := groupChanges(c, g); len(ch) > 0 {
						t.Errorf("targeted changes to %s: %+v", g, ch)
					}
				}
				if !hasNote(c, "IdP group site-admins", "admin rights") || !hasNote(c, "IdP group jira-servicedesk-users", "product access") {
					t.Errorf("notes %q", c.Notes)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := simpleMapping()
			if tc.m != nil {
				tc.m(&m)
			}
			d := desired(t, m, tc.users...)
			live := reconcile.Live{Accounts: accounts, Groups: accessGroups(tc.members)}
			opts := tc.opts
			opts.Now = t0
			c := reconcile.Plan(d, live, reconcile.Ownership{Links: links, Owned: tc.owned}, opts)
			tc.check(t, c)
			if t.Failed() {
				b, _ := json.MarshalIndent(c, "", " ")
				t.Logf("plan: %s", b)
			}
		})
	}
}

// A Desired built without OnTheFly (by hand, or by an older mapper) still never manages an
// access group that neither mapping.groups nor default_groups names.
func TestOnTheFlyRefusedWithoutTheMarker(t *testing.T) {
	d := reconcile.Desired{
		People: []reconcile.Person{{Source: "corp", Key: "1", Records: []reconcile.Record{{Source: "corp", Key: "1"}},
			UserName: "alice", Email: "alice@example.com", Active: true, Groups: []reconcile.Grant{{Target: 0, Via: 0}}}},
		Groups: []reconcile.DesiredGroup{{Name: "site-admins"}},
		Via:    []string{"site-admins"},
	}
	live := reconcile.Live{Accounts: []reconcile.Account{acc("a0", "admin@example.com"), acc("a1", "alice@example.com")},
		Groups: accessGroups(map[string][]string{"site-admins": {"a0"}})}
	c := reconcile.Plan(d, live, reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}}, reconcile.PlanOptions{Now: t0})
	if ch := groupChanges(c, "site-admins"); len(ch) > 0 {
		t.Errorf("changes to site-admins: %+v", ch)
	}
}

func TestMapperPrefersExplicitAndDefaultGrantsOverOnTheFly(t *testing.T) {
	m := simpleMapping()
	m.Groups = []configs.GroupMapping{{IdP: "Admins", Jira: []string{"site-admins"}}}
	d := desired(t, m,
		user("1", "alice", "alice@example.com", "site-admins", "Admins", "jira-software-users", "Eng"),
		user("2", "bob", "bob@example.com", "site-admins"))
	via := func(name string) int32 { return int32(slices.Index(d.Via, name)) }
	target := func(name string) int32 {
		return int32(slices.IndexFunc(d.Groups, func(g reconcile.DesiredGroup) bool { return g.Name == name }))
	}
	for _, tc := range []struct {
		idp      string
		onTheFly bool
	}{{"site-admins", true}, {"Admins", false}, {"jira-software-users", true}, {"Eng", true}} {
		v := via(tc.idp)
		if v < 0 || (int(v) < len(d.OnTheFly) && d.OnTheFly[v]) != tc.onTheFly {
			t.Errorf("IdP group %s: OnTheFly %v, want %v (%v %v)", tc.idp, d.OnTheFly, tc.onTheFly, d.Via, v)
		}
	}
	want := map[int32]int32{target("site-admins"): via("Admins"), target("jira-software-users"): reconcile.ViaDefault, target("Eng"): via("Eng")}
	alice := d.People[0]
	if len(alice.Groups) != len(want) {
		t.Fatalf("alice's grants %+v, want %d", alice.Groups, len(want))
	}
	for _, g := range alice.Groups {
		if want[g.Target] != g.Via {
			t.Errorf("grant of %s through via %d, want %d", d.Groups[g.Target].Name, g.Via, want[g.Target])
		}
	}
	if bob := d.People[1]; !slices.Contains(bob.Groups, reconcile.Grant{Target: target("site-admins"), Via: via("site-admins")}) {
		t.Errorf("bob's on-the-fly grant missing: %+v", bob.Groups)
	}
}

// The runner logs plan notes at warn level: an IdP group refused to import_groups is named in
// a warning, and no membership of the admin group is written, in a full and a targeted pass.
func TestRunnerWarnsOfRefusedAccessGroups(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com", "site-admins", "Eng")}, baseMapping(), openSafety())
	var logs bytes.Buffer
	e.cfg.Logger = zerolog.New(&logs)
	e.rebuild()
	admins := func() []string { return e.sink.Members("site-admins") }
	before := admins()
	e.run(runner.RunOptions{})
	e.run(runner.RunOptions{Trigger: reconcile.TriggerPush, Users: []string{"alice"}})
	if !e.sink.LastScope().Targeted {
		t.Fatal("second pass not targeted")
	}
	if got := admins(); !slices.Equal(got, before) {
		t.Errorf("site-admins members %v, want %v", got, before)
	}
	alice, ok := e.sink.AccountByEmail("alice@example.com")
	if !ok || !slices.Contains(e.sink.Members("Eng"), alice.AccountID) {
		t.Errorf("alice not created or not in the on-the-fly group Eng")
	}
	warns := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := l["message"].(string); l["level"] == "warn" && strings.Contains(msg, "IdP group site-admins matches Jira group site-admins") {
			warns++
		}
	}
	if warns != 2 {
		t.Errorf("%d warnings name site-admins, want one per pass:\n%s", warns, logs.String())
	}
}
