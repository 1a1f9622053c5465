package bench

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// handOrg is the hand-counted case: 10 users, 3 groups, 2 memberships each.
//
//	A: u1 u2 u3 u4 u7 u8 u10  (7)
//	B: u1 u2 u5 u6 u7 u9 u10  (7)
//	C: u3 u4 u5 u6 u8 u9      (6)
func handOrg() Org {
	in := map[string][]string{
		"u1": {"A", "B"}, "u2": {"A", "B"}, "u3": {"A", "C"}, "u4": {"A", "C"}, "u5": {"B", "C"},
		"u6": {"B", "C"}, "u7": {"A", "B"}, "u8": {"A", "C"}, "u9": {"B", "C"}, "u10": {"A", "B"},
	}
	o := Org{Groups: []string{"A", "B", "C"}}
	for _, n := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10"} {
		o.Users = append(o.Users, OrgUser{Name: n, Email: n + "@example.com", Groups: in[n]})
	}
	return o
}

// handCaps shrinks every page cap so that each listing takes several pages.
var handCaps = Caps{Source: 4, JiraUsers: 5, JiraGroups: 2, JiraMembers: 3, JSM: 2}

func TestMinimumsHandCounted(t *testing.T) {
	org := handOrg()
	// The churn: u1 moves A -> C, u10 leaves, h1 is hired into B. Afterwards
	// A: u2 u3 u4 u7 u8 (5), B: u1 u2 u5 u6 u7 u9 h1 (7), C: u1 u3 u4 u5 u6 u8 u9 (7).
	churn := Churn{
		Moves:   []Move{{User: "u1", From: "A", To: "C"}},
		Leavers: []string{"u10"},
		Hires:   []OrgUser{{Name: "h1", Email: "h1@example.com", Groups: []string{"B"}}},
	}
	after := org.Apply(churn)

	tests := []struct {
		name                  string
		before                *Org
		after                 Org
		source, jira, writes  int
		creates, groups, adds int
		removes, deact        int
	}{
		{
			// Source, cap 4: users ceil(10/4)=3, groups listing (DEFAULT+3=4) 1, members of
			// DEFAULT (10) 3, A (7) 2, B (7) 2, C (6) 2: 13.
			// Jira, seeded site: users/search floor(2/5)+1=1, group/bulk ceil(3/2)=2,
			// jira-software-users (1 member) 1, applicationrole 1, site-admin lookup 1 and
			// its members (1) 1, admin lookup (jira-admins) 1: 8.
			// Writes: 10 users + 3 groups + 20 memberships (the default group comes with the
			// account): 33.
			name: "initial", before: nil, after: org,
			source: 13, jira: 8, writes: 33, creates: 10, groups: 3, adds: 20,
		},
		{
			// Source as above: 13.
			// Jira after the first sync: users/search floor(12/5)+1=3, group/bulk (6 groups)
			// 3, members A (7) 3, B (7) 3, C (6) 2, jira-software-users (11) 4, fixed 4: 22.
			name: "noop", before: &org, after: org,
			source: 13, jira: 22, writes: 0,
		},
		{
			// Source: users 10 -> 3, groups 1, DEFAULT (10) 3, A (5) 2, B (7) 2, C (7) 2: 13.
			// Jira as in noop (the same site before the pass): 22.
			// Writes: create h1 1; add u1->C, h1->B 2; remove u1 from A 1; deactivate u10
			// from A, B and jira-software-users 3: 7.
			name: "churn", before: &org, after: after,
			source: 13, jira: 22, writes: 7, creates: 1, adds: 2, removes: 1, deact: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ShapeOf(tt.before, tt.after, handCaps)
			if got := s.MinSourceReads(); got != tt.source {
				t.Errorf("MinSourceReads = %d, want %d (shape %+v)", got, tt.source, s)
			}
			if got := s.MinJiraReads(); got != tt.jira {
				t.Errorf("MinJiraReads = %d, want %d (shape %+v)", got, tt.jira, s)
			}
			if got := s.MinReads(); got != tt.source+tt.jira {
				t.Errorf("MinReads = %d, want %d", got, tt.source+tt.jira)
			}
			if got := s.MinWrites(); got != tt.writes {
				t.Errorf("MinWrites = %d, want %d (shape %+v)", got, tt.writes, s)
			}
			if s.CreateUsers != tt.creates || s.CreateGroups != tt.groups || s.AddMembers != tt.adds ||
				s.RemoveMembers != tt.removes || s.DeactivationSteps != tt.deact {
				t.Errorf("writes by kind = %d users, %d groups, %d adds, %d removes, %d deactivation steps; want %d, %d, %d, %d, %d",
					s.CreateUsers, s.CreateGroups, s.AddMembers, s.RemoveMembers, s.DeactivationSteps,
					tt.creates, tt.groups, tt.adds, tt.removes, tt.deact)
			}
		})
	}
}

func TestMinimumsEdges(t *testing.T) {
	// An empty group still costs one member listing and is not created; a fourth group
	// pushes the groups listing (DEFAULT + 4 = 5) to two pages: 3 + 2 + 3 + 2 + 2 + 2 + 1.
	org := handOrg()
	org.Groups = append(org.Groups, "D")
	s := ShapeOf(nil, org, handCaps)
	if got := s.MinSourceReads(); got != 15 {
		t.Errorf("MinSourceReads with an empty group = %d, want 15", got)
	}
	if s.CreateGroups != 3 {
		t.Errorf("CreateGroups = %d, want 3 (an empty group is not created)", s.CreateGroups)
	}

	// users/search has no total: a full last page costs one empty page more.
	for accounts, want := range map[int]int{0: 1, 4: 1, 5: 2, 9: 2, 10: 3} {
		s := Shape{Caps: handCaps, JiraAccounts: accounts}
		// The rest of a bare shape: group/bulk, the site-admin and the admin lookups, one page each.
		if got := s.MinJiraReads() - 3; got != want {
			t.Errorf("users/search pages for %d accounts = %d, want %d", accounts, got, want)
		}
	}

	// Desks in scope: the desk listing plus the customers of each scoped desk, 2 a page:
	// desks (3) 2, customers (0) 1 and (5) 3.
	d := Shape{Caps: handCaps, Desks: 3, DeskCustomers: []int{0, 5}}
	if got := d.MinJiraReads() - 4; got != 6 { // minus users/search, group/bulk, site-admin and admin lookups
		t.Errorf("JSM pages = %d, want 6", got)
	}
	// A disabled user has no account: nothing is created for them, yet the source lists them.
	org = handOrg()
	org.Users[0].Disabled = true
	s = ShapeOf(nil, org, handCaps)
	if s.CreateUsers != 9 || s.AddMembers != 18 || s.SourceUsers != 10 {
		t.Errorf("with one disabled user: %d creates, %d adds, %d listed; want 9, 18, 10", s.CreateUsers, s.AddMembers, s.SourceUsers)
	}
	// Disabling a synced user deactivates them: their 2 groups and the default group.
	after := handOrg()
	after.Users[0].Disabled = true
	before := handOrg()
	if s := ShapeOf(&before, after, handCaps); s.DeactivationSteps != 3 || s.MinWrites() != 3 {
		t.Errorf("disabling u1: %d deactivation steps, %d writes; want 3 and 3", s.DeactivationSteps, s.MinWrites())
	}
}

func TestFloorSeconds(t *testing.T) {
	tests := []struct {
		name          string
		jira, all     int
		rate          float64
		latency       time.Duration
		conc          int
		want          float64
		wantApproxTol float64
	}{
		{"rate bound", 40, 53, 10, 100 * time.Millisecond, 4, 4.0, 0}, // 40/10 > 53*0.1/4
		{"latency bound", 40, 53, 10, time.Second, 4, 13.25, 1e-9},    // 53*1/4 > 40/10
		{"reference org", 12106, 12227, 200, 10 * time.Millisecond, 8, 60.53, 1e-9},
		{"unlimited and instant", 40, 53, 0, 0, 4, 0, 0},
		{"concurrency 0 is 1", 1, 10, 0, time.Second, 0, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FloorSeconds(tt.jira, tt.all, tt.rate, tt.latency, tt.conc)
			if math.Abs(got-tt.want) > tt.wantApproxTol {
				t.Errorf("FloorSeconds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlanChurn(t *testing.T) {
	o := orgOfSize(2000, 100, 5)
	c, err := PlanChurn(o, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Moves) != 10 || len(c.Leavers) != 5 || len(c.Hires) != 5 {
		t.Fatalf("churn of 2000 users = %d moves, %d leavers, %d hires; want 10, 5, 5 (1%%: half, a quarter, a quarter)",
			len(c.Moves), len(c.Leavers), len(c.Hires))
	}
	again, _ := PlanChurn(o, 7)
	if !slices.Equal(c.Leavers, again.Leavers) || !slices.Equal(c.Moves, again.Moves) {
		t.Error("PlanChurn is not deterministic for one seed")
	}
	byName := map[string]OrgUser{}
	for _, u := range o.Users {
		byName[u.Name] = u
	}
	touched := map[string]bool{}
	for _, m := range c.Moves {
		u := byName[m.User]
		if !slices.Contains(u.Groups, m.From) || slices.Contains(u.Groups, m.To) {
			t.Errorf("move %+v: from must be one of %v and to none of them", m, u.Groups)
		}
		touched[m.User] = true
	}
	for _, l := range c.Leavers {
		if touched[l] {
			t.Errorf("%s both moves and leaves", l)
		}
	}
	after := o.Apply(c)
	if len(after.Users) != 2000 || after.Memberships() != o.Memberships()-5*5+5 {
		t.Errorf("after the churn: %d users, %d memberships; want 2000 and %d", len(after.Users), after.Memberships(), o.Memberships()-20)
	}
	if len(o.Users) != 2000 || o.Memberships() != 10000 {
		t.Error("Apply changed the org it was called on")
	}
	small, err := PlanChurn(orgOfSize(30, 5, 2), 1)
	if err != nil || small.Size() != 4 || len(small.Moves) != 2 || len(small.Leavers) != 1 || len(small.Hires) != 1 {
		t.Errorf("churn of a 30-user org = %+v, %v; want 2 moves, 1 leaver, 1 hire", small, err)
	}
	if _, err := PlanChurn(orgOfSize(30, 2, 2), 1); err == nil {
		t.Error("PlanChurn found moves although every user is in every group")
	}
}

// orgOfSize builds an org without the simulator: user i is in groups i, i+1, ... (mod g).
func orgOfSize(users, groups, per int) Org {
	o := Org{}
	for g := range groups {
		o.Groups = append(o.Groups, fmt.Sprintf("G%03d", g))
	}
	for i := range users {
		name := fmt.Sprintf("user%d@example.com", i)
		u := OrgUser{Name: name, Email: name}
		for k := range per {
			u.Groups = append(u.Groups, o.Groups[(i+k)%groups])
		}
		o.Users = append(o.Users, u)
	}
	return o
}

func TestParseVmHWM(t *testing.T) {
	status := []byte("Name:\tbench\nVmPeak:\t  200 kB\nVmHWM:\t   123456 kB\nVmRSS:\t 100 kB\n")
	if v, ok := parseVmHWM(status); !ok || v != 123456*1024 {
		t.Errorf("parseVmHWM = %d, %v; want %d", v, ok, 123456*1024)
	}
	if _, ok := parseVmHWM([]byte("VmHWM:\tlots\n")); ok {
		t.Error("parseVmHWM accepted a malformed line")
	}
	if PeakRSS() == 0 {
		t.Error("PeakRSS = 0 on this platform")
	}
}
