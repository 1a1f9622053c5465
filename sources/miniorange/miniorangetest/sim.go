// Package miniorangetest is an in-memory miniOrange admin REST API for tests, `idsync demo`,
// `idsync sim` and `idsync bench`, in the spirit of net/http/httptest.
//
// It serves exactly the documented endpoints (users/get, users/search, get-timestamp) and the
// list contract idsync assumes (users/list, groups/list, groups/members; see docs/setup-miniorange.md: no
// public source documents them). It checks what the real service checks: the Customer-Key,
// the SHA-512 Authorization hash and the Timestamp window, and answers errors the miniOrange
// way ({"status": "ERROR", "message": ...}). Knobs cover latency, a batch cap smaller than
// asked, rate limits (429 + Retry-After), clock skew, injected faults and user records that
// differ from the contract (SetUserHook); every mutation and knob is safe while serving.
package miniorangetest

import (
	"context"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Simulator defaults (see DESIGN "Simulator defaults").
const (
	DefaultCustomerKey     = "100001"
	DefaultAPIKey          = "sim-mo-api-key"
	DefaultBatchCap        = 200
	DefaultTimestampWindow = 2 * time.Minute
	// DefaultAddr is where `idsync sim` serves the simulator.
	DefaultAddr = "127.0.0.1:18082"
)

// Endpoint paths the simulator serves (the defaults of sources[].miniorange.endpoints).
const (
	PathUsersList    = "/moas/api/admin/users/list"
	PathGroupsList   = "/moas/api/admin/groups/list"
	PathGroupMembers = "/moas/api/admin/groups/members"
	PathUserGet      = "/moas/api/admin/users/get"
	PathUserSearch   = "/moas/api/admin/users/search"
	PathTimestamp    = "/moas/rest/mobile/get-timestamp"
)

// maxBody caps request bodies; real requests are a few hundred bytes.
const maxBody = 1 << 20

// Options configure a simulator. Zero values take the defaults.
type Options struct {
	CustomerKey string
	APIKey      string
	// Org is the initial directory; nil loads DefaultOrg(). Use &Org{} for an empty one.
	Org *Org
	// BatchCap is the most items one page returns, whatever batchSize asks (default 200).
	BatchCap int
	// TimestampWindow is how far the Timestamp header may be from the server clock.
	TimestampWindow time.Duration
	// Now is the server clock (default time.Now); SetClockSkew shifts it.
	Now func() time.Time
	// RequireAPIKeyHeader rejects calls without the Api-Key header (some tenants' group API).
	RequireAPIKeyHeader bool
	// ErrorsAsOK answers every application error (auth included) with HTTP 200 and the error
	// in the body, as some miniOrange endpoints do, so clients must read the body's status.
	ErrorsAsOK bool
	// Seed drives jitter, random faults and generated hires.
	Seed int64
	// Latency and Jitter delay every answer by Latency plus a uniform [0, Jitter).
	Latency time.Duration
	Jitter  time.Duration
}

// Sim is the simulator. Create it with New.
type Sim struct {
	customerKey string
	now         func() time.Time
	requireKey  bool
	errorsAsOK  bool

	mu     sync.RWMutex // guards the directory below
	users  []*user      // listing order
	byName map[string]*user
	byID   map[string]*user
	groups []*group // listing order; groups[0] is DEFAULT
	byGrp  map[string]*group
	nextID int
	hireN  int

	kmu       sync.Mutex // guards knobs, faults and counters
	apiKey    string
	rng       *rand.Rand
	batchCap  int
	window    time.Duration
	skew      time.Duration
	latency   time.Duration
	jitter    time.Duration
	limiter   *rate.Limiter
	errorRate float64
	errorCode int
	faults    []*Fault
	userHook  UserHook
	calls     map[string]int
	throttled int
}

type user struct {
	id, userName, email, first, last, phone string
	disabled                                bool
	groups                                  []*group // without DEFAULT
	attrs                                   map[string]string
	// js is the user's users/list entry, encoded at every change: listing pages are then
	// concatenations, which keeps the simulator's CPU out of the way of what is measured.
	js []byte
}

// refresh re-encodes the user's listing entry; callers hold mu for writing.
func (u *user) refresh() {
	b, err := json.Marshal(u.wire())
	if err != nil {
		b = []byte("null")
	}
	u.js = b
}

type group struct {
	id, name, desc string
	auto           bool    // DEFAULT: members are every user
	members        []*user // join order; unused for DEFAULT
}

// New builds a simulator loaded with opts.Org.
func New(opts Options) *Sim {
	s := &Sim{
		customerKey: opts.CustomerKey,
		apiKey:      opts.APIKey,
		now:         opts.Now,
		requireKey:  opts.RequireAPIKeyHeader,
		errorsAsOK:  opts.ErrorsAsOK,
		rng:         rand.New(rand.NewPCG(uint64(opts.Seed), 0x73696d)),
		batchCap:    opts.BatchCap,
		window:      opts.TimestampWindow,
		latency:     opts.Latency,
		jitter:      opts.Jitter,
		calls:       map[string]int{},
		nextID:      9000000,
	}
	if s.customerKey == "" {
		s.customerKey = DefaultCustomerKey
	}
	if s.apiKey == "" {
		s.apiKey = DefaultAPIKey
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.batchCap <= 0 {
		s.batchCap = DefaultBatchCap
	}
	if s.window <= 0 {
		s.window = DefaultTimestampWindow
	}
	org := opts.Org
	if org == nil {
		o := DefaultOrg()
		org = &o
	}
	s.load(*org)
	return s
}

func (s *Sim) load(org Org) {
	s.users = make([]*user, 0, len(org.Users))
	s.byName = make(map[string]*user, len(org.Users))
	s.byID = make(map[string]*user, len(org.Users))
	def := &group{id: "0", name: DefaultGroup, desc: "Every user", auto: true}
	s.groups = []*group{def}
	s.byGrp = map[string]*group{DefaultGroup: def}
	for _, g := range org.Groups {
		if g.Name == DefaultGroup || s.byGrp[g.Name] != nil {
			continue
		}
		id := g.ID
		if id == "" {
			id = s.newID()
		}
		ng := &group{id: id, name: g.Name, desc: g.Description}
		s.groups = append(s.groups, ng)
		s.byGrp[g.Name] = ng
	}
	for _, u := range org.Users {
		_, _ = s.addUser(u)
	}
}

func (s *Sim) newID() string {
	s.nextID++
	return strconv.Itoa(s.nextID)
}

// addUser inserts u; groups it names that do not exist are created. Caller holds mu.
func (s *Sim) addUser(u User) (User, error) {
	if u.UserName == "" {
		return User{}, errors.New("miniorangetest: user without a username")
	}
	key := strings.ToLower(u.UserName)
	if s.byName[key] != nil {
		return User{}, fmt.Errorf("miniorangetest: username %q exists", u.UserName)
	}
	if u.ID == "" {
		u.ID = s.newID()
	}
	if s.byID[u.ID] != nil {
		return User{}, fmt.Errorf("miniorangetest: user id %q exists", u.ID)
	}
	nu := &user{
		id: u.ID, userName: u.UserName, email: u.Email, first: u.FirstName, last: u.LastName,
		phone: u.Phone, disabled: u.Disabled,
	}
	if len(u.Attributes) > 0 {
		nu.attrs = make(map[string]string, len(u.Attributes))
		for k, v := range u.Attributes {
			nu.attrs[k] = v
		}
	}
	for _, name := range u.Groups {
		if name == DefaultGroup {
			continue
		}
		g := s.byGrp[name]
		if g == nil {
			g = &group{id: s.newID(), name: name}
			s.groups = append(s.groups, g)
			s.byGrp[name] = g
		}
		if nu.in(g) {
			continue
		}
		nu.groups = append(nu.groups, g)
		g.members = append(g.members, nu)
	}
	nu.refresh()
	s.users = append(s.users, nu)
	s.byName[key] = nu
	s.byID[nu.id] = nu
	return nu.export(), nil
}

func (u *user) in(g *group) bool {
	for _, x := range u.groups {
		if x == g {
			return true
		}
	}
	return false
}

func (u *user) export() User {
	out := User{
		ID: u.id, UserName: u.userName, Email: u.email, FirstName: u.first, LastName: u.last,
		Phone: u.phone, Disabled: u.disabled, Groups: make([]string, len(u.groups)),
	}
	for i, g := range u.groups {
		out.Groups[i] = g.name
	}
	if u.attrs != nil {
		out.Attributes = make(map[string]string, len(u.attrs))
		for k, v := range u.attrs {
			out.Attributes[k] = v
		}
	}
	return out
}

// TB is the part of testing.TB NewServer needs.
type TB interface {
	Helper()
	Cleanup(func())
}

// Server is a simulator listening on a loopback httptest server.
type Server struct {
	*Sim
	URL string
	srv *httptest.Server
}

// NewServer starts a simulator on 127.0.0.1 and closes it when the test ends.
func NewServer(t TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &Server{Sim: s, URL: srv.URL, srv: srv}
}

// Close stops the server early (tests that need the port gone).
func (s *Server) Close() { s.srv.Close() }

// Handler serves the API.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// request is the union of every endpoint's body.
type request struct {
	CustomerKey json.RawMessage `json:"customerKey"`
	StartIndex  *int            `json:"startIndex"`
	BatchSize   *int            `json:"batchSize"`
	GroupName   string          `json:"groupName"`
	UserName    string          `json:"username"`
}

type errorBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch path {
	case PathUsersList, PathGroupsList, PathGroupMembers, PathUserGet, PathUserSearch, PathTimestamp:
	default:
		s.count(path)
		writeJSON(w, http.StatusNotFound, errorBody{"ERROR", "Resource not found: " + path})
		return
	}
	if !s.delay(r.Context()) {
		return
	}
	if s.throttle(w) {
		return
	}
	s.count(path)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"ERROR", "Method " + r.Method + " not allowed"})
		return
	}
	if path == PathTimestamp {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintf(w, "%d", s.serverNow().UnixMilli())
		return
	}
	if code, msg, ok := s.authenticate(r); !ok {
		s.fail(w, code, msg)
		return
	}
	var req request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, "Invalid request body: "+err.Error())
		return
	}
	if ck := strings.Trim(string(req.CustomerKey), `"`); ck != s.customerKey {
		s.fail(w, http.StatusBadRequest, "customerKey in the body is missing or does not match the Customer-Key header")
		return
	}
	if s.randomFault(w) {
		return
	}
	switch path {
	case PathUsersList:
		s.usersList(w, r, req)
	case PathGroupsList:
		s.groupsList(w, r, req)
	case PathGroupMembers:
		s.groupMembers(w, r, req)
	case PathUserGet:
		s.userGet(w, req)
	case PathUserSearch:
		s.userSearch(w, req)
	}
}

func (s *Sim) count(path string) {
	s.kmu.Lock()
	s.calls[path]++
	s.kmu.Unlock()
}

// fail answers an application error the miniOrange way.
func (s *Sim) fail(w http.ResponseWriter, code int, msg string) {
	if s.errorsAsOK {
		code = http.StatusOK
	}
	writeJSON(w, code, errorBody{"ERROR", msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, code, b)
}

func writeRaw(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func (s *Sim) serverNow() time.Time {
	s.kmu.Lock()
	skew := s.skew
	s.kmu.Unlock()
	return s.now().Add(skew)
}

// Signature is the Authorization value miniOrange expects: lowercase hex SHA-512 of
// customerKey + timestamp + apiKey.
func Signature(customerKey, timestamp, apiKey string) string {
	sum := sha512.Sum512([]byte(customerKey + timestamp + apiKey))
	return hex.EncodeToString(sum[:])
}

func (s *Sim) authenticate(r *http.Request) (int, string, bool) {
	ck := r.Header.Get("Customer-Key")
	if ck == "" {
		return http.StatusUnauthorized, "Authentication failed: Customer-Key header is missing", false
	}
	if subtle.ConstantTimeCompare([]byte(ck), []byte(s.customerKey)) != 1 {
		return http.StatusUnauthorized, "Authentication failed: invalid customer key", false
	}
	tsHeader := r.Header.Get("Timestamp")
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return http.StatusUnauthorized, "Authentication failed: Timestamp header is missing or not epoch milliseconds", false
	}
	s.kmu.Lock()
	window, apiKey := s.window, s.apiKey
	s.kmu.Unlock()
	if d := s.serverNow().Sub(time.UnixMilli(ts)); d > window || d < -window {
		return http.StatusUnauthorized, "Authentication failed: request timestamp is outside the allowed window", false
	}
	want := Signature(ck, tsHeader, apiKey)
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		return http.StatusUnauthorized, "Authentication failed: invalid authorization hash", false
	}
	key, sent := r.Header["Api-Key"]
	if sent && subtle.ConstantTimeCompare([]byte(strings.Join(key, "")), []byte(apiKey)) != 1 {
		return http.StatusUnauthorized, "Authentication failed: invalid Api-Key header", false
	}
	if !sent && s.requireKey {
		return http.StatusUnauthorized, "Authentication failed: Api-Key header is missing", false
	}
	return 0, "", true
}

// window returns the [start, end) slice bounds a paged request asks for, or an error message.
func (s *Sim) pageBounds(req request, total int) (start, end int, msg string) {
	if req.StartIndex == nil || req.BatchSize == nil {
		return 0, 0, "startIndex and batchSize are required"
	}
	start, size := *req.StartIndex, *req.BatchSize
	if start < 0 || size < 1 {
		return 0, 0, "startIndex must be >= 0 and batchSize >= 1"
	}
	s.kmu.Lock()
	size = min(size, s.batchCap)
	s.kmu.Unlock()
	start = min(start, total)
	return start, min(start+size, total), ""
}

type wireUser struct {
	ID               string            `json:"id"`
	UserName         string            `json:"username"`
	Email            string            `json:"email"`
	FirstName        string            `json:"firstName"`
	LastName         string            `json:"lastName"`
	Phone            string            `json:"phone,omitempty"`
	Status           string            `json:"status,omitempty"`
	UserStatus       string            `json:"userStatus,omitempty"`
	Groups           []string          `json:"groups"`
	CustomAttributes map[string]string `json:"customAttributes,omitempty"`
}

func (u *user) wire() wireUser {
	st := "ACTIVE"
	if u.disabled {
		st = "DISABLED"
	}
	groups := make([]string, 0, len(u.groups)+1)
	groups = append(groups, DefaultGroup)
	for _, g := range u.groups {
		groups = append(groups, g.name)
	}
	return wireUser{
		ID: u.id, UserName: u.userName, Email: u.email, FirstName: u.first, LastName: u.last,
		Phone: u.phone, Status: st, Groups: groups, CustomAttributes: u.attrs,
	}
}

type wireGroup struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type groupsPage struct {
	Status     string      `json:"status"`
	TotalCount int         `json:"totalCount"`
	Groups     []wireGroup `json:"groups"`
}

type membersPage struct {
	Status     string   `json:"status"`
	TotalCount int      `json:"totalCount"`
	Members    []string `json:"members"`
}

func (s *Sim) usersList(w http.ResponseWriter, r *http.Request, req request) {
	f := s.pageFault(PathUsersList, "", req)
	s.mu.RLock()
	total := len(s.users)
	start, end, msg := s.pageBounds(req, total)
	if msg != "" {
		s.mu.RUnlock()
		s.fail(w, http.StatusBadRequest, msg)
		return
	}
	start, end = f.shift(start, end)
	hook := s.hook()
	size := 64
	for _, u := range s.users[start:end] {
		size += len(u.js) + 1
	}
	buf := make([]byte, 0, size)
	buf = append(buf, `{"status":"SUCCESS","totalCount":`...)
	buf = strconv.AppendInt(buf, int64(total+f.totalDelta()), 10)
	buf = append(buf, `,"users":[`...)
	for i, u := range s.users[start:end] {
		if i > 0 {
			buf = append(buf, ',')
		}
		if hook != nil {
			buf = append(buf, hooked(hook, PathUsersList, u.userName, u.js)...)
			continue
		}
		buf = append(buf, u.js...)
	}
	buf = append(buf, "]}"...)
	s.mu.RUnlock()
	s.answerPage(w, f, buf)
}

func (s *Sim) groupsList(w http.ResponseWriter, r *http.Request, req request) {
	f := s.pageFault(PathGroupsList, "", req)
	s.mu.RLock()
	total := len(s.groups)
	start, end, msg := s.pageBounds(req, total)
	if msg != "" {
		s.mu.RUnlock()
		s.fail(w, http.StatusBadRequest, msg)
		return
	}
	start, end = f.shift(start, end)
	page := groupsPage{Status: "SUCCESS", TotalCount: total + f.totalDelta(), Groups: make([]wireGroup, 0, end-start)}
	for _, g := range s.groups[start:end] {
		page.Groups = append(page.Groups, wireGroup{ID: g.id, Name: g.name, Description: g.desc})
	}
	s.mu.RUnlock()
	b, err := json.Marshal(page)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.answerPage(w, f, b)
}

func (s *Sim) groupMembers(w http.ResponseWriter, r *http.Request, req request) {
	f := s.pageFault(PathGroupMembers, req.GroupName, req)
	s.mu.RLock()
	g := s.byGrp[req.GroupName]
	if g == nil {
		s.mu.RUnlock()
		writeJSON(w, http.StatusOK, errorBody{"FAILED", "Group not found: " + req.GroupName})
		return
	}
	members := g.members
	if g.auto {
		members = s.users
	}
	total := len(members)
	start, end, msg := s.pageBounds(req, total)
	if msg != "" {
		s.mu.RUnlock()
		s.fail(w, http.StatusBadRequest, msg)
		return
	}
	start, end = f.shift(start, end)
	page := membersPage{Status: "SUCCESS", TotalCount: total + f.totalDelta(), Members: make([]string, 0, end-start)}
	for _, u := range members[start:end] {
		page.Members = append(page.Members, u.userName)
	}
	s.mu.RUnlock()
	b, err := json.Marshal(page)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.answerPage(w, f, b)
}

// answerPage writes an encoded page, applying a matched fault.
func (s *Sim) answerPage(w http.ResponseWriter, f *Fault, body []byte) {
	if f == nil {
		writeRaw(w, http.StatusOK, body)
		return
	}
	switch f.Kind {
	case FaultStatus:
		code := f.Status
		if code == 0 {
			code = http.StatusInternalServerError
		}
		writeJSON(w, code, errorBody{"ERROR", "Internal server error"})
	case FaultBodyError:
		writeJSON(w, http.StatusOK, errorBody{"ERROR", "Could not process the request"})
	case FaultReset:
		resetConn(w)
	case FaultTruncate:
		truncate(w, body)
	case FaultHireAfter:
		writeRaw(w, http.StatusOK, body)
		s.HireN(max(f.Delta, 1))
	default: // FaultTotalSkew, FaultShift: already applied to the page
		writeRaw(w, http.StatusOK, body)
	}
}

func (s *Sim) userGet(w http.ResponseWriter, req request) {
	s.mu.RLock()
	u := s.byName[strings.ToLower(req.UserName)]
	var wu wireUser
	if u != nil {
		wu = u.wire()
	}
	s.mu.RUnlock()
	if u == nil {
		writeJSON(w, http.StatusOK, errorBody{"FAILED", "User does not exist"})
		return
	}
	// The documented call answers flat; the user's own state is userStatus because status
	// is the call's result.
	wu.UserStatus, wu.Status = wu.Status, ""
	body, _ := json.Marshal(wu)
	var flat map[string]any
	_ = json.Unmarshal(body, &flat)
	if hook := s.hook(); hook != nil {
		hook(PathUserGet, wu.UserName, flat)
	}
	flat["status"] = "SUCCESS"
	flat["message"] = "User found"
	writeJSON(w, http.StatusOK, flat)
}

func (s *Sim) userSearch(w http.ResponseWriter, req request) {
	s.mu.RLock()
	u := s.byName[strings.ToLower(req.UserName)]
	s.mu.RUnlock()
	if u == nil {
		writeJSON(w, http.StatusOK, errorBody{"USER_NOT_FOUND", "User not found"})
		return
	}
	writeJSON(w, http.StatusOK, errorBody{"USER_FOUND", "User found"})
}

// delay applies latency; it reports false when the client went away meanwhile.
func (s *Sim) delay(ctx context.Context) bool {
	s.kmu.Lock()
	d := s.latency
	if s.jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(s.jitter)))
	}
	s.kmu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// throttle answers 429 when the rate limit is exceeded.
func (s *Sim) throttle(w http.ResponseWriter) bool {
	s.kmu.Lock()
	lim := s.limiter
	s.kmu.Unlock()
	if lim == nil {
		return false
	}
	res := lim.Reserve()
	if res.OK() && res.Delay() == 0 {
		return false
	}
	wait := res.Delay()
	res.Cancel()
	s.kmu.Lock()
	s.throttled++
	s.kmu.Unlock()
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(int(lim.Limit())))
	w.Header().Set("X-RateLimit-Remaining", "0")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(wait).Unix(), 10))
	writeJSON(w, http.StatusTooManyRequests, errorBody{"ERROR", "Too many requests"})
	return true
}

// resetConn drops the connection without an answer; the client sees a reset or EOF.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeJSON(w, http.StatusBadGateway, errorBody{"ERROR", "connection reset"})
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
}

// truncate sends a response whose body stops half way, then closes the connection.
func truncate(w http.ResponseWriter, body []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeJSON(w, http.StatusBadGateway, errorBody{"ERROR", "truncated"})
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	_, _ = fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	_, _ = buf.Write(body[:len(body)/2])
	_ = buf.Flush()
	_ = conn.Close()
}
