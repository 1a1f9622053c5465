package bench

import (
	"time"

	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// Caps are the page-size caps the minimums are computed with.
type Caps struct {
	// Source is the most items one miniOrange page returns: min(page_size, the service's
	// batch cap).
	Source int
	// JiraUsers is users/search (a bare array of up to 1000, no total).
	JiraUsers int
	// JiraGroups is group/bulk (a PageBean of up to 50).
	JiraGroups int
	// JiraMembers is group/member (a PageBean of up to 50).
	JiraMembers int
	// JSM is every servicedeskapi listing (up to 50).
	JSM int
}

// JiraCaps are the documented caps of the Jira Cloud APIs, as the simulator enforces them.
var JiraCaps = Caps{
	JiraUsers:   jiratest.CapUsersSearch,
	JiraGroups:  jiratest.CapGroupBulk,
	JiraMembers: jiratest.CapGroupMember,
	JSM:         jiratest.CapJSM,
}

// Shape is what the minimum number of calls of one pass depends on: the sizes the source
// lists, the state Jira is in before the pass, and the change the pass must make. It is
// built from the scenario (the generated org and the mutation applied to it), never from
// what a run did.
type Shape struct {
	Caps Caps

	// SourceUsers is the length of the users listing (disabled users included).
	SourceUsers int
	// SourceGroups holds the member count of every group the groups listing returns, the
	// automatic DEFAULT group (every user) included: the source contract reads each group's
	// member listing, and the listing returns DEFAULT like any other group.
	SourceGroups []int

	// JiraAccounts is what users/search lists before the pass (every account type).
	JiraAccounts int
	// JiraGroups is what group/bulk lists before the pass.
	JiraGroups int
	// ScopedGroupMembers holds the member count (inactive members included) of every group in
	// the pass's scope (managed, default and owned groups) that exists before the pass. Groups
	// created by the pass are not read.
	ScopedGroupMembers []int
	// SiteAdminGroupMembers holds the member count of every site-admin group.
	SiteAdminGroupMembers []int
	// AdminGroups is the number of groups of the admin access type (listed, members not read:
	// on-the-fly import must never grant admin rights, so the sink needs to know them).
	AdminGroups int
	// DiscoverProductAccess is true when sink.jira.product_access_groups is unset, so the
	// product-access groups come from /rest/api/3/applicationrole.
	DiscoverProductAccess bool
	// Desks is the number of service desks the site has, and DeskCustomers the customer count
	// of each desk in scope; both are ignored when no desk is in scope.
	Desks         int
	DeskCustomers []int

	// The writes the change needs, one call each.
	CreateUsers   int
	CreateGroups  int
	AddMembers    int
	RemoveMembers int
	AddCustomers  int
	// RemoveCustomers and DeactivationSteps: a remove-access deactivation takes one call per
	// group the person is in among the managed groups and the product-access groups.
	RemoveCustomers   int
	DeactivationSteps int
}

// pages is the number of calls a listing of n items takes at cap items a page: at least
// one, because an empty listing still has to be asked.
func pages(n, cap int) int {
	if cap <= 0 {
		cap = 1
	}
	if n <= 0 {
		return 1
	}
	return (n + cap - 1) / cap
}

// MinSourceReads is the fewest miniOrange calls a complete read takes:
//
//	pages(users) + pages(groups) + Σ over listed groups pages(members)
//
// with pages(n) = max(1, ceil(n / Caps.Source)). Calls to get-timestamp (made only to correct
// clock skew after an authentication failure) are not part of the minimum.
func (s Shape) MinSourceReads() int {
	n := pages(s.SourceUsers, s.Caps.Source) + pages(len(s.SourceGroups), s.Caps.Source)
	for _, m := range s.SourceGroups {
		n += pages(m, s.Caps.Source)
	}
	return n
}

// MinJiraReads is the fewest Jira reads a full live read takes:
//
//	floor(accounts / 1000) + 1                  users/search: a bare array without a total, so
//	                                            the listing ends at the first short page (a full
//	                                            last page costs one empty page more)
//	+ pages(groups, 50)                         group/bulk
//	+ Σ over scoped groups that exist pages(members, 50)   group/member, by groupId
//	+ 1 when product access is discovered       applicationrole
//	+ pages(site-admin groups, 50)              group/bulk?accessType=site-admin
//	+ Σ over site-admin groups pages(members, 50)
//	+ pages(admin groups, 50)                   group/bulk?accessType=admin
//	+ pages(desks, 50) + Σ over scoped desks pages(customers, 50)   only when desks are in scope
//
// The fixed overhead (applicationrole, the site-admin lookup and its member page, and the
// admin lookup: four calls on a default site) is counted: the safety contract forces it, since
// Jira marks neither site admins, admin groups nor product-access groups on the accounts or
// groups it lists, and deactivations and same-name imports must know them.
func (s Shape) MinJiraReads() int {
	users := 1
	if s.Caps.JiraUsers > 0 {
		users = s.JiraAccounts/s.Caps.JiraUsers + 1
	}
	n := users + pages(s.JiraGroups, s.Caps.JiraGroups)
	for _, m := range s.ScopedGroupMembers {
		n += pages(m, s.Caps.JiraMembers)
	}
	if s.DiscoverProductAccess {
		n++
	}
	n += pages(len(s.SiteAdminGroupMembers), s.Caps.JiraGroups)
	for _, m := range s.SiteAdminGroupMembers {
		n += pages(m, s.Caps.JiraMembers)
	}
	n += pages(s.AdminGroups, s.Caps.JiraGroups)
	if len(s.DeskCustomers) > 0 {
		n += pages(s.Desks, s.Caps.JSM)
		for _, c := range s.DeskCustomers {
			n += pages(c, s.Caps.JSM)
		}
	}
	return n
}

// MinReads is MinSourceReads + MinJiraReads.
func (s Shape) MinReads() int { return s.MinSourceReads() + s.MinJiraReads() }

// MinWrites is one Jira call per created user, created group, membership added or removed,
// customer added or removed, and remove-access deactivation step (Jira takes one member per
// call). A default-group membership of a user created in the same pass is not a write when
// the group is a default group of the product the account is created with: POST /user puts
// the account there itself (the scenarios here map default_groups to exactly that group).
func (s Shape) MinWrites() int {
	return s.CreateUsers + s.CreateGroups + s.AddMembers + s.RemoveMembers +
		s.AddCustomers + s.RemoveCustomers + s.DeactivationSteps
}

// FloorSeconds is the time the simulated site makes unavoidable for the minimum calls: the
// rate bound, min Jira calls / rate (the site's one bucket caps Jira only; the source is not
// paced), or the latency bound, all minimum calls (source and Jira) x latency / concurrency,
// whichever is larger. Zero when neither a rate nor a latency is set.
func FloorSeconds(minJira, minAll int, rate float64, latency time.Duration, concurrency int) float64 {
	var byRate, byLatency float64
	if rate > 0 {
		byRate = float64(minJira) / rate
	}
	if concurrency < 1 {
		concurrency = 1
	}
	if latency > 0 {
		byLatency = float64(minAll) * latency.Seconds() / float64(concurrency)
	}
	return max(byRate, byLatency)
}
