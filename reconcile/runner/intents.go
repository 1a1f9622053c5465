package runner

import (
	"errors"
	"fmt"
	"strings"

	"github.com/idsync/idsync/reconcile"
	"github.com/rs/zerolog"
)

// Interrupted passes. The executor journals a "started" audit record before it sends a change
// and the outcome after; a pass stores its run record as "running" before its first write and
// replaces it when it ends. When the process dies in between, the next passes find the stored
// run still running (or carried in the newest run's Unresolved), and the next complete full
// pass resolves every started record that has no outcome: it audits it as "unknown", saying
// whether its own fresh plan found the change applied, marks the interrupted run partial, and
// restores what the lost outcome would have recorded (Link.Created of creates).

// pendingResolution returns the interrupted runs the newest stored run leaves to resolve.
func (r *Runner) pendingResolution(log zerolog.Logger) []string {
	runs, err := r.cfg.Store.Runs(1)
	if err != nil {
		log.Warn().Err(err).Msg("reading the last run record failed; interrupted passes are resolved later")
		return nil
	}
	if len(runs) == 0 {
		return nil
	}
	last := runs[0]
	if last.Result == reconcile.ResultRunning {
		return append([]string{last.ID}, last.Unresolved...)
	}
	return last.Unresolved
}

// resolution is what resolving interrupted runs tells the pass.
type resolution struct {
	// retried are person keys whose create was started without outcome and is planned
	// again: an adopting create then links the account that pass created.
	retried map[string]bool
	items   int
}

// resolveInterrupted closes the started records of the interrupted runs that have no outcome,
// using the raw plan of this complete full pass (before guards) as the witness of what Jira
// now holds, and marks those runs partial. Links of c whose create it finds applied become
// Created. It returns an error only when it could not journal; the runs then stay pending.
func (r *Runner) resolveInterrupted(log zerolog.Logger, runID string, pending []string, planned reconcile.Changes, c *reconcile.Changes) (resolution, error) {
	res := resolution{retried: map[string]bool{}}
	now := r.cfg.Now()
	var idx map[string]reconcile.Change
	var entry reconcile.JournalEntry
	var runs []reconcile.Run
	for _, id := range pending {
		old, err := r.cfg.Store.Run(id)
		if errors.Is(err, reconcile.ErrNotFound) {
			log.Warn().Str("interrupted_run", id).Msg("the record of an interrupted run is gone (pruned); its items in flight stay as started in the audit log")
			continue
		}
		if err != nil {
			return res, fmt.Errorf("reading interrupted run %s: %w", id, err)
		}
		recs, err := r.cfg.Store.Audit(old.Started, "")
		if err != nil {
			return res, fmt.Errorf("reading the audit log of interrupted run %s: %w", id, err)
		}
		closed := map[string]bool{}
		var started []reconcile.AuditRecord
		last := old.Started
		for _, a := range recs {
			if a.RunID != id {
				continue
			}
			if a.Time.After(last) {
				last = a.Time
			}
			if a.Intent == "" {
				continue
			}
			if a.Result == reconcile.ItemStarted {
				started = append(started, a)
			} else {
				closed[a.Intent] = true
			}
		}
		applied, again := 0, 0
		for _, a := range started {
			if closed[a.Intent] {
				continue
			}
			if idx == nil {
				idx = planIndex(planned)
			}
			done, how := verdict(idx, a)
			if done {
				applied++
			} else {
				again++
			}
			out := a
			out.Time, out.Result = now, reconcile.ItemUnknown
			out.Reason = strings.TrimPrefix(a.Reason+"; ", "; ") + "the process stopped before its outcome was journaled; verified by the plan of run " + runID + ": " + how
			entry.Audit = append(entry.Audit, out)
			if reconcile.Kind(a.Action) == reconcile.KindCreateUser || reconcile.Kind(a.Action) == reconcile.KindCreateCustomer {
				pk := a.Source + "/" + a.UserKey
				if done {
					for i := range c.Links {
						if c.Links[i].Source == a.Source && c.Links[i].Key == a.UserKey {
							c.Links[i].Created = true
						}
					}
				} else {
					res.retried[pk] = true
				}
			}
		}
		res.items += applied + again
		if old.Result == reconcile.ResultRunning {
			old.Result = reconcile.ResultPartial
			if old.Finished.IsZero() || old.Finished.Before(last) {
				old.Finished = last
			}
		}
		old.Errors = append(old.Errors, fmt.Sprintf("the process stopped during this pass; run %s resolved %d items in flight (%d found applied, %d planned again)",
			runID, applied+again, applied, again))
		runs = append(runs, old)
	}
	if len(entry.Audit) > 0 {
		if err := r.cfg.Store.Journal(entry); err != nil {
			return res, fmt.Errorf("journaling the resolution of interrupted runs: %w", err)
		}
	}
	for _, old := range runs {
		if err := r.cfg.Store.PutRun(old); err != nil {
			log.Warn().Err(err).Str("interrupted_run", old.ID).Msg("updating the interrupted run record failed")
		}
		log.Warn().Str("interrupted_run", old.ID).Msg(old.Errors[len(old.Errors)-1])
	}
	return res, nil
}

// planIndex indexes a plan by what identifies a change across passes.
func planIndex(c reconcile.Changes) map[string]reconcile.Change {
	idx := map[string]reconcile.Change{}
	for _, k := range reconcile.Kinds {
		for _, ch := range *c.List(k) {
			idx[changeIdentity(k, ch.Source, ch.UserKey, ch.AccountID, ch.Target(), ch.Group)] = ch
		}
	}
	return idx
}

// changeIdentity names a change the same way from a planned Change and from its audit record:
// creates by the person (or group name), everything else by account and target.
func changeIdentity(k reconcile.Kind, source, userKey, accountID, target string, g *reconcile.GroupRef) string {
	switch k {
	case reconcile.KindCreateUser, reconcile.KindCreateCustomer:
		return string(k) + "\x00" + source + "/" + userKey
	case reconcile.KindCreateGroup:
		if g != nil {
			target = g.Name
		}
		return string(k) + "\x00" + lower(target)
	case reconcile.KindDeactivateUser, reconcile.KindReactivateUser, reconcile.KindUpdateUser:
		return string(k) + "\x00" + accountID
	}
	return string(k) + "\x00" + accountID + "\x00" + lower(target)
}

// verdict says whether the fresh plan found a started change applied.
func verdict(idx map[string]reconcile.Change, a reconcile.AuditRecord) (bool, string) {
	k := reconcile.Kind(a.Action)
	ch, planned := idx[changeIdentity(k, a.Source, a.UserKey, a.AccountID, a.Target, nil)]
	switch {
	case !planned:
		return true, "found applied (no longer planned)"
	case k == reconcile.KindDeactivateUser && a.Target != "" && (len(ch.Groups) == 0 || ch.Unlisted):
		return true, "found applied (no group lists the account any more; planned again only to record it)"
	}
	return false, "found not applied; planned again"
}

// markRunning stores the pass's run record as running before its first write, so that a
// process dying mid-pass leaves a trace the next pass resolves.
func (r *Runner) markRunning(log zerolog.Logger, run reconcile.Run) {
	run.Result = reconcile.ResultRunning
	run.Changes, run.HeldItems = nil, nil
	if err := r.cfg.Store.PutRun(run); err != nil {
		log.Warn().Err(err).Msg("storing the running pass record failed; if the process dies now the next pass cannot resolve its items in flight")
	}
}
