// Package scim is idsync's push mode: an embedded SCIM 2.0 service provider (RFC 7643, RFC
// 7644) that identity providers (miniOrange, Okta, Entra ID, any SCIM client) provision users
// and groups into, and a reconcile.Source that reads what they pushed.
//
// One Handler serves every push-enabled source under /scim/v2/{source}/, each with its own
// bearer token, rate limit and resources: a token of one source never reads or changes
// another's (their ids answer 404). Every write is durable in the Store before the 2xx
// answer, then served from an in-memory index that answers reads and filters. Each write
// triggers OnChange for the touched users and groups after a quiet window, so the daemon can
// run a targeted pass.
//
// Decisions an operator should know:
//   - Unknown attributes (and attributes of extension schemas other than the enterprise User
//     extension) are ignored, not refused: IdPs send what they have, and refusing would stop
//     provisioning. A PATCH path naming an unknown attribute of a known schema is refused
//     (invalidPath), since the client asked for something specific.
//   - "password" is never stored.
//   - A DELETEd user becomes a tombstone: gone from the SCIM API (404, not listed, its
//     userName free again) but reported by the Source as inactive, so the pass treats it as
//     an explicit deprovision. Tombstones are purged after TombstoneRetention.
//   - A group's members must be users of the same source (400 invalidValue otherwise);
//     nested groups are not supported.
//   - sortBy is ignored (lists come in creation order); bulk, /Me, /.search and changing
//     passwords are not supported, as /ServiceProviderConfig says.
//   - Removing a member or value that is not there succeeds (IdPs retry removals).
//   - A deleted user leaves its groups; a user pushed without "active" is active.
//   - An unknown source answers 401 like a wrong token, so source names cannot be probed.
//   - A request over the source's rate limit or concurrency bound gets 429 with
//     Retry-After; after Close, writes get 503 (reads still work).
//   - Groups of more than 128 members are stored in 64 member buckets, so one member
//     change rewrites a bucket rather than the whole group (buckets.go).
package scim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/sources/scim/filter"
)

// Defaults.
const (
	DefaultMaxBodyBytes       = 1 << 20
	DefaultMaxCount           = 1000
	DefaultDebounce           = 2 * time.Second
	DefaultTombstoneRetention = 30 * 24 * time.Hour
	// Prefix is where the daemon mounts the handler.
	Prefix = "/scim/v2/"
)

// Timer is what the debouncer needs of a *time.Timer.
type Timer interface{ Stop() bool }

// SourceOptions configures one push source.
type SourceOptions struct {
	Name  string
	Token configs.Secret
	// PreviousToken, when set, is accepted too (a token rotation under way).
	PreviousToken configs.Secret
	RateLimit     configs.RateLimit
	// Debounce is the quiet window before OnChange (DefaultDebounce when zero).
	Debounce time.Duration
}

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	Sources []SourceOptions
	Store   Store
	// OnChange is called per source once no write has arrived for its Debounce window (or
	// at the latest 10 windows after the first pending write), with the userNames and group
	// displayNames touched since the last call, sorted. It runs on its own goroutine.
	OnChange func(source string, userNames, groupNames []string)
	Metrics  *metrics.Metrics
	Logger   zerolog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// AfterFunc schedules debounce timers (time.AfterFunc when nil).
	AfterFunc func(d time.Duration, f func()) Timer
	// BaseURL is the external URL of the listener ("https://idsync.example.com") used for
	// meta.location and Location headers; without it locations are absolute paths.
	BaseURL string
	// MaxBodyBytes caps request bodies (DefaultMaxBodyBytes when zero).
	MaxBodyBytes int64
	// MaxCount caps the page size of list answers (DefaultMaxCount when zero); a request
	// without count gets up to this many.
	MaxCount int
	// TombstoneRetention is how long deleted users stay visible to the Source as inactive
	// (DefaultTombstoneRetention when zero).
	TombstoneRetention time.Duration
}

var sourceNameRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// Handler is the SCIM 2.0 listener of every push source.
type Handler struct {
	opts    HandlerOptions
	now     func() time.Time
	log     zerolog.Logger
	sources map[string]*source
	base    string
	closed  atomic.Bool
}

// entry is one resource in the index. Entries are immutable once indexed: a write replaces
// the entry, so a reader holding one sees a consistent resource.
type entry struct {
	id  string
	rec record
	// view is the resource with id and meta, as filters and renders see it.
	view map[string]any
	// rendered caches the full JSON answer (users: with groups); reset when it changes.
	rendered atomic.Pointer[[]byte]
}

// source is one push source's resources and limits.
type source struct {
	name   string
	tokens atomic.Pointer[tokenSums] // swapped whole by SetTokens
	// prevNoted is when a request with the previous token was last logged (unix ns): once
	// a minute is enough to tell the admin the rotation is not finished.
	prevNoted atomic.Int64
	limiter   *rate.Limiter
	sem       chan struct{}
	deb       *debouncer
	// Stripe locks serialize writes to one resource; users and groups have their own, as a
	// user delete takes the locks of the groups it leaves.
	userStripes, groupStripes [64]sync.Mutex

	mu          sync.RWMutex
	users       map[string]*entry // live users
	tombs       map[string]*entry // deleted users
	groups      map[string]*entry
	userOrder   []string
	groupOrder  []string
	userByName  map[string]string // lower(userName) -> id, live users only
	groupByName map[string]string // lower(displayName) -> id
	memberOf    map[string]map[string]struct{}
	reserved    map[string]int // names held by writes in flight: "u:"/"g:" + lower(name)
	// stale marks groups that still list a deleted user (a failed cascade, or an older
	// file); their next write takes the general path, which drops such members.
	stale    map[string]bool
	loadErrs []string
}

// NewHandler builds the listener and loads every stored resource of its sources.
func NewHandler(opts HandlerOptions) (*Handler, error) {
	if opts.Store == nil {
		return nil, errors.New("scim listener: no store")
	}
	h := &Handler{opts: opts, now: opts.Now, log: opts.Logger.With().Str(logging.FieldComponent, "scim").Logger(),
		sources: make(map[string]*source), base: strings.TrimRight(opts.BaseURL, "/")}
	if h.now == nil {
		h.now = time.Now
	}
	if h.opts.AfterFunc == nil {
		h.opts.AfterFunc = func(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
	}
	if h.opts.MaxBodyBytes <= 0 {
		h.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if h.opts.MaxCount <= 0 {
		h.opts.MaxCount = DefaultMaxCount
	}
	if h.opts.TombstoneRetention <= 0 {
		h.opts.TombstoneRetention = DefaultTombstoneRetention
	}
	for i, so := range opts.Sources {
		if !sourceNameRE.MatchString(so.Name) {
			return nil, fmt.Errorf("scim listener: sources[%d]: name %q must match [a-z0-9-]+", i, so.Name)
		}
		if _, dup := h.sources[so.Name]; dup {
			return nil, fmt.Errorf("scim listener: source %q configured twice", so.Name)
		}
		sums, err := newTokenSums(so.Name, so.Token, so.PreviousToken)
		if err != nil {
			return nil, err
		}
		s := &source{
			name:        so.Name,
			users:       map[string]*entry{},
			tombs:       map[string]*entry{},
			groups:      map[string]*entry{},
			userByName:  map[string]string{},
			groupByName: map[string]string{},
			memberOf:    map[string]map[string]struct{}{},
			reserved:    map[string]int{},
			stale:       map[string]bool{},
		}
		s.tokens.Store(sums)
		if rl := so.RateLimit; rl.RequestsPerSecond > 0 {
			burst := rl.Burst
			if burst <= 0 {
				burst = int(math.Ceil(rl.RequestsPerSecond))
			}
			s.limiter = rate.NewLimiter(rate.Limit(rl.RequestsPerSecond), burst)
		}
		if so.RateLimit.Concurrency > 0 {
			s.sem = make(chan struct{}, so.RateLimit.Concurrency)
		}
		window := so.Debounce
		if window <= 0 {
			window = DefaultDebounce
		}
		s.deb = newDebouncer(so.Name, window, h.opts.AfterFunc, h.now, opts.OnChange)
		if err := h.load(s); err != nil {
			return nil, err
		}
		h.sources[so.Name] = s
	}
	return h, nil
}

// load fills the index of s from the store. Records that cannot be read are reported by
// the Source (Snapshot fails, so no pass deactivates anyone because of them) and logged;
// the rest is served.
func (h *Handler) load(s *source) error {
	for _, rt := range []*resourceType{userType, groupType} {
		rs, err := h.opts.Store.SCIMResources(s.name, rt.Name)
		if err != nil {
			return fmt.Errorf("scim listener: loading %s resources of source %s: %w", rt.Name, s.name, err)
		}
		var buckets map[string][]Resource
		if rt == groupType {
			rs, buckets = splitGroupRecords(rs)
		}
		for _, r := range rs {
			rec, err := decodeRecord(rt, r.Data)
			if err == nil && rec.Buckets > 0 {
				var members []any
				if members, err = assembleMembers(r.ID, buckets[r.ID]); err == nil {
					setOrDelete(rec.Resource, "members", nonEmptyList(dedupeByValue(members)))
				}
			}
			if err != nil {
				msg := fmt.Sprintf("%s %s: %v", rt.Name, r.ID, err)
				s.loadErrs = append(s.loadErrs, msg)
				h.log.Error().Str(logging.FieldSource, s.name).Msg("unreadable stored SCIM resource: " + msg)
				continue
			}
			e := h.newEntry(s, rt, r.ID, rec)
			switch {
			case rt == groupType:
				s.groups[r.ID] = e
			case rec.Deleted != nil:
				s.tombs[r.ID] = e
			default:
				s.users[r.ID] = e
			}
		}
	}
	// Creation order serves lists; ids break ties.
	s.userOrder = sortedIDs(s.users)
	s.groupOrder = sortedIDs(s.groups)
	for _, id := range s.userOrder {
		e := s.users[id]
		s.userByName[strings.ToLower(userName(e.rec.Resource))] = id
	}
	for _, id := range s.groupOrder {
		e := s.groups[id]
		s.groupByName[strings.ToLower(displayName(e.rec.Resource))] = id
		for _, m := range memberIDs(e.rec.Resource) {
			if _, live := s.users[m]; !live {
				s.stale[id] = true
				continue
			}
			s.addMemberOf(m, id)
		}
	}
	h.log.Info().Str(logging.FieldSource, s.name).Int("users", len(s.users)).Int("groups", len(s.groups)).
		Int("tombstones", len(s.tombs)).Msg("SCIM resources loaded")
	return nil
}

func sortedIDs(m map[string]*entry) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := m[ids[i]], m[ids[j]]
		if !a.rec.Created.Equal(b.rec.Created) {
			return a.rec.Created.Before(b.rec.Created)
		}
		return ids[i] < ids[j]
	})
	return ids
}

func (s *source) addMemberOf(userID, groupID string) {
	set := s.memberOf[userID]
	if set == nil {
		set = map[string]struct{}{}
		s.memberOf[userID] = set
	}
	set[groupID] = struct{}{}
}

func (s *source) removeMemberOf(userID, groupID string) {
	if set := s.memberOf[userID]; set != nil {
		delete(set, groupID)
		if len(set) == 0 {
			delete(s.memberOf, userID)
		}
	}
}

func (s *source) stripe(rt *resourceType, id string) *sync.Mutex {
	f := fnv.New32a()
	_, _ = f.Write([]byte(id))
	if rt == userType {
		return &s.userStripes[f.Sum32()%uint32(len(s.userStripes))]
	}
	return &s.groupStripes[f.Sum32()%uint32(len(s.groupStripes))]
}

// Close stops the debounce timers, calling OnChange at once for triggers still pending,
// and makes later writes answer 503. It waits for OnChange calls in progress.
func (h *Handler) Close() error {
	h.closed.Store(true)
	for _, s := range h.sources {
		s.deb.close()
	}
	return nil
}

// location is the URL of a resource or endpoint of a source.
func (h *Handler) location(src, rest string) string {
	return h.base + Prefix + src + "/" + rest
}

func (h *Handler) newEntry(s *source, rt *resourceType, id string, rec record) *entry {
	view := make(map[string]any, len(rec.Resource)+2)
	for k, v := range rec.Resource {
		view[k] = v
	}
	view["id"] = id
	view["meta"] = map[string]any{
		"resourceType": rt.Name,
		"created":      rec.Created.UTC().Format(time.RFC3339Nano),
		"lastModified": rec.Modified.UTC().Format(time.RFC3339Nano),
		"location":     h.location(s.name, strings.TrimPrefix(rt.Endpoint, "/")+"/"+id),
		"version":      etag(rec.Version),
	}
	return &entry{id: id, rec: rec, view: view}
}

func etag(v uint64) string { return `W/"` + strconv.FormatUint(v, 10) + `"` }

func userName(res map[string]any) string    { s, _ := res["userName"].(string); return s }
func displayName(res map[string]any) string { s, _ := res["displayName"].(string); return s }

func memberIDs(res map[string]any) []string {
	var ids []string
	for _, el := range elements(res["members"]) {
		if m, ok := el.(map[string]any); ok {
			if v, ok := m["value"].(string); ok && v != "" {
				ids = append(ids, v)
			}
		}
	}
	return ids
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// statusWriter records the answer's status for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP routes /scim/v2/{source}/{endpoint}[/{id}]. The prefix may also have been
// stripped by the caller.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	rest := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/"))
	rest = strings.TrimPrefix(rest, "/")
	srcName, rest, _ := strings.Cut(rest, "/")
	s := h.sources[srcName]
	label := srcName
	if s == nil {
		label = "unknown"
	}
	defer func() {
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		h.opts.Metrics.SCIMRequest(label, methodLabel(r.Method), code)
	}()
	var ok, usedPrevious bool
	if s != nil {
		ok, usedPrevious = s.authorized(r)
	}
	if !ok {
		// An unknown source answers like a wrong token, so source names cannot be probed.
		h.log.Warn().Str(logging.FieldSource, label).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).
			Bool("known_source", s != nil).Msg("SCIM request refused: bad or missing bearer token")
		sw.Header().Set("WWW-Authenticate", `Bearer realm="idsync SCIM"`)
		writeError(sw, &Error{Status: http.StatusUnauthorized, Detail: "authentication required: send the source's bearer token"})
		return
	}
	if usedPrevious && s.notePrevious(h.now()) {
		h.log.Warn().Str(logging.FieldSource, s.name).Str("remote", r.RemoteAddr).
			Msg("SCIM request authenticated with push.previous_token: move the IdP to the new token, then remove previous_token")
	}
	if retry, ok := s.admit(h.now()); !ok {
		sw.Header().Set("Retry-After", strconv.Itoa(retry))
		writeError(sw, &Error{Status: http.StatusTooManyRequests, Detail: "too many requests for this source; retry after " + strconv.Itoa(retry) + "s"})
		return
	}
	if s.sem != nil {
		select {
		case s.sem <- struct{}{}:
			defer func() { <-s.sem }()
		default:
			sw.Header().Set("Retry-After", "1")
			writeError(sw, &Error{Status: http.StatusTooManyRequests, Detail: "too many concurrent requests for this source; retry after 1s"})
			return
		}
	}
	h.route(sw, r, s, rest)
}

// methodLabel bounds the method label of metrics to the methods SCIM uses.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}

// tokenSums are the SHA-256 sums of a source's accepted tokens: comparing fixed-size sums in
// constant time leaks neither the token nor its length.
type tokenSums struct {
	current, previous [32]byte
	hasPrevious       bool
}

func newTokenSums(source string, cur, prev configs.Secret) (*tokenSums, error) {
	if strings.TrimSpace(cur.Value()) == "" {
		return nil, fmt.Errorf("scim listener: source %q has no bearer token", source)
	}
	t := &tokenSums{current: sha256.Sum256([]byte(cur.Value()))}
	if strings.TrimSpace(prev.Value()) != "" {
		t.previous, t.hasPrevious = sha256.Sum256([]byte(prev.Value())), true
	}
	return t, nil
}

// SetTokens replaces a source's accepted tokens (a config reload): requests already
// authenticated finish, every later one is checked against the new tokens.
func (h *Handler) SetTokens(source string, token, previous configs.Secret) error {
	s := h.sources[source]
	if s == nil {
		return fmt.Errorf("scim listener: no push source %q", source)
	}
	sums, err := newTokenSums(source, token, previous)
	if err != nil {
		return err
	}
	s.tokens.Store(sums)
	return nil
}

// notePrevious says whether a request with the previous token should be logged now.
func (s *source) notePrevious(now time.Time) bool {
	last := s.prevNoted.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < time.Minute {
		return false
	}
	return s.prevNoted.CompareAndSwap(last, now.UnixNano())
}

// authorized checks the bearer token; usedPrevious says the retiring token matched.
func (s *source) authorized(r *http.Request) (ok, usedPrevious bool) {
	auth := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(auth, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	t := s.tokens.Load()
	cur := subtle.ConstantTimeCompare(sum[:], t.current[:]) == 1
	prev := subtle.ConstantTimeCompare(sum[:], t.previous[:]) == 1 && t.hasPrevious
	return cur || prev, prev && !cur
}

// admit takes a token from the source's limiter, or says how many seconds to wait.
func (s *source) admit(now time.Time) (int, bool) {
	if s.limiter == nil {
		return 0, true
	}
	res := s.limiter.ReserveN(now, 1)
	if !res.OK() {
		return 1, false
	}
	d := res.DelayFrom(now)
	if d <= 0 {
		return 0, true
	}
	res.CancelAt(now)
	return int(math.Ceil(d.Seconds())), false
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request, s *source, rest string) {
	endpoint, id, hasID := strings.Cut(rest, "/")
	if hasID && id == "" {
		hasID = false // "/Users/" is the collection
	}
	if endpoint == "" && r.Method == http.MethodGet {
		// The source's base URL itself: some clients probe it to test a connection.
		writeJSON(w, http.StatusOK, h.spConfig(s))
		return
	}
	if hasID && strings.Contains(id, "/") {
		writeError(w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint: " + r.URL.Path})
		return
	}
	switch strings.ToLower(endpoint) {
	case "users", "groups":
		if hasID && id == ".search" {
			writeError(w, &Error{Status: http.StatusNotImplemented, Detail: "POST .search is not supported by this listener; use GET with filter"})
			return
		}
		rt := userType
		if strings.EqualFold(endpoint, "groups") {
			rt = groupType
		}
		if !hasID {
			switch r.Method {
			case http.MethodGet:
				h.list(w, r, s, rt)
			case http.MethodPost:
				h.create(w, r, s, rt)
			default:
				methodNotAllowed(w, "GET, POST")
			}
			return
		}
		switch r.Method {
		case http.MethodGet:
			h.get(w, r, s, rt, id)
		case http.MethodPut:
			h.update(w, r, s, rt, id, false)
		case http.MethodPatch:
			h.update(w, r, s, rt, id, true)
		case http.MethodDelete:
			h.delete(w, r, s, rt, id)
		default:
			methodNotAllowed(w, "GET, PUT, PATCH, DELETE")
		}
	case "serviceproviderconfig", "resourcetypes", "schemas":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		h.discovery(w, s, strings.ToLower(endpoint), id, hasID)
	case "bulk", "me", ".search":
		// RFC 7644 answers 501 for optional features a provider leaves out.
		writeError(w, &Error{Status: http.StatusNotImplemented, Detail: "/" + endpoint + " is not supported by this listener (see /ServiceProviderConfig)"})
	default:
		writeError(w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint: " + r.URL.Path})
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, &Error{Status: http.StatusMethodNotAllowed, Detail: "method not allowed; allowed: " + allow})
}

const contentType = "application/scim+json"

func writeError(w http.ResponseWriter, e *Error) {
	body := map[string]any{
		"schemas": []string{schemaError},
		"status":  strconv.Itoa(e.Status),
		"detail":  e.Detail,
	}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// readBody reads a write request's body within the size cap, checking its content type,
// and logs it (secrets redacted) at debug level.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, s *source) (map[string]any, *Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/scim+json" && mt != "application/json") {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Detail: fmt.Sprintf("content type %q is not supported; send application/scim+json or application/json", ct)}
		}
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the request body is larger than %d bytes", h.opts.MaxBodyBytes)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the request body is larger than %d bytes", h.opts.MaxBodyBytes)}
		}
		return nil, badRequest(errInvalidSyntax, "reading the request body: %v", err)
	}
	m, derr := decodeBody(body)
	if ev := h.log.Debug(); ev.Enabled() {
		ev = ev.Str(logging.FieldSource, s.name).Str("method", r.Method).Str("path", r.URL.Path)
		if derr == nil {
			if b, err := json.Marshal(redact(m)); err == nil {
				ev = ev.RawJSON("body", b)
			}
		} else {
			ev = ev.Int("body_bytes", len(body)).Str("error", derr.Detail)
		}
		ev.Msg("SCIM request body")
	}
	return m, derr
}

// render returns the full JSON of an entry (users with their groups), cached.
func (h *Handler) render(s *source, rt *resourceType, e *entry) []byte {
	if b := e.rendered.Load(); b != nil {
		return *b
	}
	b, err := json.Marshal(h.fullView(s, rt, e))
	if err != nil {
		b = []byte(`{}`)
	}
	e.rendered.Store(&b)
	return b
}

// fullView is the entry's view plus, for users, the groups they are in. Call with s.mu held.
func (h *Handler) fullView(s *source, rt *resourceType, e *entry) map[string]any {
	if rt != userType {
		if ids := memberIDs(e.rec.Resource); len(ids) > 0 {
			// Members deleted since the group was written are not shown.
			live := make([]any, 0, len(ids))
			for _, el := range elements(e.rec.Resource["members"]) {
				m, _ := el.(map[string]any)
				v, _ := m["value"].(string)
				if _, ok := s.users[v]; ok {
					live = append(live, el)
				}
			}
			if len(live) != len(ids) {
				v := shallow(e.view)
				setOrDelete(v, "members", nonEmptyList(live))
				return v
			}
		}
		return e.view
	}
	gids := s.memberOf[e.id]
	if len(gids) == 0 {
		return e.view
	}
	v := shallow(e.view)
	groups := make([]any, 0, len(gids))
	for _, gid := range sortedKeys(gids) {
		g := s.groups[gid]
		if g == nil {
			continue
		}
		groups = append(groups, map[string]any{
			"value": gid, "display": displayName(g.rec.Resource), "type": "direct",
			"$ref": h.location(s.name, "Groups/"+gid),
		})
	}
	if len(groups) > 0 {
		v["groups"] = groups
	}
	return v
}

func shallow(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// matchETag reports whether an If-Match / If-None-Match header names the current version.
// Weak and strong forms compare equal; "*" matches anything.
func matchETag(header string, version uint64) bool {
	want := strconv.FormatUint(version, 10)
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		t = strings.Trim(t, `"`)
		if t == want {
			return true
		}
	}
	return false
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType, id string) {
	proj, perr := parseProjection(r.URL.Query(), rt)
	if perr != nil {
		writeError(w, perr)
		return
	}
	s.mu.RLock()
	e := s.table(rt)[id]
	if e == nil {
		s.mu.RUnlock()
		writeError(w, &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %s not found", rt.Name, id)})
		return
	}
	var b []byte
	if proj.empty() {
		b = h.render(s, rt, e)
	} else {
		b, _ = json.Marshal(proj.apply(h.fullView(s, rt, e)))
	}
	s.mu.RUnlock()
	w.Header().Set("ETag", etag(e.rec.Version))
	if inm := r.Header.Get("If-None-Match"); inm != "" && matchETag(inm, e.rec.Version) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeRaw(w, http.StatusOK, b)
}

func (s *source) table(rt *resourceType) map[string]*entry {
	if rt == userType {
		return s.users
	}
	return s.groups
}

func (s *source) order(rt *resourceType) []string {
	if rt == userType {
		return s.userOrder
	}
	return s.groupOrder
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType) {
	// sortBy and sortOrder are ignored, as /ServiceProviderConfig announces: lists come in
	// creation order, which keeps paging stable.
	q := r.URL.Query()
	start, count, perr := h.paging(q.Get("startIndex"), q.Get("count"))
	if perr != nil {
		writeError(w, perr)
		return
	}
	proj, perr := parseProjection(q, rt)
	if perr != nil {
		writeError(w, perr)
		return
	}
	var (
		match     filter.Matcher
		indexed   bool
		indexedID string
		withGroup bool
	)
	if fs := q.Get("filter"); strings.TrimSpace(fs) != "" {
		expr, err := filter.Parse(fs)
		if err != nil {
			writeError(w, badRequest(errInvalidFilter, "filter %q: %v", fs, err))
			return
		}
		// Equality on id, userName (users) or displayName (groups) is answered from the
		// index without compiling the filter: it is the lookup IdPs make before every write.
		if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "id"); ok {
			indexed, indexedID = true, v
		}
		switch rt {
		case userType:
			if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "userName"); ok {
				s.mu.RLock()
				indexedID = s.userByName[strings.ToLower(v)]
				s.mu.RUnlock()
				indexed = true
			}
		case groupType:
			if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "displayName"); ok {
				s.mu.RLock()
				indexedID = s.groupByName[strings.ToLower(v)]
				s.mu.RUnlock()
				indexed = true
			}
		}
		if !indexed {
			if match, err = filter.Compile(expr, rt); err != nil {
				writeError(w, badRequest(errInvalidFilter, "filter %q: %v", fs, errMsg(err)))
				return
			}
			withGroup = rt == userType && mentions(expr, "groups")
		}
	}
	s.mu.RLock()
	var hits []*entry
	table := s.table(rt)
	if indexed {
		if e := table[indexedID]; e != nil {
			hits = append(hits, e)
		}
	} else {
		for _, id := range s.order(rt) {
			e := table[id]
			if e == nil {
				continue
			}
			if match != nil {
				v := e.view
				if withGroup {
					v = h.fullView(s, rt, e)
				}
				if !match(v) {
					continue
				}
			}
			hits = append(hits, e)
		}
	}
	total := len(hits)
	lo := min(start-1, total)
	page := hits[lo:min(lo+count, total)]
	var buf []byte
	buf = append(buf, `{"schemas":["`+schemaListResp+`"],"totalResults":`...)
	buf = strconv.AppendInt(buf, int64(total), 10)
	buf = append(buf, `,"startIndex":`...)
	buf = strconv.AppendInt(buf, int64(start), 10)
	buf = append(buf, `,"itemsPerPage":`...)
	buf = strconv.AppendInt(buf, int64(len(page)), 10)
	buf = append(buf, `,"Resources":[`...)
	for i, e := range page {
		if i > 0 {
			buf = append(buf, ',')
		}
		if proj.empty() {
			buf = append(buf, h.render(s, rt, e)...)
		} else {
			b, _ := json.Marshal(proj.apply(h.fullView(s, rt, e)))
			buf = append(buf, b...)
		}
	}
	s.mu.RUnlock()
	buf = append(buf, "]}"...)
	writeRaw(w, http.StatusOK, buf)
}

func errMsg(err error) string {
	var fe *filter.Error
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}

// mentions reports whether a filter names the top-level attribute name.
func mentions(e filter.Expr, name string) bool {
	switch x := e.(type) {
	case *filter.AttrExpr:
		return strings.EqualFold(x.Path.Name, name)
	case *filter.ValuePathExpr:
		return strings.EqualFold(x.Path.Name, name)
	case *filter.LogExpr:
		return mentions(x.Left, name) || mentions(x.Right, name)
	case *filter.NotExpr:
		return mentions(x.X, name)
	}
	return false
}

// paging reads startIndex (1-based; below 1 means 1) and count (capped; below 0 means 0).
func (h *Handler) paging(startS, countS string) (int, int, *Error) {
	start, count := 1, h.opts.MaxCount
	if startS != "" {
		v, err := strconv.Atoi(startS)
		if err != nil {
			return 0, 0, badRequest(errInvalidValue, "startIndex %q is not an integer", startS)
		}
		start = max(v, 1)
	}
	if countS != "" {
		v, err := strconv.Atoi(countS)
		if err != nil {
			return 0, 0, badRequest(errInvalidValue, "count %q is not an integer", countS)
		}
		count = min(max(v, 0), h.opts.MaxCount)
	}
	return start, count, nil
}
