package configs

import (
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"
)

// Allowed values of the enumerated keys.
var (
	LogLevels         = []string{"trace", "debug", "info", "warn", "error"}
	LogFormats        = []string{"auto", "json", "console"}
	Policies          = []string{PolicySync, PolicyUpsertOnly, PolicyCreateOnly}
	DeactivateMethods = []string{DeactivateRemoveAccess, DeactivateAdminAPI, DeactivateSuspend, DeactivateDelete}
	// JiraProducts are the Jira product keys POST /rest/api/3/user accepts.
	JiraProducts = []string{"jira-software", "jira-core", "jira-servicedesk", "jira-product-discovery"}
	SourceTypes  = []string{SourceMiniOrange, SourceSCIM, SourceSCIMPull, SourceLDAP, SourceGoogle}
)

// plannedSourceTypes are known but not built yet: a clear "not supported yet" beats "unknown".
var plannedSourceTypes = []string{}

var (
	sourceNameRE = regexp.MustCompile(`^[a-z0-9-]+$`)
	digitsRE     = regexp.MustCompile(`^[0-9]+$`)
)

// maxSourceNameLength keeps source names usable as URL segments and metric labels.
const maxSourceNameLength = 63

// Validate returns nil or a *Problems with every problem, each with its field path.
// It reads the TLS files (readable, and a matching pair) but nothing else outside the config.
func (c *Config) Validate() error {
	v := &validator{ps: &Problems{}}
	v.top(c)
	v.sources(c)
	v.sink(c)
	v.mapping(&c.Mapping, c.Sources)
	v.safety(&c.Safety)
	return v.ps.Err()
}

type validator struct{ ps *Problems }

func (v *validator) add(path, msg string, err error) { v.ps.Add(path, msg, err) }

func (v *validator) required(path string) { v.add(path, "required", ErrRequired) }

func (v *validator) top(c *Config) {
	v.listen("listen", c.Listen)
	if c.AdminToken == "" {
		v.add("admin_token", "required (inline, admin_token_file, or IDSYNC_ADMIN_TOKEN)", ErrRequired)
	} else if n := len([]rune(c.AdminToken.Value())); n < MinAdminTokenLength {
		v.add("admin_token", fmt.Sprintf("too short: %d characters, want at least %d", n, MinAdminTokenLength), ErrInvalid)
	}
	if c.State.Path == "" {
		v.required("state.path")
	}
	for _, r := range []struct {
		key string
		d   time.Duration
	}{{"state.retention.runs", c.State.Retention.Runs}, {"state.retention.audit", c.State.Retention.Audit}} {
		if r.d < 0 {
			v.add(r.key, fmt.Sprintf("must not be negative (0 keeps every record), got %s", r.d), ErrInvalid)
		}
	}
	v.schedule(c)
	if c.ShutdownTimeout <= 0 {
		v.add("shutdown_timeout", fmt.Sprintf("must be positive, got %s", c.ShutdownTimeout), ErrInvalid)
	}
	v.tls(&c.TLS)
	v.enum("log.level", c.Log.Level, LogLevels)
	v.enum("log.format", c.Log.Format, LogFormats)
	for _, s := range c.secrets() {
		v.secretChars(s.path, *s.value)
	}
}

func (v *validator) listen(path, addr string) {
	if addr == "" {
		v.required(path)
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, fmt.Sprintf("want host:port such as %q, got %q", DefaultListen, addr), ErrInvalid)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, fmt.Sprintf("port %q is not a number between 0 and 65535", port), ErrInvalid)
	}
}

func (v *validator) schedule(c *Config) {
	if c.Jitter < 0 {
		v.add("jitter", fmt.Sprintf("must not be negative, got %s", c.Jitter), ErrInvalid)
	}
	if c.Schedule == "" {
		v.add("schedule", `required (a cron spec such as "*/15 * * * *" or "@every 15m")`, ErrRequired)
		return
	}
	s, err := ParseSchedule(c.Schedule)
	if err != nil {
		v.add("schedule", err.Error(), ErrInvalid)
		return
	}
	if iv := interval(s, time.Now()); c.Jitter > 0 && iv > 0 && c.Jitter >= iv {
		v.add("jitter", fmt.Sprintf("%s must be shorter than the schedule's interval (%s)", c.Jitter, iv), ErrInvalid)
	}
}

// scheduleParser takes standard 5-field crontab specs, 6-field specs with leading seconds,
// descriptors (@hourly, @daily, ...) and an optional CRON_TZ=Zone prefix.
var scheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom |
	cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses schedule: a 5-field cron spec ("*/15 * * * *"), a 6-field spec whose
// first field is seconds, a descriptor (@hourly, @daily, @weekly, @monthly, @yearly), or
// "@every <duration>" with a duration of at least one second, in whole seconds (cron cannot
// run finer). A spec that never fires (30 February) is an error.
func ParseSchedule(spec string) (sched cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("empty schedule")
	}
	if rest, ok := strings.CutPrefix(spec, "@every"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf(`invalid schedule %q: want "@every <duration>" such as "@every 15m"`, truncate(spec, 60))
		}
		if d < time.Second || d%time.Second != 0 {
			return nil, fmt.Errorf("invalid schedule %q: the interval must be a whole number of seconds, at least 1s", truncate(spec, 60))
		}
		return cron.Every(d), nil
	}
	// robfig/cron v3.0.1 slices out of range on a time zone prefix not followed by a space.
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		return nil, fmt.Errorf("invalid schedule %q: a time zone prefix needs a schedule after it", truncate(spec, 60))
	}
	defer func() {
		// A parser bug must not take the daemon down on a config reload.
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("invalid schedule %q", truncate(spec, 60))
		}
	}()
	sched, err = scheduleParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %w", truncate(spec, 60), err)
	}
	if sched.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("invalid schedule %q: it never fires", truncate(spec, 60))
	}
	return sched, nil
}

// interval is the shortest gap between the next few activations of s (the delay of @every).
func interval(s cron.Schedule, from time.Time) time.Duration {
	if c, ok := s.(cron.ConstantDelaySchedule); ok {
		return c.Delay
	}
	var best time.Duration
	t := s.Next(from)
	for range 16 {
		n := s.Next(t)
		if n.IsZero() || t.IsZero() {
			break
		}
		if g := n.Sub(t); best == 0 || g < best {
			best = g
		}
		t = n
	}
	return best
}

func (v *validator) tls(t *TLSConfig) {
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return
	case t.CertFile == "":
		v.add("tls.cert_file", "required when tls.key_file is set", ErrRequired)
		return
	case t.KeyFile == "":
		v.add("tls.key_file", "required when tls.cert_file is set", ErrRequired)
		return
	}
	okC := v.readable("tls.cert_file", t.CertFile)
	okK := v.readable("tls.key_file", t.KeyFile)
	if okC && okK {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			v.add("tls", fmt.Sprintf("cert_file and key_file do not make a usable pair: %v", err), ErrInvalid)
		}
	}
}

func (v *validator) readable(path, file string) bool {
	st, err := os.Stat(file)
	if err == nil && !st.Mode().IsRegular() {
		v.add(path, fmt.Sprintf("cannot read %s: not a regular file", file), ErrUnreadableFile)
		return false
	}
	if err == nil {
		var f *os.File
		if f, err = os.Open(file); err == nil {
			f.Close()
		}
	}
	if err != nil {
		v.add(path, fmt.Sprintf("cannot read: %v", err), ErrUnreadableFile)
		return false
	}
	return true
}

func (v *validator) enum(path, val string, allowed []string) bool {
	if val == "" {
		v.add(path, "required (one of "+strings.Join(allowed, ", ")+")", ErrRequired)
		return false
	}
	if !slices.Contains(allowed, val) {
		v.add(path, fmt.Sprintf("%q is not one of %s", truncate(val, 40), strings.Join(allowed, ", ")), ErrInvalid)
		return false
	}
	return true
}

// secretChars rejects secrets that would break or smuggle an HTTP header (a missing one is
// reported where it is required).
func (v *validator) secretChars(path string, s Secret) {
	if s == "" {
		return
	}
	if p := SecretProblem(s.Value()); p != "" {
		v.add(path, p, ErrInvalid)
	}
}

// SecretProblem says what makes v unusable as a secret sent in an HTTP header, or "" when
// nothing does: blank, a line break or another control character, white space at either end.
// The message never holds the value. Config validation and the clients' credential setters
// (a reload after a rotation) share it.
func SecretProblem(v string) string {
	switch {
	case strings.TrimSpace(v) == "":
		return "is empty"
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return "contains a line break or another control character"
	case strings.TrimSpace(v) != v:
		return "starts or ends with white space"
	}
	return ""
}

// url checks an absolute http(s) base URL with a host and no credentials, query or fragment.
// Messages print the URL without any password it may hold.
func (v *validator) url(path, raw string) {
	if raw == "" {
		v.required(path)
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.add(path, "not a valid URL (want an absolute http or https URL such as https://example.atlassian.net)", ErrInvalid)
		return
	}
	shown := truncate(u.Redacted(), 100)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(path, fmt.Sprintf("%q must be an absolute http or https URL", shown), ErrInvalid)
	case u.Host == "" || u.Hostname() == "":
		v.add(path, fmt.Sprintf("%q has no host", shown), ErrInvalid)
	case u.User != nil:
		v.add(path, "must not hold credentials: use the secret keys", ErrInvalid)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		v.add(path, fmt.Sprintf("%q must not have a query or fragment", shown), ErrInvalid)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			v.add(path, fmt.Sprintf("port %q is not a number between 1 and 65535", p), ErrInvalid)
		}
	}
}

func (v *validator) rateLimit(path string, r RateLimit) {
	if math.IsNaN(r.RequestsPerSecond) || math.IsInf(r.RequestsPerSecond, 0) || r.RequestsPerSecond < 0 {
		v.add(path+".requests_per_second", fmt.Sprintf("must be a number >= 0 (0 = unpaced), got %v", r.RequestsPerSecond), ErrInvalid)
	}
	if r.Burst < 0 {
		v.add(path+".burst", fmt.Sprintf("must be >= 0, got %d", r.Burst), ErrInvalid)
	} else if r.RequestsPerSecond > 0 && r.Burst == 0 {
		v.add(path+".burst", "must be at least 1 when requests_per_second is set", ErrInvalid)
	}
	if r.Concurrency < 0 {
		v.add(path+".concurrency", fmt.Sprintf("must be >= 0 (0 = the default), got %d", r.Concurrency), ErrInvalid)
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.add(path, fmt.Sprintf("must be positive, got %s", d), ErrInvalid)
	}
}

func (v *validator) pageSize(path string, n int) {
	if n < 1 || n > MaxPageSize {
		v.add(path, fmt.Sprintf("must be between 1 and %d, got %d", MaxPageSize, n), ErrInvalid)
	}
}

func (v *validator) sink(c *Config) {
	s := &c.Sink
	switch {
	case s.Type == "":
		v.add("sink.type", "required (jira)", ErrRequired)
	case s.Type != SinkJira:
		v.add("sink.type", fmt.Sprintf("unknown sink type %q (jira)", truncate(s.Type, 40)), ErrInvalid)
	}
	j := s.Jira
	if j == nil {
		if s.Type == SinkJira {
			v.add("sink.jira", "required for sink type jira", ErrRequired)
		}
		return
	}
	v.url("sink.jira.base_url", j.BaseURL)
	if j.Email == "" {
		v.required("sink.jira.email")
	} else if a, err := mail.ParseAddress(j.Email); err != nil || a.Address != j.Email {
		v.add("sink.jira.email", fmt.Sprintf("%q is not an email address (the Atlassian account that owns the API token)", truncate(j.Email, 60)), ErrInvalid)
	}
	if j.APIToken == "" {
		v.add("sink.jira.api_token", "required (inline, api_token_file, or IDSYNC_SINK_JIRA_API_TOKEN)", ErrRequired)
	}
	seen := map[string]bool{}
	for i, pr := range j.Products {
		pp := fmt.Sprintf("sink.jira.products[%d]", i)
		switch {
		case !slices.Contains(JiraProducts, pr):
			v.add(pp, fmt.Sprintf("unknown product %q (one of %s)", truncate(pr, 40), strings.Join(JiraProducts, ", ")), ErrInvalid)
		case seen[pr]:
			v.add(pp, fmt.Sprintf("%q is listed twice", pr), ErrDuplicate)
		}
		seen[pr] = true
	}
	if v.enum("sink.jira.deactivate", j.Deactivate, DeactivateMethods) && j.Deactivate == DeactivateAdminAPI && j.AdminAPI == nil {
		v.add("sink.jira.deactivate", "admin-api requires sink.jira.admin_api (base_url and org_api_key)", ErrRequired)
	}
	if j.Deactivate == DeactivateSuspend {
		switch {
		case j.AdminAPI == nil:
			v.add("sink.jira.deactivate", "suspend requires sink.jira.admin_api (base_url, org_api_key and org_id)", ErrRequired)
		case strings.TrimSpace(j.AdminAPI.OrgID) == "":
			v.add("sink.jira.admin_api.org_id", "required with deactivate: suspend (the id in your admin.atlassian.com URL)", ErrRequired)
		}
	}
	v.rateLimit("sink.jira.rate_limit", j.RateLimit)
	v.names("sink.jira.product_access_groups", j.ProductAccessGroups)
	v.positive("sink.jira.timeout", j.Timeout)
	if j.FullReadInterval < 0 {
		v.add("sink.jira.full_read_interval", fmt.Sprintf("must be 0 (read in full every pass) or positive, got %s", j.FullReadInterval), ErrInvalid)
	}
	if a := j.AdminAPI; a != nil {
		v.url("sink.jira.admin_api.base_url", a.BaseURL)
		if a.OrgAPIKey == "" {
			v.add("sink.jira.admin_api.org_api_key", "required (inline, org_api_key_file, or IDSYNC_SINK_JIRA_ADMIN_API_ORG_API_KEY)", ErrRequired)
		}
	}
}

// names checks a list of names: none empty, none twice.
func (v *validator) names(path string, list []string) {
	seen := map[string]int{}
	for i, n := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		if strings.TrimSpace(n) == "" {
			v.add(p, "must not be empty", ErrInvalid)
			continue
		}
		if j, dup := seen[n]; dup {
			v.add(p, fmt.Sprintf("%q is already listed at %s[%d]", truncate(n, 60), path, j), ErrDuplicate)
			continue
		}
		seen[n] = i
	}
}

func (v *validator) mapping(m *MappingConfig, sources []SourceConfig) {
	idps := map[string]int{}
	for i, g := range m.Groups {
		p := fmt.Sprintf("mapping.groups[%d]", i)
		if g.IdP == "" {
			v.required(p + ".idp")
		} else if j, dup := idps[g.IdP]; dup {
			v.add(p+".idp", fmt.Sprintf("IdP group %q is already mapped by mapping.groups[%d]", truncate(g.IdP, 60), j), ErrDuplicate)
		} else {
			idps[g.IdP] = i
		}
		if len(g.Jira) == 0 {
			v.add(p+".jira", "required: at least one Jira group", ErrRequired)
		}
		v.names(p+".jira", g.Jira)
	}
	v.names("mapping.default_groups", m.DefaultGroups)
	custs, bySource := map[string]int{}, map[string]int{}
	for i, cm := range m.Customers {
		p := fmt.Sprintf("mapping.customers[%d]", i)
		switch {
		case cm.IdP == "" && cm.Source == "":
			v.add(p+".idp", "required: an IdP group (idp) or a source (source)", ErrRequired)
		case cm.IdP != "" && cm.Source != "":
			v.add(p+".source", "give idp or source, not both", ErrInvalid)
		case cm.Source != "":
			if j, dup := bySource[cm.Source]; dup {
				v.add(p+".source", fmt.Sprintf("source %q is already mapped by mapping.customers[%d]", truncate(cm.Source, 60), j), ErrDuplicate)
			} else {
				bySource[cm.Source] = i
			}
			if !slices.ContainsFunc(sources, func(s SourceConfig) bool { return s.Name == cm.Source }) {
				v.add(p+".source", fmt.Sprintf("%q is not the name of a source", truncate(cm.Source, 60)), ErrInvalid)
			}
		default:
			if j, dup := custs[cm.IdP]; dup {
				v.add(p+".idp", fmt.Sprintf("IdP group %q is already mapped by mapping.customers[%d]", truncate(cm.IdP, 60), j), ErrDuplicate)
			} else {
				custs[cm.IdP] = i
			}
		}
		if len(cm.ServiceDesks) == 0 && len(cm.Organizations) == 0 {
			v.add(p, "needs at least one of service_desks or organizations", ErrRequired)
		}
		v.names(p+".service_desks", cm.ServiceDesks)
		v.names(p+".organizations", cm.Organizations)
	}
	// A customers_only source that no entry can reach would sync nobody: its people get
	// nothing but customer access. An idp entry may match any source's groups.
	for i, s := range sources {
		if s.CustomersOnly && len(custs) == 0 {
			if _, ok := bySource[s.Name]; !ok {
				v.add(fmt.Sprintf("sources[%d].customers_only", i),
					fmt.Sprintf("no mapping.customers entry reaches source %q: add one with source: %s (or idp: GROUP)", s.Name, s.Name), ErrInvalid)
			}
		}
	}
	v.names("mapping.include_groups", m.IncludeGroups)
	v.names("mapping.exclude_users", m.ExcludeUsers)
	v.names("mapping.exclude_groups", m.ExcludeGroups)
	v.transform("mapping.username", m.UserName)
	v.transform("mapping.email", m.Email)
	switch dn := m.DisplayName; {
	case dn == "":
		v.add("mapping.display_name", "required (displayName, name, userName or attribute:<key>)", ErrRequired)
	case dn == "displayName", dn == "name", dn == "userName":
	case strings.HasPrefix(dn, "attribute:") && len(dn) > len("attribute:"):
	default:
		v.add("mapping.display_name", fmt.Sprintf("%q is not one of displayName, name, userName, attribute:<key>", truncate(dn, 40)), ErrInvalid)
	}
}

func (v *validator) transform(p string, t Transform) {
	if t.Pattern == "" {
		if t.Replace != "" {
			v.add(p+".replace", "needs a pattern", ErrRequired)
		}
		return
	}
	if _, err := regexp.Compile(t.Pattern); err != nil {
		v.add(p+".pattern", fmt.Sprintf("does not compile: %v", err), ErrInvalid)
	}
}

func (v *validator) safety(s *SafetyConfig) {
	v.enum("safety.policy", s.Policy, Policies)
	for _, n := range []struct {
		key string
		val int
	}{
		{"grace_passes", s.GracePasses},
		{"max_deactivations", s.MaxDeactivations},
		{"max_membership_removals", s.MaxMembershipRemovals},
	} {
		if n.val < 0 {
			v.add("safety."+n.key, fmt.Sprintf("must be >= 0, got %d", n.val), ErrInvalid)
		}
	}
	if pc := s.MaxDeactivationPercent; math.IsNaN(pc) || pc < 0 || pc > 100 {
		v.add("safety.max_deactivation_percent", fmt.Sprintf("must be between 0 and 100, got %v", pc), ErrInvalid)
	}
}
