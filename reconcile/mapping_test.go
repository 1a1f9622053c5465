package reconcile_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

func src(name string, prio int, users ...reconcile.User) reconcile.SourceData {
	return reconcile.SourceData{Directory: reconcile.Directory{Source: name, Users: users}, Priority: prio}
}

// groupsOf returns a person's Jira group names.
func groupsOf(d reconcile.Desired, p reconcile.Person) []string {
	var out []string
	for _, g := range p.Groups {
		out = append(out, d.Groups[g.Target].Name)
	}
	return out
}

func person(t *testing.T, d reconcile.Desired, userName string) reconcile.Person {
	t.Helper()
	for _, p := range d.People {
		if strings.EqualFold(p.UserName, userName) {
			return p
		}
	}
	t.Fatalf("no person %s in %+v", userName, d.People)
	return reconcile.Person{}
}

func hasPerson(d reconcile.Desired, userName string) bool {
	for _, p := range d.People {
		if strings.EqualFold(p.UserName, userName) {
			return true
		}
	}
	return false
}

func TestMap(t *testing.T) {
	cases := []struct {
		name  string
		m     configs.MappingConfig
		srcs  []reconcile.SourceData
		check func(t *testing.T, d reconcile.Desired, w []reconcile.Warning)
	}{
		{
			name: "explicit mapping grants several Jira groups and marks authoritative ones",
			m:    configs.MappingConfig{Groups: []configs.GroupMapping{{IdP: "engineering", Jira: []string{"eng", "devs"}, Authoritative: true}}},
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "alice", "a@x.io", "Engineering"))},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if g := groupsOf(d, person(t, d, "alice")); strings.Join(g, ",") != "eng,devs" {
					t.Errorf("groups %v", g)
				}
				if !d.Groups[0].Authoritative || !d.Groups[0].Explicit {
					t.Errorf("group %+v", d.Groups[0])
				}
			},
		},
		{
			name: "on-the-fly import skips DEFAULT, excluded and customer groups but not explicitly mapped ones",
			m: configs.MappingConfig{ImportGroups: true, ExcludeGroups: []string{"secret"},
				Groups:    []configs.GroupMapping{{IdP: "DEFAULT", Jira: []string{"everyone"}}},
				Customers: []configs.CustomerMapping{{IdP: "Support-Customers", ServiceDesks: []string{"DEMO"}}}},
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "alice", "a@x.io", "Sales", "DEFAULT", "Secret", "Support-Customers"))},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				p := person(t, d, "alice")
				if g := groupsOf(d, p); strings.Join(g, ",") != "Sales,everyone" && strings.Join(g, ",") != "everyone,Sales" {
					t.Errorf("groups %v", g)
				}
				if len(p.Desks) != 1 || p.CustomerOnly {
					t.Errorf("desks %+v customerOnly %v", p.Desks, p.CustomerOnly)
				}
			},
		},
		{
			name: "DEFAULT is ignored unless mapped",
			m:    configs.MappingConfig{ImportGroups: true},
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "alice", "a@x.io", "DEFAULT"))},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if len(person(t, d, "alice").Groups) != 0 || len(d.Groups) != 0 {
					t.Errorf("DEFAULT imported: %+v", d.Groups)
				}
			},
		},
		{
			name: "import_groups off imports nothing on the fly",
			m:    configs.MappingConfig{},
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "alice", "a@x.io", "Sales"))},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if len(d.Groups) != 0 {
					t.Errorf("groups %+v", d.Groups)
				}
			},
		},
		{
			name: "default groups for licensed people, not for customer-only ones",
			m: configs.MappingConfig{DefaultGroups: []string{"jira-software-users"},
				Customers: []configs.CustomerMapping{{IdP: "Cust", ServiceDesks: []string{"DEMO"}, Organizations: []string{"Acme"}}}},
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "alice", "a@x.io"), user("2", "carol", "c@x.io", "Cust"))},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if g := groupsOf(d, person(t, d, "alice")); len(g) != 1 || g[0] != "jira-software-users" {
					t.Errorf("alice %v", g)
				}
				c := person(t, d, "carol")
				if !c.CustomerOnly || len(c.Groups) != 0 || len(c.Desks) != 1 || len(c.Orgs) != 1 {
					t.Errorf("carol %+v", c)
				}
			},
		},
		{
			name: "include_groups keeps only members of those groups",
			m:    configs.MappingConfig{ImportGroups: true, IncludeGroups: []string{"staff"}},
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "alice", "a@x.io", "Staff"), user("2", "bob", "b@x.io", "Other"))},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if !hasPerson(d, "alice") || hasPerson(d, "bob") {
					t.Errorf("people %+v", d.People)
				}
				if len(d.Ignored) != 0 {
					t.Errorf("out-of-scope people are absent, not ignored: %+v", d.Ignored)
				}
			},
		},
		{
			name: "exclude_users by name or email, case-insensitively, is ignored (never missing)",
			m:    configs.MappingConfig{ExcludeUsers: []string{"BREAKGLASS", "Bob@X.io"}},
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "breakglass", "bg@x.io"), user("2", "bob", "bob@x.io"), user("3", "carl", "c@x.io"))},
			check: func(t *testing.T, d reconcile.Desired, w []reconcile.Warning) {
				if len(d.People) != 1 || len(d.Ignored) != 2 || len(w) != 0 {
					t.Errorf("people %d ignored %+v warnings %v", len(d.People), d.Ignored, w)
				}
			},
		},
		{
			name: "transforms rewrite user names and emails before matching",
			m: configs.MappingConfig{UserName: configs.Transform{Pattern: `@.*$`, Replace: "", Lowercase: true},
				Email: configs.Transform{Pattern: `@corp\.example$`, Replace: "@example.com", Lowercase: true}},
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "Alice@CORP", "Alice@corp.example"))},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				p := person(t, d, "alice")
				if p.UserName != "alice" || p.Email != "alice@example.com" {
					t.Errorf("person %+v", p)
				}
			},
		},
		{
			name: "display name choice: given and family name",
			m:    configs.MappingConfig{DisplayName: "name"},
			srcs: []reconcile.SourceData{src("corp", 1, reconcile.User{Key: "1", UserName: "alice", Email: "a@x.io", GivenName: "Alice", FamilyName: "Liddell", DisplayName: "ali", Active: true})},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if p := person(t, d, "alice"); p.DisplayName != "Alice Liddell" {
					t.Errorf("display name %q", p.DisplayName)
				}
			},
		},
		{
			name: "display name choice: attribute",
			m:    configs.MappingConfig{DisplayName: "attribute:preferred"},
			srcs: []reconcile.SourceData{src("corp", 1, reconcile.User{Key: "1", UserName: "alice", Email: "a@x.io", DisplayName: "ali", Active: true, Attributes: map[string]string{"preferred": "Al"}})},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if p := person(t, d, "alice"); p.DisplayName != "Al" {
					t.Errorf("display name %q", p.DisplayName)
				}
			},
		},
		{
			name: "two sources merge by email; higher priority wins attributes; memberships are the union",
			m:    configs.MappingConfig{ImportGroups: true},
			srcs: []reconcile.SourceData{
				src("low", 1, reconcile.User{Key: "l1", UserName: "alice.l", Email: "ALICE@x.io", DisplayName: "Low Alice", Active: true, Groups: []string{"A"}}),
				src("high", 5, reconcile.User{Key: "h1", UserName: "alice", Email: "alice@x.io", DisplayName: "High Alice", Active: true, Groups: []string{"B"}}),
			},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if len(d.People) != 1 {
					t.Fatalf("people %+v", d.People)
				}
				p := d.People[0]
				if p.Source != "high" || p.DisplayName != "High Alice" || len(p.Records) != 2 || len(p.Groups) != 2 {
					t.Errorf("person %+v", p)
				}
			},
		},
		{
			name: "priority ties go to config order; records without email merge by user name",
			srcs: []reconcile.SourceData{
				src("first", 1, reconcile.User{Key: "f1", UserName: "alice", Email: "alice@x.io", DisplayName: "First", Active: true}),
				src("second", 1, reconcile.User{Key: "s1", UserName: "Alice", DisplayName: "Second", Active: true}),
			},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if len(d.People) != 1 || d.People[0].Source != "first" || len(d.People[0].Records) != 2 {
					t.Errorf("people %+v", d.People)
				}
			},
		},
		{
			name: "a disabled user is desired-inactive",
			srcs: []reconcile.SourceData{src("corp", 1, disabled(user("1", "alice", "a@x.io")))},
			check: func(t *testing.T, d reconcile.Desired, _ []reconcile.Warning) {
				if person(t, d, "alice").Active {
					t.Errorf("active")
				}
			},
		},
		{
			name: "duplicate email across keys of one source skips both with a warning",
			srcs: []reconcile.SourceData{src("corp", 1, user("1", "alice", "same@x.io"), user("2", "alicia", "SAME@x.io"), user("3", "bob", "b@x.io"))},
			check: func(t *testing.T, d reconcile.Desired, w []reconcile.Warning) {
				if len(d.People) != 1 || len(d.Ignored) != 2 {
					t.Errorf("people %+v ignored %+v", d.People, d.Ignored)
				}
				if len(w) != 2 || !strings.Contains(w[0].Message, "duplicate email") {
					t.Errorf("warnings %v", w)
				}
			},
		},
		{
			name: "bad data never crashes: empty, control-character and whitespace names, invalid emails",
			srcs: []reconcile.SourceData{src("corp", 1,
				user("1", "   ", "a@x.io"), user("2", "bad\x00name", "b@x.io"), user("", "", ""),
				user("4", "  zoë  ", "not-an-email"), user("5", "eve", "eve@x.io\n"), user("6", "ok", "ok@x.io"),
				reconcile.User{Key: "7", UserName: "\xff\xfe", Active: true})},
			check: func(t *testing.T, d reconcile.Desired, w []reconcile.Warning) {
				z := person(t, d, "zoë")
				if z.Email != "" {
					t.Errorf("invalid email kept: %+v", z)
				}
				if e := person(t, d, "eve"); e.Email != "eve@x.io" {
					t.Errorf("trimmed email %q", e.Email)
				}
				person(t, d, "ok")
				if len(d.People) != 3 || len(w) < 4 {
					t.Errorf("people %d warnings %v", len(d.People), w)
				}
				for _, ig := range d.Ignored {
					if ig.Reason == "" {
						t.Errorf("ignored without reason %+v", ig)
					}
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, w, err := reconcile.Map(tc.srcs, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, d, w)
		})
	}
}

func TestMapRejectsBadConfig(t *testing.T) {
	for name, m := range map[string]configs.MappingConfig{
		"bad username regex": {UserName: configs.Transform{Pattern: "("}},
		"bad email regex":    {Email: configs.Transform{Pattern: "[a-"}},
		"empty group idp":    {Groups: []configs.GroupMapping{{Jira: []string{"x"}}}},
		"bad display name":   {DisplayName: "nickname"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := reconcile.NewMapper(m); err == nil {
				t.Errorf("accepted %+v", m)
			}
		})
	}
}

func TestOverlay(t *testing.T) {
	taken := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pull := reconcile.Directory{Source: "corp", Users: []reconcile.User{
		user("p1", "alice", "alice@x.io", "Eng"), user("p2", "bob", "bob@x.io", "Eng"), user("p3", "carol", "carol@x.io"),
	}}
	newer, older := taken.Add(time.Minute), taken.Add(-time.Minute)
	pushed := func(u reconcile.User, at time.Time) reconcile.User { u.Modified = at; return u }
	push := reconcile.Directory{Source: "corp", Users: []reconcile.User{
		pushed(disabled(user("s1", "ALICE", "alice@x.io", "Eng")), newer), // newer deprovision: explicit
		pushed(user("s2", "bobby", "BOB@x.io", "Eng", "Sales"), older),    // older and disagrees (joined by email): pull wins
		pushed(user("s3", "dave", "dave@x.io"), newer),                    // new hire pushed after the pull
		pushed(user("s4", "erin", "erin@x.io"), older),                    // older push the pull does not list
	}}
	out, w := reconcile.Overlay(pull, taken, push)
	byName := map[string]reconcile.User{}
	for _, u := range out.Users {
		byName[strings.ToLower(u.UserName)] = u
	}
	if a := byName["alice"]; a.Active || a.Key != "p1" {
		t.Errorf("alice %+v: a newer push wins and keeps the pulled key", a)
	}
	if b := byName["bob"]; len(b.Groups) != 1 || b.Key != "p2" {
		t.Errorf("bob %+v: the pull wins over an older push", b)
	}
	if _, ok := byName["dave"]; !ok {
		t.Errorf("new pushed user missing")
	}
	if _, ok := byName["erin"]; ok {
		t.Errorf("older push not in the pull must not appear")
	}
	if len(w) != 2 || !strings.Contains(w[0].String(), "bobby") {
		t.Errorf("warnings %v", w)
	}
	// Joined records carry the pushed record's key: links made under it find the person.
	if a := byName["alice"]; !slices.Equal(a.Aliases, []string{"s1"}) {
		t.Errorf("alice aliases %v", a.Aliases)
	}
	if b := byName["bob"]; !slices.Equal(b.Aliases, []string{"s2"}) {
		t.Errorf("bob aliases %v (an older push is still the same person)", b.Aliases)
	}
	if d := byName["dave"]; d.Key != "s3" || len(d.Aliases) != 0 {
		t.Errorf("dave %+v", d)
	}
	if pull.Users[0].Aliases != nil || pull.Users[1].Aliases != nil {
		t.Errorf("Overlay changed the pulled directory")
	}
	// The mapping turns every key into a record of the person, so neither counts as missing.
	d, _, err := reconcile.Map([]reconcile.SourceData{{Directory: out}}, simpleMapping())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.People {
		if p.UserName == "bob" && !slices.Equal(p.Records, []reconcile.Record{{Source: "corp", Key: "p2"}, {Source: "corp", Key: "s2"}}) {
			t.Errorf("bob's records %v", p.Records)
		}
	}
}

func TestMapAliasCollidingWithAKeyIsIgnoredNotMissing(t *testing.T) {
	d := desired(t, simpleMapping(),
		reconcile.User{Key: "p1", Aliases: []string{"p2"}, UserName: "alice", Email: "alice@x.io", Active: true},
		user("p2", "bob", "bob@x.io"))
	if len(d.People) != 0 {
		t.Fatalf("people %+v: an alias naming another record's key is ambiguous", d.People)
	}
	keys := map[string]bool{}
	for _, ig := range d.Ignored {
		keys[ig.Key] = true
	}
	if !keys["p1"] || !keys["p2"] {
		t.Errorf("ignored %+v: every key of both records must be left alone", d.Ignored)
	}
}
