// Package jira is idsync's Jira Cloud sink: it reads users, groups, memberships, JSM service
// desk customers and organizations through the Jira platform REST API v3 and the JSM
// servicedeskapi with an API token, and applies one change at a time, as reconcile.Sink asks.
//
// Decisions an operator should know:
//   - Groups are addressed by groupId everywhere; names only create groups and look them up.
//     Group names match case-insensitively, as Jira treats them.
//   - Reads are paced and bounded: one token bucket per endpoint class (reads, writes, the
//     tenant-wide user-search limit, the admin API), each at sink.jira.rate_limit, plus one
//     concurrency bound for the whole sink. A 429 (or a 503 naming a wait) opens a window
//     in which no request of that class is sent (all classes for a tenant quota), halves the
//     class's rate, which then recovers by a tenth of the configured rate per second.
//   - A create whose outcome is unknown (5xx, reset) is not re-sent blindly: the sink first
//     looks the object up (group by name, customer by email) and adopts it if it is there.
//     POST /rest/api/3/user is idempotent by its own contract (201 for an existing user).
//   - Membership changes already in the wanted state (already a member, not a member) count
//     as done. Nothing is removed or deactivated because a read failed: Live returns an error
//     instead of partial data.
//   - Whether an account is still in a group is decided from data, never from the wording of
//     an error: DELETE group/user answering 404 means no such membership; any other failure
//     that is not transient is settled by reading the account's groups (user/groups).
//   - A remove-access deactivation is exhaustive: the account leaves every group the change
//     lists and every product-access group it is in (any group of any application role, not
//     only the default groups), product-access groups first; a failed group does not stop
//     the others, and the error (a *DeactivationError) says which groups failed and why.
//   - Service desks named in the scope that do not exist are left out of Live with a warning;
//     changes on them fail with ErrNotFound.
//   - deactivate: suspend suspends the account in the organization's directory (v2
//     organization API, suspend.go) and reactivation restores it; both are idempotent, a
//     refused repeat being settled by reading the account's membershipStatus. The directory
//     is admin_api.directory_id or, when unset, the organization's only one, found by the
//     first read (Live fails, saying to set directory_id, when there are several or none).
package jira

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
	"github.com/rs/zerolog"
)

// Options are the sink's collaborators.
type Options struct {
	Metrics *metrics.Metrics
	Logger  zerolog.Logger
	// HTTPClient supplies the transport (proxies, TLS); its Timeout is applied per attempt
	// through sink.jira.timeout instead. Nil uses a clone of http.DefaultTransport.
	HTTPClient *http.Client
	// Version goes into the User-Agent (idsync/<version>).
	Version string
	// Clock paces requests and waits out Retry-After; nil is real time.
	Clock Clock
}

// Sink is the Jira Cloud sink.
type Sink struct {
	cfg     configs.JiraConfig
	c       *client
	log     zerolog.Logger
	method  string
	conc    int
	metrics *metrics.Metrics

	mu       sync.Mutex
	desks    map[string]apiDesk // lower-case key and id -> desk, filled once
	groupIDs map[string]string  // lower-case name -> groupId, learnt from reads and creates
	orgIDs   map[string]string  // lower-case name -> organization id
	// createJoins are the default groups of the configured products: POST /user puts a new
	// account into them, so the engine need not add it (learnt from applicationrole).
	createJoins []string
	// productKeys are the lower-case names of the product-access groups, as the last read
	// learnt them (nil before any): the groups remove-access takes the account out of first.
	productKeys map[string]bool
	deskSplit   sync.Mutex // serialises the one desk listing
	// dirID is the directory suspend and restore act in, once discovered (suspend.go);
	// dirMu serialises the discovery.
	dirMu sync.Mutex
	dirID string
}

var _ reconcile.Sink = (*Sink)(nil)

// New builds a sink from the config. It checks the config but makes no request.
func New(cfg configs.JiraConfig, opts Options) (*Sink, error) {
	if cfg.Email == "" {
		return nil, errors.New("sink.jira.email is required")
	}
	token := cfg.APIToken.Value()
	if token == "" && cfg.APITokenFile != "" {
		b, err := os.ReadFile(cfg.APITokenFile)
		if err != nil {
			return nil, fmt.Errorf("sink.jira.api_token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, errors.New("sink.jira.api_token (or api_token_file) is required")
	}
	method := cfg.Deactivate
	if method == "" {
		method = configs.DeactivateRemoveAccess
	}
	switch method {
	case configs.DeactivateRemoveAccess, configs.DeactivateDelete:
	case configs.DeactivateAdminAPI:
		if cfg.AdminAPI == nil || cfg.AdminAPI.BaseURL == "" {
			return nil, errors.New("sink.jira.deactivate: admin-api needs sink.jira.admin_api.base_url")
		}
	case configs.DeactivateSuspend:
		if cfg.AdminAPI == nil || cfg.AdminAPI.BaseURL == "" || strings.TrimSpace(cfg.AdminAPI.OrgID) == "" {
			return nil, errors.New("sink.jira.deactivate: suspend needs sink.jira.admin_api.base_url and org_id")
		}
	default:
		return nil, fmt.Errorf("sink.jira.deactivate %q: want remove-access, admin-api, suspend or delete", cfg.Deactivate)
	}
	var orgKey string
	if cfg.AdminAPI != nil {
		orgKey = cfg.AdminAPI.OrgAPIKey.Value()
		if orgKey == "" && cfg.AdminAPI.OrgAPIKeyFile != "" {
			b, err := os.ReadFile(cfg.AdminAPI.OrgAPIKeyFile)
			if err != nil {
				return nil, fmt.Errorf("sink.jira.admin_api.org_api_key_file: %w", err)
			}
			orgKey = strings.TrimSpace(string(b))
		}
		if cfg.AdminAPI.BaseURL != "" && orgKey == "" {
			return nil, errors.New("sink.jira.admin_api.org_api_key (or org_api_key_file) is required with admin_api.base_url")
		}
	}
	c, err := newClient(cfg, opts, token, orgKey)
	if err != nil {
		return nil, err
	}
	conc := cfg.RateLimit.Concurrency
	if conc <= 0 {
		conc = 4
	}
	return &Sink{cfg: cfg, c: c, log: opts.Logger.With().Str("component", "sink.jira").Logger(),
		method: method, conc: conc, metrics: opts.Metrics,
		groupIDs: map[string]string{}, orgIDs: map[string]string{}}, nil
}

// SetCredentials replaces the API token, and the organization API key of admin_api, that
// requests authenticate with from now on: a config reload after a secret rotation, without
// rebuilding the sink. A request already sent keeps the pair it started with, retries
// included; every request uses the old pair or the new one, never one value of each. Errors
// from Jira are scrubbed of the values in force and of those they replaced.
//
// It returns an error, and changes nothing, when apiToken is blank; when orgAPIKey is blank
// but the sink was built with admin_api (an org API key); when orgAPIKey is not blank but the
// sink was built without one (admin_api cannot be added at run time; a blank orgAPIKey keeps
// it absent); or when a value starts or ends with white space or holds a control character,
// as config validation rejects them. Setting the values in force changes nothing.
func (s *Sink) SetCredentials(apiToken, orgAPIKey string) error {
	if err := checkSecret("sink.jira.api_token", apiToken); err != nil {
		return err
	}
	const orgField = "sink.jira.admin_api.org_api_key"
	switch built := s.c.creds.Load().orgKey != ""; {
	case !built && strings.TrimSpace(orgAPIKey) != "":
		return errors.New(orgField + " is set but admin_api is not configured; restart to add it")
	case !built:
		orgAPIKey = ""
	case strings.TrimSpace(orgAPIKey) == "":
		return errors.New(orgField + " is empty, but admin_api is configured and needs it")
	default:
		if err := checkSecret(orgField, orgAPIKey); err != nil {
			return err
		}
	}
	s.c.setCredentials(apiToken, orgAPIKey)
	return nil
}

// checkSecret rejects a blank secret and one an HTTP header cannot carry; the message names
// field and never the value.
func checkSecret(field, v string) error {
	if p := configs.SecretProblem(v); p != "" {
		return errors.New(field + " " + p)
	}
	return nil
}

// ProfileWritable reports whether profile updates (display name, email) can be applied, i.e.
// sink.jira.admin_api is configured.
func (s *Sink) ProfileWritable() bool { return s.c.adminBase != nil }

// Method is the deactivation method in force (remove-access, admin-api, suspend or delete).
func (s *Sink) Method() string { return s.method }

// Budget is the last-known rate-limit budget reported by Jira.
func (s *Sink) Budget() Budget { return s.c.snapshotBudget() }

func (s *Sink) learnGroup(name, id string) {
	if name == "" || id == "" {
		return
	}
	s.mu.Lock()
	s.groupIDs[strings.ToLower(name)] = id
	s.mu.Unlock()
}

// groupID resolves a GroupRef to a groupId: its ID, a name learnt earlier, or a lookup.
func (s *Sink) groupID(ctx context.Context, g *reconcile.GroupRef) (string, error) {
	if g == nil {
		return "", errors.New("change names no group")
	}
	if g.ID != "" {
		return g.ID, nil
	}
	s.mu.Lock()
	id, ok := s.groupIDs[strings.ToLower(g.Name)]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	found, err := s.findGroup(ctx, g.Name)
	if err != nil {
		return "", err
	}
	if found == nil {
		return "", fmt.Errorf("group %q: %w", g.Name, ErrNotFound)
	}
	return found.GroupID, nil
}

// findGroup looks one group up by name (nil when there is none).
func (s *Sink) findGroup(ctx context.Context, name string) (*apiGroup, error) {
	gs, err := s.c.groupsByName(ctx, []string{name}, 1)
	if err != nil {
		return nil, fmt.Errorf("looking up group %q: %w", name, err)
	}
	for _, g := range gs {
		if strings.EqualFold(g.Name, name) {
			s.learnGroup(g.Name, g.GroupID)
			return &g, nil
		}
	}
	return nil, nil
}

// desk resolves a project key or desk id through the desk listing, read once per Sink (and
// again when a reference is not in it, in case a desk was added since).
func (s *Sink) desk(ctx context.Context, ref string) (apiDesk, error) {
	key := strings.ToLower(strings.TrimSpace(ref))
	for _, p := range []string{"projectkey:", "servicedeskid:"} {
		key = strings.TrimPrefix(key, p)
	}
	for attempt := 0; attempt < 2; attempt++ {
		s.mu.Lock()
		d, ok := s.desks[key]
		loaded := s.desks != nil
		s.mu.Unlock()
		if ok {
			return d, nil
		}
		if loaded && attempt == 0 {
			s.mu.Lock()
			s.desks = nil
			s.mu.Unlock()
		}
		if err := s.loadDesks(ctx); err != nil {
			return apiDesk{}, err
		}
	}
	return apiDesk{}, fmt.Errorf("service desk %q: %w", ref, ErrNotFound)
}

func (s *Sink) loadDesks(ctx context.Context) error {
	s.deskSplit.Lock()
	defer s.deskSplit.Unlock()
	s.mu.Lock()
	loaded := s.desks != nil
	s.mu.Unlock()
	if loaded {
		return nil
	}
	ds, err := s.c.listDesks(ctx)
	if err != nil {
		return err
	}
	m := map[string]apiDesk{}
	for _, d := range ds {
		m[strings.ToLower(d.ID)] = d
		m[strings.ToLower(d.ProjectKey)] = d
		if d.ProjectID != "" {
			m["projectid:"+d.ProjectID] = d
		}
	}
	s.mu.Lock()
	s.desks = m
	s.mu.Unlock()
	return nil
}
