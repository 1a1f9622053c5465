package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
)

// maxLoggedWarnings caps the per-record warnings one pass logs; the rest are counted.
const maxLoggedWarnings = 50

// pass runs one reconcile pass: read, map, read Jira, plan, guard, journal, apply, record.
func (r *Runner) pass(ctx context.Context, o RunOptions) (reconcile.Run, error) {
	mapper, _, safety := r.config()
	now := r.cfg.Now()
	run := reconcile.Run{ID: r.cfg.RunID(now), Trigger: o.Trigger, DryRun: o.DryRun, Started: now,
		Target: o.Describe(), Counts: map[reconcile.Kind]map[string]int{}}
	log := r.log.With().Str(logging.FieldRunID, run.ID).Str(logging.FieldTrigger, o.Trigger).Logger()
	r.setCurrent(&run)
	r.obs.PassStarted(run.Summary()) // a copy: the pass keeps writing its own
	run.Unresolved = r.pendingResolution(log)

	// 1. Sources, read in full when Jira is (see fullReadDue).
	fullWhy := ""
	if !o.targeted() {
		fullWhy = r.fullReadDue(o, now)
		ctx = reconcile.WithFullRead(ctx, fullWhy != "")
	}
	src := r.readSources(ctx, o, now, &run, log)
	r.setCurrent(&run)
	if len(src.data) == 0 {
		return r.finish(log, run, "no source could be read or stood in for by a stored snapshot: "+strings.Join(src.failed, "; "), nil)
	}
	if err := ctx.Err(); err != nil {
		return r.finish(log, run, "interrupted before planning", err)
	}

	// 2. Map.
	desired, mw := mapper.Map(src.data)
	logWarnings(log, append(src.warns, mw...))
	src.data = nil // the directories are stored and mapped: let a big one go before Jira is read

	// 3. Ownership and Jira.
	links, err := r.cfg.Store.Links()
	if err != nil {
		return r.finish(log, run, "reading links", err)
	}
	owned, err := r.cfg.Store.Owned()
	if err != nil {
		return r.finish(log, run, "reading ownership", err)
	}
	ap, err := r.approvals()
	if err != nil {
		return r.finish(log, run, "reading the held plan", err)
	}
	hold := ap.hold
	own := reconcile.Ownership{Links: links, Owned: owned}
	jr, err := r.readJira(ctx, o, reconcile.BuildScope(desired, own, o.targeted()), links, fullWhy, now)
	if err != nil {
		return r.finish(log, run, "reading Jira", err)
	}

	// 4. Plan and guards; an incremental plan re-reads what it touches and plans again.
	plan := func(live reconcile.Live) guarded { return r.guard(o, now, safety, src, desired, live, own, ap) }
	g := plan(jr.live)
	if jr.kind == reconcile.ReadIncremental {
		if g, err = r.settle(ctx, &jr, g, plan, now, log); err != nil {
			return r.finish(log, run, "reading Jira", err)
		}
	}
	run.JiraRead, run.FullReadReason = jr.kind, jr.why
	if jr.kind == reconcile.ReadFull {
		log.Debug().Str("reason", jr.why).Msg("read Jira in full")
	}
	r.note(g, &run, log)
	r.setCurrent(&run)
	if o.DryRun {
		if g.heldNow {
			if hold != nil {
				g.warnHeld(log, "approve with `idsync approve "+hold.RunID+"`")
			} else {
				g.warnHeld(log, "a real pass stores them as a held plan to approve")
			}
		}
		for _, k := range reconcile.Kinds {
			for _, ch := range *g.c.List(k) {
				if ch.Unsupported != "" {
					run.Count(k, reconcile.ItemUnsupported, 1)
				} else {
					run.Count(k, reconcile.ItemPlanned, 1)
				}
			}
		}
		run.Complete = g.full
		run.Changes = &g.c
		run.Result = passResult(g.heldNow, len(src.failed) > 0, ExecResult{})
		return r.record(log, run, nil)
	}

	return r.apply(ctx, o, run, g, desired, links, ap, len(src.failed) > 0, log)
}

// apply runs steps 5 to 7 of a real pass: resolve interrupted passes, journal links, store
// or release the held plan, apply, and record the run.
func (r *Runner) apply(ctx context.Context, o RunOptions, run reconcile.Run, g guarded, desired reconcile.Desired,
	links []reconcile.Link, ap approvals, incomplete bool, log zerolog.Logger) (reconcile.Run, error) {
	// 5. Resolve interrupted passes (a complete full plan is the witness of what Jira holds),
	// then journal links, grace counters and forgotten ownership before any Jira write.
	r.markRunning(log, run)
	var resolved resolution
	if len(run.Unresolved) > 0 && g.full {
		var err error
		resolved, err = r.resolveInterrupted(log, run.ID, run.Unresolved, g.planned, &g.c)
		if err != nil {
			return r.finish(log, run, "resolving interrupted passes", err)
		}
		run.Unresolved = nil
	}
	curLinks, err := r.journalLinks(run.ID, o, desired, links, g.c, g.full && o.Trigger != reconcile.TriggerPush)
	if err != nil {
		return r.finish(log, run, "journaling links", err)
	}

	// 6. Held plan.
	_, holdID := r.updateHold(log, run.ID, g.trip, g.breaker, ap.hold)
	approved := ap.actors(g.trip.UsedApproval, g.full)
	if g.heldNow {
		g.warnHeld(log, "approve with `idsync approve "+holdID+"`")
	}

	// 7. Apply.
	res := Execute(ctx, r.cfg.Sink, r.cfg.Store, g.c, ExecOptions{
		RunID: run.ID, Actor: o.Trigger, Approved: approved, Concurrency: r.cfg.Concurrency, Applied: r.patchCache,
		Links: curLinks, Now: r.cfg.Now, Observer: statusObserver{Observer: r.obs, r: r}, ItemTimeout: r.cfg.ItemTimeout, Retried: resolved.retried,
	})
	for k, m := range res.Counts {
		for result, n := range m {
			run.Count(k, result, n)
		}
	}
	run.Errors = res.Errors
	if res.ErrorCount > len(res.Errors) {
		run.Errors = append(run.Errors, fmt.Sprintf("... and %d more errors", res.ErrorCount-len(res.Errors)))
	}
	if res.Stopped && ctx.Err() != nil {
		run.Errors = append(run.Errors, "pass stopped by shutdown; the next pass continues")
	}
	if g.full {
		r.updateStanding(log, ap, res.FailedApproved)
	}
	if res.ErrorCount > 0 || res.Stopped || res.Err != nil {
		r.dropCache() // an unknown outcome: only a full read may say what Jira holds now
	}
	run.Complete = g.full
	run.Changes = &g.c
	run.Result = passResult(g.heldNow, incomplete, res)
	if res.Err != nil {
		run.Errors = append(run.Errors, res.Err.Error())
	}
	return r.record(log, run, res.Err)
}

// sourcesRead is what step 1 of a pass learnt from every source.
type sourcesRead struct {
	data     []reconcile.SourceData
	failed   []string // why each source read was incomplete
	allFresh bool     // every source read completely in this pass
	warns    []reconcile.Warning
}

// readSources reads every source (or the targeted people of each) into run.Sources.
func (r *Runner) readSources(ctx context.Context, o RunOptions, now time.Time, run *reconcile.Run, log zerolog.Logger) sourcesRead {
	var reads []*sourceRead
	if o.targeted() {
		reads = r.readTargeted(ctx, o)
	} else {
		reads = r.readFull(ctx, o, now)
	}
	out := sourcesRead{allFresh: true}
	for _, sr := range reads {
		run.Sources = append(run.Sources, sr.run)
		out.warns = append(out.warns, sr.warns...)
		read := o.Source == "" || o.Source == sr.name
		if read && !sr.run.Complete {
			out.failed = append(out.failed, "source "+sr.name+" could not be read ("+sr.run.Error+")")
			log.Warn().Str(logging.FieldSource, sr.name).Str("error", sr.run.Error).
				Bool("stored_snapshot", sr.have).Msg("source read incomplete; its last stored snapshot stands in")
		}
		if sr.have {
			out.data = append(out.data, reconcile.SourceData{Directory: sr.dir, Priority: sr.spec.Priority, CustomersOnly: sr.spec.CustomersOnly})
		}
		out.allFresh = out.allFresh && sr.fresh
	}
	return out
}

// logWarnings logs source data warnings, at most maxLoggedWarnings of them.
func logWarnings(log zerolog.Logger, warns []reconcile.Warning) {
	for i, w := range warns {
		if i == maxLoggedWarnings {
			log.Warn().Int("more", len(warns)-i).Msg("further source data warnings not logged")
			break
		}
		ev := log.Warn().Str(logging.FieldSource, w.Source).Str(logging.FieldUser, cmp.Or(strings.TrimSpace(w.UserName), w.Key))
		if w.Key != "" {
			ev = ev.Str("key", w.Key) // the record's id: the one name a record with a blank user name has
		}
		ev.Msg(w.Message)
	}
}

func passResult(held, incomplete bool, res ExecResult) string {
	switch {
	case held:
		return reconcile.ResultHeld
	case incomplete || res.ErrorCount > 0 || res.Stopped:
		return reconcile.ResultPartial
	}
	return reconcile.ResultOK
}

// finish ends a pass that could not plan: nothing was applied.
func (r *Runner) finish(log zerolog.Logger, run reconcile.Run, what string, err error) (reconcile.Run, error) {
	run.Result = reconcile.ResultFailed
	msg := what
	if err != nil {
		msg = what + ": " + err.Error()
		err = fmt.Errorf("%s: %w", what, err)
	} else {
		err = errors.New(what)
	}
	run.Errors = append(run.Errors, msg)
	out, rerr := r.record(log, run, err)
	return out, rerr
}

// record stores the run record, prunes old ones and reports the pass. The caller gets the
// whole plan and every held item; the stored record keeps at most RunChangesCap of each kind
// (copies, so it pins nothing of the plan), with exact counts.
func (r *Runner) record(log zerolog.Logger, run reconcile.Run, err error) (reconcile.Run, error) {
	run.Finished = r.cfg.Now()
	stored := run
	if run.Changes != nil {
		stored.Changes = capChanges(*run.Changes, r.cfg.RunChangesCap)
	}
	stored.HeldItems = capHeld(run.HeldItems, r.cfg.RunChangesCap)
	if perr := r.cfg.Store.PutRun(stored); perr != nil {
		log.Error().Err(perr).Msg("storing the run record failed")
		if err == nil {
			err = fmt.Errorf("storing the run record: %w", perr)
		}
	}
	if p, ok := r.cfg.Store.(Pruner); ok {
		if perr := p.PruneRuns(r.cfg.KeepRuns); perr != nil {
			log.Warn().Err(perr).Msg("pruning old run records failed")
		}
	}
	// The Runner keeps a summary: holding the plan of a first sync between passes would keep
	// hundreds of MB alive for nothing (Status never shows it).
	last := run.Summary()
	r.mu.Lock()
	r.current, r.done, r.total = nil, 0, 0
	r.last = &last
	r.mu.Unlock()
	r.obs.PassFinished(run)
	ev := log.Info()
	if run.Result == reconcile.ResultFailed || run.Result == reconcile.ResultHeld {
		ev = log.Warn()
	}
	ev.Str("result", run.Result).Bool("complete", run.Complete).Bool("dry_run", run.DryRun).
		Str("target", run.Target).Dur("took_ms", run.Finished.Sub(run.Started)).
		Interface("counts", run.Counts).Int("errors", len(run.Errors)).Msg("pass finished")
	return run, err
}

// setCurrent publishes the running pass's state to Status, as a copy: the pass keeps writing
// its own Run without a lock.
func (r *Runner) setCurrent(run *reconcile.Run) {
	c := run.Summary()
	r.mu.Lock()
	r.current = &c
	r.mu.Unlock()
}

// statusObserver passes a pass's events on and keeps the Runner's copy of the running pass
// current, so Status shows counts and progress while items apply.
type statusObserver struct {
	Observer
	r *Runner
}

func (o statusObserver) ChangeApplied(k reconcile.Kind, result string) {
	o.Observer.ChangeApplied(k, result)
	o.r.mu.Lock()
	if c := o.r.current; c != nil {
		c.Count(k, result, 1)
	}
	o.r.mu.Unlock()
}

func (o statusObserver) Progress(done, total int) {
	o.Observer.Progress(done, total)
	o.r.mu.Lock()
	o.r.done, o.r.total = done, total
	o.r.mu.Unlock()
}

// Describe says what a pass covers, as Run.Target records it ("" for a full pass).
func (o RunOptions) Describe() string {
	var parts []string
	if o.Source != "" {
		parts = append(parts, "source "+o.Source)
	}
	if len(o.Users) > 0 {
		parts = append(parts, "users "+strings.Join(o.Users, ", "))
	}
	if len(o.Groups) > 0 {
		parts = append(parts, "groups "+strings.Join(o.Groups, ", "))
	}
	return strings.Join(parts, "; ")
}

// journalLinks writes the plan's links, the grace counters of a complete full pass, and the
// ownership records the plan forgets, in one entry before anything is applied. It returns the
// links as they now stand.
func (r *Runner) journalLinks(runID string, o RunOptions, d reconcile.Desired, links []reconcile.Link, c reconcile.Changes, countGrace bool) ([]reconcile.Link, error) {
	now := r.cfg.Now()
	upd := map[string]reconcile.Link{}
	byKey := make(map[string]int, len(links))
	for i, l := range links {
		byKey[l.LinkKey()] = i
	}
	if countGrace {
		present := make(map[reconcile.Record]bool, len(d.People))
		for _, p := range d.People {
			for _, rc := range p.Records {
				present[rc] = true
			}
		}
		for _, ig := range d.Ignored {
			present[ig.Record] = true
		}
		presentAcc := map[string]bool{}
		for _, l := range links {
			if present[reconcile.Record{Source: l.Source, Key: l.Key}] {
				presentAcc[l.AccountID] = true
			}
		}
		for _, l := range c.Links {
			presentAcc[l.AccountID] = true
		}
		for _, l := range links {
			if l.Deactivated {
				continue
			}
			// A link whose account a present person holds (re-keyed, merged) counts as seen,
			// so it can never carry an old count into a later deactivation.
			seen := present[reconcile.Record{Source: l.Source, Key: l.Key}] || presentAcc[l.AccountID]
			switch {
			case seen && l.MissingPasses != 0:
				l.MissingPasses, l.UpdatedAt = 0, now
				upd[l.LinkKey()] = l
			case !seen:
				l.MissingPasses++
				l.UpdatedAt = now
				upd[l.LinkKey()] = l
			}
		}
	}
	var audit []reconcile.AuditRecord
	linkedAcc := make(map[string]bool, len(links))
	for _, l := range links {
		linkedAcc[l.AccountID] = true
	}
	for _, l := range c.Links {
		k := l.LinkKey()
		if u, ok := upd[k]; ok {
			u.UserName, u.Email, u.Customer, u.AccountID, u.UpdatedAt = l.UserName, l.Email, l.Customer, l.AccountID, now
			upd[k] = u
		} else {
			upd[k] = l
		}
		if i, ok := byKey[k]; !ok || links[i].AccountID != l.AccountID {
			audit = append(audit, reconcile.AuditRecord{Time: now, RunID: runID, Actor: o.Trigger, Action: "link",
				Source: l.Source, UserKey: l.Key, UserName: l.UserName, AccountID: l.AccountID,
				Reason: linkReason(linkedAcc[l.AccountID]), Result: reconcile.ItemOK})
		}
	}
	if len(upd) == 0 && len(c.Forget) == 0 {
		return links, nil
	}
	e := reconcile.JournalEntry{Disown: c.Forget, Audit: audit}
	for _, l := range upd {
		e.Links = append(e.Links, l)
	}
	slices.SortFunc(e.Links, func(a, b reconcile.Link) int { return strings.Compare(a.LinkKey(), b.LinkKey()) })
	if err := r.cfg.Store.Journal(e); err != nil {
		return nil, err
	}
	out := slices.Clone(links)
	for i, l := range out {
		if u, ok := upd[l.LinkKey()]; ok {
			out[i] = u
			delete(upd, l.LinkKey())
		}
	}
	for _, l := range e.Links {
		if _, ok := upd[l.LinkKey()]; ok {
			out = append(out, l)
		}
	}
	return out, nil
}

func linkReason(accountLinked bool) string {
	if accountLinked {
		return "another source record (or key) of a person already linked to this account"
	}
	return "matched an existing Jira account by email"
}

func (r *Runner) audit(log zerolog.Logger, a reconcile.AuditRecord) {
	if err := r.cfg.Store.Journal(reconcile.JournalEntry{Audit: []reconcile.AuditRecord{a}}); err != nil {
		log.Error().Err(err).Str("action", a.Action).Msg("writing the audit record failed")
	}
}

// capChanges keeps at most n items per kind for the stored run record, copied out of the plan
// so the record does not keep the plan's (possibly huge) lists alive.
func capChanges(c reconcile.Changes, n int) *reconcile.Changes {
	out := c
	truncated := false
	for _, k := range reconcile.Kinds {
		l := out.List(k)
		if len(*l) > n {
			*l = slices.Clone((*l)[:n])
			truncated = true
		}
	}
	if len(out.Links) > n {
		out.Links = slices.Clone(out.Links[:n])
		truncated = true
	}
	if len(out.Forget) > n {
		out.Forget = slices.Clone(out.Forget[:n])
		truncated = true
	}
	if truncated {
		out.Notes = append(slices.Clone(out.Notes), fmt.Sprintf("this run record keeps the first %d items of each kind; Counts are complete", n))
	}
	return &out
}
