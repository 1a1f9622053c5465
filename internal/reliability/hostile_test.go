package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/proctest"
	"github.com/idsync/idsync/internal/testlog"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// hostileUser is a shorthand for a directory entry.
func hostileUser(id, userName, email, first, last string, groups ...string) miniorangetest.User {
	return miniorangetest.User{ID: id, UserName: userName, Email: email, FirstName: first, LastName: last, Groups: groups}
}

// warned reports whether a warning-or-worse log line contains every text given (in its
// message or any string field, case-insensitively).
func warned(logs *testlog.Buffer, texts ...string) bool { return loggedAt(logs, true, texts...) }

// loggedAt is warned, at any level when warnOnly is false.
func loggedAt(logs *testlog.Buffer, warnOnly bool, texts ...string) bool {
	for _, l := range logLines(logs) {
		if lvl, _ := l["level"].(string); warnOnly && lvl != "warn" && lvl != "error" {
			continue
		}
		var all strings.Builder
		for _, v := range l {
			if s, ok := v.(string); ok {
				all.WriteString(strings.ToLower(s))
				all.WriteByte(' ')
			}
		}
		ok := true
		for _, t := range texts {
			ok = ok && strings.Contains(all.String(), strings.ToLower(t))
		}
		if ok {
			return true
		}
	}
	return false
}

func hostileFigure(name, result string) {
	figures.update(func(r *report) { r.Hostile = append(r.Hostile, namedFigure{Name: name, Result: result}) })
}

// TestReliabilityHostileData feeds the source data an IdP really holds: duplicates, missing
// and malformed emails, unicode and stray whitespace. Each bad record is skipped or kept
// without an email with a warning naming it; the good records are synced; nothing crashes.
func TestReliabilityHostileData(t *testing.T) {
	t.Parallel()
	timed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	org := miniorangetest.Org{
		Groups: []miniorangetest.Group{{ID: "g1", Name: "Engineering"}, {ID: "g2", Name: "Support"}},
		Users: []miniorangetest.User{
			hostileUser("1", "ok.one@example.com", "ok.one@example.com", "Ok", "One", "Engineering"),
			hostileUser("2", "dup.a", "same@example.com", "Dup", "A", "Engineering"),
			hostileUser("3", "dup.b", "SAME@example.com", "Dup", "B", "Support"),
			hostileUser("4", "no.email", "", "No", "Email", "Engineering"),
			hostileUser("5", "bad.email", "not-an-email", "Bad", "Email", "Engineering"),
			hostileUser("6", "two.ats", "two@@example.com", "Two", "Ats", "Engineering"),
			hostileUser("7", "spaced.email", "spa ced@example.com", "Spaced", "Email", "Engineering"),
			hostileUser("8", "  zoe.unicode@example.com  ", "  Zoë.Ünïcødé@Example.com ", "  Zoë ", "Ünïcødé-Łukasz 李", "Engineering"),
			hostileUser("9", "bjorn.obrien@example.com", "bjorn.obrien@example.com", "Björn", "O'Brien\t", "Support"),
			hostileUser("11", "emoji@example.com", "emoji@example.com", "🙂 Smile", "\u200bZero‑width", "Support"),
			hostileUser("12", "rtl@example.com", "rtl@example.com", "\u202eevil", "Name\u0000", "Support"),
		},
	}
	w := newWorld(t, worldOpts{Org: org, Seed: 41})
	cfg := faultConfig(w, t.TempDir())
	p := openInproc(t, cfg)
	_, runs := p.converge(ctx, 4, func(_ int, run reconcile.Run) {
		if run.Result == reconcile.ResultFailed {
			t.Errorf("pass failed: %s", runSummary(run))
		}
	})
	first := runs[0]
	if !sourcesComplete(first) {
		t.Logf("the source read was incomplete: %s", runSummary(first))
	}
	for _, c := range []struct {
		what     string
		warnOnly bool
		texts    []string
	}{
		{"duplicate email", true, []string{"duplicate", "same@example.com", `"2"`, `"3"`}},
		// A person without an email is no data error in the IdP: the plan says at info level
		// that it cannot match or create them.
		{"missing email", false, []string{"no.email", "email"}},
		{"malformed email", true, []string{"bad.email", "email"}},
		{"malformed email with two @", true, []string{"two.ats", "email"}},
		{"email with a space", true, []string{"spaced.email", "email"}},
	} {
		if !loggedAt(p.Logs, c.warnOnly, c.texts...) {
			t.Errorf("%s: no log line names it (want a line with %q)", c.what, c.texts)
		}
	}
	for _, email := range []string{"ok.one@example.com", "bjorn.obrien@example.com", "emoji@example.com", "rtl@example.com"} {
		if a, ok := w.jira.AccountByEmail(email); !ok || !a.Active {
			t.Errorf("good record %s was not synced", email)
		}
	}
	if _, ok := w.jira.AccountByEmail("zoë.ünïcødé@example.com"); !ok {
		t.Errorf("the unicode record with stray whitespace was not synced (accounts: %v)", emails(w.jira))
	}
	if _, ok := w.jira.AccountByEmail("same@example.com"); ok {
		t.Error("an account was created for an email two records claim: the choice between them is arbitrary")
	}
	for _, bad := range []string{"not-an-email", "two@@example.com", "spa ced@example.com"} {
		if _, ok := w.jira.AccountByEmail(bad); ok {
			t.Errorf("an account was created for the malformed email %q", bad)
		}
	}
	if dups := w.duplicates(); len(dups) > 0 {
		t.Errorf("duplicates: %v", dups)
	}
	hostileFigure("bad records", fmt.Sprintf("%d good records synced; duplicates and malformed emails skipped with a warning naming them", len(emails(w.jira))))

	t.Run("blank-username", func(t *testing.T) {
		// A record with an id but a blank username cannot be matched or named: the source
		// passes it on under its id and the engine skips it with a warning naming the record,
		// so one bad record neither stops everyone else's sync nor gets an account.
		org := org
		org.Users = append(org.Users, hostileUser("10", "  ", "blank.name@example.com", "Blank", "Name", "Engineering"))
		w := newWorld(t, worldOpts{Org: org, Seed: 43})
		p := openInproc(t, faultConfig(w, t.TempDir()))
		run := p.pass(ctx)
		if !sourcesComplete(run) {
			t.Fatalf("one blank username failed the whole read: %s", runSummary(run))
		}
		if _, ok := w.jira.AccountByEmail("blank.name@example.com"); ok {
			t.Error("an account was created for a record without a username")
		}
		if a, ok := w.jira.AccountByEmail("ok.one@example.com"); !ok || !a.Active {
			t.Errorf("the good records were not synced beside the blank one (accounts: %v)", emails(w.jira))
		}
		named := false
		for _, l := range logLines(p.Logs) {
			if l["level"] == "warn" && l["key"] == "10" && strings.Contains(fmt.Sprint(l["message"]), "user name is empty") {
				named = true
			}
		}
		if !named {
			t.Errorf("no warning names the record with the blank username:\n%s", proctest.Tail(p.Logs.String(), 3000))
		}
		hostileFigure("blank username", "the record (id 10) is skipped with a warning naming it; everyone else syncs")
	})
}

func emails(js *jiratest.Sim) []string {
	var out []string
	for _, a := range js.Accounts() {
		if a.Email != "" && a.AccountID != jiratest.SiteAdminID {
			out = append(out, a.Email)
		}
	}
	return out
}

// TestReliabilityProductGroupNames: IdP groups named like Jira's product-access and admin
// groups, with import_groups on. The pass must not crash or duplicate the groups; a warning
// must name them, and an IdP group must never grant Jira admin rights by its name alone.
func TestReliabilityProductGroupNames(t *testing.T) {
	t.Parallel()
	timed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	org := miniorangetest.Org{
		Groups: []miniorangetest.Group{{ID: "g1", Name: "Engineering"}, {ID: "g2", Name: "jira-software-users"},
			{ID: "g3", Name: "site-admins"}, {ID: "g4", Name: "Jira-Admins"}},
		Users: []miniorangetest.User{
			hostileUser("1", "ann@example.com", "ann@example.com", "Ann", "One", "Engineering", "site-admins"),
			hostileUser("2", "bob@example.com", "bob@example.com", "Bob", "Two", "jira-software-users"),
			hostileUser("3", "cid@example.com", "cid@example.com", "Cid", "Three", "Jira-Admins"),
		},
	}
	w := newWorld(t, worldOpts{Org: org, Seed: 47})
	p := openInproc(t, faultConfig(w, t.TempDir()))
	_, runs := p.converge(ctx, 4, func(_ int, run reconcile.Run) {
		if run.Result == reconcile.ResultFailed {
			t.Errorf("pass failed: %s", runSummary(run))
		}
	})
	if dups := w.duplicates(); len(dups) > 0 {
		t.Errorf("duplicates: %v", dups)
	}
	for _, x := range w.writes.list() {
		if x.Template == "/rest/api/3/group" && x.Method == "POST" {
			switch strings.ToLower(x.GroupName) {
			case "jira-software-users", "site-admins", "jira-admins":
				t.Errorf("idsync created the existing group %q again", x.GroupName)
			}
		}
	}
	t.Logf("first pass: %s", runSummary(runs[0]))
	admins := func(name string) []string {
		g, _ := w.jira.Group(name)
		nb := w.names()
		var out []string
		for _, id := range g.Members {
			out = append(out, nb.account(id))
		}
		return out
	}
	hostileFigure("IdP groups named like product-access and admin groups", fmt.Sprintf("no crash, no duplicate group; site-admins now %v, jira-admins now %v", admins("site-admins"), admins("jira-admins")))

	t.Run("warns", func(t *testing.T) {
		for _, g := range []string{"jira-software-users", "site-admins", "jira-admins"} {
			if !warned(p.Logs, g) {
				t.Errorf("no warning names the IdP group %q that matches a Jira access group", g)
			}
		}
	})
	t.Run("no-admin-grant", func(t *testing.T) {
		for _, g := range []string{"site-admins", "jira-admins"} {
			if got := admins(g); len(got) != 1 || got[0] != jiratest.DefaultEmail {
				t.Errorf("Jira group %s holds %v: an IdP group name granted admin rights", g, got)
			}
		}
	})
}

// scaleSizes are the hostile sizes: members of one group, groups of one user.
func scaleSizes() (members, groups int) {
	if long {
		return 100000, 5000
	}
	return 1000, 150
}

// TestReliabilityHostileScale: a group with 100,000 members (1,000 in the default run) and a
// user in 5,000 groups (150) are read, planned and applied by `idsync reconcile` without a
// crash, and each pass ends with its summary line. (The binary runs at full speed; in-process
// under -race a 100,000-member pass takes many minutes.)
func TestReliabilityHostileScale(t *testing.T) {
	t.Parallel()
	timed(t)
	members, groups := scaleSizes()
	passOK := func(t *testing.T, e *procEnv) reconcile.Run {
		t.Helper()
		run, r := e.pass()
		if r.code != 0 || run.Result != reconcile.ResultOK {
			t.Fatalf("pass: %s\n%s", runSummary(run), proctest.Tail(r.stderr, 3000))
		}
		if !strings.Contains(r.stderr, `"message":"pass finished"`) {
			t.Errorf("no pass summary line:\n%s", proctest.Tail(r.stderr, 2000))
		}
		return run
	}

	t.Run(fmt.Sprintf("group-with-%d-members", members), func(t *testing.T) {
		// The IdP group is read whole (its member listing and every member's groups); it is
		// kept out of import_groups, so the Jira side is the site's accounts: they exist
		// before idsync (an existing site adopted), so the pass links them all by email and
		// creates only the newcomers. (Mapping it onto a Jira group of that size is left out:
		// jiratest filters a group's whole member list for every 50-member page.)
		const newcomers = 20
		org := miniorangetest.Org{Groups: []miniorangetest.Group{{ID: "g1", Name: "Everyone"}}}
		var seed jiratest.Seed
		for i := range members + newcomers {
			email := fmt.Sprintf("member.%06d@example.com", i)
			org.Users = append(org.Users, hostileUser(fmt.Sprint(i+1), email, email, "Member", fmt.Sprint(i), "Everyone"))
			if i < members {
				seed.Users = append(seed.Users, jiratest.User{Email: email, DisplayName: "Member " + fmt.Sprint(i)})
			}
		}
		w := newWorld(t, worldOpts{Org: org, Jira: seed, Seed: 51, MOBatchCap: 200})
		cfg := faultConfig(w, t.TempDir())
		cfg.Customers, cfg.Concurrency = "", 8
		cfg.DefaultGroups, cfg.ExcludeGroups = "[]", "[Everyone]"
		cfg.write(t)
		e := &procEnv{t: t, w: w, cfg: cfg}
		start := time.Now()
		first := passOK(t, e)
		took := time.Since(start)
		if first.Sources[0].Users != members+newcomers {
			t.Errorf("the source read %d users, want %d", first.Sources[0].Users, members+newcomers)
		}
		// Creating an account that exists answers 400 in Jira: the newcomers alone being
		// created (and the pass ok) means every existing account was matched.
		if got := applied(first, reconcile.KindCreateUser); got != newcomers {
			t.Errorf("created %d accounts, want the %d newcomers: %s", got, newcomers, runSummary(first))
		}
		start = time.Now()
		if again := passOK(t, e); !converged(again) {
			t.Errorf("the second pass still has work: %s", runSummary(again))
		}
		tookAgain := time.Since(start)
		if dups := w.duplicates(); len(dups) > 0 {
			t.Errorf("duplicates: %v", dups)
		}
		hostileFigure(fmt.Sprintf("group with %d members", members),
			fmt.Sprintf("%d existing accounts linked by email and %d newcomers created in a first pass of %s; the second pass (%s) finds nothing to do",
				members, newcomers, took.Round(100*time.Millisecond), tookAgain.Round(100*time.Millisecond)))
	})

	t.Run(fmt.Sprintf("user-in-%d-groups", groups), func(t *testing.T) {
		org := miniorangetest.Org{}
		var names []string
		for i := range groups {
			name := fmt.Sprintf("Team-%05d", i)
			names = append(names, name)
			org.Groups = append(org.Groups, miniorangetest.Group{ID: fmt.Sprint(100 + i), Name: name})
		}
		org.Users = []miniorangetest.User{hostileUser("1", "many@example.com", "many@example.com", "Many", "Groups", names...)}
		for i := range 5 {
			email := fmt.Sprintf("few.%d@example.com", i)
			org.Users = append(org.Users, hostileUser(fmt.Sprint(2+i), email, email, "Few", fmt.Sprint(i), names[i]))
		}
		w := newWorld(t, worldOpts{Org: org, Seed: 53, MOBatchCap: 200})
		cfg := faultConfig(w, t.TempDir())
		cfg.Customers, cfg.Concurrency = "", 8
		cfg.MaxRemovals, cfg.MaxPercent = 250, 10
		cfg.write(t)
		e := &procEnv{t: t, w: w, cfg: cfg}
		start := time.Now()
		passOK(t, e)
		took := time.Since(start)
		if again := passOK(t, e); !converged(again) {
			t.Errorf("the second pass still has work: %s", runSummary(again))
		}
		var in int
		w.inspect(func() { a, _ := w.jira.AccountByEmail("many@example.com"); in = len(a.Groups) })
		if in != groups+1 { // + jira-software-users
			t.Fatalf("the user is in %d Jira groups, want %d", in, groups+1)
		}
		// Leaving all but one group at once is a mass removal: the breaker holds it.
		for _, name := range names[1:] {
			if err := w.mo.RemoveFromGroup("many@example.com", name); err != nil {
				t.Fatal(err)
			}
		}
		run, r := e.pass()
		if r.code != 3 || run.Result != reconcile.ResultHeld || applied(run, removalKinds...) != 0 {
			t.Errorf("leaving %d groups at once: exit %d, %s; want the removals held (exit 3)", groups-1, r.code, runSummary(run))
		}
		if !strings.Contains(r.stderr, "circuit breaker") {
			t.Errorf("no log line names the circuit breaker:\n%s", proctest.Tail(r.stderr, 2000))
		}
		hostileFigure(fmt.Sprintf("user in %d groups", groups),
			fmt.Sprintf("%d groups created and joined in a first pass of %s; leaving them all at once is held by the breaker (exit 3)", groups, took.Round(100*time.Millisecond)))
	})
}
