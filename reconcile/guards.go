package reconcile

import (
	"fmt"
	"maps"
	"strings"

	"github.com/idsync/idsync/configs"
)

// Guard names, as Held.Guard reports them.
const (
	GuardIdentity   = "identity"
	GuardPolicy     = "policy"
	GuardOwnership  = "ownership"
	GuardIncomplete = "incomplete"
	GuardGrace      = "grace"
	GuardBreaker    = "breaker"
)

// Held is a planned change a guard kept out of the pass, and why. Identity, policy and
// ownership drop items for good (by safety rule or configuration); incomplete, grace and
// breaker hold them until a later pass may apply them.
type Held struct {
	Change Change `json:"change"`
	Guard  string `json:"guard"`
	Reason string `json:"reason"`
}

// Waiting reports whether the item should apply in a later pass (as opposed to being dropped
// by configuration).
func (h Held) Waiting() bool {
	return h.Guard == GuardIncomplete || h.Guard == GuardGrace || h.Guard == GuardBreaker
}

// filter keeps the items of every kind for which keep returns "" and holds the others with
// the returned reason. Links, Forget and Notes pass through.
func filter(c Changes, guard string, keep func(Change) string) (Changes, []Held) {
	var held []Held
	out := c
	for _, k := range Kinds {
		in := *c.List(k)
		var kept []Change
		for i, ch := range in {
			why := keep(ch)
			if why == "" {
				if kept != nil {
					kept = append(kept, ch)
				}
				continue
			}
			if kept == nil {
				kept = make([]Change, i, len(in))
				copy(kept, in[:i])
			}
			held = append(held, Held{Change: ch, Guard: guard, Reason: why})
		}
		if kept != nil {
			*out.List(k) = kept
		}
	}
	return out, held
}

// PolicyGuard applies safety.policy: sync keeps everything; upsert-only drops removals and
// deactivations; create-only keeps only creates and the adds that give created or existing
// people their memberships (no updates, reactivations, removals or deactivations). An unknown
// policy is treated as upsert-only, the safe reading.
func PolicyGuard(c Changes, policy string) (Changes, []Held) {
	switch policy {
	case "", configs.PolicySync:
		return c, nil
	case configs.PolicyCreateOnly:
		dropped := map[string]bool{}
		for _, ch := range c.ReactivateUsers {
			dropped[PersonKey(ch)] = true
		}
		return filter(c, GuardPolicy, func(ch Change) string {
			switch ch.Kind {
			case KindCreateGroup, KindCreateUser, KindCreateCustomer:
				return ""
			case KindAddMember, KindAddCustomer, KindAddOrganizationMember:
				if dropped[PersonKey(ch)] {
					return "policy create-only: the account's reactivation is not applied"
				}
				return ""
			}
			return "policy create-only applies creates and adds only"
		})
	default:
		why := "policy upsert-only never removes or deactivates"
		if policy != configs.PolicyUpsertOnly {
			why = fmt.Sprintf("unknown policy %q is treated as upsert-only", policy)
		}
		return filter(c, GuardPolicy, func(ch Change) string {
			if ch.Kind.IsRemoval() {
				return why
			}
			return ""
		})
	}
}

// ActiveView is what the identity guard checks a plan against: the desired people, the stored
// links and the live accounts (for their emails).
type ActiveView struct {
	People   []Person
	Links    []Link
	Accounts []Account
}

// IdentityGuard enforces the safety invariant "never deprovision someone the sources want":
// it drops every deactivation, and every removal made as part of a deprovision, of an account
// that an active desired person matches, through a stored link of any of their records or
// through the account's email (case-insensitive). The planner keeps the same invariant; this
// guard repeats it independently of the planner's matching, so a planner bug can never lock
// out a wanted person. It runs first, before policy.
func IdentityGuard(c Changes, v ActiveView) (Changes, []Held) {
	cand := map[string]bool{}
	for _, k := range Kinds {
		if !k.IsRemoval() {
			continue
		}
		for _, ch := range *c.List(k) {
			if ch.AccountID != "" && (k == KindDeactivateUser || ch.Deprovision != "") {
				cand[ch.AccountID] = true
			}
		}
	}
	if len(cand) == 0 {
		return c, nil
	}
	byEmail := map[string]string{}
	for _, a := range v.Accounts {
		if cand[a.AccountID] && a.Email != "" {
			byEmail[lower(strings.TrimSpace(a.Email))] = a.AccountID
		}
	}
	byRec := map[Record]string{}
	for _, l := range v.Links {
		if cand[l.AccountID] {
			byRec[Record{Source: l.Source, Key: l.Key}] = l.AccountID
		}
	}
	wanted := map[string]string{}
	for i := range v.People {
		per := &v.People[i]
		if !per.Active {
			continue
		}
		for _, r := range per.Records {
			if id, ok := byRec[r]; ok {
				wanted[id] = "active person " + per.UserName + " (" + r.Source + "/" + r.Key + ") is linked to this account"
			}
		}
		if per.Email == "" {
			continue
		}
		if id, ok := byEmail[lower(strings.TrimSpace(per.Email))]; ok {
			if _, dup := wanted[id]; !dup {
				wanted[id] = "active person " + per.UserName + " has this account's email"
			}
		}
	}
	if len(wanted) == 0 {
		return c, nil
	}
	return filter(c, GuardIdentity, func(ch Change) string {
		if !ch.Kind.IsRemoval() || (ch.Kind != KindDeactivateUser && ch.Deprovision == "") {
			return ""
		}
		if why, ok := wanted[ch.AccountID]; ok {
			return why + ": never deprovisioned"
		}
		return ""
	})
}

// PersonKey identifies the person of a change (the winning source record).
func PersonKey(c Change) string { return c.Source + "/" + c.UserKey }

// OwnershipView is what the ownership guard needs: links, ownership records, authoritative
// group names and the live accounts (types and site-admin flags).
type OwnershipView struct {
	Links         []Link
	Owned         []Owned
	Authoritative []string
	Accounts      []Account
}

// OwnershipGuard keeps only what idsync may take away: deactivations of linked accounts,
// removals of memberships, customers and organization members it owns, and any membership of
// an authoritative group. Site admins, app and customer accounts that no link maps are never
// touched.
func OwnershipGuard(c Changes, v OwnershipView) (Changes, []Held) {
	linked := make(map[string]bool, len(v.Links))
	for _, l := range v.Links {
		linked[l.AccountID] = true
	}
	for _, l := range c.Links {
		linked[l.AccountID] = true // matched by email in this very pass: mapped to a person
	}
	g := ownershipCheck{owned: ownedCandidates(c, v.Owned), linked: linked, auth: lowerSet(v.Authoritative), protected: protectedAccounts(v.Accounts)}
	return filter(c, GuardOwnership, g.verdict)
}

// ownedKey names one container of ownership records.
type ownedKey struct {
	kind      OwnedKind
	container string
}

// ownedCandidates says, for every account a removal of c names, whether idsync owns that
// membership. It indexes only the candidates, by container, then scans the (large,
// container-grouped) ownership list once: records of containers without a candidate cost a
// string compare.
func ownedCandidates(c Changes, all []Owned) map[ownedKey]map[string]bool {
	owned := map[ownedKey]map[string]bool{}
	want := func(k OwnedKind, container, account string) {
		m := owned[ownedKey{k, container}]
		if m == nil {
			m = map[string]bool{}
			owned[ownedKey{k, container}] = m
		}
		m[account] = false
	}
	for _, ch := range c.RemoveMembers {
		if ch.Group != nil {
			want(OwnedMembership, ch.Group.ID, ch.AccountID)
		}
	}
	for _, ch := range c.RemoveCustomers {
		want(OwnedCustomer, ch.ServiceDesk, ch.AccountID)
	}
	for _, ch := range c.RemoveOrganizationMembers {
		want(OwnedOrganization, ch.OrganizationID, ch.AccountID)
		want(OwnedOrganization, OrgPlaceholder(ch.Organization), ch.AccountID)
	}
	if len(owned) == 0 {
		return owned
	}
	var last ownedKey
	var lastM map[string]bool
	for i := range all {
		o := &all[i]
		if o.Kind != last.kind || o.Container != last.container {
			last = ownedKey{o.Kind, o.Container}
			lastM = owned[last]
		}
		if lastM == nil {
			continue
		}
		if _, cand := lastM[o.AccountID]; cand {
			lastM[o.AccountID] = true
		}
	}
	return owned
}

// protectedAccounts names the accounts never touched unless linked, and why.
func protectedAccounts(accounts []Account) map[string]string {
	protected := map[string]string{}
	for _, a := range accounts {
		switch {
		case a.SiteAdmin:
			protected[a.AccountID] = "site admin"
		case a.AccountType == AccountApp:
			protected[a.AccountID] = "app account"
		case a.AccountType == AccountCustomer:
			protected[a.AccountID] = "customer account"
		}
	}
	return protected
}

// ownershipCheck is what the ownership guard judges a removal by.
type ownershipCheck struct {
	owned     map[ownedKey]map[string]bool
	linked    map[string]bool
	auth      map[string]bool // authoritative Jira groups (lower case)
	protected map[string]string
}

func (g ownershipCheck) isOwned(k OwnedKind, container, account string) bool {
	return g.owned[ownedKey{k, container}][account]
}

// verdict returns why the guard drops ch, or "" to keep it.
func (g ownershipCheck) verdict(ch Change) string {
	if !ch.Kind.IsRemoval() {
		return ""
	}
	if ch.AccountID == "" {
		return "no account to act on"
	}
	if what, p := g.protected[ch.AccountID]; p && !g.linked[ch.AccountID] {
		return what + " not linked to any source record: never touched"
	}
	switch ch.Kind {
	case KindDeactivateUser:
		if !g.linked[ch.AccountID] {
			return "account is not linked to any source record"
		}
	case KindRemoveMember:
		if ch.Group == nil {
			return "no group"
		}
		if !g.isOwned(OwnedMembership, ch.Group.ID, ch.AccountID) && !g.auth[lower(ch.Group.Name)] {
			return "membership not added by idsync and group " + ch.Group.Name + " is not authoritative"
		}
	case KindRemoveCustomer:
		if !g.isOwned(OwnedCustomer, ch.ServiceDesk, ch.AccountID) {
			return "customer access not granted by idsync"
		}
	case KindRemoveOrganizationMember:
		if !g.isOwned(OwnedOrganization, ch.OrganizationID, ch.AccountID) && !g.isOwned(OwnedOrganization, OrgPlaceholder(ch.Organization), ch.AccountID) {
			return "organization membership not added by idsync"
		}
	}
	return ""
}

// IncompleteGuard holds every deactivation and removal of a pass whose picture of the sources
// is incomplete (reason says why: a failed read, a source-limited pass, a targeted pass).
// With allowExplicit (targeted passes), explicit deprovisions still apply: they rest on what
// the IdP said about that very person, not on anyone's absence.
func IncompleteGuard(c Changes, reason string, allowExplicit bool) (Changes, []Held) {
	if reason == "" {
		return c, nil
	}
	return filter(c, GuardIncomplete, func(ch Change) string {
		if !ch.Kind.IsRemoval() {
			return ""
		}
		if allowExplicit && ch.Deprovision == DeprovisionExplicit {
			return ""
		}
		return reason + ": no deactivation or removal until a complete full pass"
	})
}

// GraceGuard holds deprovisions of people missing from every source until their link has
// been missing for gracePasses complete passes. Explicit deprovisions skip grace.
func GraceGuard(c Changes, links []Link, gracePasses int) (Changes, []Held) {
	byKey := make(map[string]int, len(links))
	for _, l := range links {
		byKey[l.LinkKey()] = l.MissingPasses
	}
	return filter(c, GuardGrace, func(ch Change) string {
		if ch.Deprovision != DeprovisionMissing {
			return ""
		}
		n, ok := byKey[ch.Source+"/"+ch.UserKey]
		if !ok {
			return "no link to count missing passes"
		}
		if n >= gracePasses {
			return ""
		}
		return fmt.Sprintf("missing from every source for %d of %d complete passes (safety.grace_passes)", n, gracePasses)
	})
}

// BreakerInput is what the circuit breaker weighs a plan against.
type BreakerInput struct {
	Safety configs.SafetyConfig
	// ManagedUsers is the number of linked, not deactivated accounts; ManagedMemberships the
	// number of memberships, customers and organization members idsync manages.
	ManagedUsers       int
	ManagedMemberships int
	// Hold is the open held plan, if any.
	Hold *HeldPlan
	// Full is true for complete, full passes: only they consume an approval or replace the
	// held plan.
	Full bool
	// Standing are item keys whose approval stands (StandingApproval): a full pass applies
	// them without counting them, whatever else the breaker decides.
	Standing map[string]bool
}

// Breaker decisions.
const (
	BreakerPass    = "pass"    // nothing held
	BreakerRelease = "release" // an open hold is resolved: clear it
	BreakerHold    = "hold"    // hold everything and store this pass's held plan
	BreakerKeep    = "keep"    // hold everything, keep the stored held plan
)

// Trip is the breaker's verdict.
type Trip struct {
	Decision      string `json:"decision"`
	Reason        string `json:"reason,omitempty"`
	Deactivations int    `json:"deactivations"`
	Removals      int    `json:"removals"`
	// Approved counts the items of this pass an approval covered (not in Deactivations or
	// Removals, which count what the breaker judged).
	Approved     int  `json:"approved,omitempty"`
	UsedApproval bool `json:"usedApproval,omitempty"`
}

// Held reports whether the pass holds its deactivations and removals.
func (t Trip) Held() bool { return t.Decision == BreakerHold || t.Decision == BreakerKeep }

// Breaker is the deletion circuit breaker. It counts what would really be applied and, when
// a limit is exceeded or a hold is already open, holds every deactivation and removal of the
// pass (creates, updates and adds still apply). A threshold of 0 holds every one: no value
// switches the breaker off.
//
// An approval binds to the items the held plan showed (DESIGN "An approval binds to the items
// it showed"): the next complete full pass applies the approved items it still plans, and
// judges every other deactivation and removal on its own, as if the approved ones were not
// there. Approving N held items never lets N other accounts go. An approved item Jira refused
// keeps its approval (in.Standing) and is retried by every full pass without being counted,
// even while a newer hold is open: otherwise each approval would cover only half of what a
// permanently refused removal keeps the breaker holding, and holds would alternate forever.
func Breaker(c Changes, in BreakerInput) (Changes, []Held, Trip) {
	t := Trip{Decision: BreakerPass}
	h := in.Hold
	holdApproved := h != nil && h.Approved && in.Full
	var approved map[string]bool
	if holdApproved {
		approved = h.Changes.ItemKeys()
	}
	if in.Full && len(in.Standing) > 0 {
		approved = maps.Clone(approved)
		if approved == nil {
			approved = make(map[string]bool, len(in.Standing))
		}
		maps.Copy(approved, in.Standing)
	}
	count := func(ch Change) {
		if ch.Unsupported != "" {
			return
		}
		if approved[ch.ItemKey()] {
			t.Approved++
			return
		}
		if ch.Kind == KindDeactivateUser {
			t.Deactivations++
		} else {
			t.Removals++
		}
	}
	for _, k := range Kinds {
		if k.IsRemoval() {
			for _, ch := range *c.List(k) {
				count(ch)
			}
		}
	}
	over := exceeds(t.Deactivations, t.Removals, in)
	switch {
	case holdApproved:
		t.UsedApproval = true
		if over == "" {
			t.Decision = BreakerRelease
			t.Reason = fmt.Sprintf("approved by %s (run %s): %d approved items apply", h.ApprovedBy, h.RunID, t.Approved)
			return c, nil, t
		}
		// The approved items apply; the others trip the breaker on their own and are held in
		// a new plan.
		t.Decision = BreakerHold
		t.Reason = fmt.Sprintf("%s (beyond the %d items approved in run %s)", over, t.Approved, h.RunID)
	case h != nil && in.Full && t.Deactivations == 0 && t.Removals == 0:
		t.Decision = BreakerRelease
		t.Reason = "hold of run " + h.RunID + " released: a complete pass had nothing left to hold"
		return c, nil, t
	case h != nil:
		t.Decision = BreakerKeep
		if in.Full {
			t.Decision = BreakerHold
		}
		t.Reason = "a hold is open (run " + h.RunID + ") until `idsync approve " + h.RunID + "`"
		if over != "" {
			t.Reason = over + "; " + t.Reason
		}
	case over != "":
		t.Decision = BreakerHold
		t.Reason = over
	default:
		return c, nil, t
	}
	if t.Deactivations == 0 && t.Removals == 0 {
		if t.Decision == BreakerHold && h != nil && !t.UsedApproval {
			t.Decision = BreakerKeep
		}
		return c, nil, t
	}
	out, held := filter(c, GuardBreaker, func(ch Change) string {
		if ch.Kind.IsRemoval() && !approved[ch.ItemKey()] {
			return "circuit breaker: " + t.Reason
		}
		return ""
	})
	return out, held, t
}

// exceeds says which limits deact deactivations and rem removals pass. A limit of 0 is
// exceeded by any one: 0 means "hold every one", never "off".
func exceeds(deact, rem int, in BreakerInput) string {
	s := in.Safety
	var why []string
	if deact > s.MaxDeactivations {
		why = append(why, fmt.Sprintf("%d deactivations exceed safety.max_deactivations %d", deact, s.MaxDeactivations))
	}
	if deact > 0 && percent(deact, in.ManagedUsers) > s.MaxDeactivationPercent {
		why = append(why, fmt.Sprintf("%d deactivations are %.1f%% of %d managed users (safety.max_deactivation_percent %g)",
			deact, percent(deact, in.ManagedUsers), in.ManagedUsers, s.MaxDeactivationPercent))
	}
	if rem > s.MaxMembershipRemovals {
		why = append(why, fmt.Sprintf("%d removals exceed safety.max_membership_removals %d", rem, s.MaxMembershipRemovals))
	}
	if rem > 0 && percent(rem, in.ManagedMemberships) > s.MaxDeactivationPercent {
		why = append(why, fmt.Sprintf("%d removals are %.1f%% of %d managed memberships (safety.max_deactivation_percent %g)",
			rem, percent(rem, in.ManagedMemberships), in.ManagedMemberships, s.MaxDeactivationPercent))
	}
	return strings.Join(why, "; ")
}

func percent(n, of int) float64 {
	if of <= 0 {
		return 100
	}
	return float64(n) * 100 / float64(of)
}

// The breaker's denominators.

// Authoritative names the groups declared authoritative: idsync owns them whole.
func Authoritative(d Desired) []string {
	var out []string
	for _, g := range d.Groups {
		if g.Authoritative {
			out = append(out, g.Name)
		}
	}
	return out
}

// ManagedUsers counts the linked accounts idsync manages (not deactivated, not customers):
// the denominator of max_deactivation_percent.
func ManagedUsers(links []Link) int {
	seen := make(map[string]bool, len(links))
	for _, l := range links {
		if !l.Deactivated && !l.Customer {
			seen[l.AccountID] = true
		}
	}
	return len(seen)
}

// ManagedMemberships counts what idsync manages: owned memberships, customers and organization
// members, plus the members of authoritative groups it does not own.
func ManagedMemberships(owned []Owned, live Live, d Desired) int {
	n := 0
	type key struct{ c, a string }
	auth := lowerSet(Authoritative(d))
	authID := map[string]bool{}
	for _, g := range live.Groups {
		if auth[lower(g.Name)] {
			authID[g.ID] = true
		}
	}
	ownedM := map[key]bool{}
	for i := range owned {
		o := &owned[i]
		if o.Kind != OwnedGroup {
			n++
		}
		if len(authID) > 0 && o.Kind == OwnedMembership && authID[o.Container] {
			ownedM[key{o.Container, o.AccountID}] = true
		}
	}
	for _, g := range live.Groups {
		if !auth[lower(g.Name)] {
			continue
		}
		for _, m := range g.Members {
			if !ownedM[key{g.ID, m}] {
				n++
			}
		}
	}
	return n
}
