package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Item results, as in Run.Counts and idsync_changes_total{result}.
const (
	ItemOK          = "ok"
	ItemFailed      = "failed"
	ItemSkipped     = "skipped"
	ItemHeld        = "held"
	ItemUnsupported = "unsupported"
	ItemPlanned     = "planned" // dry run
	// ItemStarted is the write-ahead audit record journaled before a change is sent; its
	// outcome (ok, failed, skipped) follows with the same AuditRecord.Intent.
	ItemStarted = "started"
	// ItemUnknown closes a started record whose outcome was never journaled (the process
	// died in between); the next complete pass writes it, saying whether its plan found the
	// change applied.
	ItemUnknown = "unknown"
	// ItemDoneByCreate settles a planned AddMember that the creation of the account already
	// did: Jira puts a new account into its products' default groups (Result.Groups of the
	// create). Nothing is sent and it is not a write; the membership is owned and audited
	// like an applied add.
	ItemDoneByCreate = "done_by_create"
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
	// RemovalActor, when set, is the actor of the removals and deactivations whose ItemKey
	// is in Approved (an approved pass names who approved them).
	RemovalActor string
	Approved     map[string]bool
	Concurrency  int
	// Links are the current links (after the plan's own links were journaled); deactivation
	// and reactivation update them.
	Links    []Link
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
	Counts map[Kind]map[string]int
	Errors []string
	// ErrorCount is the number of failed items (Errors keeps the first maxRunErrors).
	ErrorCount int
	// Stopped is set when shutdown or a journal failure stopped the pass early.
	Stopped bool
	// Err is the journal failure that stopped the pass, if any.
	Err error
}

type executor struct {
	sink  Sink
	store Store
	o     ExecOptions
	obs   Observer
	total int

	mu       sync.Mutex
	accounts map[string]string // person -> accountId of accounts created or re-created here
	groups   map[string]string // lower group name -> id of groups created here
	orgs     map[string]string // lower organization name -> id
	failed   map[string]string // person or "group:"+lower name -> the failed item
	links    map[string]Link
	byAcc    map[string][]string // accountId -> link keys
	res      ExecResult
	done     int
	stop     atomic.Bool
	intents  atomic.Int64

	// Memberships creates did (see ItemDoneByCreate), guarded by mu. adds is the plan's
	// AddMembers; joinIdx indexes those of people created in this pass by group, built for a
	// group the first time a create reports it; byCreate are the adds settled by a create.
	adds      []Change
	joinIdx   map[joinKey]int32
	joinNames map[string]bool
	byCreate  map[joinKey]bool
}

// joinKey names a planned add of a person (winning source record) to a group (lower name).
type joinKey struct{ source, key, group string }

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
func Execute(ctx context.Context, sink Sink, store Store, c Changes, o ExecOptions) ExecResult {
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
		failed: map[string]string{}, links: make(map[string]Link, len(o.Links)),
		res:  ExecResult{Counts: map[Kind]map[string]int{}},
		adds: c.AddMembers,
	}
	e.byAcc = make(map[string][]string, len(o.Links))
	for _, l := range o.Links {
		e.links[l.LinkKey()] = l
		e.byAcc[l.AccountID] = append(e.byAcc[l.AccountID], l.LinkKey())
	}
	for _, k := range Kinds {
		e.total += len(*c.List(k))
	}
	for _, k := range Kinds {
		items := *c.List(k)
		if k == KindAddOrganizationMember {
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

func splitFirstPerOrg(items []Change) (first, rest []Change) {
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
func (e *executor) runKind(ctx context.Context, items []Change) {
	if len(items) == 0 {
		return
	}
	queue := make(chan Change)
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
	ch     Change
	intent JournalEntry
	// prevPending are the groups earlier interrupted deactivations of the account had
	// pending (merged into RemovedGroups when this one completes).
	prevPending []GroupRef
	id          string
}

// outcomes are journal records of finished items waiting for their write, and the counts
// they settle once it is durable.
type outcomes struct {
	entry  JournalEntry
	counts []Kind
	result []string
}

func (o *outcomes) add(j JournalEntry, k Kind, result string) {
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
		if jerr != nil && (r == ItemOK || r == ItemDoneByCreate) {
			r = ItemFailed
		}
		e.count(k, r)
	}
	*o = outcomes{}
}

func mergeEntries(a, b JournalEntry) JournalEntry {
	a.Links = append(a.Links, b.Links...)
	a.Own = append(a.Own, b.Own...)
	a.Disown = append(a.Disown, b.Disown...)
	a.Audit = append(a.Audit, b.Audit...)
	return a
}

func entryEmpty(j JournalEntry) bool {
	return len(j.Links)+len(j.Own)+len(j.Disown)+len(j.Audit) == 0
}

// worker applies items from queue one after the other. While item i is being applied, the
// outcome of item i-1 and the intent of item i+1 are journaled together; item i+1 is sent only
// once that write is durable.
func (e *executor) worker(ctx context.Context, queue <-chan Change) {
	defer func() {
		for range queue { // the feeder stops at the stop flag; never leave it blocked
		}
	}()
	var done outcomes
	next := e.prepareNext(queue, &done)
	if next != nil || !entryEmpty(done.entry) {
		var j JournalEntry
		if next != nil {
			j = next.intent
		}
		err := e.journal(mergeEntries(done.entry, j))
		e.settle(&done, err)
		if err != nil && next != nil {
			e.count(next.ch.Kind, ItemFailed)
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
				e.count(next.ch.Kind, ItemFailed)
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
func (e *executor) prepareNext(queue <-chan Change, done *outcomes) *prepared {
	for ch := range queue {
		if e.stop.Load() {
			return nil
		}
		if ch.Unsupported != "" {
			done.counts = append(done.counts, ch.Kind)
			done.result = append(done.result, ItemUnsupported)
			continue
		}
		if e.settledByCreate(ch) {
			continue // counted, owned and audited with the create's outcome
		}
		if dep := e.resolve(&ch); dep != "" {
			done.add(JournalEntry{Audit: []AuditRecord{e.audit(ch, ItemSkipped, errors.New(dep))}}, ch.Kind, ItemSkipped)
			continue
		}
		p := &prepared{ch: ch, id: e.o.RunID + "/" + strconv.FormatInt(e.intents.Add(1), 10)}
		p.intent, p.prevPending = e.pre(ch, e.o.Now())
		a := e.audit(ch, ItemStarted, nil)
		a.Intent = p.id
		p.intent.Audit = append(p.intent.Audit, a)
		return p
	}
	return nil
}

// abandon closes an item whose intent is durable but that was never sent (the pass stopped).
func (e *executor) abandon(p *prepared, done *outcomes) {
	a := e.audit(p.ch, ItemSkipped, errors.New("the pass stopped before it was sent"))
	a.Intent = p.id
	done.add(JournalEntry{Audit: []AuditRecord{a}}, p.ch.Kind, ItemSkipped)
}

// send applies one change, finishing it even after shutdown began (bounded by ItemTimeout).
func (e *executor) send(ctx context.Context, ch Change) (Result, error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.ItemTimeout)
	defer cancel()
	res, err := e.sink.Apply(actx, ch)
	if err == nil {
		err = checkResult(ch, res)
	}
	return res, err
}

// finish records the outcome of a sent item for the next journal write.
func (e *executor) finish(p *prepared, res Result, err error, done *outcomes) {
	if err != nil {
		var j JournalEntry
		if p.ch.Kind == KindDeactivateUser && len(res.Groups) > 0 {
			// Deprovisioning is exhaustive: the sink tried every step and some failed. What it
			// did take is no longer owned; the next pass plans the rest again.
			err = fmt.Errorf("partly deactivated (left %s): %w", groupNames(res.Groups), err)
			for _, g := range res.Groups {
				if g.ID != "" {
					j.Disown = append(j.Disown, Owned{Kind: OwnedMembership, Container: g.ID, AccountID: p.ch.AccountID})
				}
			}
		}
		e.fail(p.ch, err)
		a := e.audit(p.ch, ItemFailed, err)
		a.Intent = p.id
		j.Audit = append(j.Audit, a)
		done.add(j, p.ch.Kind, ItemFailed)
		return
	}
	now := e.o.Now()
	post := e.post(p.ch, res, p.prevPending, now)
	for i := range post.Audit {
		post.Audit[i].Intent = p.id
	}
	joined := e.joinedByCreate(p.ch, res, now)
	done.add(post, p.ch.Kind, ItemOK)
	if len(joined.Audit) > 0 {
		// In the create's own journal write: the account and the memberships Jira gave it
		// are durable together, so no crash leaves such a membership unowned.
		done.entry = mergeEntries(done.entry, joined)
		for range joined.Audit {
			done.counts = append(done.counts, KindAddMember)
			done.result = append(done.result, ItemDoneByCreate)
		}
	}
}

// joinedByCreate settles the planned adds a create already did: for each group the sink says
// the new account was put into (Result.Groups) and that the plan adds this person to, it
// records the ownership and a done_by_create audit record, and marks the add so the
// AddMember phase sends nothing for it. An adopted account is not trusted to have joined
// anything (it existed before), and a group without a known id is left to its add: ownership
// is recorded by id.
func (e *executor) joinedByCreate(ch Change, res Result, now time.Time) JournalEntry {
	var j JournalEntry
	if ch.Kind != KindCreateUser || res.Adopted || len(res.Groups) == 0 {
		return j
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range res.Groups {
		if g.Name == "" && g.ID == "" {
			continue
		}
		k := joinKey{ch.Source, ch.UserKey, lower(g.Name)}
		i, ok := e.plannedJoin(k)
		if !ok || e.byCreate[k] {
			continue
		}
		add := e.adds[i]
		ref := *add.Group
		switch {
		case ref.ID != "" && g.ID != "" && ref.ID != g.ID:
			continue // another group of that name than the plan's: let the add say
		case ref.ID == "":
			ref.ID = cmp.Or(g.ID, e.groups[k.group])
		}
		if ref.ID == "" {
			continue
		}
		add.AccountID, add.Group = res.AccountID, &ref
		j.Own = append(j.Own, Owned{Kind: OwnedMembership, Container: ref.ID, ContainerName: ref.Name, AccountID: res.AccountID, Since: now})
		a := e.audit(add, ItemDoneByCreate, nil)
		a.Reason += " (done by the account's creation: Jira put the new account into this group)"
		j.Audit = append(j.Audit, a)
		if e.byCreate == nil {
			e.byCreate = map[joinKey]bool{}
		}
		e.byCreate[k] = true
	}
	return j
}

// plannedJoin finds the planned add of a person created in this pass to a group (e.mu held).
// The index of a group is built the first time a create reports it: every create reports the
// same few default groups, so the plan's adds are scanned once per group.
func (e *executor) plannedJoin(k joinKey) (int32, bool) {
	if !e.joinNames[k.group] {
		if e.joinNames == nil {
			e.joinNames, e.joinIdx = map[string]bool{}, map[joinKey]int32{}
		}
		e.joinNames[k.group] = true
		for i := range e.adds {
			a := &e.adds[i]
			if a.AccountID == "" && a.Group != nil && strings.EqualFold(a.Group.Name, k.group) {
				e.joinIdx[joinKey{a.Source, a.UserKey, k.group}] = int32(i)
			}
		}
	}
	i, ok := e.joinIdx[k]
	return i, ok
}

// settledByCreate reports whether a create already did this add.
func (e *executor) settledByCreate(ch Change) bool {
	if ch.Kind != KindAddMember || ch.AccountID != "" || ch.Group == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byCreate[joinKey{ch.Source, ch.UserKey, lower(ch.Group.Name)}]
}

func (e *executor) count(k Kind, result string) {
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

func (e *executor) fail(ch Change, err error) {
	e.mu.Lock()
	e.res.ErrorCount++
	if len(e.res.Errors) < maxRunErrors {
		e.res.Errors = append(e.res.Errors, fmt.Sprintf("%s %s (%s): %v", ch.Kind, ch.Who(), ch.What(), err))
	}
	switch ch.Kind {
	case KindCreateUser, KindCreateCustomer, KindReactivateUser:
		e.failed[personKey(ch)] = string(ch.Kind) + " " + ch.Who()
	case KindCreateGroup:
		e.failed["group:"+lower(ch.Group.Name)] = "create_group " + ch.Group.Name
	}
	e.mu.Unlock()
}

// resolve fills ids of objects created earlier in the pass, or says which failed item the
// change depends on.
func (e *executor) resolve(ch *Change) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ch.Kind {
	case KindAddMember, KindAddCustomer, KindAddOrganizationMember, KindUpdateUser:
		if f, ok := e.failed[personKey(*ch)]; ok {
			return "depends on failed " + f
		}
	}
	if ch.AccountID == "" && ch.Kind != KindCreateUser && ch.Kind != KindCreateCustomer && ch.Kind != KindCreateGroup {
		id, ok := e.accounts[personKey(*ch)]
		if !ok {
			return "depends on an account that was not created in this pass"
		}
		ch.AccountID = id
	}
	if ch.Group != nil && ch.Group.ID == "" && ch.Kind != KindCreateGroup {
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
	if ch.Kind == KindAddOrganizationMember && ch.OrganizationID == "" {
		ch.OrganizationID = e.orgs[lower(ch.Organization)]
	}
	return ""
}

func (e *executor) audit(ch Change, result string, err error) AuditRecord {
	a := AuditRecord{
		Time: e.o.Now(), RunID: e.o.RunID, Actor: e.o.Actor, Action: string(ch.Kind),
		Source: ch.Source, UserKey: ch.UserKey, UserName: ch.UserName, AccountID: ch.AccountID,
		Target: ch.target(), Reason: ch.Reason, Result: result,
	}
	if ch.Kind.IsRemoval() && e.o.RemovalActor != "" && e.o.Approved[ch.ItemKey()] {
		a.Actor = e.o.RemovalActor
	}
	switch {
	case ch.Kind == KindCreateGroup:
		a.Target = ch.Group.Name
	case ch.Kind == KindDeactivateUser && len(ch.Groups) > 0:
		a.Target = groupNames(ch.Groups) // what it is about to remove; the outcome says what it did
	}
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

func (e *executor) journal(j JournalEntry) error {
	if err := e.store.Journal(j); err != nil {
		e.stop.Store(true)
		e.mu.Lock()
		if e.res.Err == nil {
			e.res.Err = fmt.Errorf("%w: %w", ErrJournal, err)
		}
		e.mu.Unlock()
		return err
	}
	return nil
}

// checkResult refuses results a create cannot do without: a missing id would lose the link.
func checkResult(ch Change, res Result) error {
	switch ch.Kind {
	case KindCreateUser, KindCreateCustomer:
		if res.AccountID == "" {
			return errors.New("sink returned no accountId")
		}
	case KindCreateGroup:
		if res.GroupID == "" {
			return errors.New("sink returned no groupId")
		}
	}
	return nil
}

// pre is what must be durable before the change is sent: ownership of adds, and the groups a
// deactivation is about to remove.
func (e *executor) pre(ch Change, now time.Time) (JournalEntry, []GroupRef) {
	var j JournalEntry
	switch ch.Kind {
	case KindAddMember:
		j.Own = append(j.Own, Owned{Kind: OwnedMembership, Container: ch.Group.ID, ContainerName: ch.Group.Name, AccountID: ch.AccountID, Since: now})
	case KindAddCustomer:
		j.Own = append(j.Own, Owned{Kind: OwnedCustomer, Container: ch.ServiceDesk, ContainerName: ch.ServiceDesk, AccountID: ch.AccountID, Since: now})
	case KindAddOrganizationMember:
		// An organization created by this very add has no id yet: own the membership under
		// its name until the id is known (see OrgPlaceholder).
		j.Own = append(j.Own, Owned{Kind: OwnedOrganization, Container: cmp.Or(ch.OrganizationID, OrgPlaceholder(ch.Organization)),
			ContainerName: ch.Organization, AccountID: ch.AccountID, Since: now})
	case KindDeactivateUser:
		ls := e.linksOf(ch.AccountID)
		var prev []GroupRef
		for _, l := range ls {
			prev = unionGroups(prev, l.PendingGroups)
		}
		if len(ch.Groups) > 0 {
			for _, l := range ls {
				l.PendingGroups = unionGroups(prev, ch.Groups)
				l.UpdatedAt = now
				j.Links = append(j.Links, l)
			}
			e.putLinks(j.Links)
		}
		return j, prev
	}
	return j, nil
}

// post is the journal entry of an applied change.
func (e *executor) post(ch Change, res Result, prevPending []GroupRef, now time.Time) JournalEntry {
	j := JournalEntry{}
	a := e.audit(ch, ItemOK, nil)
	pk := personKey(ch)
	switch ch.Kind {
	case KindCreateGroup:
		j.Own = append(j.Own, Owned{Kind: OwnedGroup, Container: res.GroupID, ContainerName: ch.Group.Name, Since: now})
		e.mu.Lock()
		e.groups[lower(ch.Group.Name)] = res.GroupID
		e.mu.Unlock()
		a.Target = ch.Group.Name + " (" + res.GroupID + ")"
	case KindCreateUser, KindCreateCustomer:
		// A create retried after an interrupted pass adopts the account that pass created.
		retried := res.Adopted && e.o.Retried[pk]
		l := Link{Source: ch.Source, Key: ch.UserKey, UserName: ch.UserName, Email: ch.Email,
			AccountID: res.AccountID, Created: !res.Adopted || retried, Customer: ch.Kind == KindCreateCustomer,
			LinkedAt: now, UpdatedAt: now}
		j.Links = append(j.Links, l)
		e.mu.Lock()
		e.accounts[pk] = res.AccountID
		e.mu.Unlock()
		e.putLinks(j.Links)
		a.AccountID = res.AccountID
		switch {
		case retried:
			a.Reason += " (adopted the account an interrupted pass created)"
		case res.Adopted:
			a.Reason += " (adopted existing account)"
		}
	case KindReactivateUser:
		id := cmp.Or(res.AccountID, ch.AccountID)
		e.mu.Lock()
		e.accounts[pk] = id
		e.mu.Unlock()
		for _, l := range e.linksOf(ch.AccountID) {
			l.AccountID = id
			l.Deactivated, l.DeactivatedAt, l.Method = false, time.Time{}, ""
			l.RemovedGroups, l.PendingGroups = nil, nil
			l.MissingPasses = 0
			l.UpdatedAt = now
			j.Links = append(j.Links, l)
		}
		e.putLinks(j.Links)
		a.AccountID = id
	case KindAddOrganizationMember:
		id := cmp.Or(res.OrganizationID, ch.OrganizationID)
		if ch.OrganizationID == "" && id != "" {
			j.Own = append(j.Own, Owned{Kind: OwnedOrganization, Container: id, ContainerName: ch.Organization, AccountID: ch.AccountID, Since: now})
			j.Disown = append(j.Disown, Owned{Kind: OwnedOrganization, Container: OrgPlaceholder(ch.Organization), AccountID: ch.AccountID})
		}
		if id != "" {
			e.mu.Lock()
			e.orgs[lower(ch.Organization)] = id
			e.mu.Unlock()
		}
	case KindRemoveMember:
		j.Disown = append(j.Disown, Owned{Kind: OwnedMembership, Container: ch.Group.ID, AccountID: ch.AccountID})
	case KindRemoveCustomer:
		j.Disown = append(j.Disown, Owned{Kind: OwnedCustomer, Container: ch.ServiceDesk, AccountID: ch.AccountID})
	case KindRemoveOrganizationMember:
		j.Disown = append(j.Disown, Owned{Kind: OwnedOrganization, Container: ch.OrganizationID, AccountID: ch.AccountID})
	case KindDeactivateUser:
		for _, l := range e.linksOf(ch.AccountID) {
			l.Deactivated, l.DeactivatedAt = true, now
			l.Method = res.Method
			l.RemovedGroups = unionGroups(prevPending, res.Groups)
			l.PendingGroups = nil
			l.UpdatedAt = now
			j.Links = append(j.Links, l)
		}
		e.putLinks(j.Links)
		// After a deactivation the account is in none of the groups it was to leave, whether
		// this call removed it (res.Groups) or it was gone already: no ownership remains.
		for _, g := range unionGroups(ch.Groups, res.Groups) {
			if g.ID != "" {
				j.Disown = append(j.Disown, Owned{Kind: OwnedMembership, Container: g.ID, AccountID: ch.AccountID})
			}
		}
		if len(res.Groups) > 0 {
			a.Target = groupNames(res.Groups)
		}
		if res.Method != "" {
			a.Reason += " (" + res.Method + ")"
		}
	}
	j.Audit = append(j.Audit, a)
	return j
}

func unionGroups(a, b []GroupRef) []GroupRef {
	if len(a) == 0 {
		return append([]GroupRef(nil), b...)
	}
	out := append([]GroupRef(nil), a...)
	for _, g := range b {
		dup := false
		for _, x := range out {
			if (g.ID != "" && x.ID == g.ID) || strings.EqualFold(x.Name, g.Name) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, g)
		}
	}
	return out
}

// linksOf returns copies of every link to an account.
func (e *executor) linksOf(accountID string) []Link {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Link
	for _, k := range e.byAcc[accountID] {
		if l, ok := e.links[k]; ok && l.AccountID == accountID {
			out = append(out, l)
		}
	}
	return out
}

func (e *executor) putLinks(ls []Link) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range ls {
		k := l.LinkKey()
		if old, ok := e.links[k]; !ok || old.AccountID != l.AccountID {
			e.byAcc[l.AccountID] = append(e.byAcc[l.AccountID], k)
		}
		e.links[k] = l
	}
}

// OrgPlaceholder is the ownership container of a membership in an organization whose id was
// not known when the add was journaled (the add creates the organization). Guards and the
// planner treat it as the organization of that name.
func OrgPlaceholder(name string) string { return "name:" + lower(name) }
