package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/rs/zerolog"
)

// Full and incremental reads of Jira (DESIGN "Full and incremental reads of Jira"). A full
// read lists every account and every member of every managed group; between full reads a
// scheduled or push pass plans against r.cache (the last full read, patched with every write
// applied since) and reads from Jira only the accounts its plan writes to, just before it
// writes them. The cache lives in memory on purpose: the first pass after a start reads in
// full anyway, so a copy in the state file would never be read.

// maxSettleRounds bounds how often an incremental pass re-reads and re-plans before it falls
// back to a full read. Each round reads the accounts the new plan touches that no earlier round
// read; two rounds settle every plan seen in practice (the second only when a fresh account
// record changed what the plan does with it).
const maxSettleRounds = 3

// fullReadDue says why the pass must read Jira in full, or "" when it may read incrementally.
// It is decided before the sources are read, so that they follow the same rhythm.
func (r *Runner) fullReadDue(o RunOptions, now time.Time) string {
	switch {
	case r.cfg.FullReadInterval <= 0:
		return "sink.jira.full_read_interval is 0"
	case o.Full:
		return "a full read was asked for"
	case o.Trigger != reconcile.TriggerSchedule && o.Trigger != reconcile.TriggerPush:
		return "a " + o.Trigger + " trigger reads in full"
	}
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	switch {
	case r.cache == nil:
		return "no full read since start, a config reload, or a pass with a failed item"
	case now.Sub(r.cacheTime) >= r.cfg.FullReadInterval:
		return fmt.Sprintf("the last full read is older than sink.jira.full_read_interval (%s)", r.cfg.FullReadInterval)
	}
	return ""
}

// jiraRead is how a pass read Jira.
type jiraRead struct {
	live  reconcile.Live
	scope reconcile.Scope
	kind  string // reconcile.Read*
	why   string // why a full read was due
	// cache is the cache an incremental pass plans against (fixed for the pass even if a
	// reload drops r.cache meanwhile); refreshed are the accounts and emails it read again.
	cache     *reconcile.LiveCache
	refreshed map[string]bool
	// activeLinked are the accounts of linked, not deactivated people (not customers): every
	// one is in some group, so one no listing shows is re-read (LiveCache.MarkUnlisted).
	activeLinked []string
}

// readJira reads Jira for a pass: the targeted accounts, everything (when fullWhy says so,
// or the cache cannot serve the scope), or the cache after re-reading its dirty accounts.
func (r *Runner) readJira(ctx context.Context, o RunOptions, scope reconcile.Scope, links []reconcile.Link, fullWhy string, now time.Time) (jiraRead, error) {
	jr := jiraRead{scope: scope, kind: reconcile.ReadTargeted, activeLinked: activeLinked(links)}
	if o.targeted() {
		var err error
		jr.live, err = r.cfg.Sink.Live(ctx, scope)
		return jr, err
	}
	if fullWhy == "" {
		r.cacheMu.Lock()
		jr.cache = r.cache
		gap, dirty := "", []string(nil)
		if jr.cache == nil {
			gap = "the cache was dropped (a config reload)"
		} else {
			gap, dirty = jr.cache.Covers(scope), jr.cache.Dirty()
		}
		r.cacheMu.Unlock()
		if gap != "" {
			fullWhy = "the pass reads more than the last full read: " + gap
		} else {
			jr.kind, jr.refreshed = reconcile.ReadIncremental, map[string]bool{}
			// Linked accounts the cache does not hold were created or linked since: read them.
			r.cacheMu.Lock()
			stale := append(dirty, jr.cache.Uncached(scope.Accounts)...)
			r.cacheMu.Unlock()
			err := r.refresh(ctx, &jr, stale, nil)
			if errors.Is(err, reconcile.ErrCacheGap) || errors.Is(err, errDearer) {
				fullWhy = err.Error()
			} else if err != nil {
				return jr, err
			}
		}
	}
	if fullWhy != "" {
		jr.cache = nil
		return r.readJiraFull(ctx, scope, jr.activeLinked, fullWhy, now)
	}
	r.cacheMu.Lock()
	jr.live = jr.cache.Live()
	r.cacheMu.Unlock()
	return jr, nil
}

// readJiraFull reads Jira in full and keeps what it read as the cache. The old cache goes
// first: on a big site it is as large as the read that replaces it, and the read fails or
// replaces it anyway.
func (r *Runner) readJiraFull(ctx context.Context, scope reconcile.Scope, activeLinked []string, why string, now time.Time) (jiraRead, error) {
	r.dropCache()
	jr := jiraRead{scope: scope, kind: reconcile.ReadFull, why: why, activeLinked: activeLinked}
	live, err := r.cfg.Sink.Live(ctx, scope)
	if err != nil {
		r.dropCache()
		return jr, err
	}
	jr.live = live
	if r.cfg.FullReadInterval > 0 {
		c := reconcile.NewLiveCache(live, scope)
		c.MarkUnlisted(jr.activeLinked)
		r.cacheMu.Lock()
		r.cache, r.cacheTime = c, now
		r.cacheMu.Unlock()
	}
	return jr, nil
}

func activeLinked(links []reconcile.Link) []string {
	var out []string
	for _, l := range links {
		if !l.Deactivated && !l.Customer {
			out = append(out, l.AccountID)
		}
	}
	return out
}

// errDearer says a targeted re-read would cost more calls than a full read: the pass reads in
// full instead (a small site, or many people changed at once).
var errDearer = errors.New("re-reading what the pass touches would cost more calls than a full read")

// refresh reads accounts and emails again (a targeted read) and lays them over the cache.
func (r *Runner) refresh(ctx context.Context, jr *jiraRead, accounts, emails []string) error {
	if len(accounts)+len(emails) > 0 {
		r.cacheMu.Lock()
		full := jr.cache.FullReadCost()
		r.cacheMu.Unlock()
		if cost := reconcile.TargetedReadCost(len(accounts), len(emails), jr.scope); cost >= full {
			return fmt.Errorf("%w (%d accounts: about %d calls, a full read about %d)", errDearer, len(accounts)+len(emails), cost, full)
		}
	}
	for _, k := range accounts {
		jr.refreshed[k] = true
	}
	for _, e := range emails {
		jr.refreshed["mail:"+e] = true
	}
	if len(accounts) == 0 && len(emails) == 0 {
		return nil
	}
	fresh, err := r.cfg.Sink.Live(ctx, reconcile.Scope{Targeted: true, Accounts: accounts, Emails: emails,
		ServiceDesks: jr.scope.ServiceDesks, Organizations: jr.scope.Organizations})
	if err != nil {
		return fmt.Errorf("re-reading %d accounts: %w", len(accounts)+len(emails), err)
	}
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	return jr.cache.Merge(fresh, accounts)
}

// settle makes an incremental pass's plan rest on fresh data: it re-reads every account the
// plan writes to (and looks up the email of every account it creates), re-plans, and repeats
// while the new plan touches accounts not read yet. A gap in the cache, or a plan that does
// not settle, falls back to a full read and its plan.
func (r *Runner) settle(ctx context.Context, jr *jiraRead, g guarded, plan func(reconcile.Live) guarded, now time.Time, log zerolog.Logger) (guarded, error) {
	for round := 0; ; round++ {
		accounts, emails := reconcile.Touched(g.c)
		var needA, needE []string
		for _, a := range accounts {
			if !jr.refreshed[a] {
				needA = append(needA, a)
			}
		}
		for _, e := range emails {
			if !jr.refreshed["mail:"+e] {
				needE = append(needE, e)
			}
		}
		if len(needA) == 0 && len(needE) == 0 {
			return g, nil
		}
		why := ""
		if round == maxSettleRounds {
			why = fmt.Sprintf("the incremental plan did not settle in %d re-reads", maxSettleRounds)
		} else if err := r.refresh(ctx, jr, needA, needE); errors.Is(err, reconcile.ErrCacheGap) || errors.Is(err, errDearer) {
			why = err.Error()
		} else if err != nil {
			return g, err
		}
		if why != "" {
			log.Info().Str("reason", why).Msg("incremental pass falls back to a full read of Jira")
			jr.cache, jr.live, g = nil, reconcile.Live{}, guarded{} // let the cached state go during the read
			full, err := r.readJiraFull(ctx, jr.scope, jr.activeLinked, why, now)
			if err != nil {
				return g, err
			}
			*jr = full
			return plan(jr.live), nil
		}
		r.cacheMu.Lock()
		jr.live = jr.cache.Live()
		r.cacheMu.Unlock()
		g = plan(jr.live)
	}
}

// patchCache is the executor's Applied hook: each applied change patches the cache.
func (r *Runner) patchCache(ch reconcile.Change, res reconcile.Result) {
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	if r.cache != nil {
		r.cache.Apply(ch, res)
	}
}

// dropCache makes the next pass read Jira in full.
func (r *Runner) dropCache() {
	r.cacheMu.Lock()
	r.cache = nil
	r.cacheMu.Unlock()
}
