package scim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/state"
)

// gate holds the store's writes of one resource until it is opened, so that updates queue up
// behind a commit in progress.
type gate struct {
	id      string
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
	// refuse, when set, makes the store refuse writes of the resource holding this text.
	refuse atomic.Pointer[string]
}

func newGate(f *fixture, id string) *gate {
	g := &gate{id: id, entered: make(chan struct{}), open: make(chan struct{})}
	f.store.failPut = func(r Resource) error {
		if r.ID != g.id {
			return nil
		}
		g.once.Do(func() { close(g.entered) })
		<-g.open
		if p := g.refuse.Load(); p != nil && strings.Contains(string(r.Data), *p) {
			return errBoom
		}
		return nil
	}
	return g
}

// answer is the status and ETag of a request sent from a goroutine.
type answer struct {
	code int
	etag string
	body string
}

// send serves one request without failing the test (it may run on any goroutine).
func (f *fixture) send(method, rest, body string, headers ...string) answer {
	req := httptest.NewRequest(method, "/scim/v2/corp/"+rest, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("Authorization", "Bearer "+tokenA)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return answer{code: rec.Code, etag: rec.Header().Get("ETag"), body: rec.Body.String()}
}

// waitQueued waits until n updates of a resource wait behind the commit in progress.
func waitQueued(t *testing.T, f *fixture, key string, n int) {
	t.Helper()
	s := f.h.sources["corp"]
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.qmu.Lock()
		q := s.queues[key]
		got := 0
		if q != nil {
			got = len(q.pending)
		}
		s.qmu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d updates of %s queued after 10s, want %d", got, key, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func addMember(id string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + id + `"}]}]}`
}

func removeMember(id string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"` + id + `\"]"}]}`
}

// Member PATCHes that arrive while one is being stored are stored together, in one write,
// and each is answered with a version of its own once that write is done.
func TestConcurrentMemberPatchesShareOneWrite(t *testing.T) {
	f := newFixture(t)
	var users []string
	for i := range 12 {
		users = append(users, f.createUser(fmt.Sprintf("m%02d@example.com", i)))
	}
	gid := f.createGroup("Hot")
	g := newGate(f, gid)
	putsBefore := f.store.puts

	answers := make([]answer, len(users))
	var wg sync.WaitGroup
	wg.Go(func() { answers[0] = f.send("PATCH", "Groups/"+gid, addMember(users[0])) })
	<-g.entered // the first PATCH is being stored
	for i := 1; i < len(users); i++ {
		wg.Go(func() { answers[i] = f.send("PATCH", "Groups/"+gid, addMember(users[i])) })
	}
	waitQueued(t, f, "Group/"+gid, len(users)-1)
	close(g.open)
	wg.Wait()

	etags := map[string]bool{}
	for i, a := range answers {
		if a.code != http.StatusNoContent {
			t.Fatalf("PATCH %d: %d %s", i, a.code, a.body)
		}
		etags[a.etag] = true
	}
	if len(etags) != len(users) || !etags[`W/"2"`] || !etags[fmt.Sprintf(`W/"%d"`, len(users)+1)] {
		t.Errorf("ETags %v: want one version per PATCH, 2 to %d", etags, len(users)+1)
	}
	if got := f.store.puts - putsBefore; got != 2 {
		t.Errorf("%d store writes for %d PATCHes, want 2 (the first, then the rest together)", got, len(users))
	}
	stored := f.store.records(t, "corp", TypeGroup)[gid]
	if stored.Version != uint64(len(users)+1) || len(memberIDs(stored.Resource)) != len(users) {
		t.Errorf("stored group: version %d, %d members; want %d and %d", stored.Version, len(memberIDs(stored.Resource)), len(users)+1, len(users))
	}
	r := mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusOK)
	if n := len(r.Body["members"].([]any)); n != len(users) {
		t.Errorf("the group reads %d members, want %d", n, len(users))
	}
	// Each member's groups attribute follows.
	r = mustCode(t, f.corp("GET", "Users/"+users[7], ""), http.StatusOK)
	if !strings.Contains(r.Raw, gid) {
		t.Errorf("user 7 does not list the group: %s", r.Raw)
	}
	if n := len(f.h.sources["corp"].queues); n != 0 {
		t.Errorf("%d queues left after every update was answered", n)
	}
	// The triggers name every member the batch added.
	f.clock.Advance(DefaultDebounce)
	var touched []string
	for _, c := range f.changes() {
		touched = append(touched, c.Users...)
	}
	for i := range users {
		if !slices.Contains(touched, fmt.Sprintf("m%02d@example.com", i)) {
			t.Errorf("m%02d was added but no change was signalled for it (%v)", i, touched)
		}
	}
}

// Every update of a batch gets its own checks: a stale If-Match, an unknown member or a
// taken name fails that update alone, against the resource as the updates before it left it.
func TestBatchedUpdatesAreCheckedOneByOne(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com")
	b := f.createUser("b@example.com")
	f.createGroup("Taken")
	gid := f.createGroup("Hot")
	g := newGate(f, gid)

	type req struct {
		body    string
		headers []string
		want    int
	}
	reqs := []req{
		{addMember(a), nil, http.StatusNoContent},                                  // v2, stored alone
		{addMember(b), []string{`If-Match: W/"2"`}, http.StatusNoContent},          // v3
		{addMember("no-such-user"), nil, http.StatusBadRequest},                    //
		{addMember(a), []string{`If-Match: W/"2"`}, http.StatusPreconditionFailed}, // it is v3 now
		{`{"Operations":[{"op":"replace","path":"displayName","value":"Taken"}]}`, nil, http.StatusConflict},
		{`{"Operations":[{"op":"replace","path":"displayName","value":"Warm"}]}`, nil, http.StatusNoContent}, // v4
		{removeMember(a), []string{`If-Match: W/"4"`}, http.StatusNoContent},                                 // v5
		{addMember(b), nil, http.StatusNoContent},                                                            // already in: no change
	}
	answers := make([]answer, len(reqs))
	var wg sync.WaitGroup
	wg.Go(func() { answers[0] = f.send("PATCH", "Groups/"+gid, reqs[0].body, reqs[0].headers...) })
	<-g.entered
	// Queued one at a time, so the batch applies them in this order.
	for i := 1; i < len(reqs); i++ {
		wg.Go(func() { answers[i] = f.send("PATCH", "Groups/"+gid, reqs[i].body, reqs[i].headers...) })
		waitQueued(t, f, "Group/"+gid, i)
	}
	close(g.open)
	wg.Wait()
	for i, r := range reqs {
		if answers[i].code != r.want {
			t.Errorf("update %d: %d, want %d: %s", i, answers[i].code, r.want, answers[i].body)
		}
	}
	if answers[6].etag != `W/"5"` || answers[7].etag != `W/"5"` {
		t.Errorf("ETags of the last two: %q, %q; want W/\"5\" for both", answers[6].etag, answers[7].etag)
	}
	r := mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusOK)
	if r.str("displayName") != "Warm" || r.Header.Get("ETag") != `W/"5"` {
		t.Errorf("group = %s (ETag %s)", r.Raw, r.Header.Get("ETag"))
	}
	if ids := memberIDs(r.Body); !slices.Equal(ids, []string{b}) {
		t.Errorf("members %v, want only b", ids)
	}
	// The rename released the old name and took the new one; the refused one stays taken.
	mustCode(t, f.corp("POST", "Groups", `{"displayName":"Hot"}`), http.StatusCreated)
	mustCode(t, f.corp("POST", "Groups", `{"displayName":"Warm"}`), http.StatusConflict)
	if n := len(f.h.sources["corp"].reserved); n != 0 {
		t.Errorf("%d name reservations left", n)
	}
}

// When the store refuses a batch, every update of it is answered 500 and nothing changes;
// updates answered before it keep their answers.
func TestBatchStoreFailureChangesNothing(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com")
	b := f.createUser("b@example.com")
	c := f.createUser("c@example.com")
	gid := f.createGroup("Hot", a)
	g := newGate(f, gid)

	first := make(chan answer, 1)
	go func() { first <- f.send("PATCH", "Groups/"+gid, removeMember(a)) }()
	<-g.entered
	answers := make([]answer, 3)
	var wg sync.WaitGroup
	wg.Go(func() { answers[0] = f.send("PATCH", "Groups/"+gid, addMember(b)) })
	waitQueued(t, f, "Group/"+gid, 1)
	wg.Go(func() { answers[1] = f.send("PATCH", "Groups/"+gid, addMember(c)) })
	waitQueued(t, f, "Group/"+gid, 2)
	wg.Go(func() { answers[2] = f.send("PATCH", "Groups/"+gid, addMember("nobody")) })
	waitQueued(t, f, "Group/"+gid, 3)
	g.refuse.Store(&b)
	close(g.open)
	wg.Wait()
	if a := <-first; a.code != http.StatusNoContent {
		t.Fatalf("the first PATCH: %d %s", a.code, a.body)
	}
	for i, an := range answers {
		if an.code != http.StatusInternalServerError {
			t.Errorf("batched update %d: %d, want 500 (the batch was not stored): %s", i, an.code, an.body)
		}
	}
	r := mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusOK)
	if len(memberIDs(r.Body)) != 0 || r.Header.Get("ETag") != `W/"2"` {
		t.Errorf("after a refused batch the group is %s (ETag %s), want empty at version 2", r.Raw, r.Header.Get("ETag"))
	}
	f.store.mu.Lock()
	f.store.failPut = nil
	f.store.mu.Unlock()
	mustCode(t, f.corp("PATCH", "Groups/"+gid, addMember(b)), http.StatusNoContent)
	if stored := f.store.records(t, "corp", TypeGroup)[gid]; stored.Version != 3 {
		t.Errorf("stored version %d after the retry, want 3", stored.Version)
	}
}

// An update queued behind the delete of its resource answers 404.
func TestBatchedUpdateOfDeletedResource(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com")
	gid := f.createGroup("Hot")
	g := newGate(f, gid)
	first := make(chan answer, 1)
	go func() { first <- f.send("PATCH", "Groups/"+gid, addMember(a)) }()
	<-g.entered
	del := make(chan answer, 1)
	go func() { del <- f.send("DELETE", "Groups/"+gid, "") }()
	// The delete waits for the stripe lock the commit holds; the PATCH queues behind it.
	late := make(chan answer, 1)
	go func() { late <- f.send("PATCH", "Groups/"+gid, removeMember(a)) }()
	waitQueued(t, f, "Group/"+gid, 1)
	close(g.open)
	if an := <-first; an.code != http.StatusNoContent {
		t.Fatalf("first PATCH: %d", an.code)
	}
	d, l := <-del, <-late
	// Either the delete or the late PATCH gets the lock first; both orders are consistent.
	switch {
	case d.code == http.StatusNoContent && l.code == http.StatusNotFound:
	case d.code == http.StatusNoContent && l.code == http.StatusNoContent:
	default:
		t.Fatalf("DELETE %d, late PATCH %d", d.code, l.code)
	}
	mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusNotFound)
}

func TestCombineDiffs(t *testing.T) {
	d := func(added, removed []string) *memberDiff { return &memberDiff{added: added, removed: removed} }
	got := combineDiffs([]appliedUpdate{
		{diff: d([]string{"a", "b"}, nil)},
		{diff: d(nil, []string{"a", "x"})}, // a added and removed again; x was there
		{diff: d([]string{"x", "c"}, nil)}, // x back
		{diff: d(nil, []string{"y"})},
	})
	if !slices.Equal(got.added, []string{"b", "c"}) || !slices.Equal(got.removed, []string{"y"}) {
		t.Errorf("combined = %+v, want added [b c], removed [y]", got)
	}
	if combineDiffs([]appliedUpdate{{diff: d([]string{"a"}, nil)}, {diff: nil}}) != nil {
		t.Error("a batch with a general update combined to a member diff")
	}
}

// With the bbolt store: many clients adding members to one large (bucketed) group at once
// are all answered, and everything answered is read back after a restart.
func TestConcurrentMemberPatchesDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	open := func() (*state.Store, *Handler) {
		st, err := state.Open(path, state.Options{Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHandler(HandlerOptions{Store: st, Sources: []SourceOptions{{Name: "corp", Token: configs.Secret(tokenA)}}, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		return st, h
	}
	st, h := open()
	f := &fixture{t: t, h: h}
	const n = 300 // past groupInlineMax: the group is stored in member buckets
	users := make([]string, n)
	for i := range users {
		users[i] = f.createUser(fmt.Sprintf("d%03d@example.com", i))
	}
	gid := f.createGroup("Everyone")
	var wg sync.WaitGroup
	codes := make([]int, n)
	for c := range 16 {
		wg.Go(func() {
			for i := c; i < n; i += 16 {
				codes[i] = f.send("PATCH", "Groups/"+gid, addMember(users[i])).code
			}
		})
	}
	wg.Wait()
	// A few removals and re-adds, concurrently too.
	for c := range 8 {
		wg.Go(func() {
			f.send("PATCH", "Groups/"+gid, removeMember(users[c]))
			f.send("PATCH", "Groups/"+gid, addMember(users[c]))
			f.send("PATCH", "Groups/"+gid, removeMember(users[n-1-c]))
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusNoContent {
			t.Fatalf("PATCH %d answered %d", i, c)
		}
	}
	_ = h.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, h = open()
	defer st.Close()
	defer h.Close()
	f.h = h
	r := mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusOK)
	got := memberIDs(r.Body)
	if len(got) != n-8 || r.Header.Get("ETag") != fmt.Sprintf(`W/"%d"`, 1+n+3*8) {
		t.Errorf("after a restart: %d members at %s, want %d at version %d", len(got), r.Header.Get("ETag"), n-8, 1+n+3*8)
	}
	for i, u := range users {
		if want := i < n-8; slices.Contains(got, u) != want {
			t.Errorf("member %d present = %v after a restart, want %v", i, !want, want)
		}
	}
}

// Within a batch, member additions are checked against the group as the updates before them
// left it (not by scanning its list): nothing is added twice, and a member removed and added
// again in the batch is there once.
func TestBatchedMemberChangesStayExact(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com")
	b := f.createUser("b@example.com")
	c := f.createUser("c@example.com")
	d := f.createUser("d@example.com")
	gid := f.createGroup("Hot", a)
	g := newGate(f, gid)
	bodies := []string{
		addMember(d), // stored alone while the rest queue
		addMember(a), // already a member: no change
		addMember(b), //
		addMember(b), // added by the update before: no change
		removeMember(b),
		`{"Operations":[{"op":"add","path":"members","value":[{"value":"` + c + `"}]},{"op":"remove","path":"members[value eq \"` + c + `\"]"},{"op":"add","path":"members","value":[{"value":"` + c + `"}]}]}`,
		addMember(c), // in since the update before
		addMember(b), // back
		removeMember(d),
		addMember(d),
	}
	answers := make([]answer, len(bodies))
	var wg sync.WaitGroup
	wg.Go(func() { answers[0] = f.send("PATCH", "Groups/"+gid, bodies[0]) })
	<-g.entered
	for i := 1; i < len(bodies); i++ {
		wg.Go(func() { answers[i] = f.send("PATCH", "Groups/"+gid, bodies[i]) })
		waitQueued(t, f, "Group/"+gid, i)
	}
	close(g.open)
	wg.Wait()
	wantETags := []string{`W/"2"`, `W/"2"`, `W/"3"`, `W/"3"`, `W/"4"`, `W/"5"`, `W/"5"`, `W/"6"`, `W/"7"`, `W/"8"`}
	for i, an := range answers {
		if an.code != http.StatusNoContent || an.etag != wantETags[i] {
			t.Errorf("update %d: %d %s, want 204 %s: %s", i, an.code, an.etag, wantETags[i], an.body)
		}
	}
	want := []string{a, c, b, d}
	stored := f.store.records(t, "corp", TypeGroup)[gid]
	if got := memberIDs(stored.Resource); !slices.Equal(got, want) || stored.Version != 8 {
		t.Errorf("stored members %v at version %d, want %v at 8", got, stored.Version, want)
	}
	r := mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusOK)
	if got := memberIDs(r.Body); !slices.Equal(got, want) {
		t.Errorf("members read %v, want %v", got, want)
	}
	for _, u := range []string{a, b, c, d} {
		r := mustCode(t, f.corp("GET", "Users/"+u, ""), http.StatusOK)
		if !strings.Contains(r.Raw, gid) {
			t.Errorf("user %s does not list the group", u)
		}
	}
}

// A PATCH that removes a member and adds it back (or adds and removes one) changes nothing
// for that member: the user still lists the group, and nothing is written.
func TestMemberRemovedAndAddedInOnePatch(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com")
	b := f.createUser("b@example.com")
	gid := f.createGroup("G", a)
	puts := f.store.puts
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"remove","path":"members[value eq \"`+a+`\"]"},{"op":"add","path":"members","value":[{"value":"`+a+`"}]}]}`), http.StatusNoContent)
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+b+`"}]},{"op":"remove","path":"members[value eq \"`+b+`\"]"}]}`), http.StatusNoContent)
	if f.store.puts != puts {
		t.Errorf("%d writes for PATCHes that change nothing", f.store.puts-puts)
	}
	if r := mustCode(t, f.corp("GET", "Users/"+a, ""), http.StatusOK); !strings.Contains(r.Raw, gid) {
		t.Errorf("a no longer lists the group: %s", r.Raw)
	}
	if r := mustCode(t, f.corp("GET", "Users/"+b, ""), http.StatusOK); strings.Contains(r.Raw, gid) {
		t.Errorf("b lists the group: %s", r.Raw)
	}
}
