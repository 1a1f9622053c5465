package jira

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/idsync/idsync/reconcile"
)

// DeactivationError is the error of a remove-access deactivation that did not finish: some of
// its steps failed while the others were done, since one failed step never stops the others.
// The reconcile.Result returned with it still lists in Groups exactly the groups the account
// left (Removed holds the same), so that reactivation restores them; the engine reports the
// person as partly deactivated and the next pass retries what is left.
//
// errors.Is and errors.As see through it to every cause (ErrForbidden, ErrTransient, an
// *APIError, ...). Code that cannot import this package (the reconcile engine, which this
// package imports) finds it with errors.As on an interface:
//
//	var p interface {
//		PartialGroups() (removed, failed []reconcile.GroupRef)
//	}
//	if errors.As(err, &p) { removed, failed := p.PartialGroups(); ... }
type DeactivationError struct {
	AccountID string
	// Removed are the groups the account left in this call (Result.Groups), with ids.
	Removed []reconcile.GroupRef
	// Failed are the groups the account may still be in, in the order they were tried, each
	// with its cause. A group is here only when its removal failed and, for an answer that is
	// not transient, a read of the account's groups still listed it (or could not be made).
	Failed []GroupFailure
	// Lookup is a failed read of which groups grant product access (applicationrole) or of
	// the account's groups (user/groups): product-access groups the change did not list may
	// then remain. The listed groups were all tried regardless.
	Lookup error
}

// GroupFailure is one group a deactivation could not take the account out of, and why.
type GroupFailure struct {
	Group reconcile.GroupRef
	Err   error
}

func (e *DeactivationError) Error() string {
	var b strings.Builder
	b.WriteString("partly deactivated: left ")
	b.WriteString(plural(len(e.Removed), "group"))
	if len(e.Removed) > 0 {
		b.WriteString(" (" + refNames(e.Removed) + ")")
	}
	if len(e.Failed) > 0 {
		fmt.Fprintf(&b, "; could not leave %s", plural(len(e.Failed), "group"))
		for i, f := range e.Failed {
			if i == 0 {
				b.WriteString(": ")
			} else {
				b.WriteString("; ")
			}
			b.WriteString("group " + refName(f.Group) + ": " + f.Err.Error())
		}
	}
	if e.Lookup != nil {
		b.WriteString("; product-access groups not checked: " + e.Lookup.Error())
	}
	return b.String()
}

// Unwrap returns every cause: the failed groups' errors, then Lookup.
func (e *DeactivationError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed)+1)
	for _, f := range e.Failed {
		out = append(out, f.Err)
	}
	if e.Lookup != nil {
		out = append(out, e.Lookup)
	}
	return out
}

// PartialGroups returns the groups left (Removed) and the groups that failed (Failed's
// groups), for callers that match the error by interface.
func (e *DeactivationError) PartialGroups() (removed, failed []reconcile.GroupRef) {
	removed = append([]reconcile.GroupRef(nil), e.Removed...)
	for _, f := range e.Failed {
		failed = append(failed, f.Group)
	}
	return removed, failed
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func refName(g reconcile.GroupRef) string {
	switch {
	case g.Name != "" && g.ID != "":
		return g.Name + " (" + g.ID + ")"
	case g.Name != "":
		return g.Name
	}
	return g.ID
}

func refNames(gs []reconcile.GroupRef) string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = refName(g)
	}
	return strings.Join(names, ", ")
}

// removeAccess is the remove-access deactivation. Deprovisioning is exhaustive:
//
//   - The account leaves every group of Change.Groups and every product-access group it is in
//     (read with GET /user/groups), also those the change did not list: any group of any
//     ApplicationRole.groups grants access, not only the default groups, and the plan may
//     predate a role change.
//   - Product-access groups go first (sink.jira.product_access_groups, or the groups of every
//     application role, as the last read learnt them or read now), then the others, each in
//     the order of the change.
//   - Every group is tried; one failed step does not stop the others.
//   - Whether the account is still in a group is decided from data: 200 is left, 404 is no
//     such membership (done, not left); for any other answer that is not transient, a read of
//     the account's groups decides (not listed: done; listed: failed).
//
// The result lists in Groups exactly the groups left, so that reactivation restores them;
// when a step failed the error is a *DeactivationError naming each failed group and cause.
func (s *Sink) removeAccess(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	res := reconcile.Result{AccountID: c.AccountID, Method: s.method}
	derr := &DeactivationError{AccountID: c.AccountID}
	var lookups []error

	product, err := s.knownProductGroups(ctx)
	if err != nil {
		lookups = append(lookups, err)
	}
	var current []apiGroup
	if len(product) > 0 {
		if current, err = s.memberships(ctx, c.AccountID); err != nil {
			lookups = append(lookups, err)
		}
	}
	steps := removalOrder(c.Groups, product, current)

	type outcome struct {
		ref reconcile.GroupRef
		err error
	}
	var failed, unsettled []outcome
	for _, ref := range steps {
		if err := ctx.Err(); err != nil {
			failed = append(failed, outcome{ref, err})
			continue
		}
		if ref.ID == "" {
			gid, err := s.groupID(ctx, &ref)
			if errors.Is(err, ErrNotFound) {
				continue // no such group: no such membership
			}
			if err != nil {
				failed = append(failed, outcome{ref, err})
				continue
			}
			ref.ID = gid
		}
		left, err := s.leaveGroup(ctx, ref.ID, c.AccountID)
		res.Writes++
		switch {
		case left:
			res.Groups = append(res.Groups, ref)
		case err == nil:
			// 404: not (or no longer) a member.
		case settledByRead(err):
			unsettled = append(unsettled, outcome{ref, err})
		default:
			failed = append(failed, outcome{ref, err})
		}
	}
	if len(unsettled) > 0 {
		// One read settles them all: still listed is a failed step, gone is done.
		gs, rerr := s.memberships(ctx, c.AccountID)
		for _, u := range unsettled {
			switch {
			case rerr != nil:
				failed = append(failed, outcome{u.ref, errors.Join(u.err, fmt.Errorf("checking membership: %w", rerr))})
			case inGroup(gs, u.ref):
				failed = append(failed, u)
			}
		}
	}
	if len(failed) == 0 && len(lookups) == 0 {
		return res, nil
	}
	// Failed in the order tried.
	for _, ref := range steps {
		for _, f := range failed {
			if sameGroup(f.ref, ref) {
				derr.Failed = append(derr.Failed, GroupFailure{Group: f.ref, Err: f.err})
				break
			}
		}
	}
	derr.Removed = append([]reconcile.GroupRef(nil), res.Groups...)
	derr.Lookup = errors.Join(lookups...)
	return res, derr
}

// knownProductGroups returns the lower-case names of the product-access groups: the
// configured list, or what the last read learnt, or a fresh read of applicationrole.
func (s *Sink) knownProductGroups(ctx context.Context) (map[string]bool, error) {
	s.mu.Lock()
	known := s.productKeys
	s.mu.Unlock()
	if known != nil {
		return known, nil
	}
	return s.productAccessGroups(ctx)
}

// removalOrder lists the groups a remove-access deactivation tries, each once: the
// product-access groups of the change, the product-access groups the account is in that the
// change did not list (current, from user/groups), then the change's other groups.
func removalOrder(listed []reconcile.GroupRef, product map[string]bool, current []apiGroup) []reconcile.GroupRef {
	nameOf := func(ref reconcile.GroupRef) string {
		if ref.ID != "" {
			for _, g := range current {
				if g.GroupID == ref.ID {
					return g.Name
				}
			}
		}
		return ref.Name
	}
	var first, rest []reconcile.GroupRef
	seen := func(ref reconcile.GroupRef) bool {
		for _, x := range first {
			if sameGroup(x, ref) {
				return true
			}
		}
		for _, x := range rest {
			if sameGroup(x, ref) {
				return true
			}
		}
		return false
	}
	for _, ref := range listed {
		if ref.ID == "" && strings.TrimSpace(ref.Name) == "" || seen(ref) {
			continue
		}
		if product[strings.ToLower(ref.Name)] || product[strings.ToLower(nameOf(ref))] {
			first = append(first, ref)
		} else {
			rest = append(rest, ref)
		}
	}
	for _, g := range current {
		ref := reconcile.GroupRef{ID: g.GroupID, Name: g.Name}
		if product[strings.ToLower(g.Name)] && !seen(ref) {
			first = append(first, ref)
		}
	}
	return append(first, rest...)
}

// sameGroup compares by id when both have one, else by name (case-insensitive).
func sameGroup(a, b reconcile.GroupRef) bool {
	if a.ID != "" && b.ID != "" {
		return a.ID == b.ID
	}
	return a.Name != "" && strings.EqualFold(a.Name, b.Name)
}
