package simulation

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/idsync/idsync/reconcile"
)

// Invariant names, as failures report them.
const (
	I1 = "I1 nothing-unowned-changed"
	I2 = "I2 leavers-lose-access"
	I3 = "I3 no-removal-on-incomplete-read"
	I4 = "I4 access-only-for-the-active"
	I5 = "I5 breaker-limits"
	I6 = "I6 converges-like-fault-free"
	I7 = "I7 audit-written-ahead"
	I8 = "I8 no-removal-the-idp-still-grants"
	I9 = "I9 reads-sized-by-what-arrived"
)

// Violation is one broken invariant.
type Violation struct {
	Invariant string
	Desc      string
}

// passKind says what started a pass.
type passKind string

const (
	kindFull     passKind = "full"     // a full pass after a step
	kindPush     passKind = "push"     // the targeted pass of debounced pushes
	kindStartup  passKind = "startup"  // the full pass after a restart
	kindConverge passKind = "converge" // the fault-free passes at the end
)

func (k passKind) full() bool { return k != kindPush }

// memKey names one membership.
type memKey struct{ group, acc string }

// passRecord is everything the invariants judge one pass by.
type passRecord struct {
	N, Step int
	Kind    passKind
	Faults  passFaults
	Run     reconcile.Run
	Crashed bool
	// Raced is set when a race push fired during the pass.
	Raced  bool
	Writes []Write // idsync's writes in this pass
	Before jiraState
	After  jiraState
	Params Params
	// ManagedUsers and ManagedMemberships are what the breaker weighs percentages against,
	// as the state stood when the pass started.
	ManagedUsers       int
	ManagedMemberships int
	// Approved are the item keys of an approved held plan in force when the pass started.
	Approved map[string]bool
	// Standing are the item keys whose approval stood when the pass started (approved items
	// Jira refused); a complete full pass applies them uncounted.
	Standing map[string]bool
	// StrayStanding are standing approvals of items no approval of the simulation showed.
	StrayStanding []string
	// Owner says who put each membership there (idsync, admin, seed) as the pass started.
	Owner map[memKey]string
	// ManagedEver are the Jira groups any mapping of the run named (and the default group).
	ManagedEver map[string]bool
	// Start is the IdP when the pass started; Model is the IdP now.
	Start view
	Model *model
	Dir   *directory
	TL    *timeline
}

func (p *passRecord) person(acc string) (string, *person) {
	id := p.Dir.person(acc)
	if id == "" {
		return "", nil
	}
	return id, p.Model.people[id]
}

// deprovisioning reports whether the pass took the account out of the default group (every
// deactivation does, and nothing else does while the person is wanted) or the IdP no longer
// wants the person: removals from managed groups are then steps of a deprovision.
func (p *passRecord) deprovisioning(acc string) bool {
	if _, per := p.person(acc); per != nil && per.Status != active {
		return true
	}
	for _, w := range p.Writes {
		if w.Method == http.MethodDelete && w.Template == "/rest/api/3/group/user" &&
			strings.EqualFold(w.GroupName, defaultGroup) && contains(w.Accounts, acc) {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// checkOwnership (I1): idsync never changes what it does not own: accounts no source knows
// (site admin, app account, customers, accounts made by hand) are never written, no account
// or group is deleted, no membership of a group it does not manage is removed, and a
// membership it did not add is removed only as a step of deprovisioning that person.
func checkOwnership(p *passRecord) []Violation {
	var out []Violation
	bad := func(format string, args ...any) {
		out = append(out, Violation{I1, fmt.Sprintf(format, args...)})
	}
	for _, w := range p.Writes {
		for _, acc := range w.Accounts {
			if why := p.Dir.protectedWhy(acc); why != "" {
				bad("%s touched %s (%s)", w, acc, why)
			}
		}
		switch {
		case w.Method == http.MethodDelete && (w.Template == "/rest/api/3/user" || w.Template == "/rest/api/3/group"):
			bad("%s: idsync deletes no account or group (deactivate: remove-access)", w)
		case w.Method == http.MethodDelete && w.Template == "/rest/api/3/group/user":
			g := strings.ToLower(w.GroupName)
			for _, acc := range w.Accounts {
				if !p.ManagedEver[g] && !productGroups[g] {
					bad("%s: removed %s from %s, a group idsync does not manage", w, acc, w.GroupName)
					continue
				}
				owner := p.Owner[memKey{g, acc}]
				if owner == "idsync" || !p.Before.member(g, acc) || p.deprovisioning(acc) {
					continue
				}
				bad("%s: removed %s from %s, a membership added by %s, not as a step of a deprovision", w, acc, w.GroupName, orWord(owner, "someone else"))
			}
		}
	}
	return out
}

func orWord(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// checkDeprovisioned (I2): every person in overdue (disabled or gone for K complete
// fault-free passes) holds no product access through any account of theirs.
func checkDeprovisioned(after jiraState, dir *directory, m *model, overdue []string, k int) []Violation {
	var out []Violation
	for _, pid := range overdue {
		for acc := range after.Accounts {
			if dir.person(acc) == pid && after.hasAccess(acc) {
				out = append(out, Violation{I2, fmt.Sprintf("%s is %s at every source for %d complete fault-free passes (K=%d) but account %s still has product access (groups %v)",
					m.people[pid].UserName, m.people[pid].Status, k, k, acc, after.groupsOf(acc))})
			}
		}
	}
	return out
}

// readIncomplete reports why the pass must not remove anything ("" when it may): a source
// read idsync reported incomplete, one a fault made incomplete for certain, or a targeted
// pass (which acts on explicit deprovisions only).
func readIncomplete(p *passRecord) string {
	if p.Kind == kindPush {
		return "targeted pass"
	}
	if p.Faults.readBroken() {
		return "source read broken (" + p.Faults.String() + ")"
	}
	for _, s := range p.Run.Sources {
		if !s.Complete {
			return "source " + s.Name + " read incomplete: " + s.Error
		}
	}
	return ""
}

// checkIncompleteRead (I3): a pass whose read was incomplete deactivates and removes
// nothing, except for people the IdP deprovisioned explicitly (a push that deleted them or
// set active:false, or a complete pull that listed them disabled): absence proves nothing
// then, an explicit word about that very person does.
func checkIncompleteRead(p *passRecord) []Violation {
	why := readIncomplete(p)
	if why == "" {
		return nil
	}
	var out []Violation
	for _, w := range p.Writes {
		if !w.removal() {
			continue
		}
		for _, acc := range w.Accounts {
			if pid, _ := p.person(acc); pid != "" && p.TL.explicitDeprovision(pid) {
				continue
			}
			out = append(out, Violation{I3, fmt.Sprintf("%s in a pass that must not remove anything: %s", w, why)})
		}
	}
	return out
}

// checkActiveSource (I4): no account is created, reactivated or given product access unless
// data the pass could be working from says its person is active.
func checkActiveSource(p *passRecord) []Violation {
	var out []Violation
	for _, w := range p.Writes {
		if !w.grantsAccess(productGroups) || len(w.Accounts) == 0 {
			continue
		}
		acc := w.Accounts[len(w.Accounts)-1]
		pid, per := p.person(acc)
		switch {
		case per == nil:
			out = append(out, Violation{I4, fmt.Sprintf("%s gives access to %s, which no IdP person holds", w, acc)})
		case !p.TL.mayBeActive(pid):
			out = append(out, Violation{I4, fmt.Sprintf("%s gives %s access, but no data this pass could read says they are active (now %s)", w, per.UserName, per.Status)})
		}
	}
	return out
}

// itemKey names a planned removal or deactivation the way an approval covers it: kind,
// account and target.
func itemKey(c reconcile.Change) string {
	t := ""
	switch {
	case c.Group != nil:
		t = c.Group.ID
		if t == "" {
			t = strings.ToLower(c.Group.Name)
		}
	case c.ServiceDesk != "":
		t = c.ServiceDesk
	case c.Organization != "" || c.OrganizationID != "":
		t = c.OrganizationID + "/" + strings.ToLower(c.Organization)
	}
	return string(c.Kind) + "|" + c.AccountID + "|" + t
}

// breakerAllows says whether the breaker lets n deactivations (or removals) through: at most
// max, and at most pct percent of of. A threshold of 0 holds every one.
func breakerAllows(n, limit int, pct float64, of int) bool {
	if n == 0 {
		return true
	}
	if n > limit {
		return false
	}
	share := 100.0
	if of > 0 {
		share = float64(n) * 100 / float64(of)
	}
	return share <= pct
}

// checkBreaker (I5): no pass removes or deactivates more than the breaker allows, apart
// from the items an approval covered exactly. It counts what the pass tried (its plan after
// the guards) and, independently, the accounts that lost all product access in Jira.
func checkBreaker(p *passRecord) []Violation {
	var out []Violation
	for _, k := range p.StrayStanding {
		out = append(out, Violation{I5, "a standing approval covers " + k + ", which no approval of the simulation showed"})
	}
	c := p.Run.Changes
	d, rem := 0, 0
	approvedAcc := map[string]bool{}
	if c != nil {
		for _, k := range reconcile.Kinds {
			if !k.IsRemoval() {
				continue
			}
			for _, ch := range *c.List(k) {
				if ch.Unsupported != "" {
					continue
				}
				if key := itemKey(ch); p.Approved[key] || (p.Run.Complete && p.Standing[key]) {
					if k == reconcile.KindDeactivateUser {
						approvedAcc[ch.AccountID] = true
					}
					continue
				}
				if k == reconcile.KindDeactivateUser {
					d++
				} else {
					rem++
				}
			}
		}
	}
	s := p.Params
	if !breakerAllows(d, s.MaxDeact, s.MaxPercent, p.ManagedUsers) {
		out = append(out, Violation{I5, fmt.Sprintf("the pass deactivated %d (not approved) of %d managed users; limits max_deactivations=%d max_deactivation_percent=%g",
			d, p.ManagedUsers, s.MaxDeact, s.MaxPercent)})
	}
	if !breakerAllows(rem, s.MaxRemovals, s.MaxPercent, p.ManagedMemberships) {
		out = append(out, Violation{I5, fmt.Sprintf("the pass removed %d memberships (not approved) of %d managed; limits max_membership_removals=%d max_deactivation_percent=%g",
			rem, p.ManagedMemberships, s.MaxRemovals, s.MaxPercent)})
	}
	// What Jira saw: accounts that had product access before the pass, have none after it,
	// and that idsync wrote to.
	lost := map[string]bool{}
	for _, w := range p.Writes {
		for _, acc := range w.Accounts {
			if w.removal() && p.Before.hasAccess(acc) && !p.After.hasAccess(acc) && !approvedAcc[acc] {
				lost[acc] = true
			}
		}
	}
	if len(lost) > d && !breakerAllows(len(lost), s.MaxDeact, s.MaxPercent, p.ManagedUsers) {
		out = append(out, Violation{I5, fmt.Sprintf("%d accounts lost all product access in the pass (%v); limits max_deactivations=%d max_deactivation_percent=%g of %d",
			len(lost), sortedKeys(lost), s.MaxDeact, s.MaxPercent, p.ManagedUsers)})
	}
	return out
}

// checkAudit (I7): every change idsync made in Jira had its write-ahead audit record on disk
// before the request arrived.
func checkAudit(writes []Write) []Violation {
	var out []Violation
	for _, w := range writes {
		if !w.Admin && !w.Ahead {
			out = append(out, Violation{I7, fmt.Sprintf("%s reached Jira without a write-ahead audit record: %s", w, w.Why)})
		}
	}
	return out
}

// checkUnresolved (I7, at the end): every write-ahead record got an outcome once the world
// converged.
func checkUnresolved(intents []string) []Violation {
	if len(intents) == 0 {
		return nil
	}
	return []Violation{{I7, fmt.Sprintf("%d write-ahead audit records never got an outcome (first: %v)", len(intents), intents[:min(5, len(intents))])}}
}

// checkDuplicates (I6, every pass): no account or group exists twice.
func checkDuplicates(emails, groups []string) []Violation {
	if len(emails)+len(groups) == 0 {
		return nil
	}
	return []Violation{{I6, fmt.Sprintf("duplicates: emails %v, groups %v", emails, groups)}}
}

// checkConvergence (I6, at the end): the faulty run ends where its fault-free twin ended.
// last describes the last of those passes.
func checkConvergence(want, got map[string]string, converged bool, passes int, last string) []Violation {
	var out []Violation
	if !converged {
		out = append(out, Violation{I6, fmt.Sprintf("no convergence within %d fault-free passes (approving every hold); the last: %s", passes, last)})
	}
	if d := diffStates(want, got, 8); len(d) > 0 {
		out = append(out, Violation{I6, "end state differs from the fault-free run: " + strings.Join(d, "; ")})
	}
	return out
}

// checkGrantedStays (I8): a pass never removes a membership the IdP grants both when the pass
// started and now (the flapping of a push that drops groups only the pull knows).
func checkGrantedStays(p *passRecord) []Violation {
	var out []Violation
	for _, w := range p.Writes {
		if w.Method != http.MethodDelete || w.Template != "/rest/api/3/group/user" {
			continue
		}
		g := strings.ToLower(w.GroupName)
		for _, acc := range w.Accounts {
			pid, per := p.person(acc)
			if per == nil || per.Status != active || p.Start.Status[pid] != active {
				continue
			}
			// The person's current account only: an old account of theirs may be let go.
			if a, ok := p.After.Accounts[acc]; !ok || !strings.EqualFold(a.Email, per.Email) {
				continue
			}
			now := p.Model.desiredGroups(per, p.Params)
			then := (&model{}).desiredGroups(&person{Status: active, Groups: p.Start.Groups[pid]}, p.Params)
			if now[g] && then[g] {
				out = append(out, Violation{I8, fmt.Sprintf("%s: removed %s from %s although the IdP grants it (groups %v)", w, per.UserName, w.GroupName, per.groupList())})
			}
		}
	}
	return out
}

// sortedViolations orders violations for stable reports.
func sortedViolations(vs []Violation) []Violation {
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].Invariant < vs[j].Invariant })
	return vs
}

// checkBounded (I9): reading a source never holds more goroutines than the bound, whatever
// count a listing claims.
func checkBounded(peak int) []Violation {
	if peak == 0 {
		return nil
	}
	return []Violation{{I9, fmt.Sprintf("%d goroutines while a source was read (bound %d): the read grew with a claimed count, not with what arrived", peak, goroutineBound)}}
}
