package simulation

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/idsync/idsync/sources/google/googletest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// passFaults is what can go wrong during one pass of the faulty run, drawn from the fault
// stream before the pass starts. Which request a random fault hits is decided by a hash of
// the seed, the pass, the request (method, path, query, body) and its attempt number, never
// by arrival order: idsync reads Jira and miniOrange listings in parallel, so the order of
// requests may differ between runs, but the same request always meets the same fault.
type passFaults struct {
	JiraRate  float64  // share of Jira request attempts that fail
	JiraKinds []string // 500 502 503 429 reset reset-after truncate
	// Storm is the share of Jira requests whose first attempt is answered 429.
	Storm float64
	// StickyGroup makes every removal from this Jira group fail (500) for the whole pass:
	// one step of a deactivation that keeps failing.
	StickyGroup string
	// Lag hides accounts created in this pass from Jira's listings for a while.
	Lag bool

	MORate  float64
	MOKinds []string // status body-error reset truncate skew shift 429
	// MOSticky fails one listing page on every attempt: the read cannot complete.
	MOSticky *moSticky
	// MissingStatus is the userName whose status the users listing leaves out (miniOrange),
	// or whose suspended and archived fields it leaves out (Google).
	MissingStatus string
	// PushReadFail makes the read of the SCIM push store fail.
	PushReadFail bool

	// GoogleRate is the share of Directory API request attempts that fail, with a kind from
	// GoogleKinds (500 503 reset truncate 403-rate 403-user-rate 429); the token endpoint
	// is never faulted.
	GoogleRate  float64
	GoogleKinds []string
	// GoogleSticky fails one listing page on every attempt: the read cannot complete.
	GoogleSticky *googleSticky
	// StickyFired is set after the pass when its sticky listing fault (MOSticky or
	// GoogleSticky) hit a request: one on a page the listing does not reach never fires.
	StickyFired bool

	// LDAPCut drops every LDAP connection once that many bytes came from the server (fewer
	// than any read takes): the read cannot complete.
	LDAPCut int64
	// LDAPDown refuses every LDAP connection.
	LDAPDown bool

	Crash *crashPlan
}

type googleSticky struct {
	Endpoint string // googletest.EndpointUsersList, ...
	Key      string // the group id of a members listing
	Page     int
	Kind     googletest.FaultKind
}

type moSticky struct {
	Endpoint string
	Page     int
	Kind     miniorangetest.FaultKind
	Delta    int
}

func (f passFaults) any() bool {
	return f.JiraRate > 0 || f.Storm > 0 || f.StickyGroup != "" || f.Lag || f.MORate > 0 || f.MOSticky != nil ||
		f.MissingStatus != "" || f.PushReadFail || f.GoogleRate > 0 || f.GoogleSticky != nil || f.LDAPCut > 0 ||
		f.LDAPDown || f.Crash != nil
}

// readBroken reports whether the pass's source read cannot be complete, whatever idsync
// says about it.
func (f passFaults) readBroken() bool {
	return f.StickyFired || f.MissingStatus != "" || f.PushReadFail || f.LDAPCut > 0 || f.LDAPDown
}

// sourceTouched reports whether anything may have kept the source read from completing.
func (f passFaults) sourceTouched() bool {
	return f.readBroken() || f.MORate > 0 || f.GoogleRate > 0
}

func (f passFaults) String() string {
	var parts []string
	if f.JiraRate > 0 {
		parts = append(parts, fmt.Sprintf("jira %.0f%% %v", f.JiraRate*100, f.JiraKinds))
	}
	if f.Storm > 0 {
		parts = append(parts, fmt.Sprintf("429-storm %.0f%%", f.Storm*100))
	}
	if f.StickyGroup != "" {
		parts = append(parts, "removals from "+f.StickyGroup+" fail")
	}
	if f.Lag {
		parts = append(parts, "index-lag")
	}
	if f.MORate > 0 {
		parts = append(parts, fmt.Sprintf("miniorange %.0f%% %v", f.MORate*100, f.MOKinds))
	}
	if s := f.MOSticky; s != nil {
		parts = append(parts, fmt.Sprintf("miniorange %s page %d kind %d delta %d on every attempt", s.Endpoint, s.Page, s.Kind, s.Delta))
	}
	if f.MissingStatus != "" {
		parts = append(parts, "no status for "+f.MissingStatus)
	}
	if f.PushReadFail {
		parts = append(parts, "push store unreadable")
	}
	if f.GoogleRate > 0 {
		parts = append(parts, fmt.Sprintf("google %.0f%% %v", f.GoogleRate*100, f.GoogleKinds))
	}
	if s := f.GoogleSticky; s != nil {
		parts = append(parts, fmt.Sprintf("google %s %s page %d kind %d on every attempt", s.Endpoint, cmp.Or(s.Key, "-"), s.Page, s.Kind))
	}
	if f.LDAPCut > 0 {
		parts = append(parts, fmt.Sprintf("ldap connections cut after %d bytes", f.LDAPCut))
	}
	if f.LDAPDown {
		parts = append(parts, "ldap server refuses connections")
	}
	if f.Crash != nil {
		parts = append(parts, f.Crash.String())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// drawFaults draws one pass's faults: Jira's, the IdP's own (drawn from the same stream
// after Jira's), and a crash. Most passes are clean, so faults stop often enough for the
// invariants that need fault-free passes to be checked.
func drawFaults(r *rand.Rand, m *model, push bool, idp IdP) passFaults {
	var f passFaults
	if r.IntN(100) < 45 {
		return f
	}
	f.drawJira(r)
	switch idp {
	case IdPGoogle:
		f.drawGoogle(r, m)
	case IdPLDAP:
		f.drawLDAP(r)
	default:
		f.drawMiniOrange(r, m, push)
	}
	if r.IntN(5) == 0 {
		f.Crash = drawCrash(r)
	}
	return f
}

func (f *passFaults) drawJira(r *rand.Rand) {
	if r.IntN(3) == 0 {
		f.JiraRate = pick(r, []float64{0.05, 0.15, 0.3})
		all := []string{"500", "502", "503", "429", "reset", "reset-after", "truncate"}
		r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		f.JiraKinds = all[:1+r.IntN(len(all))]
	}
	if r.IntN(6) == 0 {
		f.Storm = pick(r, []float64{0.3, 0.7, 1})
	}
	if r.IntN(6) == 0 {
		f.StickyGroup = pick(r, []string{defaultGroup, serviceDeskGroup, "engineering", "sales"})
	}
	if r.IntN(8) == 0 {
		f.Lag = true
	}
}

func (f *passFaults) drawMiniOrange(r *rand.Rand, m *model, push bool) {
	if r.IntN(3) == 0 {
		f.MORate = pick(r, []float64{0.1, 0.3})
		all := []string{"status", "body-error", "reset", "truncate", "skew", "shift", "429"}
		r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		f.MOKinds = all[:1+r.IntN(len(all))]
	}
	if r.IntN(10) == 0 {
		s := &moSticky{Endpoint: pick(r, []string{miniorangetest.PathUsersList, miniorangetest.PathGroupsList}), Page: r.IntN(2)}
		switch r.IntN(3) {
		case 0:
			s.Kind, s.Delta = miniorangetest.FaultTotalSkew, pick(r, []int{-2, 1, 3})
		case 1:
			// A count far beyond any real directory: the read must fail, not size
			// anything by it.
			s.Kind, s.Delta, s.Page = miniorangetest.FaultTotalSkew, hugeCount, 0
		default:
			s.Kind = miniorangetest.FaultBodyError
		}
		if s.Endpoint == miniorangetest.PathGroupsList {
			s.Page = 0
		}
		f.MOSticky = s
	}
	f.MissingStatus = drawMissingStatus(r, m)
	if r.IntN(push2(push)) == 0 {
		f.PushReadFail = true
	}
}

// drawMissingStatus picks, one pass in twelve, a person whose status the users listing
// leaves out, preferring someone disabled: read as active, they would be let back in.
func drawMissingStatus(r *rand.Rand, m *model) string {
	if r.IntN(12) != 0 {
		return ""
	}
	ids := m.ids(disabled)
	if len(ids) == 0 {
		ids = m.ids(active)
	}
	if len(ids) == 0 {
		return ""
	}
	return m.people[pick(r, ids)].UserName
}

func (f *passFaults) drawGoogle(r *rand.Rand, m *model) {
	if r.IntN(3) == 0 {
		f.GoogleRate = pick(r, []float64{0.1, 0.3})
		all := []string{"500", "503", "reset", "truncate", "403-rate", "403-user-rate", "429"}
		r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		f.GoogleKinds = all[:1+r.IntN(len(all))]
	}
	if r.IntN(10) == 0 {
		s := &googleSticky{Kind: pick(r, []googletest.FaultKind{googletest.FaultStatus, googletest.FaultReset,
			googletest.FaultTruncate, googletest.FaultRateLimit})}
		// Only pages every read asks for: the first of each listing, the second of the
		// users listing when the IdP lists more people than a page holds.
		switch x := r.IntN(3); {
		case x == 0 && len(m.ids(active, disabled)) > pageSize:
			s.Endpoint, s.Page = googletest.EndpointUsersList, 1
		case x == 0:
			s.Endpoint = googletest.EndpointUsersList
		case x == 1:
			s.Endpoint = googletest.EndpointGroupsList
		default:
			s.Endpoint, s.Key = googletest.EndpointMembersList, googleGroupID(pick(r, m.groupList()))
		}
		f.GoogleSticky = s
	}
	f.MissingStatus = drawMissingStatus(r, m)
}

func (f *passFaults) drawLDAP(r *rand.Rand) {
	switch r.IntN(10) {
	case 0, 1:
		f.LDAPCut = pick(r, []int64{40, 150, 400})
	case 2:
		f.LDAPDown = true
	}
}

// push2 makes a failing push-store read likelier in push-triggered passes, where it matters
// most.
func push2(push bool) int {
	if push {
		return 4
	}
	return 14
}

// hugeCount is the totalCount a lying listing claims beyond any real directory (and beyond
// sources[].max_objects).
const hugeCount = 5_000_000

// goroutineBound is how many goroutines the test process may hold while a source is read:
// several worlds at once need a few thousand; a reader that starts one per claimed page
// of a huge count needs far more.
const goroutineBound = 10_000

// faultBox arms one pass's faults and draws the per-request ones.
type faultBox struct {
	seed uint64
	// hugeCount replaces the count beyond any directory when set (smaller, so a client that
	// sizes memory by the claim fails the bound instead of taking the process down).
	hugeCount int

	mu       sync.Mutex
	armed    bool
	pass     int
	plan     passFaults
	attempts map[string]int
	// stickyFired reads how often the pass's sticky fault fired.
	stickyFired func() int
	race        func()
	raceOnce    bool
	raceAt      bool // fire after the first users page is served (else before)
	injected    int
	// swollen is the most goroutines seen while a source was read, when over the bound.
	swollen int
}

func newFaultBox(seed uint64) *faultBox { return &faultBox{seed: seed, attempts: map[string]int{}} }

func (fb *faultBox) arm(w *world, pass int, plan passFaults) {
	if fb.hugeCount > 0 && plan.MOSticky != nil && plan.MOSticky.Delta == hugeCount {
		plan.MOSticky.Delta = fb.hugeCount
	}
	fb.mu.Lock()
	fb.armed, fb.pass, fb.plan = true, pass, plan
	clear(fb.attempts)
	fb.mu.Unlock()
	fired := w.idp.arm(plan)
	fb.mu.Lock()
	fb.stickyFired = fired
	fb.mu.Unlock()
	if plan.Lag {
		w.jira.SetIndexLag(lagDuration)
	}
}

// disarm clears the pass's faults and reports whether its sticky listing fault fired: one on
// a page the listing does not reach (a short directory) never breaks the read.
func (fb *faultBox) disarm(w *world) (stickyFired bool) {
	fb.mu.Lock()
	fb.armed = false
	fired := fb.stickyFired
	fb.plan, fb.stickyFired = passFaults{}, nil
	fb.mu.Unlock()
	stickyFired = fired != nil && fired() > 0
	w.idp.disarm()
	w.jira.SetIndexLag(0)
	return stickyFired
}

// setRace arms a push that fires while the users listing is read (nil disarms it).
func (fb *faultBox) setRace(fire func(), after bool) {
	fb.mu.Lock()
	fb.race, fb.raceOnce, fb.raceAt = fire, false, after
	fb.mu.Unlock()
}

// takeRace returns the race push if it should fire now (once): before the pass's first
// miniOrange request, or just after the users listing's first page. The second moment is
// used only when no fault touches the source read: a listing that fails can cancel the
// read before that page is served, and whether it was would then depend on scheduling.
// The source allows one request at a time, so a push fired before a request is seen by
// every page served after it.
func (fb *faultBox) takeRace(afterUsers bool) func() {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.race == nil || fb.raceOnce {
		return nil
	}
	late := fb.raceAt && !(fb.armed && fb.plan.sourceTouched())
	if late != afterUsers {
		return nil
	}
	fb.raceOnce = true
	return fb.race
}

func (fb *faultBox) pushReadFails() bool {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.armed && fb.plan.PushReadFail
}

func (fb *faultBox) count() {
	fb.mu.Lock()
	fb.injected++
	fb.mu.Unlock()
}

func (fb *faultBox) total() int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.injected
}

// draw returns the plan and a generator for this attempt of the request named key.
func (fb *faultBox) draw(key string) (passFaults, int, *rand.Rand, bool) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if !fb.armed {
		return passFaults{}, 0, nil, false
	}
	fb.attempts[key]++
	a := fb.attempts[key]
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	r := rand.New(rand.NewPCG(fb.seed^(uint64(fb.pass)*0x9e3779b97f4a7c15), h.Sum64()^(uint64(a)*0xbf58476d1ce4e5b9)))
	return fb.plan, a, r, true
}

// jira decides the fault of one request to Jira and, if there is one, answers it (or
// processes it and then cuts the answer off); it reports whether it did.
func (fb *faultBox) jira(w *world, rw http.ResponseWriter, r *http.Request, body []byte) bool {
	key := r.Method + " " + r.URL.Path + "?" + r.URL.Query().Encode() + "#" + string(body)
	plan, attempt, rnd, ok := fb.draw(key)
	if !ok {
		return false
	}
	kind := ""
	switch {
	case plan.StickyGroup != "" && r.Method == http.MethodDelete && r.URL.Path == "/rest/api/3/group/user" &&
		strings.EqualFold(w.groupName(r.URL.Query().Get("groupId")), plan.StickyGroup):
		kind = "500"
	case attempt == 1 && rnd.Float64() < plan.Storm:
		kind = "429"
	case rnd.Float64() < plan.JiraRate:
		kind = plan.JiraKinds[rnd.IntN(len(plan.JiraKinds))]
	default:
		return false
	}
	fb.count()
	switch kind {
	case "500":
		jiraError(rw, http.StatusInternalServerError, "Internal server error.")
	case "502":
		rw.Header().Set("Content-Type", "text/html")
		rw.WriteHeader(http.StatusBadGateway)
		_, _ = rw.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
	case "503":
		rw.Header().Set("Retry-After", "1")
		jiraError(rw, http.StatusServiceUnavailable, "Service temporarily unavailable.")
	case "429":
		h := rw.Header()
		h.Set("Retry-After", strconv.Itoa(1+rnd.IntN(5)))
		h.Set("X-RateLimit-Limit", "100")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("RateLimit-Reason", "jira-burst-based")
		jiraError(rw, http.StatusTooManyRequests, "Rate limit exceeded.")
	case "reset":
		resetConn(rw, false)
	case "reset-after", "truncate":
		// Jira makes the change; the answer is lost (reset) or cut short.
		rec := httptest.NewRecorder()
		w.jira.Handler().ServeHTTP(rec, r)
		if kind == "reset-after" {
			resetConn(rw, false)
			break
		}
		b := rec.Body.Bytes()
		for k, v := range rec.Header() {
			rw.Header()[k] = v
		}
		rw.Header().Set("Content-Length", strconv.Itoa(len(b)+16))
		rw.WriteHeader(rec.Code)
		_, _ = rw.Write(b[:len(b)/2])
		resetConn(rw, true)
	}
	return true
}

func jiraError(rw http.ResponseWriter, code int, msg string) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	b, _ := json.Marshal(map[string]any{"errorMessages": []string{msg}, "errors": map[string]string{}})
	_, _ = rw.Write(b)
}

// resetConn drops the client's connection (RST); with flush, what was written goes first.
func resetConn(rw http.ResponseWriter, flush bool) {
	if f, ok := rw.(http.Flusher); ok && flush {
		f.Flush()
	}
	hj, ok := rw.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// raceArmed reports whether a race push waits for its moment.
func (fb *faultBox) raceArmed() bool {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.race != nil && !fb.raceOnce
}

// pendingRace disarms the race push and returns it if it never fired.
func (fb *faultBox) pendingRace() func() {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	f, fired := fb.race, fb.raceOnce
	fb.race, fb.raceOnce = nil, false
	if f == nil || fired {
		return nil
	}
	return f
}

func (fb *faultBox) swell(n int) {
	fb.mu.Lock()
	fb.swollen = max(fb.swollen, n)
	fb.mu.Unlock()
}

// takeSwollen returns (and forgets) the goroutine peak over the bound, 0 when none.
func (fb *faultBox) takeSwollen() int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	n := fb.swollen
	fb.swollen = 0
	return n
}

// swollen samples the goroutine count while a listing that claims a huge count is read,
// and returns it when it exceeds the bound (0 otherwise). A reader that starts one goroutine
// per claimed page does so while this request is served: the samples yield to it for a
// moment rather than catch it half way.
func swollen(armed bool) int {
	if !armed {
		return 0
	}
	for range 4096 {
		if n := runtime.NumGoroutine(); n > goroutineBound {
			return n
		}
		runtime.Gosched()
	}
	return 0
}

// hugeArmed reports whether this pass's listing claims a count beyond any directory. The
// goroutine count is the process's, so only a world that armed the claim is held to it.
func (fb *faultBox) hugeArmed() bool {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.armed && fb.plan.MOSticky != nil && fb.plan.MOSticky.Delta >= 100_000
}
