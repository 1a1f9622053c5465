package runner_test

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// dyingStore is a MemStore that a test can kill: from then on every write fails, as if the
// process had died, and the MemStore holds what the state file would hold.
type dyingStore struct {
	*reconciletest.MemStore
	dead atomic.Bool
}

func (s *dyingStore) die() { s.dead.Store(true) }

func (s *dyingStore) Journal(e reconcile.JournalEntry) error {
	if s.dead.Load() {
		return errCrash
	}
	return s.MemStore.Journal(e)
}

func (s *dyingStore) PutRun(r reconcile.Run) error {
	if s.dead.Load() {
		return errCrash
	}
	return s.MemStore.PutRun(r)
}

func (s *dyingStore) PruneRuns(keep int) error {
	if s.dead.Load() {
		return errCrash
	}
	return s.MemStore.PruneRuns(keep)
}

func (s *dyingStore) PutHeldPlan(h reconcile.HeldPlan) error {
	if s.dead.Load() {
		return errCrash
	}
	return s.MemStore.PutHeldPlan(h)
}

func (s *dyingStore) PutStanding(list []reconcile.StandingApproval) error {
	if s.dead.Load() {
		return errCrash
	}
	return s.MemStore.PutStanding(list)
}

func (s *dyingStore) ClearHeldPlan() error {
	if s.dead.Load() {
		return errCrash
	}
	return s.MemStore.ClearHeldPlan()
}

func (s *dyingStore) PutSnapshot(r reconcile.SnapshotRecord) error {
	if s.dead.Load() {
		return errCrash
	}
	return s.MemStore.PutSnapshot(r)
}

// The process dies right after the k-th change reached Jira, before its outcome is journaled.
// The restarted process converges to the uninterrupted end state, and every change Jira
// applied has its audit record: the write-ahead "started" record, closed by "ok" or, for the
// ones in flight, by "unknown" saying the next plan found them applied. Links of accounts
// created in flight are Created.
func TestDeathAfterApplyLeavesEveryChangeAudited(t *testing.T) {
	for _, hide := range []bool{false, true} {
		t.Run(fmt.Sprintf("hidden emails %v", hide), func(t *testing.T) {
			refStore := reconciletest.NewMemStore()
			refSink, users := crashWorld(t, refStore)
			refSink.HideEmails = hide
			if _, err := crashRunner(t, refSink, refStore, users).RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"}); err != nil {
				t.Fatal(err)
			}
			want := endState(t, refSink, refStore)
			applies := refSink.ApplyCalls()
			for k := 1; k <= applies; k++ {
				t.Run(fmt.Sprintf("death after apply %d", k), func(t *testing.T) {
					store := &dyingStore{MemStore: reconciletest.NewMemStore()}
					f, _ := crashWorld(t, store)
					f.HideEmails = hide
					var mu sync.Mutex
					var sent []reconcile.Change
					f.AfterApply = func(c reconcile.Change, n int) {
						mu.Lock()
						sent = append(sent, c)
						mu.Unlock()
						if n == k {
							store.die()
						}
					}
					crashed, _ := crashRunner(t, f, store, users).RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
					f.AfterApply = nil
					disk := store.MemStore.Clone()
					if r, err := disk.Run(crashed.ID); err != nil || r.Result != reconcile.ResultRunning {
						t.Fatalf("the dead pass's record: %v %+v", err, r.Result)
					}

					after, err := crashRunner(t, f, disk, users).RunOnce(context.Background(), runner.RunOptions{Trigger: "startup"})
					if err != nil {
						t.Fatalf("pass after restart: %v", err)
					}
					if len(after.Unresolved) != 0 {
						t.Errorf("still unresolved: %v", after.Unresolved)
					}
					if got := endState(t, f, disk); got != want {
						t.Fatalf("end state differs:\n--- got\n%s\n--- want\n%s", got, want)
					}
					old, err := disk.Run(crashed.ID)
					if err != nil || old.Result != reconcile.ResultPartial || !strings.Contains(strings.Join(old.Errors, ";"), "the process stopped during this pass") {
						t.Errorf("interrupted run record: %v %s %v", err, old.Result, old.Errors)
					}
					audit, _ := disk.Audit(t0.AddDate(-1, 0, 0), "")
					byIntent := map[string][]reconcile.AuditRecord{}
					for _, a := range audit {
						if a.RunID == crashed.ID && a.Intent != "" {
							byIntent[a.Intent] = append(byIntent[a.Intent], a)
						}
					}
					for _, c := range sent {
						found := false
						for _, recs := range byIntent {
							var start, end []reconcile.AuditRecord
							for _, a := range recs {
								if a.Result == reconcile.ItemStarted {
									start = append(start, a)
								} else {
									end = append(end, a)
								}
							}
							if len(start) != 1 || start[0].Action != string(c.Kind) || !sameChange(start[0], c) {
								continue
							}
							found = true
							if len(end) != 1 {
								t.Errorf("%s %s: records %+v", c.Kind, c.Who(), recs)
								continue
							}
							switch end[0].Result {
							case reconcile.ItemOK:
							case reconcile.ItemUnknown:
								if !strings.Contains(end[0].Reason, "found applied") && !(hide && (c.Kind == reconcile.KindCreateUser || c.Kind == reconcile.KindCreateCustomer)) {
									t.Errorf("%s %s applied, but resolved as %q", c.Kind, c.Who(), end[0].Reason)
								}
							default:
								t.Errorf("%s %s applied, closed as %s", c.Kind, c.Who(), end[0].Result)
							}
						}
						if !found {
							t.Errorf("%s %s reached Jira without a started audit record", c.Kind, c.Who())
						}
					}
					links, _ := disk.Links()
					for _, l := range links {
						if !l.Created {
							t.Errorf("link %s is not Created", l.LinkKey())
						}
					}
					seen := map[string]bool{}
					for _, a := range f.Accounts() {
						if seen[strings.ToLower(a.Email)] {
							t.Errorf("two accounts with %s", a.Email)
						}
						seen[strings.ToLower(a.Email)] = true
					}
				})
			}
		})
	}
}

// sameChange matches a started audit record to the change the sink received.
func sameChange(a reconcile.AuditRecord, c reconcile.Change) bool {
	if c.AccountID != "" && a.AccountID != c.AccountID {
		return false
	}
	target := ""
	switch {
	case c.Group != nil:
		target = c.Group.Name
	case c.ServiceDesk != "":
		target = cmp.Or(c.ServiceDeskKey, c.ServiceDesk)
	case c.Organization != "":
		target = c.Organization
	}
	if target != "" && a.Target != target {
		return false
	}
	return a.Source == c.Source && a.UserKey == c.UserKey || c.Kind == reconcile.KindCreateGroup
}
