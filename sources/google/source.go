// Package google reads users and groups from Google Workspace through the Admin SDK
// Directory API (pull mode), with the official client (google.golang.org/api/admin/directory/v1)
// authorised as a service account with domain-wide delegation: the account signs a JWT that
// impersonates sources[].google.admin_email and asks for the read-only directory scopes only
// (configs.GoogleScopes). The key file is read again at the start of every read and, when
// its content changed and it is a usable key, replaces the key in use (a rotated key needs no
// restart; an unusable file keeps the old key and is logged: credentials.go).
//
// Snapshot reads users.list (customer or domain, the user query, pageToken pages of up to 500),
// groups.list (pages of up to 200) and members.list of every group (pages of up to 200), and
// returns the whole directory or an error wrapping ErrIncomplete, never a partial directory.
// A user's key is Google's immutable user id; userName is the primary email; the email is the
// primary email (or, with email_domain, the address in that domain); orgUnitPath is the
// attribute "orgUnitPath". Members of nested groups belong to every group above them: Google
// expands them (nested_groups: true, includeDerivedMembership) or the source does, from the
// member listings it reads, reading groups outside the listing that sit inside listed ones,
// and stopping at cycles.
//
// Unknown means no: a user record without suspended and archived (see status.go for how
// absent fields are told from false ones) makes the read incomplete. The Directory API
// reports no totals; max_objects bounds what a listing may grow to instead.
//
// Transient failures (connection resets, 5xx, bodies cut mid-way) and throttling (429, and
// 403 rateLimitExceeded / userRateLimitExceeded) are retried with httpx's backoff, paced by
// the source's token bucket and counted in the same metrics as the other sources.
package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
)

// Documented page caps (maxResults) of the listings.
const (
	UsersPageCap   = 500
	GroupsPageCap  = 200
	MembersPageCap = 200
)

// Defaults for unset config values.
const (
	DefaultBaseURL     = configs.DefaultGoogleBaseURL
	DefaultCustomer    = configs.DefaultGoogleCustomer
	DefaultPageSize    = UsersPageCap
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 4
	DefaultMaxObjects  = configs.DefaultMaxObjects
)

// ErrIncomplete marks a Snapshot that could not read the whole directory: a failed page, a
// page that repeats items or a page token, a listing beyond max_objects, a user whose state
// is missing or unknown, two groups with one name. Such a pass may create and update but
// must not deactivate or remove anything.
var ErrIncomplete = errors.New("incomplete read")

// maxEmptyPages bounds how many pages in a row may come back empty with a next page token.
const maxEmptyPages = 20

// maxNamed caps how many records one error message names.
const maxNamed = 5

// Options are the runtime dependencies of a Source. Zero values take defaults.
type Options struct {
	Metrics *metrics.Metrics
	Logger  zerolog.Logger
	// HTTPClient's Transport carries every request (the token exchange included), wrapped
	// for pacing, retries and metrics. Nil builds a pooled one.
	HTTPClient *http.Client
	// Concurrency bounds the requests in flight (member listings run in parallel up to it).
	// Zero takes cfg.RateLimit.Concurrency, then DefaultConcurrency.
	Concurrency int
	// RetryMax is how many times a transient failure is retried (default 4).
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff (default 500ms and 30s).
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxRetryAfter caps the wait a 429/503 Retry-After asks for (default 2m).
	MaxRetryAfter time.Duration
}

// Source is one Google Workspace account.
type Source struct {
	name        string
	cfg         configs.GoogleConfig
	creds       *credentials
	pageSize    int
	concurrency int
	maxObjects  int
	svc         *admin.Service
	tr          *transport
	base        http.RoundTripper
	log         zerolog.Logger
}

var (
	_ reconcile.Source     = (*Source)(nil)
	_ reconcile.UserSource = (*Source)(nil)
)

// New checks cfg, reads the service account key from cfg.CredentialsFile (again at each read
// when it changes) and builds the source. cfg.MaxObjects bounds every listing (sources[].max_objects; 0 takes
// DefaultMaxObjects). Nothing is sent until the first read.
func New(name string, cfg configs.GoogleConfig, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("google source: name is empty")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if err := httpx.CheckBaseURL("google", name, cfg.BaseURL); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.AdminEmail) == "" {
		return nil, fmt.Errorf("google source %q: admin_email is empty", name)
	}
	if cfg.Customer == "" && cfg.Domain == "" {
		cfg.Customer = DefaultCustomer
	}
	if cfg.CredentialsFile == "" {
		return nil, fmt.Errorf("google source %q: credentials_file is empty", name)
	}
	if cfg.PageSize <= 0 || cfg.PageSize > UsersPageCap {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxObjects <= 0 {
		cfg.MaxObjects = DefaultMaxObjects
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = cfg.RateLimit.Concurrency
	}
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = cleanhttp.DefaultPooledClient()
		if tr, ok := hc.Transport.(*http.Transport); ok {
			tr.MaxIdleConnsPerHost = conc + 2
		}
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	retry := httpx.Retry{Max: opts.RetryMax, WaitMin: opts.RetryWaitMin, WaitMax: opts.RetryWaitMax, MaxRetryAfter: opts.MaxRetryAfter}.WithDefaults()
	log := opts.Logger.With().Str(logging.FieldSource, name).Str(logging.FieldComponent, "google").Logger()
	tr := newTransport(transportOptions{
		next: base, limiter: httpx.Limiter(cfg.RateLimit), metrics: opts.Metrics, log: log,
		timeout: cfg.Timeout, concurrency: conc, retryMax: retry.Max, retryWaitMin: retry.WaitMin,
		retryWaitMax: retry.WaitMax, maxRetryAfter: retry.MaxRetryAfter,
	})
	// The token exchange goes through the same transport: paced, retried, counted as
	// endpoint "token". Its context lives as long as the source (tokens are refreshed).
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tr})
	creds, _, err := newCredentials(cfg.CredentialsFile, cfg.AdminEmail, tokenCtx, log)
	if err != nil {
		return nil, fmt.Errorf("google source %q: %w", name, err)
	}
	api := &http.Client{Transport: &oauth2.Transport{Source: creds, Base: tr}}
	svc, err := admin.NewService(context.Background(), option.WithHTTPClient(api), option.WithEndpoint(strings.TrimRight(cfg.BaseURL, "/")+"/"))
	if err != nil {
		return nil, fmt.Errorf("google source %q: building the Directory API client: %w", name, err)
	}
	return &Source{
		name: name, cfg: cfg, creds: creds,
		pageSize: cfg.PageSize, concurrency: conc, maxObjects: cfg.MaxObjects,
		svc: svc, tr: tr, base: base, log: log,
	}, nil
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// Close releases idle connections.
func (s *Source) Close() error {
	if c, ok := s.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}

// smallPage is maxResults of the group and member listings.
func (s *Source) smallPage() int64 { return int64(min(s.pageSize, GroupsPageCap)) }

// Snapshot reads every user, every group and every group's members, and converts them.
func (s *Source) Snapshot(ctx context.Context) (reconcile.Directory, error) {
	start := time.Now()
	s.creds.reload()
	r := &reader{s: s}
	dir, err := r.snapshot(ctx)
	if err != nil {
		if !errors.Is(err, ErrIncomplete) {
			err = fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
		s.log.Debug().Err(err).Int64("pages", r.pages.Load()).Dur("took_ms", time.Since(start)).Msg("Google read failed")
		return reconcile.Directory{}, fmt.Errorf("google source %q: %w", s.name, err)
	}
	s.log.Debug().Int("users", len(dir.Users)).Int("groups", len(dir.Groups)).Int64("pages", r.pages.Load()).
		Dur("took", time.Since(start)).Msg("Google read complete")
	return dir, nil
}

// User fetches one user by primary email (users.get) and its groups for targeted and
// login-time runs: the groups listing of the source's scope (customer or domain, and
// group_query), the user's direct groups (groups.list userKey=id), and the groups above
// them (groups.list userKey=group, up the nesting, stopping at cycles), kept where they are
// in scope. A record without a known state is an error wrapping ErrIncomplete: a guess must
// neither grant nor remove access.
func (s *Source) User(ctx context.Context, userName string) (reconcile.User, error) {
	userName = strings.TrimSpace(userName)
	if userName == "" {
		return reconcile.User{}, fmt.Errorf("google source %q: empty userName", s.name)
	}
	s.creds.reload()
	c := &capture{}
	u, err := s.svc.Users.Get(userName).Context(withCapture(ctx, c)).Do()
	if isNotFound(err) {
		return reconcile.User{}, fmt.Errorf("google source %q: user %q: %w", s.name, userName, reconcile.ErrUserNotFound)
	}
	if err != nil {
		return reconcile.User{}, fmt.Errorf("google source %q: fetching user %q: %w", s.name, userName, s.explain(err))
	}
	if !strings.EqualFold(u.PrimaryEmail, userName) {
		return reconcile.User{}, fmt.Errorf("google source %q: asked for user %q, the answer is for %q (an alias? idsync's userName is the primary email)",
			s.name, userName, u.PrimaryEmail)
	}
	if u.Id == "" {
		return reconcile.User{}, fmt.Errorf("google source %q: user %q: the answer has no id", s.name, userName)
	}
	rec, err := userStatus(c.body)
	if err != nil {
		return reconcile.User{}, fmt.Errorf("google source %q: user %q: %w", s.name, userName, err)
	}
	if rec.ID != u.Id {
		return reconcile.User{}, fmt.Errorf("google source %q: user %q: %w", s.name, userName, errStatusMismatch)
	}
	st, why := rec.state()
	if st == stateUnknown {
		return reconcile.User{}, fmt.Errorf("google source %q: %w: user %q has no known state (%s), and a user whose status is missing or unknown is never taken as active",
			s.name, ErrIncomplete, userName, why)
	}
	r := &reader{s: s}
	groups, err := r.userGroups(ctx, u.Id)
	if err != nil {
		return reconcile.User{}, fmt.Errorf("google source %q: groups of user %q: %w", s.name, userName, err)
	}
	out := s.convertUser(slimUser(u), st == stateActive)
	out.Groups = groups
	return out, nil
}

// explain turns the client's errors into what an operator can act on. Throttling that
// outlasted the retries and transient failures keep their text.
func (s *Source) explain(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			// The JWT flow leaves the body unparsed.
			var body struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				code = body.Error
			}
		}
		switch code {
		case "unauthorized_client", "access_denied":
			return fmt.Errorf("the service account's token was refused (%s): in Google's Admin console (Security > API controls > Domain-wide delegation) client id %s must be allowed exactly the scopes %s: %w",
				code, s.creds.ClientID(), strings.Join(configs.GoogleScopes, ","), err)
		case "invalid_grant":
			return fmt.Errorf("the service account's token was refused (invalid_grant): admin_email %q must be an existing, active user of the account; the key must not be deleted; the host clock must be right: %w",
				s.cfg.AdminEmail, err)
		}
		return fmt.Errorf("the service account's token request was refused: %w", err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case http.StatusUnauthorized:
			return fmt.Errorf("the Directory API refused the access token: %w", err)
		case http.StatusForbidden:
			if !RateLimited(ge.Code, []byte(ge.Body)) {
				return fmt.Errorf("the Directory API refused the request: %s may lack the admin privileges to read users and groups (or the scopes are not delegated): %w", s.cfg.AdminEmail, err)
			}
		}
	}
	return err
}

func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

// user is what the source keeps of a Google user record.
type user struct {
	id, primaryEmail             string
	given, family, full, display string
	orgUnitPath                  string
	aliases                      []string
}

func slimUser(u *admin.User) user {
	out := user{id: u.Id, primaryEmail: strings.TrimSpace(u.PrimaryEmail), orgUnitPath: u.OrgUnitPath}
	if u.Name != nil {
		out.given, out.family = u.Name.GivenName, u.Name.FamilyName
		out.full, out.display = u.Name.FullName, u.Name.DisplayName
	}
	if len(u.Aliases)+len(u.NonEditableAliases) > 0 {
		out.aliases = append(append(make([]string, 0, len(u.Aliases)+len(u.NonEditableAliases)), u.Aliases...), u.NonEditableAliases...)
	}
	return out
}

// convertUser builds the model's user.
func (s *Source) convertUser(u user, active bool) reconcile.User {
	display := strings.TrimSpace(u.full)
	if display == "" {
		display = strings.TrimSpace(u.display)
	}
	if display == "" {
		display = strings.TrimSpace(strings.TrimSpace(u.given) + " " + strings.TrimSpace(u.family))
	}
	if display == "" {
		display = u.primaryEmail
	}
	out := reconcile.User{
		Key:         u.id,
		UserName:    u.primaryEmail,
		Email:       s.pickEmail(u),
		DisplayName: display,
		GivenName:   u.given,
		FamilyName:  u.family,
		Active:      active,
	}
	if u.orgUnitPath != "" {
		out.Attributes = map[string]string{"orgUnitPath": u.orgUnitPath}
	}
	return out
}

// pickEmail is the primary email, or with email_domain the user's address in that domain.
func (s *Source) pickEmail(u user) string {
	d := strings.ToLower(strings.TrimSpace(s.cfg.EmailDomain))
	if d == "" || inDomain(u.primaryEmail, d) {
		return u.primaryEmail
	}
	for _, a := range u.aliases {
		if inDomain(a, d) {
			return strings.TrimSpace(a)
		}
	}
	return u.primaryEmail
}

func inDomain(addr, domain string) bool {
	at := strings.LastIndexByte(addr, '@')
	return at >= 0 && strings.EqualFold(strings.TrimSpace(addr[at+1:]), domain)
}

// groupName is the name mapping sees: the group's name (its email when it has none), or its
// email with group_name: email.
func (s *Source) groupName(name, email string) string {
	if s.cfg.GroupName == configs.GoogleGroupNameEmail || strings.TrimSpace(name) == "" {
		return email
	}
	return name
}

func sortedUnique(in []string) []string {
	sort.Strings(in)
	out := in[:0]
	for i, v := range in {
		if i == 0 || v != in[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// lockedSet is a mutex-guarded map, for results that parallel listings fill.
type lockedSet[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (l *lockedSet[K, V]) put(k K, v V) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[K]V{}
	}
	l.m[k] = v
	l.mu.Unlock()
}
