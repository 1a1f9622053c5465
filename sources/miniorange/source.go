// Package miniorange reads users and groups from the miniOrange admin REST API (pull mode).
//
// Only the per-user calls are publicly documented. The list endpoints (users/list,
// groups/list, groups/members) are a contract idsync assumes, so every path is a config value
// (sources[].miniorange.endpoints); package miniorangetest simulates exactly that contract.
//
// Every call is a signed POST (Customer-Key, Timestamp, Authorization = SHA-512 of
// customerKey + timestamp + apiKey). After an auth failure the client asks the server for its
// time, keeps the clock offset for later calls and retries once. Transient failures (resets,
// 5xx, 429 with Retry-After) are retried; the source has its own token bucket.
//
// Snapshot returns the whole directory or an error wrapping ErrIncomplete, never a partial
// directory. Unknown means no: a user whose status is missing or not one idsync knows is never
// taken as active, and makes the read incomplete. Counts are checked against max_objects
// before anything is sized by them; memory and goroutines grow with what was received.
package miniorange

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/intern"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
)

// Defaults for unset config values.
const (
	DefaultBaseURL     = "https://login.xecurify.com"
	DefaultPageSize    = 500
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 4
	// DefaultMaxObjects bounds a listing's totalCount when cfg.MaxObjects is unset.
	DefaultMaxObjects = configs.DefaultMaxObjects
	// DefaultMaxRetryAfter bounds how long one Retry-After answer can make a read wait.
	DefaultMaxRetryAfter = httpx.DefaultMaxRetryAfter
)

// DefaultEndpoints are the paths of reference/MINIORANGE.md. users/get and get-timestamp are
// documented; the three listings are assumed.
var DefaultEndpoints = configs.MiniOrangeEndpoints{
	UsersList:    "/moas/api/admin/users/list",
	GroupsList:   "/moas/api/admin/groups/list",
	GroupMembers: "/moas/api/admin/groups/members",
	UserGet:      "/moas/api/admin/users/get",
	Timestamp:    "/moas/rest/mobile/get-timestamp",
}

// Options are the runtime dependencies of a Source. Zero values take defaults.
type Options struct {
	Metrics *metrics.Metrics
	Logger  zerolog.Logger
	// HTTPClient is copied; its Transport is wrapped for metrics and rate limiting. Nil
	// builds a pooled client sized for Concurrency.
	HTTPClient *http.Client
	// Now is the local clock used to sign requests (default time.Now).
	Now func() time.Time
	// Concurrency bounds the source's requests in flight (group member listings and the
	// pages after the first of every listing run in parallel up to it). Zero takes
	// cfg.RateLimit.Concurrency, then DefaultConcurrency.
	Concurrency int
	// RetryMax is how many times a transient failure is retried (default 4).
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff (default 500ms and 30s).
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxRetryAfter caps the wait a 429/503 Retry-After asks for (default 2m).
	MaxRetryAfter time.Duration
}

// Source is one configured miniOrange tenant.
type Source struct {
	name        string
	cfg         configs.MiniOrangeConfig
	ep          configs.MiniOrangeEndpoints
	pageSize    int
	concurrency int
	maxObjects  int
	c           *client
	log         zerolog.Logger
}

var (
	_ reconcile.Source     = (*Source)(nil)
	_ reconcile.UserSource = (*Source)(nil)
)

// New checks cfg and builds the source. cfg.APIKey must hold the resolved key (configs
// resolves api_key_file). cfg.MaxObjects bounds the totalCount of every listing
// (sources[].max_objects, which configs copies into the block; 0 takes DefaultMaxObjects).
func New(name string, cfg configs.MiniOrangeConfig, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("miniorange source: name is empty")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if err := httpx.CheckBaseURL("miniorange", name, cfg.BaseURL); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.CustomerKey) == "" {
		return nil, fmt.Errorf("miniorange source %q: customer_key is empty", name)
	}
	if cfg.APIKey.Value() == "" {
		return nil, fmt.Errorf("miniorange source %q: the API key is empty (set api_key or api_key_file)", name)
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.MaxObjects <= 0 {
		cfg.MaxObjects = DefaultMaxObjects
	}
	ep := cfg.Endpoints
	for _, f := range []struct {
		v   *string
		def string
		key string
	}{
		{&ep.UsersList, DefaultEndpoints.UsersList, "users_list"},
		{&ep.GroupsList, DefaultEndpoints.GroupsList, "groups_list"},
		{&ep.GroupMembers, DefaultEndpoints.GroupMembers, "group_members"},
		{&ep.UserGet, DefaultEndpoints.UserGet, "user_get"},
		{&ep.Timestamp, DefaultEndpoints.Timestamp, "timestamp"},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
		if !strings.HasPrefix(*f.v, "/") {
			return nil, fmt.Errorf("miniorange source %q: endpoints.%s %q must start with /", name, f.key, *f.v)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = cfg.RateLimit.Concurrency
	}
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	limiter := httpx.Limiter(cfg.RateLimit)
	hc := opts.HTTPClient
	if hc == nil {
		hc = cleanhttp.DefaultPooledClient()
		if tr, ok := hc.Transport.(*http.Transport); ok {
			tr.MaxIdleConnsPerHost = conc + 2
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	retry := httpx.Retry{Max: opts.RetryMax, WaitMin: opts.RetryWaitMin, WaitMax: opts.RetryWaitMax, MaxRetryAfter: opts.MaxRetryAfter}.WithDefaults()
	log := opts.Logger.With().Str(logging.FieldSource, name).Str(logging.FieldComponent, "miniorange").Logger()
	s := &Source{
		name:        name,
		cfg:         cfg,
		ep:          ep,
		pageSize:    cfg.PageSize,
		concurrency: conc,
		maxObjects:  cfg.MaxObjects,
		log:         log,
	}
	s.c = newClient(clientOptions{
		base:          cfg.BaseURL,
		timestampPath: ep.Timestamp,
		customerKey:   strings.TrimSpace(cfg.CustomerKey),
		apiKey:        cfg.APIKey.Value(),
		sendAPIKey:    cfg.SendAPIKeyHeader,
		now:           now,
		httpClient:    hc,
		timeout:       cfg.Timeout,
		limiter:       limiter,
		metrics:       opts.Metrics,
		log:           log,
		retryMax:      retry.Max,
		retryWaitMin:  retry.WaitMin,
		retryWaitMax:  retry.WaitMax,
		maxRetryAfter: retry.MaxRetryAfter,
		concurrency:   conc,
	})
	return s, nil
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// Close releases idle connections.
func (s *Source) Close() error {
	s.c.std.CloseIdleConnections()
	return nil
}

// ClockOffset is the server clock minus the local clock, as learned after an auth failure.
func (s *Source) ClockOffset() time.Duration {
	return time.Duration(s.c.signer.offsetMS.Load()) * time.Millisecond
}

// SetAPIKey replaces the API key requests are signed with from now on: a config reload after
// the key was regenerated, without rebuilding the source. A request signs with one key, its
// Authorization hash and Api-Key header alike; a retry is signed again with the key in force.
// The clock offset learned so far is kept. Errors and logs are scrubbed of the key in force
// and of the one it replaced.
//
// It returns an error, and changes nothing, when key is blank, or starts or ends with white
// space, or holds a control character (as config validation rejects). Setting the key in
// force changes nothing.
func (s *Source) SetAPIKey(key string) error {
	if p := configs.SecretProblem(key); p != "" {
		return fmt.Errorf("miniorange source %q: the API key %s", s.name, p)
	}
	s.c.signer.setAPIKey(key)
	return nil
}

// listBody is the request body of every listing.
type listBody struct {
	CustomerKey string `json:"customerKey"`
	GroupName   string `json:"groupName,omitempty"`
	StartIndex  int    `json:"startIndex"`
	BatchSize   int    `json:"batchSize"`
}

func (s *Source) fetchUsers(ctx context.Context, start, size int) (page[moUser], error) {
	var a usersAnswer
	err := s.c.call(ctx, s.ep.UsersList, listBody{CustomerKey: s.c.signer.customerKey, StartIndex: start, BatchSize: size}, &a)
	return page[moUser]{total: a.TotalCount, items: a.Users}, err
}

func (s *Source) fetchGroups(ctx context.Context, start, size int) (page[moGroup], error) {
	var a groupsAnswer
	err := s.c.call(ctx, s.ep.GroupsList, listBody{CustomerKey: s.c.signer.customerKey, StartIndex: start, BatchSize: size}, &a)
	return page[moGroup]{total: a.TotalCount, items: a.Groups}, err
}

func (s *Source) membersFetcher(group string) fetcher[string] {
	return func(ctx context.Context, start, size int) (page[string], error) {
		var a membersAnswer
		err := s.c.call(ctx, s.ep.GroupMembers, listBody{CustomerKey: s.c.signer.customerKey, GroupName: group, StartIndex: start, BatchSize: size}, &a)
		return page[string]{total: a.TotalCount, items: a.Members}, err
	}
}

// Snapshot reads every user, every group and every group's members, and converts them.
//
// Memberships are the union of each user's groups field and the group member listings
// (DEFAULT included): the two are read at different moments, so a disagreement is usually
// a change in between, and keeping both never removes access on a guess (the next pass
// settles it). A member listing that names a user the user listing did not return, however,
// means the user listing may have skipped someone: that read is incomplete.
func (s *Source) Snapshot(ctx context.Context) (reconcile.Directory, error) {
	start := time.Now()
	dir, pages, err := s.snapshot(ctx)
	if err != nil {
		if !errors.Is(err, ErrIncomplete) {
			err = fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
		s.log.Debug().Err(err).Int64("pages", pages).Dur("took_ms", time.Since(start)).Msg("miniOrange read failed")
		return reconcile.Directory{}, fmt.Errorf("miniorange source %q: %w", s.name, err)
	}
	s.log.Debug().Int("users", len(dir.Users)).Int("groups", len(dir.Groups)).Int64("pages", pages).
		Dur("took", time.Since(start)).Msg("miniOrange read complete")
	return dir, nil
}

func (s *Source) snapshot(ctx context.Context) (reconcile.Directory, int64, error) {
	p := newPager(ctx, s.concurrency, s.maxObjects)
	var (
		mu      sync.Mutex
		users   []moUser
		groups  []moGroup
		members = map[string][]string{}
	)
	p.g.Go(func() error {
		items, err := readListing(p, "users listing", s.pageSize, s.fetchUsers)
		if err != nil {
			return err
		}
		mu.Lock()
		users = items
		mu.Unlock()
		return nil
	})
	p.g.Go(func() error {
		items, err := readListing(p, "groups listing", s.pageSize, s.fetchGroups)
		if err != nil {
			return err
		}
		seen := make(map[string]bool, len(items))
		for i, g := range items {
			if g.Name == "" {
				return fmt.Errorf("%w: groups listing: group at position %d (id %q) has no name", ErrIncomplete, i, string(g.ID))
			}
			if seen[g.Name] {
				return fmt.Errorf("%w: groups listing: group %q listed twice (a page shifted during the read)", ErrIncomplete, g.Name)
			}
			seen[g.Name] = true
		}
		mu.Lock()
		groups = items
		mu.Unlock()
		return s.readMembers(p, items, &mu, members)
	})
	if err := p.g.Wait(); err != nil {
		return reconcile.Directory{}, p.pages.Load(), err
	}
	dir, err := s.assemble(users, groups, members)
	return dir, p.pages.Load(), err
}

// readMembers starts one member listing per group, at most 4 x Concurrency of them under way
// at a time.
func (s *Source) readMembers(p *pager, groups []moGroup, mu *sync.Mutex, members map[string][]string) error {
	for _, g := range groups {
		if err := acquire(p.ctx, p.starts); err != nil {
			return err
		}
		name := g.Name
		p.g.Go(func() error {
			defer func() { <-p.starts }()
			items, err := readListing(p, fmt.Sprintf("members of group %q", name), s.pageSize, s.membersFetcher(name))
			if err != nil {
				return err
			}
			mu.Lock()
			members[name] = items
			mu.Unlock()
			return nil
		})
	}
	return nil
}

// assemble checks the listings against each other and converts them to the model: users
// indexed by username, group member listings laid over each user's groups, groups, then
// users with their status.
func (s *Source) assemble(users []moUser, groups []moGroup, members map[string][]string) (reconcile.Directory, error) {
	byName, drop, err := s.indexUsers(users)
	if err != nil {
		return reconcile.Directory{}, err
	}
	// Counting disagreements costs a scan per membership: only when debug logs are on.
	debug := s.log.Debug().Enabled()
	extra, onlyListing, err := listedGroups(users, groups, members, byName, debug)
	if err != nil {
		return reconcile.Directory{}, err
	}
	dirGroups, listed := convertGroups(groups)
	dirUsers, onlyField, err := convertUsers(users, drop, extra, listed, debug)
	if err != nil {
		return reconcile.Directory{}, err
	}
	if onlyField > 0 || onlyListing > 0 {
		s.log.Debug().Int("only_in_user_groups", onlyField).Int("only_in_member_listings", onlyListing).
			Msg("users' groups and group member listings disagree; keeping the union")
	}
	shareGroupNames(dirUsers, dirGroups)
	return reconcile.Directory{Source: s.name, Users: dirUsers, Groups: dirGroups}, nil
}

// shareGroupNames makes every member of a group hold one copy of its name (the listing's):
// each user's groups field decodes its own copies, a million of them on a big site.
func shareGroupNames(users []reconcile.User, groups []reconcile.Group) {
	var names intern.Strings
	for _, g := range groups {
		names.Get(g.Name)
	}
	for i := range users {
		for j, g := range users[i].Groups {
			users[i].Groups[j] = names.Get(g)
		}
	}
}

// indexUsers indexes the users by lower-cased username and marks the records to drop. A
// user without a username is passed on when it has an id: the engine skips it with a warning
// and, knowing its key, never takes its linked account for a leaver. Without an id it cannot
// be linked to anything and is dropped here, with a warning. Either way one bad record does
// not stop everyone else's sync. A key or username listed twice fails the read.
func (s *Source) indexUsers(users []moUser) (byName map[string]int, drop []bool, err error) {
	byName = make(map[string]int, len(users))
	keys := make(map[string]struct{}, len(users))
	drop = make([]bool, len(users))
	for i, u := range users {
		blank := strings.TrimSpace(u.UserName) == ""
		if blank && string(u.ID) == "" {
			drop[i] = true
			s.log.Warn().Int("position", i).Str("email", u.Email).Msg("miniOrange user with neither id nor username skipped")
			continue
		}
		key := string(u.ID)
		if key == "" {
			key = u.UserName
		}
		if _, dup := keys[key]; dup {
			return nil, nil, fmt.Errorf("%w: users listing: user id %q listed twice (a page shifted during the read)", ErrIncomplete, key)
		}
		keys[key] = struct{}{}
		if blank {
			continue
		}
		lower := strings.ToLower(u.UserName)
		if _, dup := byName[lower]; dup {
			return nil, nil, fmt.Errorf("%w: users listing: username %q listed twice", ErrIncomplete, u.UserName)
		}
		byName[lower] = i
	}
	return byName, drop, nil
}

// listedGroups returns, per user, the groups whose member listings name them. A member the
// users listing did not return, or one listed twice in a group, fails the read: the directory
// changed during it. onlyListing counts (with debug) memberships the user's own groups field
// lacks.
func listedGroups(users []moUser, groups []moGroup, members map[string][]string, byName map[string]int, debug bool) (extra [][]string, onlyListing int, err error) {
	extra = make([][]string, len(users))
	lastGroup := make([]int, len(users)) // 1 + index of the last group that listed the user
	var unknown []string
	for gi, g := range groups {
		for _, m := range members[g.Name] {
			if strings.TrimSpace(m) == "" {
				continue // a user without a username: passed on without groups, skipped by the engine
			}
			i, ok := byName[strings.ToLower(m)]
			if !ok {
				if len(unknown) < 5 {
					unknown = append(unknown, fmt.Sprintf("%q in %q", m, g.Name))
				} else if len(unknown) == 5 {
					unknown = append(unknown, "...")
				}
				continue
			}
			if lastGroup[i] == gi+1 {
				return nil, 0, fmt.Errorf("%w: members of group %q: %q listed twice (a page shifted during the read)", ErrIncomplete, g.Name, m)
			}
			lastGroup[i] = gi + 1
			extra[i] = append(extra[i], g.Name)
			if debug && !hasName(users[i].Groups, g.Name) {
				onlyListing++
			}
		}
	}
	if len(unknown) > 0 {
		return nil, 0, fmt.Errorf("%w: group member listings name users the users listing did not return (%s): the directory changed during the read, or the users listing is short",
			ErrIncomplete, strings.Join(unknown, ", "))
	}
	return extra, onlyListing, nil
}

// convertGroups converts the groups (keyed by id, else name) and returns the set of names.
func convertGroups(groups []moGroup) ([]reconcile.Group, map[string]bool) {
	out := make([]reconcile.Group, 0, len(groups))
	listed := make(map[string]bool, len(groups))
	for _, g := range groups {
		key := string(g.ID)
		if key == "" {
			key = g.Name
		}
		out = append(out, reconcile.Group{Key: key, Name: g.Name, Description: g.Description})
		listed[g.Name] = true
	}
	return out, listed
}

// convertUsers converts the users not dropped, with the groups the member listings gave
// them. A record without a known status fails the read (unknown means no), naming the first
// few. onlyField counts (with debug) groups a user's field names that no listing confirmed.
func convertUsers(users []moUser, drop []bool, extra [][]string, listed map[string]bool, debug bool) (out []reconcile.User, onlyField int, err error) {
	out = make([]reconcile.User, 0, len(users))
	var badStatus []string // the first maxNamed records without a known status
	nBad := 0
	for i, u := range users {
		if drop[i] {
			continue
		}
		state, field := listState(u)
		active, err := parseStatus(state)
		if err != nil {
			if nBad < maxNamed {
				badStatus = append(badStatus, statusProblem(u, field, err))
			}
			nBad++
			continue
		}
		if nBad > 0 {
			continue // the read fails: converting the rest would be wasted
		}
		if debug && u.Groups != nil {
			for _, g := range *u.Groups {
				if !listed[g] || !contains(extra[i], g) {
					onlyField++
				}
			}
		}
		out = append(out, convertUser(u, active, extra[i]))
	}
	if nBad > 0 {
		more := ""
		if nBad > len(badStatus) {
			more = fmt.Sprintf(" and %d more", nBad-len(badStatus))
		}
		return nil, 0, fmt.Errorf("%w: users listing: %d of %d user records have no known status, and a user whose status is missing or unknown is never taken as active: %s%s",
			ErrIncomplete, nBad, len(users), strings.Join(badStatus, ", "), more)
	}
	return out, onlyField, nil
}

// maxNamed caps how many records one error message names.
const maxNamed = 5

// statusProblem words one record whose status field could not be used: who (username, else
// id) and what was wrong with the field.
func statusProblem(u moUser, field string, err error) string {
	who := fmt.Sprintf("%q", truncate(u.UserName, 80))
	if strings.TrimSpace(u.UserName) == "" {
		who = fmt.Sprintf("user id %q", truncate(string(u.ID), 80))
	}
	return who + " (" + fieldProblem(field, err) + ")"
}

func fieldProblem(field string, err error) string {
	if errors.Is(err, errNoStatus) {
		return "field " + field + " is missing"
	}
	return fmt.Sprintf("%v in field %s", err, field)
}

func hasName(l *nameList, name string) bool {
	return l != nil && contains(*l, name)
}

func contains(l []string, name string) bool {
	for _, x := range l {
		if x == name {
			return true
		}
	}
	return false
}

// listState is a listed user's state and the field it came from: status, or userStatus if a
// tenant answers like users/get.
func listState(u moUser) (string, string) {
	if u.Status == "" && u.UserStatus != "" {
		return u.UserStatus, userStatusField
	}
	return u.Status, statusField
}

// userGetBody is the users/get request.
type userGetBody struct {
	CustomerKey string `json:"customerKey"`
	UserName    string `json:"username"`
}

// User fetches one user and its groups (from the answer's groups field) for targeted and
// login-time runs. FAILED means no such user. An answer without a groups field is an error:
// a user with no groups would make a targeted pass remove their memberships. So is an answer
// whose userStatus is missing or unknown (it wraps ErrIncomplete): unknown means no, and a
// guess must neither grant nor remove access.
//
// Every miniOrange user is in DEFAULT, so it is added when the answer leaves it out, to
// match what Snapshot reports.
func (s *Source) User(ctx context.Context, userName string) (reconcile.User, error) {
	if strings.TrimSpace(userName) == "" {
		return reconcile.User{}, fmt.Errorf("miniorange source %q: empty userName", s.name)
	}
	var a userGetAnswer
	err := s.c.call(ctx, s.ep.UserGet, userGetBody{CustomerKey: s.c.signer.customerKey, UserName: userName}, &a)
	var apiErr *APIError
	if errors.As(err, &apiErr) && strings.EqualFold(apiErr.Status, "FAILED") && !errors.Is(err, ErrAuth) {
		return reconcile.User{}, fmt.Errorf("miniorange source %q: user %q: %w", s.name, userName, reconcile.ErrUserNotFound)
	}
	if err != nil {
		return reconcile.User{}, fmt.Errorf("miniorange source %q: fetching user %q: %w", s.name, userName, err)
	}
	if !strings.EqualFold(strings.TrimSpace(a.UserName), strings.TrimSpace(userName)) {
		return reconcile.User{}, fmt.Errorf("miniorange source %q: asked for user %q, the answer is for %q", s.name, userName, a.UserName)
	}
	if a.Groups == nil {
		return reconcile.User{}, fmt.Errorf("miniorange source %q: user %q: the %s answer has no groups field, so the user's memberships are unknown",
			s.name, userName, s.ep.UserGet)
	}
	active, err := parseStatus(a.UserStatus)
	if err != nil {
		return reconcile.User{}, fmt.Errorf("miniorange source %q: %w: user %q: the %s answer has no known status (%s), and a user whose status is missing or unknown is never taken as active",
			s.name, ErrIncomplete, userName, s.ep.UserGet, fieldProblem(userStatusField, err))
	}
	u := convertUser(a.moUser, active, []string{DefaultGroupName})
	sort.Strings(u.Groups)
	return u, nil
}
