package reliability

// The world of one test: the Jira and miniOrange simulators served on 127.0.0.1, a log of
// every write Jira processed (with accountIds, so removals and audit completeness can be
// checked item by item), counters of the faults the simulators really injected, and a
// normalised end state to compare runs by.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// worldOpts shape the simulators of one world.
type worldOpts struct {
	Org        miniorangetest.Org
	MOBatchCap int
	// Jira is extra data seeded after the default site (admin, app account,
	// jira-software-users, desk DEMO).
	Jira        jiratest.Seed
	JiraLatency time.Duration
	JiraJitter  time.Duration
	// JiraReturn delays every Jira answer after the simulator processed the request: the
	// change is made, the answer is still on its way (a crash then leaves a write the client
	// never saw).
	JiraReturn time.Duration
	MOLatency  time.Duration
	Seed       uint64
}

// world is one test's simulators and what they saw.
type world struct {
	t    testing.TB
	jira *jiratest.Sim
	mo   *miniorangetest.Sim

	jiraSrv *httptest.Server
	moSrv   *httptest.Server
	JiraURL string
	MOURL   string

	writes *writeLog
	jf     *faultCounter // faults the Jira simulator injected
	mf     *faultCounter // faults the miniOrange simulator injected
	// initial are the accountIds that existed before idsync ran (seeded ones).
	initial map[string]bool
	// guard keeps the test's inspections of the Jira simulator apart from the requests it
	// serves: jiratest caches sorted member lists lazily under its read lock, so reading a
	// group while a daemon under test reads it races (reported; requests take the read side
	// here, inspections the write side).
	guard sync.RWMutex
}

func newWorld(t testing.TB, o worldOpts) *world {
	t.Helper()
	w := &world{t: t, writes: &writeLog{}, jf: newFaultCounter(), mf: newFaultCounter()}
	w.jira = jiratest.New(jiratest.Options{
		Seed: o.Seed + 1, Data: o.Jira, Latency: o.JiraLatency, Jitter: o.JiraJitter,
		RetryAfter: time.Second, OnExchange: w.writes.observe,
		// Requests already in flight when a 429 is issued are not early retries. On a loaded
		// 2-core machine running many scenarios under -race, the gap between the client's
		// last window check and the server's receipt can pass the default 100 ms; a client
		// that ignored Retry-After would still show up at once (it sends for the whole
		// window, and a repeat of the throttled request counts at any time).
		EarlyGrace: 250 * time.Millisecond,
	})
	org := o.Org
	w.mo = miniorangetest.New(miniorangetest.Options{Org: &org, BatchCap: o.MOBatchCap, Seed: int64(o.Seed) + 2, Latency: o.MOLatency})
	w.mf.cap = o.MOBatchCap
	if w.mf.cap <= 0 {
		w.mf.cap = miniorangetest.DefaultBatchCap
	}
	w.jf.delay = o.JiraReturn
	jh := w.jira.Handler()
	w.jiraSrv = serveLoopback(t, w.jf.wrap(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.guard.RLock()
		defer w.guard.RUnlock()
		jh.ServeHTTP(rw, r)
	}), false))
	w.moSrv = serveLoopback(t, w.mf.wrap(w.mo.Handler(), true))
	w.JiraURL, w.MOURL = w.jiraSrv.URL, w.moSrv.URL
	w.initial = map[string]bool{}
	for _, a := range w.jira.Accounts() {
		w.initial[a.AccountID] = true
	}
	return w
}

// inspect runs fn (which reads the Jira simulator) while no request is being served.
func (w *world) inspect(fn func()) {
	w.guard.Lock()
	defer w.guard.Unlock()
	fn()
}

// snapshot is the normalised Jira end state.
func (w *world) snapshot() (st endState) {
	w.inspect(func() { st = snapshotJira(w.jira) })
	return st
}

// serveLoopback serves h on 127.0.0.1 (httptest never listens elsewhere) until the test ends.
func serveLoopback(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	if host, _, _ := net.SplitHostPort(srv.Listener.Addr().String()); !net.ParseIP(host).IsLoopback() {
		t.Fatalf("simulator listens on %s, not loopback", host)
	}
	return srv
}

// stopSource makes the miniOrange address refuse connections (the listener is closed).
func (w *world) stopSource() { w.moSrv.Close() }

// --- write log -------------------------------------------------------------------------------

// write is one request the Jira simulator processed that changes state.
type write struct {
	Method     string
	Template   string
	Status     int
	AccountIDs []string // the account(s) the write is about
	GroupID    string   // groupId of membership writes, or of a created group
	GroupName  string   // name of a created group
	Desk       string   // service desk id of customer writes
	Org        string   // organization id of organization writes
}

func (w write) String() string {
	return fmt.Sprintf("%s %s %d acc=%v group=%s%s desk=%s org=%s", w.Method, w.Template, w.Status, w.AccountIDs, w.GroupID, w.GroupName, w.Desk, w.Org)
}

// writeLog records every write the Jira simulator processed (any method but GET, answered
// 2xx), including writes whose answer a fault then cut off: those were applied too.
type writeLog struct {
	mu  sync.Mutex
	all []write
}

func (l *writeLog) observe(x jiratest.Exchange) {
	if x.Method == http.MethodGet || x.Status < 200 || x.Status > 299 {
		return
	}
	r := x.Request
	q := r.URL.Query()
	wr := write{Method: x.Method, Template: x.Template, Status: x.Status, GroupID: q.Get("groupId")}
	if id := q.Get("accountId"); id != "" {
		wr.AccountIDs = append(wr.AccountIDs, id)
	}
	var req struct {
		AccountID  string   `json:"accountId"`
		AccountIDs []string `json:"accountIds"`
	}
	_ = json.Unmarshal(x.ReqBody, &req)
	if req.AccountID != "" {
		wr.AccountIDs = append(wr.AccountIDs, req.AccountID)
	}
	wr.AccountIDs = append(wr.AccountIDs, req.AccountIDs...)
	var resp struct {
		AccountID string `json:"accountId"`
		GroupID   string `json:"groupId"`
		Name      string `json:"name"`
	}
	_ = json.Unmarshal(x.Body, &resp)
	switch {
	case x.Method == http.MethodPost && (x.Template == "/rest/api/3/user" || x.Template == "/rest/servicedeskapi/customer"):
		wr.AccountIDs = append(wr.AccountIDs, resp.AccountID)
	case x.Method == http.MethodPost && x.Template == "/rest/api/3/group":
		wr.GroupID, wr.GroupName = resp.GroupID, resp.Name
	}
	if strings.Contains(x.Template, "{serviceDeskId}") {
		wr.Desk = r.PathValue("serviceDeskId")
	}
	if strings.Contains(x.Template, "{organizationId}") {
		wr.Org = r.PathValue("organizationId")
	}
	if strings.Contains(x.Template, "{account_id}") {
		wr.AccountIDs = append(wr.AccountIDs, r.PathValue("account_id"))
	}
	l.mu.Lock()
	l.all = append(l.all, wr)
	l.mu.Unlock()
}

func (l *writeLog) list() []write {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// Removal endpoints: what takes access away.
func isRemoval(w write) bool {
	switch {
	case w.Method == http.MethodDelete:
		return true
	case strings.HasSuffix(w.Template, "/lifecycle/disable"):
		return true
	}
	return false
}

// removals lists the distinct removals of the log, as readable keys (group or desk name and
// the person's email), so two runs with different accountIds compare.
func (w *world) removals() []string {
	names := w.names()
	seen := map[string]bool{}
	var out []string
	for _, x := range w.writes.list() {
		if !isRemoval(x) {
			continue
		}
		target := x.Template
		switch {
		case x.GroupID != "":
			target = "group " + names.group(x.GroupID)
		case x.Desk != "":
			target = "desk " + x.Desk
		case x.Org != "":
			target = "org " + x.Org
		}
		for _, a := range x.AccountIDs {
			k := x.Method + " " + target + " " + names.account(a)
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// nameBook turns simulator ids into names that are the same in every run.
type nameBook struct {
	accounts map[string]string
	groups   map[string]string
}

func (w *world) names() nameBook {
	nb := nameBook{accounts: map[string]string{}, groups: map[string]string{}}
	w.inspect(func() {
		for _, a := range w.jira.Accounts() {
			nb.accounts[a.AccountID] = accountKey(a)
		}
		for _, g := range w.jira.Groups() {
			nb.groups[g.ID] = g.Name
		}
	})
	return nb
}

func (nb nameBook) account(id string) string {
	if n, ok := nb.accounts[id]; ok {
		return n
	}
	return id
}

func (nb nameBook) group(id string) string {
	if n, ok := nb.groups[id]; ok {
		return n
	}
	return id
}

// accountKey names an account the same way in every run: its email, else its (seeded) id.
func accountKey(a jiratest.Account) string {
	if a.Email != "" {
		return strings.ToLower(a.Email)
	}
	return a.AccountID
}

// --- fault counting --------------------------------------------------------------------------

// faultCounter wraps a simulator's handler and counts what it really injected: 5xx answers,
// connections reset or cut short (hijacked), miniOrange error bodies, slow answers; and, per
// listing page, the requests answered normally (page faults such as a skewed totalCount fire
// on those).
type faultCounter struct {
	status5xx atomic.Int64
	hijacked  atomic.Int64
	bodyError atomic.Int64
	slow      atomic.Int64
	slowOver  atomic.Int64 // nanoseconds above which an answer counts as a latency spike (0: never)

	mu    sync.Mutex
	pages map[string]int // "path page" -> normal answers
	cap   int
	delay time.Duration // added before every answer leaves
}

func newFaultCounter() *faultCounter { return &faultCounter{pages: map[string]int{}} }

func (f *faultCounter) injected() int64 {
	return f.status5xx.Load() + f.hijacked.Load() + f.bodyError.Load() + f.slow.Load()
}

func (f *faultCounter) pageRequests(path string, page int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pages[fmt.Sprintf("%s %d", path, page)]
}

func (f *faultCounter) wrap(h http.Handler, mo bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var start struct {
			StartIndex *int `json:"startIndex"`
		}
		if mo && r.Body != nil {
			b, err := readBody(r)
			if err == nil {
				_ = json.Unmarshal(b, &start)
			}
		}
		cw := &countingWriter{ResponseWriter: w, delay: f.delay}
		began := time.Now()
		h.ServeHTTP(cw, r)
		switch {
		case cw.hijacked:
			f.hijacked.Add(1)
		case cw.status >= 500:
			f.status5xx.Add(1)
		case mo && bytes.Contains(cw.head, []byte(`"status":"ERROR"`)) && cw.status == http.StatusOK:
			f.bodyError.Add(1)
		case f.slowOver.Load() > 0 && time.Since(began) > time.Duration(f.slowOver.Load()):
			f.slow.Add(1)
		case mo && start.StartIndex != nil && cw.status == http.StatusOK:
			f.mu.Lock()
			if f.cap > 0 {
				f.pages[fmt.Sprintf("%s %d", r.URL.Path, *start.StartIndex/f.cap)]++
			}
			f.mu.Unlock()
		}
	})
}

func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r.Body)
	_ = r.Body.Close()
	r.Body = readCloser{bytes.NewReader(buf.Bytes())}
	return buf.Bytes(), err
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// countingWriter remembers the status, the first bytes of the body and whether the handler
// took the connection over (to reset it or cut the body short).
type countingWriter struct {
	http.ResponseWriter
	status   int
	head     []byte
	hijacked bool
	delay    time.Duration
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
		time.Sleep(c.delay)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
		time.Sleep(c.delay)
	}
	if len(c.head) < 64 {
		c.head = append(c.head, b[:min(len(b), 64-len(c.head))]...)
	}
	return c.ResponseWriter.Write(b)
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := c.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	c.hijacked = true
	return hj.Hijack()
}

// --- end state -------------------------------------------------------------------------------

// endState is the Jira site normalised: accounts by email, groups, desks and organizations by
// name with their members by email, so runs with different accountIds compare.
type endState struct {
	Accounts map[string]string   // key -> "type active onSite"
	Groups   map[string][]string // lower name -> sorted member keys
	Desks    map[string][]string // project key -> sorted customer keys
	Orgs     map[string][]string // lower name -> sorted member keys
}

func snapshotJira(js *jiratest.Sim) endState {
	st := endState{Accounts: map[string]string{}, Groups: map[string][]string{}, Desks: map[string][]string{}, Orgs: map[string][]string{}}
	nb := nameBook{accounts: map[string]string{}}
	for _, a := range js.Accounts() {
		k := accountKey(a)
		nb.accounts[a.AccountID] = k
		st.Accounts[k] = fmt.Sprintf("%s active=%v onSite=%v", a.AccountType, a.Active, a.OnSite)
	}
	members := func(ids []string) []string {
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			out = append(out, nb.account(id))
		}
		sort.Strings(out)
		return out
	}
	for _, g := range js.Groups() {
		st.Groups[strings.ToLower(g.Name)] = members(g.Members)
	}
	for _, d := range js.Desks() {
		st.Desks[d.Key] = members(d.Customers)
	}
	for _, o := range js.Orgs() {
		st.Orgs[strings.ToLower(o.Name)] = members(o.Members)
	}
	return st
}

// diff lists the differences of got from want (at most limit lines).
func (want endState) diff(got endState, limit int) []string {
	var out []string
	add := func(format string, args ...any) {
		if len(out) < limit {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	for _, k := range unionKeys(want.Accounts, got.Accounts) {
		if w, g := want.Accounts[k], got.Accounts[k]; w != g {
			add("account %s: want %q, got %q", k, w, g)
		}
	}
	for name, m := range map[string][2]map[string][]string{
		"group": {want.Groups, got.Groups}, "desk": {want.Desks, got.Desks}, "organization": {want.Orgs, got.Orgs},
	} {
		for _, k := range unionKeys(m[0], m[1]) {
			w, g := m[0][k], m[1][k]
			if _, ok := m[1][k]; !ok {
				add("%s %s missing (want %d members)", name, k, len(w))
				continue
			}
			if _, ok := m[0][k]; !ok {
				add("%s %s unexpected (%d members)", name, k, len(g))
				continue
			}
			if missing, extra := setDiff(w, g), setDiff(g, w); len(missing)+len(extra) > 0 {
				add("%s %s: missing members %v, extra members %v", name, k, head(missing, 5), head(extra, 5))
			}
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// setDiff is a minus b, both sorted.
func setDiff(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

func head[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// duplicates lists accounts or groups the site holds twice (must always be empty).
func (w *world) duplicates() []string {
	var out []string
	w.inspect(func() {
		for _, e := range w.jira.DuplicateEmails() {
			out = append(out, "email "+e)
		}
		for _, g := range w.jira.DuplicateGroupNames() {
			out = append(out, "group "+g)
		}
	})
	return out
}
