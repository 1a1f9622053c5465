package simulation

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

func (r *run) pass(kind passKind, o runner.RunOptions, clean bool) error {
	_, err := r.passRec(kind, o, clean)
	return err
}

// passRec runs one pass with this pass's faults armed, checks every invariant on it, and
// restarts idsync when the pass crashed. clean passes draw no faults.
func (r *run) passRec(kind passKind, o runner.RunOptions, clean bool) (*passRecord, error) {
	r.passN++
	n := r.passN
	r.clock.Advance(time.Minute)
	var plan passFaults
	if r.faulty && !clean {
		plan = drawFaults(r.frand, r.m, kind == kindPush, r.h.IdP)
	}
	before := snapshotJira(r.w.jira)
	start := r.m.view(r.clock.Now(), n)
	if kind.full() {
		r.tl.addView(start, !plan.any() && !r.fb.raceArmed())
	}
	rec := &passRecord{N: n, Step: r.step, Kind: kind, Faults: plan, Before: before, Params: r.params.clone(),
		ManagedEver: r.managedEver, Start: start, Model: r.m, Dir: r.w.dir, TL: &r.tl, Owner: make(map[memKey]string, len(r.owner))}
	for k, v := range r.owner {
		rec.Owner[k] = v
	}
	if err := r.preState(rec); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	r.box.arm(plan.Crash, cancel)
	r.fb.arm(r.w, n, plan)
	r.w.pass.Store(int64(n))
	mark := r.w.writes.len()
	r.raceMu.Lock()
	r.raced = false
	r.raceMu.Unlock()
	runRec, runErr := r.app.Runner.RunOnce(ctx, o)
	r.w.pass.Store(0)
	rec.Faults.StickyFired = r.fb.disarm(r.w)
	r.box.arm(nil, nil) // a journal write between passes (an approval) never crashes
	cancel()
	if kind.full() {
		// A race push whose moment never came (the listing was never read) lands now.
		if fire := r.fb.pendingRace(); fire != nil {
			fire()
		}
	}
	r.raceMu.Lock()
	rec.Raced, rec.Run = r.raced, runRec
	herr := r.harness
	r.raceMu.Unlock()
	rec.Crashed = r.box.crashed()
	if r.box.wasStuck() {
		return rec, fmt.Errorf("pass %d: the crash point waited in vain for the outcome journal of the change before it", n)
	}
	writes, _ := r.w.writes.since(mark)
	for _, w := range writes {
		if !w.Admin {
			rec.Writes = append(rec.Writes, w)
		}
	}
	rec.After = snapshotJira(r.w.jira)
	r.trackOwners(before, rec.After, "idsync")
	r.stats.Passes++
	if rec.Raced {
		r.stats.Races++
	}
	if runRec.Result == reconcile.ResultHeld {
		r.stats.Holds++
	}
	r.logPass(rec, runErr)
	if herr != nil {
		return rec, herr
	}
	r.checkPass(rec)
	if rec.Crashed && r.fail == nil {
		if err := r.restart(); err != nil {
			return rec, err
		}
		return rec, r.pass(kindStartup, runner.RunOptions{Trigger: reconcile.TriggerStartup}, false)
	}
	return rec, nil
}

// preState reads what the breaker weighs a pass against from the state file: managed users
// and memberships, and the approved held plan in force.
func (r *run) preState(rec *passRecord) error {
	links, err := r.app.Store.Links()
	if err != nil {
		return err
	}
	users := map[string]bool{}
	for _, l := range links {
		if !l.Deactivated && !l.Customer {
			users[l.AccountID] = true
		}
	}
	rec.ManagedUsers = len(users)
	owned, err := r.app.Store.Owned()
	if err != nil {
		return err
	}
	for _, o := range owned {
		if o.Kind != reconcile.OwnedGroup {
			rec.ManagedMemberships++
		}
	}
	if h, err := r.app.Store.HeldPlan(); err == nil && h.Approved {
		rec.Approved = map[string]bool{}
		for _, k := range reconcile.Kinds {
			for _, ch := range *h.Changes.List(k) {
				rec.Approved[itemKey(ch)] = true
			}
		}
	}
	standing, err := r.app.Store.Standing()
	if err != nil {
		return err
	}
	for _, a := range standing {
		k := itemKey(a.Change)
		if !r.approvedEver[k] {
			rec.StrayStanding = append(rec.StrayStanding, k)
		}
		if rec.Standing == nil {
			rec.Standing = map[string]bool{}
		}
		rec.Standing[k] = true
	}
	return nil
}

// checkPass judges a pass by every invariant and keeps the I2 counts.
func (r *run) checkPass(rec *passRecord) {
	var vs []Violation
	vs = append(vs, checkOwnership(rec)...)
	vs = append(vs, checkIncompleteRead(rec)...)
	vs = append(vs, checkActiveSource(rec)...)
	vs = append(vs, checkBreaker(rec)...)
	vs = append(vs, checkAudit(rec.Writes)...)
	vs = append(vs, checkGrantedStays(rec)...)
	vs = append(vs, checkDuplicates(r.w.jira.DuplicateEmails(), r.w.jira.DuplicateGroupNames())...)
	vs = append(vs, checkBounded(r.fb.takeSwollen())...)
	run := rec.Run
	// A complete fault-free full pass the breaker held nothing in counts, even when some
	// item failed for good (a group idsync may not change): what it could take, it must.
	// Grace holds are what K allows for.
	counted := rec.Kind.full() && !rec.Faults.any() && !rec.Crashed && !rec.Raced && run.Complete &&
		(run.Result == reconcile.ResultOK || run.Result == reconcile.ResultPartial) && run.Held == 0 &&
		run.HeldByGuard[reconcile.GuardBreaker] == 0
	var overdue []string
	k := r.params.Grace + 1
	for _, id := range r.m.order {
		if r.m.people[id].Status == active {
			delete(r.gone, id)
			continue
		}
		if !counted {
			continue
		}
		// Checked only in passes that may deactivate: a held or faulty pass waits.
		r.gone[id]++
		if r.gone[id] >= k {
			overdue = append(overdue, id)
		}
	}
	if counted {
		r.stats.CleanPasses++
	}
	r.stats.Overdue += len(overdue)
	vs = append(vs, checkDeprovisioned(rec.After, r.w.dir, r.m, overdue, k)...)
	r.stats.Checks += 9
	r.violate(vs, rec)
}

// logPass adds the pass to the step log (what the determinism check compares): its result,
// counts and every write, by accountId and group name.
func (r *run) logPass(rec *passRecord, err error) {
	run := rec.Run
	var counts []string
	for k, m := range run.Counts {
		for res, c := range m {
			counts = append(counts, fmt.Sprintf("%s:%s=%d", k, res, c))
		}
	}
	sort.Strings(counts)
	var ws []string
	for _, w := range rec.Writes {
		ws = append(ws, fmt.Sprintf("%s %s %v %s %s %d", w.Method, w.Template, w.Accounts, w.GroupName, w.Email, w.Status))
	}
	line := fmt.Sprintf("pass %d %s target=%q faults={%s} result=%s complete=%v held=%d crashed=%v raced=%v counts=[%s] writes=[%s]",
		rec.N, rec.Kind, run.Target, rec.Faults, run.Result, run.Complete, run.Held, rec.Crashed, rec.Raced,
		strings.Join(counts, " "), strings.Join(ws, "; "))
	if err != nil && !rec.Crashed {
		// Only that it failed: which of several failing parallel reads is reported first
		// depends on scheduling, and errors name ephemeral ports.
		line += " err=yes"
	}
	r.log = append(r.log, line)
}

// heldItems counts the items a pass held (grace, breaker, incomplete read).
func heldItems(run reconcile.Run) int {
	n := 0
	for _, byResult := range run.Counts {
		n += byResult[reconcile.ItemHeld]
	}
	return n
}
