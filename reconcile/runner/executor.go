package runner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// maxRunErrors caps the error messages a run record keeps; the total is still reported.
const maxRunErrors = 100

// ErrJournal wraps a failure to write the journal: the pass stops, because an applied item
// that is not journaled could lose an ownership record.
var ErrJournal = errors.New("writing the journal")

// ExecOptions configure one execution of a plan.
type ExecOptions struct {
	RunID string
	// Actor is who the audit log names: the trigger, or "approve:<who>".
	Actor string
	// Approved maps the ItemKey of each approved removal and deactivation to its actor
	// ("approve:" and who approved it): the audit names them, and a failed one is reported
	// in ExecResult.FailedApproved so that its approval can stand.
	Approved map[string]string
	// Applied, when set, is called with every change Jira applied and its result (from
	// several goroutines at once).
	Applied     func(reconcile.Change, reconcile.Result)
	Concurrency int
	// Links are the current links (after the plan's own links were journaled); deactivation
	// and reactivation update them.
	Links    []reconcile.Link
	Now      func() time.Time
	Observer Observer
	// ItemTimeout bounds one item, including after shutdown began (the item in flight is
	// finished with a context that ignores cancellation). Default 2 minutes.
	ItemTimeout time.Duration
	// Retried are person keys (source/key) whose create an earlier, interrupted pass had
	// started without journaling its outcome: when the create now adopts an existing
	// account, that account is the one idsync created (Link.Created).
	Retried map[string]bool
}

// ExecResult is what an execution did.
type ExecResult struct {
	Counts map[reconcile.Kind]map[string]int
	Errors []string
	// ErrorCount is the number of failed items (Errors keeps the first maxRunErrors).
	ErrorCount int
	// Stopped is set when shutdown or a journal failure stopped the pass early.
	Stopped bool
	// Err is the journal failure that stopped the pass, if any.
	Err error
	// FailedApproved are the approved items (keys in ExecOptions.Approved) that failed.
	FailedApproved []reconcile.Change
}

type executor struct {
	sink  reconcile.Sink
	store Journal
	o     ExecOptions
	obs   Observer
	total int

	mu       sync.Mutex
	accounts map[string]string // person -> accountId of accounts created or re-created here
	groups   map[string]string // lower group name -> id of groups created here
	orgs     map[string]string // lower organization name -> id
	failed   map[string]string // person or "group:"+lower name -> the failed item
	links    map[string]reconcile.Link
	byAcc    map[string][]string // accountId -> link keys
	res      ExecResult
	done     int
	stop     atomic.Bool
	intents  atomic.Int64

	// Memberships creates did (see ItemDoneByCreate), guarded by mu. adds is the plan's
	// AddMembers; joinIdx indexes those of people created in this pass by group, built for a
	// group the first time a create reports it; byCreate are the adds settled by a create.
	adds      []reconcile.Change
	joinIdx   map[joinKey]int32
	joinNames map[string]bool
	byCreate  map[joinKey]bool
}

// Execute applies a guarded plan through the sink in Kinds order, with bounded concurrency
// within a kind. Every item is written ahead: its "started" audit record (and, for adds, the
// ownership of what it adds; for deactivations, the groups it is about to remove) is durable
// before the change is sent, and its outcome (links, ownership, audit) is durable before
// anything that depends on it starts. So a crash at any point leaves at most a stale
// ownership record (the next plan forgets it) or a started record without outcome (the next
// complete pass resolves it), never an unowned membership or an applied change without an
// audit record. One item's failure never stops the pass: dependants are skipped and the next
// pass retries. Cancelling ctx finishes the items in flight, journals them, and starts
// nothing new.
//
// The journal does not cap throughput: each worker journals the outcome of its previous item
// together with the intent of its next one, while the current one is being applied, so an
// item costs one journal write (shared by all workers through the store's batching) that
// overlaps the sink's latency instead of adding to it.
func Execute(ctx context.Context, sink reconcile.Sink, store Journal, c reconcile.Changes, o ExecOptions) ExecResult {
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ItemTimeout <= 0 {
		o.ItemTimeout = 2 * time.Minute
	}
	e := &executor{
		sink: sink, store: store, o: o, obs: nopObserver(o.Observer),
		accounts: map[string]string{}, groups: map[string]string{}, orgs: map[string]string{},
		failed: map[string]string{}, links: make(map[string]reconcile.Link, len(o.Links)),
		res:  ExecResult{Counts: map[reconcile.Kind]map[string]int{}},
		adds: c.AddMembers,
	}
	e.byAcc = make(map[string][]string, len(o.Links))
	for _, l := range o.Links {
		e.links[l.LinkKey()] = l
		e.byAcc[l.AccountID] = append(e.byAcc[l.AccountID], l.LinkKey())
	}
	for _, k := range reconcile.Kinds {
		e.total += len(*c.List(k))
	}
	for _, k := range reconcile.Kinds {
		items := *c.List(k)
		if k == reconcile.KindAddOrganizationMember {
			// The first add to an organization that does not exist yet creates it; the
			// others then find it by name instead of racing to create it.
			first, rest := splitFirstPerOrg(items)
			e.runKind(ctx, first)
			e.runKind(ctx, rest)
			continue
		}
		e.runKind(ctx, items)
	}
	if e.stop.Load() || (ctx.Err() != nil && e.done < e.total) {
		e.res.Stopped = true
	}
	return e.res
}

func splitFirstPerOrg(items []reconcile.Change) (first, rest []reconcile.Change) {
	seen := map[string]bool{}
	for _, ch := range items {
		k := lower(ch.Organization)
		if ch.OrganizationID == "" && !seen[k] {
			seen[k] = true
			first = append(first, ch)
			continue
		}
		rest = append(rest, ch)
	}
	return first, rest
}

// runKind applies the items of one kind with up to Concurrency workers and returns once every
// item it started is journaled.
func (e *executor) runKind(ctx context.Context, items []reconcile.Change) {
	if len(items) == 0 {
		return
	}
	queue := make(chan reconcile.Change)
	var wg sync.WaitGroup
	for range min(e.o.Concurrency, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.worker(ctx, queue)
		}()
	}
feed:
	for _, ch := range items {
		if ctx.Err() != nil || e.stop.Load() {
			e.stop.Store(true)
			break
		}
		select {
		case queue <- ch:
		case <-ctx.Done():
			e.stop.Store(true)
			break feed
		}
	}
	close(queue)
	wg.Wait()
}

// prepared is an item ready to send: dependencies resolved, write-ahead entry built.
type prepared struct {
	ch     reconcile.Change
	intent reconcile.JournalEntry
	// prevPending are the groups earlier interrupted deactivations of the account had
	// pending (merged into RemovedGroups when this one completes).
	prevPending []reconcile.GroupRef
	id          string
}

// outcomes are journal records of finished items waiting for their write, and the counts
// they settle once it is durable.
type outcomes struct {
	entry  reconcile.JournalEntry
	counts []reconcile.Kind
	result []string
}

func (o *outcomes) add(j reconcile.JournalEntry, k reconcile.Kind, result string) {
	o.entry = mergeEntries(o.entry, j)
	o.counts = append(o.counts, k)
	o.result = append(o.result, result)
}

// settle counts the outcomes once their journal write returned: as they were when it
// succeeded, as failed when it did not (an applied item that is not journaled is a failure:
// the next pass re-plans it).
func (e *executor) settle(o *outcomes, jerr error) {
	for i, k := range o.counts {
		r := o.result[i]
		if jerr != nil && (r == reconcile.ItemOK || r == reconcile.ItemDoneByCreate) {
			r = reconcile.ItemFailed
		}
		e.count(k, r)
	}
	*o = outcomes{}
}

// worker applies items from queue one after the other. While item i is being applied, the
// outcome of item i-1 and the intent of item i+1 are journaled together; item i+1 is sent only
// once that write is durable.
func (e *executor) worker(ctx context.Context, queue <-chan reconcile.Change) {
	defer func() {
		for range queue { // the feeder stops at the stop flag; never leave it blocked
		}
	}()
	var done outcomes
	next := e.prepareNext(queue, &done)
	if next != nil || !entryEmpty(done.entry) {
		var j reconcile.JournalEntry
		if next != nil {
			j = next.intent
		}
		err := e.journal(mergeEntries(done.entry, j))
		e.settle(&done, err)
		if err != nil && next != nil {
			e.count(next.ch.Kind, reconcile.ItemFailed)
			next = nil
		}
	}
	for next != nil {
		cur := next
		if ctx.Err() != nil || e.stop.Load() {
			e.abandon(cur, &done)
			break
		}
		next = e.prepareNext(queue, &done)
		ahead := done.entry
		if next != nil {
			ahead = mergeEntries(ahead, next.intent)
		}
		var jerr chan error
		if !entryEmpty(ahead) {
			jerr = make(chan error, 1)
			go func() { jerr <- e.journal(ahead) }()
		}
		res, err := e.send(ctx, cur.ch)
		if jerr != nil {
			werr := <-jerr
			e.settle(&done, werr)
			if werr != nil && next != nil {
				// Its intent is not durable: it must not be sent.
				e.count(next.ch.Kind, reconcile.ItemFailed)
				next = nil
			}
		} else {
			e.settle(&done, nil)
		}
		e.finish(cur, res, err, &done)
	}
	if !entryEmpty(done.entry) || len(done.counts) > 0 {
		var err error
		if !entryEmpty(done.entry) {
			err = e.journal(done.entry)
		}
		e.settle(&done, err)
	}
}

// prepareNext takes items from the queue until one must be sent; items that need no write
// (unsupported, or skipped because what they depend on failed) only add their outcome.
func (e *executor) prepareNext(queue <-chan reconcile.Change, done *outcomes) *prepared {
	for ch := range queue {
		if e.stop.Load() {
			return nil
		}
		if ch.Unsupported != "" {
			done.counts = append(done.counts, ch.Kind)
			done.result = append(done.result, reconcile.ItemUnsupported)
			continue
		}
		if e.settledByCreate(ch) {
			continue // counted, owned and audited with the create's outcome
		}
		if dep := e.resolve(&ch); dep != "" {
			done.add(reconcile.JournalEntry{Audit: []reconcile.AuditRecord{e.audit(ch, reconcile.ItemSkipped, errors.New(dep))}}, ch.Kind, reconcile.ItemSkipped)
			continue
		}
		p := &prepared{ch: ch, id: e.o.RunID + "/" + strconv.FormatInt(e.intents.Add(1), 10)}
		p.intent, p.prevPending = e.pre(ch, e.o.Now())
		a := e.audit(ch, reconcile.ItemStarted, nil)
		a.Intent = p.id
		p.intent.Audit = append(p.intent.Audit, a)
		return p
	}
	return nil
}

// abandon closes an item whose intent is durable but that was never sent (the pass stopped).
func (e *executor) abandon(p *prepared, done *outcomes) {
	a := e.audit(p.ch, reconcile.ItemSkipped, errors.New("the pass stopped before it was sent"))
	a.Intent = p.id
	done.add(reconcile.JournalEntry{Audit: []reconcile.AuditRecord{a}}, p.ch.Kind, reconcile.ItemSkipped)
}

// send applies one change, finishing it even after shutdown began (bounded by ItemTimeout).
func (e *executor) send(ctx context.Context, ch reconcile.Change) (reconcile.Result, error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.ItemTimeout)
	defer cancel()
	res, err := e.sink.Apply(actx, ch)
	if err == nil {
		err = checkResult(ch, res)
	}
	return res, err
}

// finish records the outcome of a sent item for the next journal write.
func (e *executor) finish(p *prepared, res reconcile.Result, err error, done *outcomes) {
	if err != nil {
		var j reconcile.JournalEntry
		if p.ch.Kind == reconcile.KindDeactivateUser && len(res.Groups) > 0 {
			// Deprovisioning is exhaustive: the sink tried every step and some failed. What it
			// did take is no longer owned; the next pass plans the rest again.
			err = fmt.Errorf("partly deactivated (left %s): %w", reconcile.GroupNames(res.Groups), err)
			for _, g := range res.Groups {
				if g.ID != "" {
					j.Disown = append(j.Disown, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: g.ID, AccountID: p.ch.AccountID})
				}
			}
		}
		e.fail(p.ch, err)
		a := e.audit(p.ch, reconcile.ItemFailed, err)
		a.Intent = p.id
		j.Audit = append(j.Audit, a)
		done.add(j, p.ch.Kind, reconcile.ItemFailed)
		return
	}
	if e.o.Applied != nil {
		e.o.Applied(p.ch, res)
	}
	now := e.o.Now()
	post := e.post(p.ch, res, p.prevPending, now)
	for i := range post.Audit {
		post.Audit[i].Intent = p.id
	}
	joined := e.joinedByCreate(p.ch, res)
	done.add(post, p.ch.Kind, reconcile.ItemOK)
	if len(joined.Audit) > 0 {
		// In the create's own journal write: the account and the memberships Jira gave it
		// are durable together, so no crash leaves such a membership unowned.
		done.entry = mergeEntries(done.entry, joined)
		for range joined.Audit {
			done.counts = append(done.counts, reconcile.KindAddMember)
			done.result = append(done.result, reconcile.ItemDoneByCreate)
		}
	}
}

func (e *executor) count(k reconcile.Kind, result string) {
	e.mu.Lock()
	m := e.res.Counts[k]
	if m == nil {
		m = map[string]int{}
		e.res.Counts[k] = m
	}
	m[result]++
	e.done++
	done := e.done
	e.mu.Unlock()
	e.obs.ChangeApplied(k, result)
	e.obs.Progress(done, e.total)
}

func (e *executor) fail(ch reconcile.Change, err error) {
	e.mu.Lock()
	e.res.ErrorCount++
	if _, ok := e.o.Approved[ch.ItemKey()]; ok && ch.Kind.IsRemoval() {
		e.res.FailedApproved = append(e.res.FailedApproved, ch)
	}
	if len(e.res.Errors) < maxRunErrors {
		e.res.Errors = append(e.res.Errors, fmt.Sprintf("%s %s (%s): %v", ch.Kind, ch.Who(), ch.What(), err))
	}
	switch ch.Kind {
	case reconcile.KindCreateUser, reconcile.KindCreateCustomer, reconcile.KindReactivateUser:
		e.failed[reconcile.PersonKey(ch)] = string(ch.Kind) + " " + ch.Who()
	case reconcile.KindCreateGroup:
		e.failed["group:"+lower(ch.Group.Name)] = "create_group " + ch.Group.Name
	}
	e.mu.Unlock()
}

// resolve fills ids of objects created earlier in the pass, or says which failed item the
// change depends on.
func (e *executor) resolve(ch *reconcile.Change) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ch.Kind {
	case reconcile.KindAddMember, reconcile.KindAddCustomer, reconcile.KindAddOrganizationMember, reconcile.KindUpdateUser:
		if f, ok := e.failed[reconcile.PersonKey(*ch)]; ok {
			return "depends on failed " + f
		}
	}
	if ch.AccountID == "" && ch.Kind != reconcile.KindCreateUser && ch.Kind != reconcile.KindCreateCustomer && ch.Kind != reconcile.KindCreateGroup {
		id, ok := e.accounts[reconcile.PersonKey(*ch)]
		if !ok {
			return "depends on an account that was not created in this pass"
		}
		ch.AccountID = id
	}
	if ch.Group != nil && ch.Group.ID == "" && ch.Kind != reconcile.KindCreateGroup {
		k := lower(ch.Group.Name)
		if f, ok := e.failed["group:"+k]; ok {
			return "depends on failed " + f
		}
		id, ok := e.groups[k]
		if !ok {
			return "depends on group " + ch.Group.Name + " that was not created in this pass"
		}
		g := *ch.Group
		g.ID = id
		ch.Group = &g
	}
	if ch.Kind == reconcile.KindAddOrganizationMember && ch.OrganizationID == "" {
		ch.OrganizationID = e.orgs[lower(ch.Organization)]
	}
	return ""
}

// checkResult refuses results a create cannot do without: a missing id would lose the link.
func checkResult(ch reconcile.Change, res reconcile.Result) error {
	switch ch.Kind {
	case reconcile.KindCreateUser, reconcile.KindCreateCustomer:
		if res.AccountID == "" {
			return errors.New("sink returned no accountId")
		}
	case reconcile.KindCreateGroup:
		if res.GroupID == "" {
			return errors.New("sink returned no groupId")
		}
	}
	return nil
}
