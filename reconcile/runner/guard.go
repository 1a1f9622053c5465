package runner

import (
	"strings"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
	"github.com/rs/zerolog"
)

// guarded is a plan after the guards: what applies, what the breaker held, its verdict.
type guarded struct {
	planned reconcile.Changes // the plan before the guards (the witness of interrupted passes)
	c       reconcile.Changes // what applies
	breaker []reconcile.Held  // what the circuit breaker held
	trip    reconcile.Trip
	full    bool // a complete, full pass
	heldNow bool // this pass holds removals
	// What each guard dropped or held: identity, policy, ownership, incomplete, grace.
	hx, hp, ho, hi, hg []reconcile.Held
}

func (g guarded) warnHeld(log zerolog.Logger, approve string) {
	log.Warn().Str("reason", g.trip.Reason).Int("deactivations", g.trip.Deactivations).Int("removals", g.trip.Removals).
		Msg("circuit breaker: every deactivation and removal of this pass is held; " + approve)
}

// guard plans and runs the guards in their order (identity, policy, ownership, incomplete
// read, grace, breaker). It changes nothing: an incremental pass may plan several times
// before it settles (see settleIncremental), and note records the one that applies.
func (r *Runner) guard(o RunOptions, now time.Time, safety configs.SafetyConfig, src sourcesRead, desired reconcile.Desired,
	live reconcile.Live, own reconcile.Ownership, ap approvals) guarded {
	targeted := o.targeted()
	links, owned := own.Links, own.Owned
	var g guarded
	g.planned = reconcile.Plan(desired, live, own, reconcile.PlanOptions{Now: now, ProfileWritable: r.cfg.ProfileWritable,
		DeactivateMethod: r.cfg.DeactivateMethod, Targeted: targeted})
	c, hx := reconcile.IdentityGuard(g.planned, reconcile.ActiveView{People: desired.People, Links: links, Accounts: live.Accounts})
	c, hp := reconcile.PolicyGuard(c, safety.Policy)
	c, ho := reconcile.OwnershipGuard(c, reconcile.OwnershipView{Links: links, Owned: owned, Authoritative: reconcile.Authoritative(desired), Accounts: live.Accounts})
	reason := ""
	switch {
	case len(src.failed) > 0:
		reason = strings.Join(src.failed, "; ")
	case o.Source != "":
		reason = "pass limited to source " + o.Source
	case targeted:
		reason = "targeted pass"
	}
	c, hi := reconcile.IncompleteGuard(c, reason, targeted && len(src.failed) == 0)
	c, hg := reconcile.GraceGuard(c, links, safety.GracePasses)
	g.full = !targeted && o.Source == "" && src.allFresh
	c, hb, trip := reconcile.Breaker(c, reconcile.BreakerInput{Safety: safety, ManagedUsers: reconcile.ManagedUsers(links),
		ManagedMemberships: reconcile.ManagedMemberships(owned, live, desired), Hold: ap.hold, Full: g.full,
		Standing: reconcile.StandingKeys(ap.standing)})
	g.c, g.breaker, g.trip, g.heldNow = c, hb, trip, trip.Held() && len(hb) > 0
	g.hx, g.hp, g.ho, g.hi, g.hg = hx, hp, ho, hi, hg
	return g
}

// note counts what each guard dropped or held into run, tells the observer, and logs the
// plan's notes.
func (r *Runner) note(g guarded, run *reconcile.Run, log zerolog.Logger) {
	// The planner keeps this invariant itself: reaching here is a defect worth an error.
	for _, h := range g.hx {
		log.Error().Str(logging.FieldUser, h.Change.Who()).Str("kind", string(h.Change.Kind)).Str("reason", h.Reason).
			Msg("identity guard: a deprovision of an account an active person matches was dropped")
	}
	for _, hs := range [][]reconcile.Held{g.hx, g.hp} {
		for _, h := range hs {
			run.Count(h.Change.Kind, reconcile.ItemDropped, 1)
		}
	}
	for _, hs := range [][]reconcile.Held{g.hi, g.hg, g.breaker} {
		for _, h := range hs {
			run.Count(h.Change.Kind, reconcile.ItemHeld, 1)
			r.obs.ChangeApplied(h.Change.Kind, reconcile.ItemHeld)
		}
	}
	run.Held = len(g.breaker)
	run.HeldItems, run.HeldByGuard = joinHeld(g.hx, g.hp, g.ho, g.hi, g.hg, g.breaker)
	if len(g.ho) > 0 {
		log.Debug().Int("dropped", len(g.ho)).Msg("removals of what idsync does not own were dropped")
	}
	// Notes say what the plan could not or would not do (an access group refused to
	// import_groups, an unmatched person, a missing desk): an operator must see them, so
	// they are warnings, capped like the source data warnings (the run record keeps them).
	for i, n := range g.c.Notes {
		if i == maxLoggedWarnings {
			log.Warn().Int("more", len(g.c.Notes)-i).Msg("further plan notes not logged; the run record lists them")
			break
		}
		log.Warn().Msg(n)
	}
}
