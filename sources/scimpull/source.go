// Package scimpull reads users and groups from any SCIM 2.0 server (RFC 7643/7644) with a
// bearer token: the standard alternative to vendor list APIs for pull mode.
//
// Snapshot reads GET /Users and GET /Groups (members inline), each paged by 1-based
// startIndex and count, and returns the whole directory or an error wrapping ErrIncomplete.
// The two listings run at the same time; each is read page after page, because many SCIM
// servers rate-limit hard and some page by a cursor hidden behind startIndex.
//
// Between full reads (reconcile.IsFullRead), a source that holds a complete read from
// earlier in this process reads only what changed since (incremental.go): the resources
// whose meta.lastModified is later than that read, merged into what it holds, and an id-only
// listing that finds the deleted ones.
//
// Unknown means no: a user without an active attribute (RFC 7643 makes it optional) is never
// taken as active, and makes the read incomplete. A totalResults beyond max_objects fails the
// read before anything is sized by it.
package scimpull

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
)

// ErrIncomplete marks a Snapshot that could not read the whole directory: a failed page, a
// listing shorter than its totalResults, a total that changed mid-read or is beyond
// max_objects, repeated resources, a user without an active attribute, or listings that
// contradict each other. Such a pass may create and update but must not
// deactivate or remove anything.
var ErrIncomplete = errors.New("incomplete read")

// Defaults for unset config values.
const (
	DefaultPageSize      = 100
	DefaultTimeout       = 30 * time.Second
	DefaultMaxRetryAfter = httpx.DefaultMaxRetryAfter
	// DefaultMaxObjects bounds a listing's totalResults when cfg.MaxObjects is unset.
	DefaultMaxObjects = configs.DefaultMaxObjects
)

// maxPrealloc caps the room a listing reserves up front: a listing grows with the resources
// it receives, never with the totalResults it claims.
const maxPrealloc = 4096

// Options are the runtime dependencies of a Source. Zero values take defaults.
type Options struct {
	Metrics *metrics.Metrics
	Logger  zerolog.Logger
	// HTTPClient is copied; its Transport is wrapped for metrics and rate limiting.
	HTTPClient *http.Client
	// RetryMax is how many times a transient failure is retried (default 4).
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff (default 500ms and 30s).
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxRetryAfter caps the wait a 429/503 Retry-After asks for (default 2m).
	MaxRetryAfter time.Duration
	// Now is the clock that dates reads for the next incremental one (default time.Now).
	Now func() time.Time
}

// Source is one SCIM 2.0 server read as an identity source.
type Source struct {
	name       string
	pageSize   int
	maxObjects int
	c          *client
	log        zerolog.Logger
	now        func() time.Time

	// readMu makes Snapshots one at a time: each builds on what the last one left in inc.
	readMu sync.Mutex
	inc    incremental
}

var (
	_ reconcile.Source     = (*Source)(nil)
	_ reconcile.UserSource = (*Source)(nil)
)

// New checks cfg and builds the source. cfg.Token must hold the resolved token (configs
// resolves token_file). BaseURL is the SCIM root, e.g. https://idp.example.com/scim/v2.
// rate_limit.requests_per_second and burst shape every request; rate_limit.concurrency is
// not used, since each listing is read one page at a time (at most two requests in flight).
// cfg.MaxObjects bounds the totalResults of every listing (sources[].max_objects, which
// configs copies into the block; 0 takes DefaultMaxObjects).
func New(name string, cfg configs.SCIMPullConfig, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("scimpull source: name is empty")
	}
	if err := httpx.CheckBaseURL("scimpull", name, cfg.BaseURL); err != nil {
		return nil, err
	}
	if cfg.Token.Value() == "" {
		return nil, fmt.Errorf("scimpull source %q: the bearer token is empty (set token or token_file)", name)
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxObjects <= 0 {
		cfg.MaxObjects = DefaultMaxObjects
	}
	limiter := httpx.Limiter(cfg.RateLimit)
	hc := opts.HTTPClient
	if hc == nil {
		hc = cleanhttp.DefaultPooledClient()
	}
	retry := httpx.Retry{Max: opts.RetryMax, WaitMin: opts.RetryWaitMin, WaitMax: opts.RetryWaitMax, MaxRetryAfter: opts.MaxRetryAfter}.WithDefaults()
	log := opts.Logger.With().Str(logging.FieldSource, name).Str(logging.FieldComponent, "scimpull").Logger()
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Source{
		name:       name,
		pageSize:   cfg.PageSize,
		maxObjects: cfg.MaxObjects,
		log:        log,
		now:        now,
		c: newClient(clientOptions{
			base: cfg.BaseURL, token: cfg.Token.Value(), httpClient: hc, timeout: cfg.Timeout,
			limiter: limiter, metrics: opts.Metrics, log: log, retryMax: retry.Max,
			retryWaitMin: retry.WaitMin, retryWaitMax: retry.WaitMax, maxRetryAfter: retry.MaxRetryAfter,
		}),
	}, nil
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// SetToken replaces the bearer token requests carry from now on: a config reload after a
// token rotation, without rebuilding the source. A request already sent keeps the token it
// started with, retries included. Errors are scrubbed of the token in force and of the one it
// replaced.
//
// It returns an error, and changes nothing, when token is blank, or starts or ends with white
// space, or holds a control character (as config validation rejects). Setting the token in
// force changes nothing.
func (s *Source) SetToken(token string) error {
	if p := configs.SecretProblem(token); p != "" {
		return fmt.Errorf("scimpull source %q: the bearer token %s", s.name, p)
	}
	s.c.setToken(token)
	return nil
}

// Close releases idle connections.
func (s *Source) Close() error {
	s.c.std.CloseIdleConnections()
	return nil
}

// readAll reads a whole listing page after page. A totalResults beyond maxObjects fails the
// read before anything is sized by it, and what is kept grows with the resources received.
// Every page must report the same totalResults; a page shorter than count is legal; an empty
// page before the total, more resources than the total, or an id seen twice (a server that
// ignores startIndex) fails the read. The answer's own startIndex is not checked: servers
// echo it inconsistently.
func readAll[T any](ctx context.Context, c *client, what, path, extraQuery string, pageSize, maxObjects int, id func(T) string) ([]T, error) {
	var (
		out   []T
		total = -1
		seen  = map[string]bool{}
	)
	for start := 1; ; {
		q := url.Values{}
		q.Set("startIndex", strconv.Itoa(start))
		q.Set("count", strconv.Itoa(pageSize))
		query := q.Encode()
		if extraQuery != "" {
			query = extraQuery + "&" + query
		}
		var page listResponse[T]
		if err := c.get(ctx, path, query, &page); err != nil {
			return nil, fmt.Errorf("%s: page at startIndex %d: %w", what, start, err)
		}
		if page.TotalResults == nil {
			return nil, fmt.Errorf("%w: %s: page at startIndex %d has no totalResults", ErrIncomplete, what, start)
		}
		t, n := *page.TotalResults, len(page.Resources)
		switch {
		case t < 0:
			return nil, fmt.Errorf("%w: %s: negative totalResults %d", ErrIncomplete, what, t)
		case t > maxObjects:
			return nil, fmt.Errorf("%w: %s: totalResults %d is more than max_objects (%d): a corrupt count, or a directory larger than this source is configured for (raise sources[].max_objects if it is real)",
				ErrIncomplete, what, t, maxObjects)
		case total >= 0 && t != total:
			return nil, fmt.Errorf("%w: %s: totalResults changed from %d to %d during the read (at startIndex %d)", ErrIncomplete, what, total, t, start)
		case n == 0 && len(out) < t:
			return nil, fmt.Errorf("%w: %s: listing ended at %d of totalResults %d", ErrIncomplete, what, len(out), t)
		case len(out)+n > t:
			return nil, fmt.Errorf("%w: %s: %d resources listed, more than totalResults %d", ErrIncomplete, what, len(out)+n, t)
		}
		total = t
		if out == nil {
			out = make([]T, 0, min(t, max(maxPrealloc, n)))
		}
		for _, r := range page.Resources {
			k := id(r)
			if k == "" {
				return nil, fmt.Errorf("%w: %s: a resource at startIndex %d has no id", ErrIncomplete, what, start)
			}
			if seen[k] {
				return nil, fmt.Errorf("%w: %s: id %q listed twice (the server ignored startIndex, or a page shifted during the read)", ErrIncomplete, what, k)
			}
			seen[k] = true
		}
		out = append(out, page.Resources...)
		reconcile.ReportReadProgress(ctx, 1, n)
		if len(out) >= total {
			return out, nil
		}
		start += n
	}
}

// Snapshot reads every user and every group with its members, and converts them; or, when
// ctx asks for an incremental read and the source can make one, reads what changed since its
// last complete read and merges it into what it holds (incremental.go). Either way the
// answer is the whole directory or an error: a failed read changes nothing the source holds.
//
// Memberships are the union of the groups' member lists and the users' groups attribute
// (where the server sends it): both describe the same fact at slightly different moments,
// and keeping both never removes access on a guess. Members that are groups (nested) are not
// expanded. A member that names a user the Users listing did not return means the listing
// may have skipped someone: that read is incomplete.
func (s *Source) Snapshot(ctx context.Context) (reconcile.Directory, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	start := s.now()
	kind := "incremental"
	dir, err := s.readIncremental(ctx, start)
	if errors.Is(err, errReadInFull) {
		kind = "full"
		dir, err = s.snapshot(ctx, start)
	}
	if err != nil {
		if !errors.Is(err, ErrIncomplete) {
			err = fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
		s.log.Debug().Err(err).Str("read", kind).Dur("took_ms", s.now().Sub(start)).Msg("SCIM read failed")
		return reconcile.Directory{}, fmt.Errorf("scimpull source %q: %w", s.name, err)
	}
	s.log.Debug().Str("read", kind).Int("users", len(dir.Users)).Int("groups", len(dir.Groups)).Dur("took_ms", s.now().Sub(start)).Msg("SCIM read complete")
	return dir, nil
}

// snapshot is a full read, started at start.
func (s *Source) snapshot(ctx context.Context, start time.Time) (reconcile.Directory, error) {
	var users []scimUser
	var groups []scimGroup
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		users, err = readAll(gctx, s.c, "users listing", "/Users", "", s.pageSize, s.maxObjects, func(u scimUser) string { return string(u.ID) })
		return err
	})
	g.Go(func() (err error) {
		groups, err = readAll(gctx, s.c, "groups listing", "/Groups", "", s.pageSize, s.maxObjects, func(g scimGroup) string { return string(g.ID) })
		return err
	})
	if err := g.Wait(); err != nil {
		s.inc.failed()
		return reconcile.Directory{}, err
	}
	dir, err := s.assemble(users, groups, nil)
	if err != nil {
		s.inc.failed()
		return reconcile.Directory{}, err
	}
	s.inc.heldFull(users, groups, start)
	return dir, nil
}

// assemble converts a read into the model. gens, set for a merged read, says which read
// each user and group comes from: a group read later than a user decides that user's
// membership in it, whatever the user's older groups attribute says (incremental.go). A full
// read (gens nil) keeps the union.
func (s *Source) assemble(users []scimUser, groups []scimGroup, gens *generations) (reconcile.Directory, error) {
	groupName := make(map[string]string, len(groups))
	groupIdx := make(map[string]int, len(groups))
	names := make(map[string]bool, len(groups))
	dir := reconcile.Directory{Source: s.name, Users: make([]reconcile.User, 0, len(users)), Groups: make([]reconcile.Group, 0, len(groups))}
	for _, g := range groups {
		if strings.TrimSpace(g.DisplayName) == "" {
			return reconcile.Directory{}, fmt.Errorf("%w: groups listing: group %q has no displayName", ErrIncomplete, string(g.ID))
		}
		if names[g.DisplayName] {
			return reconcile.Directory{}, fmt.Errorf("%w: groups listing: two groups are named %q; group mappings would be ambiguous", ErrIncomplete, g.DisplayName)
		}
		names[g.DisplayName] = true
		groupName[string(g.ID)] = g.DisplayName
		groupIdx[string(g.ID)] = len(dir.Groups)
		dir.Groups = append(dir.Groups, reconcile.Group{Key: string(g.ID), Name: g.DisplayName})
	}
	byID := make(map[string]int, len(users))
	userNames := make(map[string]bool, len(users))
	for i, u := range users {
		byID[string(u.ID)] = i
		ln := strings.ToLower(u.UserName)
		if ln != "" && userNames[ln] {
			return reconcile.Directory{}, fmt.Errorf("%w: users listing: userName %q listed twice", ErrIncomplete, u.UserName)
		}
		userNames[ln] = true
	}
	memberOf := make([][]string, len(users))
	var unknown []string
	nested := 0
	for _, g := range groups {
		for _, m := range g.members() {
			v := string(m.Value)
			if strings.EqualFold(m.Type, "Group") || (m.Type == "" && groupName[v] != "" && !hasKey(byID, v)) {
				nested++
				continue
			}
			i, ok := byID[v]
			if !ok {
				if len(unknown) < 5 {
					unknown = append(unknown, fmt.Sprintf("%q in %q", v, g.DisplayName))
				} else if len(unknown) == 5 {
					unknown = append(unknown, "...")
				}
				continue
			}
			memberOf[i] = append(memberOf[i], g.DisplayName)
		}
	}
	if len(unknown) > 0 {
		return reconcile.Directory{}, fmt.Errorf("%w: group members name users the Users listing did not return (%s): the directory changed during the read, or the Users listing is short",
			ErrIncomplete, strings.Join(unknown, ", "))
	}
	if nested > 0 {
		s.log.Debug().Int("members", nested).Msg("nested group members are not expanded")
	}
	var noActive []string // the first maxNamed users without an active attribute
	nNoActive := 0
	for i, u := range users {
		gs := memberOf[i]
		if u.Groups != nil {
			for _, r := range *u.Groups {
				if gi, ok := groupIdx[string(r.Value)]; ok && gens.groupDecides(i, gi, groups[gi].Members != nil) {
					continue // the group was read later, and its member list says
				}
				if n := groupName[string(r.Value)]; n != "" {
					gs = append(gs, n)
				} else if r.Display != "" {
					gs = append(gs, r.Display)
				}
			}
		}
		ru, err := convertUser(u, gs)
		switch {
		case errors.Is(err, errNoActive):
			if len(noActive) < maxNamed {
				noActive = append(noActive, fmt.Sprintf("%q (%v)", truncate(u.UserName, 80), err))
			}
			nNoActive++
			continue
		case err != nil:
			return reconcile.Directory{}, fmt.Errorf("%w: users listing: %w", ErrIncomplete, err)
		}
		dir.Users = append(dir.Users, ru)
	}
	if nNoActive > 0 {
		more := ""
		if nNoActive > len(noActive) {
			more = fmt.Sprintf(" and %d more", nNoActive-len(noActive))
		}
		return reconcile.Directory{}, fmt.Errorf("%w: users listing: %d of %d users have no active attribute, and a user whose status is missing or unknown is never taken as active: %s%s",
			ErrIncomplete, nNoActive, len(users), strings.Join(noActive, ", "), more)
	}
	return dir, nil
}

// maxNamed caps how many records one error message names.
const maxNamed = 5

func hasKey(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

// filterValue quotes s as a SCIM filter string literal (JSON string rules, no HTML escapes).
func filterValue(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// User fetches one user by `filter=userName eq "..."` for targeted and login-time runs. Its
// groups come from the user's groups attribute when the server sends it, else from
// `GET /Groups?filter=members.value eq "<id>"`. When neither works the answer is an error:
// a user with no groups would make a targeted pass remove their memberships.
// A user without an active attribute is an error too (it wraps ErrIncomplete): unknown means
// no, and a guess must neither grant nor remove access.
func (s *Source) User(ctx context.Context, userName string) (reconcile.User, error) {
	if strings.TrimSpace(userName) == "" {
		return reconcile.User{}, fmt.Errorf("scimpull source %q: empty userName", s.name)
	}
	q := url.Values{}
	q.Set("filter", "userName eq "+filterValue(userName))
	q.Set("startIndex", "1")
	q.Set("count", "10")
	var page listResponse[scimUser]
	if err := s.c.get(ctx, "/Users", q.Encode(), &page); err != nil {
		return reconcile.User{}, fmt.Errorf("scimpull source %q: fetching user %q: %w", s.name, userName, err)
	}
	var found []scimUser
	others := 0
	for _, u := range page.Resources {
		if strings.EqualFold(strings.TrimSpace(u.UserName), strings.TrimSpace(userName)) {
			found = append(found, u)
		} else {
			others++
		}
	}
	switch {
	case len(found) == 0 && (others > 0 || (page.TotalResults != nil && *page.TotalResults > 0)):
		// A server that ignores the filter must not make a present user look deleted.
		return reconcile.User{}, fmt.Errorf("scimpull source %q: user %q: the server answered the userName filter with other users; it may not support filtering",
			s.name, userName)
	case len(found) == 0:
		return reconcile.User{}, fmt.Errorf("scimpull source %q: user %q: %w", s.name, userName, reconcile.ErrUserNotFound)
	case len(found) > 1:
		return reconcile.User{}, fmt.Errorf("scimpull source %q: %d users match userName %q", s.name, len(found), userName)
	}
	u := found[0]
	groups, err := s.userGroups(ctx, u)
	if err != nil {
		return reconcile.User{}, fmt.Errorf("scimpull source %q: groups of user %q: %w", s.name, userName, err)
	}
	out, err := convertUser(u, groups)
	if errors.Is(err, errNoActive) {
		return reconcile.User{}, fmt.Errorf("scimpull source %q: %w: user %q: %v, and a user whose status is missing or unknown is never taken as active",
			s.name, ErrIncomplete, userName, err)
	}
	if err != nil {
		return reconcile.User{}, fmt.Errorf("scimpull source %q: %w", s.name, err)
	}
	return out, nil
}

func (s *Source) userGroups(ctx context.Context, u scimUser) ([]string, error) {
	if u.Groups != nil {
		var out []string
		for _, r := range *u.Groups {
			if r.Display != "" {
				out = append(out, r.Display)
				continue
			}
			if string(r.Value) == "" {
				continue
			}
			var g scimGroup
			q := url.Values{}
			q.Set("attributes", "displayName")
			if err := s.c.get(ctx, "/Groups/"+url.PathEscape(string(r.Value)), q.Encode(), &g); err != nil {
				return nil, fmt.Errorf("resolving group %q: %w", string(r.Value), err)
			}
			if g.DisplayName == "" {
				return nil, fmt.Errorf("group %q has no displayName", string(r.Value))
			}
			out = append(out, g.DisplayName)
		}
		return out, nil
	}
	if string(u.ID) == "" {
		return nil, errors.New("the user has no id to look its groups up by")
	}
	q := url.Values{}
	q.Set("filter", "members.value eq "+filterValue(string(u.ID)))
	q.Set("excludedAttributes", "members")
	groups, err := readAll(ctx, s.c, "groups of the user", "/Groups", q.Encode(), s.pageSize, s.maxObjects, func(g scimGroup) string { return string(g.ID) })
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		out = append(out, g.DisplayName)
	}
	return out, nil
}
