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
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
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
	// qmu guards queues: the updates of each resource waiting for the commit in progress
	// (groupcommit.go), by type/id.
	qmu    sync.Mutex
	queues map[string]*updateQueue

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
		s, err := h.newSource(so)
		if err != nil {
			return nil, err
		}
		if err := h.load(s); err != nil {
			return nil, err
		}
		h.sources[so.Name] = s
	}
	return h, nil
}

// newSource builds one push source: its tokens, limits and debouncer, and an empty index.
func (h *Handler) newSource(so SourceOptions) (*source, error) {
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
		queues:      map[string]*updateQueue{},
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
	s.deb = newDebouncer(so.Name, window, h.opts.AfterFunc, h.now, h.opts.OnChange)
	return s, nil
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
