package simulation

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

// A crash is acted out inside one process: at the chosen point the pass's context is
// cancelled and the store and sink stop answering (every later journal write, run record and
// Jira change fails, as they would in a dead process), then the driver closes the app and
// opens it again on the same state file. What was journaled before the crash is on disk;
// nothing after it is.

var errCrashed = errors.New("simulated crash: the process is gone")

// crashPlan says where a pass dies: at its first journal write (nothing of the pass is
// applied), or at its Nth Jira change that follows one of the same kind, just before it is
// sent or just after Jira made it (the answer, and the journal of its outcome, are lost).
//
// The executor journals the outcome of change k-1 (with the intent of change k+1) while it
// sends change k. Whether that write lands before a crash at change k would depend on
// scheduling, so the crash waits for it: it always lands. That write exists for certain only
// when change k-1 was of the same kind (the same worker's previous item), hence the rule.
type crashPlan struct {
	FirstJournal bool
	Apply        int
	After        bool
}

func (c crashPlan) String() string {
	switch {
	case c.FirstJournal:
		return "crash at the first journal write"
	case c.After:
		return fmt.Sprintf("crash just after Jira change %d (counting changes that follow one of their kind)", c.Apply)
	}
	return fmt.Sprintf("crash just before Jira change %d (counting changes that follow one of their kind)", c.Apply)
}

func drawCrash(r *rand.Rand) *crashPlan {
	if r.IntN(4) == 0 {
		return &crashPlan{FirstJournal: true}
	}
	return &crashPlan{Apply: 1 + r.IntN(3), After: r.IntN(2) == 0}
}

// crashBox is the crash switch of one running app.
type crashBox struct {
	mu       sync.Mutex
	cond     *sync.Cond
	plan     *crashPlan
	cancel   context.CancelFunc
	dead     bool
	journals int
	applies  int
	inflight int // journal writes under way
	// lastKind is the kind of the last change applied; eligible counts the changes that
	// followed one of their own kind (where a crash may land).
	lastKind reconcile.Kind
	eligible int
	// outcomes are the intents whose outcome records were journaled durably in this pass.
	outcomes map[string]bool
	stuck    bool // the journal a crash waits for never came
}

func newCrashBox() *crashBox {
	b := &crashBox{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// arm sets this pass's crash point (nil: none) and the pass's cancel function.
func (b *crashBox) arm(p *crashPlan, cancel context.CancelFunc) {
	b.mu.Lock()
	b.plan, b.cancel, b.journals, b.applies, b.eligible, b.lastKind = p, cancel, 0, 0, 0, ""
	b.outcomes = map[string]bool{}
	b.mu.Unlock()
}

func (b *crashBox) crashed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dead
}

// wasStuck reports whether a crash point waited in vain for the journal it expected.
func (b *crashBox) wasStuck() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stuck
}

// die marks the process dead (b.mu held). Journal writes already under way finish, as the
// disk would have them; none starts after.
func (b *crashBox) die() {
	b.dead = true
	if b.cancel != nil {
		b.cancel()
	}
	for b.inflight > 0 {
		b.cond.Wait()
	}
}

// storeWrap is the Runner's store inside a process that may die.
type storeWrap struct {
	runner.Store
	box   *crashBox
	audit *auditIndex
}

func (s *storeWrap) Journal(e reconcile.JournalEntry) error {
	b := s.box
	b.mu.Lock()
	if b.dead {
		b.mu.Unlock()
		return errCrashed
	}
	b.journals++
	if b.plan != nil && b.plan.FirstJournal && b.journals == 1 {
		b.die()
		b.mu.Unlock()
		return errCrashed
	}
	b.inflight++
	b.mu.Unlock()
	err := s.Store.Journal(e)
	if err == nil {
		s.audit.add(e.Audit)
	}
	b.mu.Lock()
	b.inflight--
	if err == nil {
		for _, a := range e.Audit {
			// This pass's own outcomes only (a resolution of an older run's intent
			// carries that run's intent).
			if a.Result != reconcile.ItemStarted && strings.HasPrefix(a.Intent, a.RunID+"/") {
				b.outcomes[a.Intent] = true
			}
		}
	}
	b.cond.Broadcast()
	b.mu.Unlock()
	return err
}

func (s *storeWrap) alive() error {
	if s.box.crashed() {
		return errCrashed
	}
	return nil
}

func (s *storeWrap) PutRun(r reconcile.Run) error {
	if err := s.alive(); err != nil {
		return err
	}
	return s.Store.PutRun(r)
}

func (s *storeWrap) PutHeldPlan(h reconcile.HeldPlan) error {
	if err := s.alive(); err != nil {
		return err
	}
	return s.Store.PutHeldPlan(h)
}

func (s *storeWrap) ClearHeldPlan() error {
	if err := s.alive(); err != nil {
		return err
	}
	return s.Store.ClearHeldPlan()
}

func (s *storeWrap) PutStanding(list []reconcile.StandingApproval) error {
	if err := s.alive(); err != nil {
		return err
	}
	return s.Store.PutStanding(list)
}

func (s *storeWrap) PutSnapshot(r reconcile.SnapshotRecord) error {
	if err := s.alive(); err != nil {
		return err
	}
	return s.Store.PutSnapshot(r)
}

// PruneRuns keeps the state store's pruning (the Runner looks for it on its store).
func (s *storeWrap) PruneRuns(keep int) error {
	if err := s.alive(); err != nil {
		return err
	}
	if p, ok := s.Store.(runner.Pruner); ok {
		return p.PruneRuns(keep)
	}
	return nil
}

// sinkWrap is the Runner's sink inside a process that may die.
type sinkWrap struct {
	reconcile.Sink
	box *crashBox
}

func (s *sinkWrap) Live(ctx context.Context, sc reconcile.Scope) (reconcile.Live, error) {
	if s.box.crashed() {
		return reconcile.Live{}, errCrashed
	}
	return s.Sink.Live(ctx, sc)
}

func (s *sinkWrap) Apply(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	b := s.box
	b.mu.Lock()
	if b.dead {
		b.mu.Unlock()
		return reconcile.Result{}, errCrashed
	}
	b.applies++
	same := b.applies > 1 && c.Kind == b.lastKind
	if same {
		b.eligible++
	}
	b.lastKind = c.Kind
	at := same && b.plan != nil && !b.plan.FirstJournal && b.eligible == b.plan.Apply
	if at {
		b.awaitOutcome(b.applies - 1)
	}
	if at && !b.plan.After {
		b.die()
		b.mu.Unlock()
		return reconcile.Result{}, errCrashed
	}
	b.mu.Unlock()
	res, err := s.Sink.Apply(ctx, c)
	if at {
		b.mu.Lock()
		b.die()
		b.mu.Unlock()
		return reconcile.Result{}, errCrashed
	}
	return res, err
}

// awaitOutcome waits (b.mu held) until the outcome of the pass's kth change is durable:
// the executor sends each change as that record is being written, and a crash must find it
// written every time. The bound only turns a hang (the executor journaling differently than
// assumed) into a reported error.
func (b *crashBox) awaitOutcome(k int) {
	suffix := "/" + strconv.Itoa(k)
	t := time.AfterFunc(outcomeWait, func() {
		b.mu.Lock()
		b.stuck = true
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer t.Stop()
	for !b.stuck {
		for intent := range b.outcomes {
			if strings.HasSuffix(intent, suffix) {
				return
			}
		}
		b.cond.Wait()
	}
}

// outcomeWait bounds awaitOutcome.
const outcomeWait = 30 * time.Second

// pushSource is the push side of the pulled source, whose read this pass's faults may fail.
type pushSource struct {
	reconcile.Source
	faults *faultBox
}

func (p *pushSource) Snapshot(ctx context.Context) (reconcile.Directory, error) {
	if p.faults.pushReadFails() {
		p.faults.count()
		return reconcile.Directory{}, errors.New("simulated: the SCIM push store could not be read")
	}
	return p.Source.Snapshot(ctx)
}
