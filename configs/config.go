// Package configs holds idsync's configuration schema, its loading (defaults -> YAML file ->
// IDSYNC_ environment -> flags), secret resolution and validation with field paths.
//
// The key names are a contract with operators: keys may be added, never renamed.
package configs

import "time"

// Config is the whole idsync configuration, as read from YAML.
type Config struct {
	// Listen is the address of the one HTTP listener (health, metrics, admin API, SCIM).
	Listen string `mapstructure:"listen" json:"listen"`
	// AdminToken guards /api/v1; give it inline, as a file, or through IDSYNC_ADMIN_TOKEN.
	AdminToken     Secret `mapstructure:"admin_token" json:"admin_token"`
	AdminTokenFile string `mapstructure:"admin_token_file" json:"admin_token_file,omitempty"`

	State    StateConfig   `mapstructure:"state" json:"state"`
	Schedule string        `mapstructure:"schedule" json:"schedule"`
	Jitter   time.Duration `mapstructure:"jitter" json:"jitter"`
	// ShutdownTimeout bounds a graceful stop (finish the item in flight, flush state).
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout" json:"shutdown_timeout"`
	TLS             TLSConfig     `mapstructure:"tls" json:"tls"`
	Log             LogConfig     `mapstructure:"log" json:"log"`

	Sources []SourceConfig `mapstructure:"sources" json:"sources"`
	Sink    SinkConfig     `mapstructure:"sink" json:"sink"`
	Mapping MappingConfig  `mapstructure:"mapping" json:"mapping"`
	Safety  SafetyConfig   `mapstructure:"safety" json:"safety"`

	// Path is the file the config was read from ("" when built in code). Relative *_file
	// paths resolve against its folder.
	Path string `mapstructure:"-" json:"-"`
}

// Secret is a string that never prints: fmt, %v, JSON and logs show a redaction marker.
// Use Value() where the real value is needed (an HTTP header, a signature).
type Secret string

// Redacted is what a set Secret prints as.
const Redacted = "[redacted]"

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String keeps the secret out of fmt output.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps the secret out of %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalJSON keeps the secret out of JSON dumps (plan, state inspect, status).
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// StateConfig locates the bbolt state file and bounds the history it keeps.
type StateConfig struct {
	Path string `mapstructure:"path" json:"path"`
	// Retention deletes run and audit records older than these ages after each pass.
	Retention RetentionConfig `mapstructure:"retention" json:"retention"`
}

// RetentionConfig is state.retention: how long run records and audit records are kept
// (0 keeps every record of that kind). Links, ownership and the other current state are
// never pruned.
type RetentionConfig struct {
	Runs  time.Duration `mapstructure:"runs" json:"runs"`
	Audit time.Duration `mapstructure:"audit" json:"audit"`
}

// TLSConfig turns on TLS for the listener when both files are set.
type TLSConfig struct {
	CertFile string `mapstructure:"cert_file" json:"cert_file,omitempty"`
	KeyFile  string `mapstructure:"key_file" json:"key_file,omitempty"`
}

// Enabled reports whether the listener should serve TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// LogConfig sets zerolog's level and output format.
type LogConfig struct {
	Level  string `mapstructure:"level" json:"level"`   // trace | debug | info | warn | error
	Format string `mapstructure:"format" json:"format"` // auto | json | console
}

// Source types.
const (
	SourceMiniOrange = "miniorange"
	SourceSCIM       = "scim" // push only: the SCIM store is the desired state
	SourceSCIMPull   = "scimpull"
	SourceLDAP       = "ldap"   // LDAPv3 directories and Active Directory, pulled
	SourceGoogle     = "google" // Google Workspace (Admin SDK Directory API), pulled
)

// SourceConfig is one identity provider.
type SourceConfig struct {
	Name     string `mapstructure:"name" json:"name"` // [a-z0-9-]+, unique
	Type     string `mapstructure:"type" json:"type"`
	Priority int    `mapstructure:"priority" json:"priority"` // higher wins on attributes
	// MaxObjects bounds the users or groups one listing of a pull source may report
	// (totalCount, totalResults): a larger count fails the read before anything is sized by
	// it. Load and ApplyDefaults copy it into the source's block (MiniOrangeConfig.MaxObjects,
	// SCIMPullConfig.MaxObjects), where the source's constructor reads it.
	MaxObjects int `mapstructure:"max_objects" json:"max_objects"`
	// CustomersOnly makes the source's people JSM customers only (the app's "Customer
	// Sync"): never a licensed account, a product-access group or a Jira group; only the
	// customer access mapping.customers gives them.
	CustomersOnly bool `mapstructure:"customers_only" json:"customers_only,omitempty"`

	MiniOrange *MiniOrangeConfig `mapstructure:"miniorange" json:"miniorange,omitempty"`
	SCIMPull   *SCIMPullConfig   `mapstructure:"scimpull" json:"scimpull,omitempty"`
	LDAP       *LDAPConfig       `mapstructure:"ldap" json:"ldap,omitempty"`
	Google     *GoogleConfig     `mapstructure:"google" json:"google,omitempty"`
	Push       *PushConfig       `mapstructure:"push" json:"push,omitempty"`
}

// PushEnabled reports whether the SCIM listener serves this source.
func (s SourceConfig) PushEnabled() bool {
	return s.Type == SourceSCIM || (s.Push != nil && s.Push.Enabled)
}

// MiniOrangeConfig is the miniOrange admin REST API client. Every endpoint path is a config
// value because the list endpoints are not publicly documented (see docs/setup-miniorange.md).
type MiniOrangeConfig struct {
	BaseURL          string              `mapstructure:"base_url" json:"base_url"`
	CustomerKey      string              `mapstructure:"customer_key" json:"customer_key"`
	APIKey           Secret              `mapstructure:"api_key" json:"api_key"`
	APIKeyFile       string              `mapstructure:"api_key_file" json:"api_key_file,omitempty"`
	PageSize         int                 `mapstructure:"page_size" json:"page_size"`
	Endpoints        MiniOrangeEndpoints `mapstructure:"endpoints" json:"endpoints"`
	SendAPIKeyHeader bool                `mapstructure:"send_api_key_header" json:"send_api_key_header"`
	RateLimit        RateLimit           `mapstructure:"rate_limit" json:"rate_limit"`
	// Timeout bounds one HTTP request.
	Timeout time.Duration `mapstructure:"timeout" json:"timeout"`
	// MaxObjects is the source's max_objects (SourceConfig.MaxObjects), copied here by Load
	// and ApplyDefaults; it is not a key of this block. 0 leaves the source's default.
	MaxObjects int `mapstructure:"-" json:"-"`
}

// MiniOrangeEndpoints are the API paths, relative to BaseURL.
type MiniOrangeEndpoints struct {
	UsersList    string `mapstructure:"users_list" json:"users_list"`
	GroupsList   string `mapstructure:"groups_list" json:"groups_list"`
	GroupMembers string `mapstructure:"group_members" json:"group_members"`
	UserGet      string `mapstructure:"user_get" json:"user_get"`
	Timestamp    string `mapstructure:"timestamp" json:"timestamp"`
}

// SCIMPullConfig is a generic SCIM 2.0 server read as a source.
type SCIMPullConfig struct {
	BaseURL   string        `mapstructure:"base_url" json:"base_url"`
	Token     Secret        `mapstructure:"token" json:"token"`
	TokenFile string        `mapstructure:"token_file" json:"token_file,omitempty"`
	PageSize  int           `mapstructure:"page_size" json:"page_size"`
	RateLimit RateLimit     `mapstructure:"rate_limit" json:"rate_limit"`
	Timeout   time.Duration `mapstructure:"timeout" json:"timeout"`
	// MaxObjects is the source's max_objects (SourceConfig.MaxObjects), copied here by Load
	// and ApplyDefaults; it is not a key of this block. 0 leaves the source's default.
	MaxObjects int `mapstructure:"-" json:"-"`
}

// PushConfig is the SCIM listener of one source.
type PushConfig struct {
	Enabled   bool   `mapstructure:"enabled" json:"enabled"`
	Token     Secret `mapstructure:"token" json:"token"`
	TokenFile string `mapstructure:"token_file" json:"token_file,omitempty"`
	// PreviousToken is still accepted while a rotation is under way: set the new token here
	// and the old one as previous_token, reload, move the IdP to the new token, then drop
	// previous_token and reload again.
	PreviousToken     Secret `mapstructure:"previous_token" json:"previous_token,omitempty"`
	PreviousTokenFile string `mapstructure:"previous_token_file" json:"previous_token_file,omitempty"`
	// RateLimit caps SCIM requests of this source; excess requests get 429 + Retry-After.
	RateLimit RateLimit `mapstructure:"rate_limit" json:"rate_limit"`
	// Debounce is the quiet window before a push triggers its targeted pass.
	Debounce time.Duration `mapstructure:"debounce" json:"debounce"`
}

// RateLimit is a token bucket plus a concurrency bound. Zero RequestsPerSecond means unlimited.
// Zero Concurrency lets the component choose: the outgoing API clients use 4, the SCIM
// listener sets no bound beyond the token bucket. Load gives a paced limit without a burst a
// burst of ceil(RequestsPerSecond); Validate rejects a paced limit with burst 0.
type RateLimit struct {
	RequestsPerSecond float64 `mapstructure:"requests_per_second" json:"requests_per_second"`
	Burst             int     `mapstructure:"burst" json:"burst"`
	Concurrency       int     `mapstructure:"concurrency" json:"concurrency"`
}

// Sink types.
const SinkJira = "jira"

// SinkConfig is the target.
type SinkConfig struct {
	Type string      `mapstructure:"type" json:"type"`
	Jira *JiraConfig `mapstructure:"jira" json:"jira,omitempty"`
}

// Deactivation methods (sink.jira.deactivate).
const (
	DeactivateRemoveAccess = "remove-access"
	DeactivateAdminAPI     = "admin-api"
	DeactivateDelete       = "delete"
	// DeactivateSuspend suspends the account's access through the organization API's
	// directory (account-wide: every app of the organization; groups and roles are kept).
	DeactivateSuspend = "suspend"
)

// JiraConfig is Jira Cloud (REST v3 and the JSM servicedeskapi) reached with an API token.
type JiraConfig struct {
	BaseURL      string    `mapstructure:"base_url" json:"base_url"`
	Email        string    `mapstructure:"email" json:"email"`
	APIToken     Secret    `mapstructure:"api_token" json:"api_token"`
	APITokenFile string    `mapstructure:"api_token_file" json:"api_token_file,omitempty"`
	Products     []string  `mapstructure:"products" json:"products"`
	Deactivate   string    `mapstructure:"deactivate" json:"deactivate"`
	RateLimit    RateLimit `mapstructure:"rate_limit" json:"rate_limit"`
	// AdminAPI enables profile updates and lifecycle disable/enable (org API key).
	AdminAPI *AdminAPIConfig `mapstructure:"admin_api" json:"admin_api,omitempty"`
	// ProductAccessGroups overrides the groups discovered from /rest/api/3/applicationrole.
	ProductAccessGroups []string      `mapstructure:"product_access_groups" json:"product_access_groups"`
	Timeout             time.Duration `mapstructure:"timeout" json:"timeout"`
	// FullReadInterval is how often a scheduled or push pass reads Jira in full; in
	// between, passes plan against the state the last full read saw plus every write since,
	// and read only the accounts they write to. 0 reads in full every pass.
	FullReadInterval time.Duration `mapstructure:"full_read_interval" json:"full_read_interval"`
}

// AdminAPIConfig is the Atlassian organization admin API.
type AdminAPIConfig struct {
	BaseURL       string `mapstructure:"base_url" json:"base_url"`
	OrgAPIKey     Secret `mapstructure:"org_api_key" json:"org_api_key"`
	OrgAPIKeyFile string `mapstructure:"org_api_key_file" json:"org_api_key_file,omitempty"`
	// OrgID is the organization's id (required for deactivate: suspend).
	OrgID string `mapstructure:"org_id" json:"org_id,omitempty"`
	// DirectoryID is the directory suspend and restore act in; empty: the organization's
	// only directory, discovered at the first pass.
	DirectoryID string `mapstructure:"directory_id" json:"directory_id,omitempty"`
}

// MappingConfig turns IdP data into desired Jira state.
type MappingConfig struct {
	ImportUsers   bool              `mapstructure:"import_users" json:"import_users"`
	ImportGroups  bool              `mapstructure:"import_groups" json:"import_groups"`
	Groups        []GroupMapping    `mapstructure:"groups" json:"groups"`
	DefaultGroups []string          `mapstructure:"default_groups" json:"default_groups"`
	Customers     []CustomerMapping `mapstructure:"customers" json:"customers"`
	IncludeGroups []string          `mapstructure:"include_groups" json:"include_groups"`
	ExcludeUsers  []string          `mapstructure:"exclude_users" json:"exclude_users"`
	// ExcludeGroups lists IdP groups never imported on the fly (import_groups).
	ExcludeGroups []string `mapstructure:"exclude_groups" json:"exclude_groups"`
	// UserName and Email rewrite source values before matching (regex -> replacement).
	UserName Transform `mapstructure:"username" json:"username"`
	Email    Transform `mapstructure:"email" json:"email"`
	// DisplayName picks the Jira display name: "displayName" (default), "name" (given +
	// family), "userName", or "attribute:<key>" for a custom attribute.
	DisplayName string `mapstructure:"display_name" json:"display_name"`
}

// GroupMapping maps one IdP group to one or more Jira groups.
type GroupMapping struct {
	IdP  string   `mapstructure:"idp" json:"idp"`
	Jira []string `mapstructure:"jira" json:"jira"`
	// Authoritative groups are owned whole: members no source grants are removed.
	Authoritative bool `mapstructure:"authoritative" json:"authoritative"`
}

// CustomerMapping grants JSM customer access to members of an IdP group.
type CustomerMapping struct {
	IdP string `mapstructure:"idp" json:"idp,omitempty"`
	// Source, instead of IdP, covers every person of that source (most often a
	// customers_only source).
	Source        string   `mapstructure:"source" json:"source,omitempty"`
	ServiceDesks  []string `mapstructure:"service_desks" json:"service_desks"` // project keys or ids
	Organizations []string `mapstructure:"organizations" json:"organizations"` // names
}

// Transform is an optional regex rewrite; empty Pattern means none.
type Transform struct {
	Pattern   string `mapstructure:"pattern" json:"pattern,omitempty"`
	Replace   string `mapstructure:"replace" json:"replace,omitempty"`
	Lowercase bool   `mapstructure:"lowercase" json:"lowercase,omitempty"`
}

// Policies (safety.policy).
const (
	PolicySync       = "sync"
	PolicyUpsertOnly = "upsert-only"
	PolicyCreateOnly = "create-only"
)

// SafetyConfig holds the guards that run on every plan.
//
// The circuit breaker's thresholds (MaxDeactivations, MaxDeactivationPercent,
// MaxMembershipRemovals) are >= 0; a threshold of 0 holds every change it counts for
// approval. No value switches the breaker off.
type SafetyConfig struct {
	Policy                 string  `mapstructure:"policy" json:"policy"`
	GracePasses            int     `mapstructure:"grace_passes" json:"grace_passes"`
	MaxDeactivations       int     `mapstructure:"max_deactivations" json:"max_deactivations"`
	MaxDeactivationPercent float64 `mapstructure:"max_deactivation_percent" json:"max_deactivation_percent"`
	MaxMembershipRemovals  int     `mapstructure:"max_membership_removals" json:"max_membership_removals"`
}

// zeroThreshold is a breaker threshold set to 0, and what it therefore holds.
type zeroThreshold struct{ key, holds string }

// zeroThresholds lists the breaker thresholds set to 0.
func (s SafetyConfig) zeroThresholds() []zeroThreshold {
	var out []zeroThreshold
	if s.MaxDeactivations == 0 {
		out = append(out, zeroThreshold{"max_deactivations", "deactivation"})
	}
	if s.MaxDeactivationPercent == 0 {
		out = append(out, zeroThreshold{"max_deactivation_percent", "deactivation and every membership and customer removal"})
	}
	if s.MaxMembershipRemovals == 0 {
		out = append(out, zeroThreshold{"max_membership_removals", "membership and customer removal"})
	}
	return out
}
