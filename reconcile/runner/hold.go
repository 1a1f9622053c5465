package runner

import (
	"errors"
	"fmt"

	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
	"github.com/rs/zerolog"
)

// The held plan's lifecycle: a pass stores or keeps what the breaker held, an approval binds
// to its items, and a later complete pass applies them or releases the hold.

// updateHold stores or clears the held plan per the breaker's verdict and audits it. It
// reports whether the pass now holds, and the run id an approval must name.
//
// An approval can arrive while a pass runs: after the pass read the open hold unapproved and
// before it stores its own. Replacing the plan then would silently drop the approval (the
// admin would have to approve again, without being told). Instead the approved plan is kept:
// this pass still holds (it planned under the unapproved hold), and the next complete pass
// uses the approval, re-planning fresh within the approved counts plus 10%.
func (r *Runner) updateHold(log zerolog.Logger, runID string, t reconcile.Trip, held []reconcile.Held, old *reconcile.HeldPlan) (bool, string) {
	r.holdMu.Lock()
	defer r.holdMu.Unlock()
	now := r.cfg.Now()
	switch t.Decision {
	case reconcile.BreakerHold:
		if old != nil && !old.Approved {
			if cur, err := r.cfg.Store.HeldPlan(); err == nil && cur.RunID == old.RunID && cur.Approved {
				why := "run " + cur.RunID + " was approved by " + cur.ApprovedBy + " while this pass ran; its approved plan is kept for the next complete pass"
				log.Warn().Str("approved_run", cur.RunID).Msg(why)
				r.audit(log, reconcile.AuditRecord{Time: now, RunID: runID, Actor: "breaker", Action: "hold", Reason: t.Reason + "; " + why, Result: reconcile.ItemHeld})
				r.obs.Held(cur.Deactivations + cur.Removals)
				return true, cur.RunID
			}
		}
		h := reconcile.HeldPlan{RunID: runID, Created: now, Reason: t.Reason, Deactivations: t.Deactivations, Removals: t.Removals}
		for _, x := range held {
			l := h.Changes.List(x.Change.Kind)
			*l = append(*l, x.Change)
		}
		if err := r.cfg.Store.PutHeldPlan(h); err != nil {
			log.Error().Err(err).Msg("storing the held plan failed; the changes stay held")
		}
		r.audit(log, reconcile.AuditRecord{Time: now, RunID: runID, Actor: "breaker", Action: "hold", Reason: t.Reason, Result: reconcile.ItemHeld})
		r.obs.Held(len(held))
		return true, runID
	case reconcile.BreakerKeep:
		if old != nil {
			r.obs.Held(old.Deactivations + old.Removals)
			return true, old.RunID
		}
		return true, runID
	case reconcile.BreakerRelease:
		if err := r.cfg.Store.ClearHeldPlan(); err != nil && !errors.Is(err, reconcile.ErrNotFound) {
			log.Error().Err(err).Msg("clearing the held plan failed")
		}
		r.audit(log, reconcile.AuditRecord{Time: now, RunID: runID, Actor: "breaker", Action: "release", Reason: t.Reason, Result: reconcile.ItemOK})
		r.obs.Held(0)
		return false, ""
	}
	r.obs.Held(0)
	return false, ""
}

// joinHeld joins what the guards held and counts the items per guard.
func joinHeld(lists ...[]reconcile.Held) ([]reconcile.Held, map[string]int) {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]reconcile.Held, 0, n)
	counts := map[string]int{}
	for _, l := range lists {
		for _, h := range l {
			counts[h.Guard]++
		}
		out = append(out, l...)
	}
	return out, counts
}

// capHeld keeps at most n held items per guard and kind, for the stored run record.
func capHeld(held []reconcile.Held, n int) []reconcile.Held {
	type gk struct {
		guard string
		kind  reconcile.Kind
	}
	kept := map[gk]int{}
	var out []reconcile.Held
	for _, h := range held {
		k := gk{h.Guard, h.Change.Kind}
		if kept[k] < n {
			kept[k]++
			out = append(out, h)
		}
	}
	return out
}

// Approve approves the open held plan, which must be that of runID (the latest held run), and
// returns it. The approval binds to the plan's items: the next complete full pass re-plans
// fresh and applies those of them it still plans; anything else is judged by the breaker on
// its own.
func (r *Runner) Approve(runID, by string) (reconcile.HeldPlan, error) {
	r.holdMu.Lock()
	defer r.holdMu.Unlock()
	h, err := r.cfg.Store.HeldPlan()
	if errors.Is(err, reconcile.ErrNotFound) {
		return reconcile.HeldPlan{}, fmt.Errorf("approving run %s: no changes are held", runID)
	}
	if err != nil {
		return reconcile.HeldPlan{}, fmt.Errorf("approving run %s: reading the held plan: %w", runID, err)
	}
	if h.RunID != runID {
		return reconcile.HeldPlan{}, fmt.Errorf("approving run %s: it is not the latest held run; the latest is %s", runID, h.RunID)
	}
	if by == "" {
		by = "unknown"
	}
	now := r.cfg.Now()
	h.Approved, h.ApprovedBy, h.ApprovedAt = true, by, now
	if err := r.cfg.Store.PutHeldPlan(h); err != nil {
		return reconcile.HeldPlan{}, fmt.Errorf("approving run %s: %w", runID, err)
	}
	if err := r.cfg.Store.Journal(reconcile.JournalEntry{Audit: []reconcile.AuditRecord{{
		Time: now, RunID: runID, Actor: "approve:" + by, Action: "approve",
		Reason: h.Summary(approveSummaryNames) + "; held because " + h.Reason,
		Result: "approved",
	}}}); err != nil {
		return reconcile.HeldPlan{}, fmt.Errorf("approving run %s: auditing: %w", runID, err)
	}
	r.log.Warn().Str(logging.FieldRunID, runID).Str("by", by).Int("deactivations", h.Deactivations).
		Int("removals", h.Removals).Msg("held plan approved; the next complete pass applies exactly its items that it still plans")
	return h, nil
}

// approveSummaryNames is how many people an approval's summary names per kind.
const approveSummaryNames = 5

// approvals is the open held plan (nil when none) and the approvals that stand.
type approvals struct {
	hold     *reconcile.HeldPlan
	standing []reconcile.StandingApproval
}

func (r *Runner) approvals() (approvals, error) {
	var ap approvals
	if h, err := r.cfg.Store.HeldPlan(); err == nil {
		ap.hold = &h
	} else if !errors.Is(err, reconcile.ErrNotFound) {
		return ap, err
	}
	s, err := r.cfg.Store.Standing()
	if err != nil {
		return ap, err
	}
	ap.standing = s
	return ap, nil
}

// actors maps the item key of every approved removal of the pass to its audit actor: the held
// plan's items when the pass used its approval, and the standing approvals in a full pass
// (the only kind of pass the breaker lets them through unheld).
func (ap approvals) actors(usedHold, full bool) map[string]string {
	out := map[string]string{}
	if full {
		for _, a := range ap.standing {
			out[a.Change.ItemKey()] = "approve:" + a.By
		}
	}
	if usedHold && ap.hold != nil {
		for k := range ap.hold.Changes.ItemKeys() {
			out[k] = "approve:" + ap.hold.ApprovedBy
		}
	}
	return out
}

// updateStanding keeps the approval of every approved item this full pass applied and Jira
// refused, and lets go of the rest: an item that succeeded, or that the pass no longer
// planned, needs a fresh approval if it is ever planned again.
func (r *Runner) updateStanding(log zerolog.Logger, ap approvals, failed []reconcile.Change) {
	old := make(map[string]reconcile.StandingApproval, len(ap.standing))
	for _, a := range ap.standing {
		old[a.Change.ItemKey()] = a
	}
	heldKeys := map[string]bool{}
	if ap.hold != nil && ap.hold.Approved {
		heldKeys = ap.hold.Changes.ItemKeys()
	}
	now := r.cfg.Now()
	next := make([]reconcile.StandingApproval, 0, len(failed))
	for _, ch := range failed {
		k := ch.ItemKey()
		if a, ok := old[k]; ok {
			a.Change = ch
			next = append(next, a)
			continue
		}
		if heldKeys[k] {
			next = append(next, reconcile.StandingApproval{Change: ch, RunID: ap.hold.RunID, By: ap.hold.ApprovedBy, Since: now})
		}
	}
	if len(next) == 0 && len(ap.standing) == 0 {
		return
	}
	if len(next) > 0 {
		log.Warn().Int("items", len(next)).Msg("approved removals were refused by Jira; their approval stands and every full pass retries them until they succeed or are no longer planned")
	}
	if err := r.cfg.Store.PutStanding(next); err != nil {
		log.Error().Err(err).Msg("storing the standing approvals failed; the refused items face the breaker again")
	}
}
