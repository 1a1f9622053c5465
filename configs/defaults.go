package configs

import (
	"math"
	"time"
)

// Defaults that are not obvious from Default(). They are documented key by key in
// configs/idsync.example.yaml.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultSchedule        = "@every 15m"
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultStatePath is relative to the working directory (not to the config file), like any
	// path an operator types on a command line; packaged installs set /var/lib/idsync/idsync.db.
	DefaultStatePath = "./idsync.db"

	DefaultMiniOrangeBaseURL  = "https://login.xecurify.com"
	DefaultMiniOrangePageSize = 500
	DefaultSCIMPullPageSize   = 100
	DefaultRequestTimeout     = 30 * time.Second
	// DefaultFullReadInterval is sink.jira.full_read_interval.
	DefaultFullReadInterval = time.Hour
	DefaultPushDebounce     = 2 * time.Second
	DefaultAdminAPIBaseURL  = "https://api.atlassian.com"
	DefaultDisplayName      = "displayName"

	// MinAdminTokenLength keeps guessable admin tokens out; the demo token is exactly 16.
	MinAdminTokenLength = 16
	// MaxPageSize bounds page_size of the pull sources.
	MaxPageSize = 1000
	// DefaultMaxObjects is sources[].max_objects: the most users or groups one listing of a
	// pull source may report (DESIGN targets 100k users and 10k groups per site).
	DefaultMaxObjects = 1_000_000
)

// DefaultMiniOrangeEndpoints are the assumed miniOrange admin API paths (see docs/setup-miniorange.md).
var DefaultMiniOrangeEndpoints = MiniOrangeEndpoints{
	UsersList:    "/moas/api/admin/users/list",
	GroupsList:   "/moas/api/admin/groups/list",
	GroupMembers: "/moas/api/admin/groups/members",
	UserGet:      "/moas/api/admin/users/get",
	Timestamp:    "/moas/rest/mobile/get-timestamp",
}

// Default rate limits. miniOrange and generic SCIM servers publish no budget: idsync does not
// pace them (it backs off on 429) but keeps at most 4 requests in flight. Jira's budget is
// the real limit of the whole tool, hence the conservative pacing. The SCIM listener's limit
// (per source) only guards against a runaway client: an IdP's bulk push must not meet 429s.
// Entra ID does not pace custom SCIM apps and Microsoft asks endpoints to take 25 requests/s;
// the listener served 900 to 22,000 requests/s by kind on 2 cores (`idsync bench --scenario
// scim`), so 500/s is 20 times the first and half the slowest measured phase (member PATCH).
var (
	DefaultSourceRateLimit = RateLimit{RequestsPerSecond: 0, Burst: 0, Concurrency: 4}
	DefaultPushRateLimit   = RateLimit{RequestsPerSecond: 500, Burst: 1000, Concurrency: 0}
	DefaultJiraRateLimit   = RateLimit{RequestsPerSecond: 10, Burst: 20, Concurrency: 4}
)

// DefaultRetention is state.retention: 90 days of run records (8,640 passes at @every 15m)
// and 400 days of audit records (a year back, plus the weeks an annual access review takes).
// The example config says what a year of passes leaves in the file.
var DefaultRetention = RetentionConfig{Runs: 90 * 24 * time.Hour, Audit: 400 * 24 * time.Hour}

// Default returns the built-in defaults: the config an empty file would give, without
// sources or secrets. Load layers the file, the environment and flags over it.
func Default() *Config {
	return &Config{
		Listen:          DefaultListen,
		State:           StateConfig{Path: DefaultStatePath, Retention: DefaultRetention},
		Schedule:        DefaultSchedule,
		Jitter:          0,
		ShutdownTimeout: DefaultShutdownTimeout,
		Log:             LogConfig{Level: "info", Format: "auto"},
		Sink: SinkConfig{
			Type: SinkJira,
			Jira: &JiraConfig{
				Products:   []string{"jira-software"},
				Deactivate: DeactivateRemoveAccess,
				RateLimit:  DefaultJiraRateLimit,
				Timeout:    DefaultRequestTimeout,
				// ApplyDefaults leaves a zero alone: 0 (read in full every pass) is a choice.
				FullReadInterval: DefaultFullReadInterval,
			},
		},
		Mapping: MappingConfig{
			ImportUsers:  true,
			ImportGroups: false,
			DisplayName:  DefaultDisplayName,
		},
		Safety: SafetyConfig{
			Policy:                 PolicySync,
			GracePasses:            2,
			MaxDeactivations:       25,
			MaxDeactivationPercent: 10,
			MaxMembershipRemovals:  250,
		},
	}
}

// ApplyDefaults fills the zero-valued fields of a config built in code (tests, embedders) with
// the defaults, including those of every source and of sink.jira.admin_api. Booleans are left
// alone (false is a legal choice). Load does not use it: it fills only the keys the file and
// environment leave out, so an explicit 0 in YAML stays 0 and is reported by Validate.
func (c *Config) ApplyDefaults() {
	d := Default()
	setStr(&c.Listen, d.Listen)
	setStr(&c.State.Path, d.State.Path)
	setStr(&c.Schedule, d.Schedule)
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	setStr(&c.Log.Level, d.Log.Level)
	setStr(&c.Log.Format, d.Log.Format)
	setStr(&c.Sink.Type, d.Sink.Type)
	if c.Sink.Jira == nil {
		c.Sink.Jira = &JiraConfig{}
	}
	j := c.Sink.Jira
	if j.Products == nil {
		j.Products = d.Sink.Jira.Products
	}
	setStr(&j.Deactivate, d.Sink.Jira.Deactivate)
	if j.RateLimit == (RateLimit{}) {
		j.RateLimit = d.Sink.Jira.RateLimit
	}
	if j.Timeout == 0 {
		j.Timeout = d.Sink.Jira.Timeout
	}
	setStr(&c.Mapping.DisplayName, d.Mapping.DisplayName)
	if c.Safety.Policy == "" {
		c.Safety = d.Safety
	}
	zero := func(string) bool { return false }
	for i := range c.Sources {
		fillSourceDefaults(&c.Sources[i], func(key string) bool {
			return key == "push.enabled" || !isZeroAt(&c.Sources[i], key)
		})
	}
	fillAdminAPIDefaults(c.Sink.Jira, zero)
	fillBurst(c)
}

func setStr(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

// fillSourceDefaults sets the defaults of one list item for every key set reports as absent.
// Keys are relative to the item ("miniorange.page_size").
func fillSourceDefaults(s *SourceConfig, set func(key string) bool) {
	if !set("max_objects") {
		s.MaxObjects = DefaultMaxObjects
	}
	if s.MiniOrange != nil {
		m := s.MiniOrange
		if !set("miniorange.base_url") {
			m.BaseURL = DefaultMiniOrangeBaseURL
		}
		if !set("miniorange.page_size") {
			m.PageSize = DefaultMiniOrangePageSize
		}
		e, de := &m.Endpoints, DefaultMiniOrangeEndpoints
		fillStrings(set, "miniorange.endpoints.",
			stringDefault{"users_list", &e.UsersList, de.UsersList},
			stringDefault{"groups_list", &e.GroupsList, de.GroupsList},
			stringDefault{"group_members", &e.GroupMembers, de.GroupMembers},
			stringDefault{"user_get", &e.UserGet, de.UserGet},
			stringDefault{"timestamp", &e.Timestamp, de.Timestamp},
		)
		if !set("miniorange.timeout") {
			m.Timeout = DefaultRequestTimeout
		}
		fillRateLimit(&m.RateLimit, DefaultSourceRateLimit, "miniorange.rate_limit.", set)
	}
	if s.SCIMPull != nil {
		p := s.SCIMPull
		if !set("scimpull.page_size") {
			p.PageSize = DefaultSCIMPullPageSize
		}
		if !set("scimpull.timeout") {
			p.Timeout = DefaultRequestTimeout
		}
		fillRateLimit(&p.RateLimit, DefaultSourceRateLimit, "scimpull.rate_limit.", set)
	}
	fillLDAPDefaults(s.LDAP, set)
	fillGoogleDefaults(s.Google, set)
	// A push-only source is its listener: give it a push block so consumers need no nil check.
	if s.Push == nil && s.Type == SourceSCIM {
		s.Push = &PushConfig{Enabled: true}
	}
	if s.Push != nil {
		p := s.Push
		// Writing a push block means wanting it: enabled defaults to true inside one.
		if !set("push.enabled") {
			p.Enabled = true
		}
		if !set("push.debounce") {
			p.Debounce = DefaultPushDebounce
		}
		fillRateLimit(&p.RateLimit, DefaultPushRateLimit, "push.rate_limit.", set)
	}
	copyMaxObjects(s)
}

// copyMaxObjects hands sources[].max_objects to the block of the source's type, whose
// constructor takes only that block.
func copyMaxObjects(s *SourceConfig) {
	if s.MiniOrange != nil {
		s.MiniOrange.MaxObjects = s.MaxObjects
	}
	if s.SCIMPull != nil {
		s.SCIMPull.MaxObjects = s.MaxObjects
	}
	if s.LDAP != nil {
		s.LDAP.MaxObjects = s.MaxObjects
	}
	if s.Google != nil {
		s.Google.MaxObjects = s.MaxObjects
	}
}

// stringDefault is a string field and the default it takes when its key is absent.
type stringDefault struct {
	key string
	p   *string
	def string
}

// fillStrings sets every field whose key (prefix + key) set reports as absent to its default.
func fillStrings(set func(key string) bool, prefix string, fields ...stringDefault) {
	for _, f := range fields {
		if !set(prefix + f.key) {
			*f.p = f.def
		}
	}
}

func fillRateLimit(r *RateLimit, def RateLimit, prefix string, set func(string) bool) {
	if !set(prefix + "requests_per_second") {
		r.RequestsPerSecond = def.RequestsPerSecond
	}
	if !set(prefix + "burst") {
		r.Burst = def.Burst
	}
	if !set(prefix + "concurrency") {
		r.Concurrency = def.Concurrency
	}
}

// fillAdminAPIDefaults gives sink.jira.admin_api its base URL; set reports keys present
// relative to sink.jira.admin_api.
func fillAdminAPIDefaults(j *JiraConfig, set func(string) bool) {
	if j == nil || j.AdminAPI == nil {
		return
	}
	if !set("base_url") && j.AdminAPI.BaseURL == "" {
		j.AdminAPI.BaseURL = DefaultAdminAPIBaseURL
	}
}

// fillBurst gives a paced rate limit without a burst the smallest workable one: a token
// bucket of size 0 would never let a request through.
func fillBurst(c *Config) {
	fix := func(r *RateLimit) {
		if r.RequestsPerSecond > 0 && r.Burst == 0 && !math.IsInf(r.RequestsPerSecond, 0) && !math.IsNaN(r.RequestsPerSecond) {
			r.Burst = int(math.Max(1, math.Min(math.Ceil(r.RequestsPerSecond), math.MaxInt32)))
		}
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.MiniOrange != nil {
			fix(&s.MiniOrange.RateLimit)
		}
		if s.SCIMPull != nil {
			fix(&s.SCIMPull.RateLimit)
		}
		if s.Push != nil {
			fix(&s.Push.RateLimit)
		}
	}
	if c.Sink.Jira != nil {
		fix(&c.Sink.Jira.RateLimit)
	}
}

// isZeroAt reports whether the field at a dotted key relative to a source holds its zero value.
func isZeroAt(s *SourceConfig, key string) bool {
	v, ok := lookupField(s, key)
	return !ok || v.IsZero()
}
