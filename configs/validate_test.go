package configs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// validConfig is a complete valid config built in code, with every optional block present.
func validConfig() *Config {
	c := Default()
	c.AdminToken = "code-admin-token-0123456789"
	c.Sources = []SourceConfig{
		{Name: "corp", Type: SourceMiniOrange,
			MiniOrange: &MiniOrangeConfig{CustomerKey: "100001", APIKey: "code-mo-key"},
			Push:       &PushConfig{Enabled: true, Token: "code-scim-token-corp"}},
		{Name: "hr", Type: SourceSCIMPull,
			SCIMPull: &SCIMPullConfig{BaseURL: "https://scim.example.com/v2", Token: "code-scimpull-token"}},
		{Name: "partners", Type: SourceSCIM, Push: &PushConfig{Enabled: true, Token: "code-scim-token-partners"}},
	}
	c.Sink.Jira.BaseURL = "https://example.atlassian.net"
	c.Sink.Jira.Email = "admin@example.com"
	c.Sink.Jira.APIToken = "code-jira-token"
	c.Sink.Jira.AdminAPI = &AdminAPIConfig{OrgAPIKey: "code-org-key"}
	c.Mapping.Groups = []GroupMapping{{IdP: "Engineering", Jira: []string{"engineering"}}}
	c.Mapping.Customers = []CustomerMapping{{IdP: "Support", ServiceDesks: []string{"DEMO"}}}
	c.ApplyDefaults()
	return c
}

func TestValidConfigIsValid(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Sources[0].MiniOrange.PageSize != 500 || c.Sources[1].SCIMPull.PageSize != 100 ||
		c.Sink.Jira.AdminAPI.BaseURL != DefaultAdminAPIBaseURL || c.Sources[0].Push.Debounce != 2*time.Second {
		t.Errorf("ApplyDefaults did not fill list items: %+v %+v", *c.Sources[0].MiniOrange, *c.Sink.Jira.AdminAPI)
	}
}

func TestApplyDefaultsKeepsSetValues(t *testing.T) {
	c := &Config{Listen: "127.0.0.1:1", Sources: []SourceConfig{{Name: "x", Type: SourceSCIM}}}
	c.ApplyDefaults()
	if c.Listen != "127.0.0.1:1" || c.Schedule != DefaultSchedule || c.Safety.GracePasses != 2 {
		t.Errorf("ApplyDefaults = %+v", c)
	}
	if c.Sources[0].Push == nil || !c.Sources[0].Push.Enabled {
		t.Errorf("push-only source without a push block: %+v", c.Sources[0].Push)
	}
	c = &Config{Sources: []SourceConfig{{Name: "x", Type: SourceMiniOrange, MiniOrange: &MiniOrangeConfig{}, Push: &PushConfig{}}}}
	c.ApplyDefaults()
	if c.Sources[0].Push.Enabled {
		t.Error("ApplyDefaults turned a push block on: booleans must be left alone")
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{"empty listen", func(c *Config) { c.Listen = "" }, []string{"listen: required"}},
		{"listen port", func(c *Config) { c.Listen = "127.0.0.1:99999" }, []string{`listen: port "99999" is not a number`}},
		{"listen all interfaces is fine", func(c *Config) { c.Listen = ":8080" }, nil},
		{"no admin token", func(c *Config) { c.AdminToken = "" }, []string{"admin_token: required"}},
		{"short admin token", func(c *Config) { c.AdminToken = "0123456789abcde" }, []string{"admin_token: too short: 15 characters, want at least 16"}},
		{"16 characters is enough", func(c *Config) { c.AdminToken = "demo-admin-token" }, nil},
		{"state path", func(c *Config) { c.State.Path = "" }, []string{"state.path: required"}},
		{"schedule empty", func(c *Config) { c.Schedule = "" }, []string{"schedule: required"}},
		{"schedule cron", func(c *Config) { c.Schedule = "*/5 * * * *" }, nil},
		{"jitter negative", func(c *Config) { c.Jitter = -time.Second }, []string{"jitter: must not be negative"}},
		{"jitter vs cron", func(c *Config) { c.Schedule = "*/5 * * * *"; c.Jitter = 5 * time.Minute }, []string{"jitter: 5m0s must be shorter than the schedule's interval (5m0s)"}},
		{"jitter fine", func(c *Config) { c.Jitter = 14 * time.Minute }, nil},
		{"shutdown", func(c *Config) { c.ShutdownTimeout = 0 }, []string{"shutdown_timeout: must be positive"}},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, []string{`log.level: "verbose" is not one of trace, debug, info, warn, error`}},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, []string{`log.format: "xml" is not one of auto, json, console`}},
		{"no sources", func(c *Config) { c.Sources = nil }, []string{"sources: at least one source is required"}},
		{"source name", func(c *Config) { c.Sources[1].Name = "" }, []string{"sources[1].name: required"}},
		{"source name too long", func(c *Config) { c.Sources[1].Name = strings.Repeat("a", 64) }, []string{"sources[1].name:", "at most 63"}},
		{"source type", func(c *Config) { c.Sources[0].Type = "" }, []string{"sources[0].type: required"}},
		{"missing block", func(c *Config) { c.Sources[1].SCIMPull = nil }, []string{"sources[1].scimpull: required for type scimpull"}},
		{"push only with pull block", func(c *Config) { c.Sources[2].MiniOrange = c.Sources[0].MiniOrange }, []string{"sources[2].miniorange: does not belong to a source of type scim"}},
		{"push only disabled", func(c *Config) { c.Sources[2].Push.Enabled = false }, []string{"sources[2].push.enabled: a push-only source (type scim) cannot disable push"}},
		{"push only without block", func(c *Config) { c.Sources[2].Push = nil }, []string{"sources[2].push.token: required"}},
		{"push disabled needs no token", func(c *Config) { c.Sources[0].Push = &PushConfig{Enabled: false} }, nil},
		{"push token missing", func(c *Config) { c.Sources[0].Push.Token = "" }, []string{"sources[0].push.token: required"}},
		{"push tokens shared", func(c *Config) { c.Sources[2].Push.Token = c.Sources[0].Push.Token }, []string{"sources[2].push.token: same token as sources[0].push.token"}},
		{"push token is admin", func(c *Config) { c.Sources[2].Push.Token = c.AdminToken }, []string{"sources[2].push.token: must differ from admin_token"}},
		{"debounce", func(c *Config) { c.Sources[0].Push.Debounce = -1 }, []string{"sources[0].push.debounce: must not be negative"}},
		{"push rate", func(c *Config) { c.Sources[0].Push.RateLimit.RequestsPerSecond = -1 }, []string{"sources[0].push.rate_limit.requests_per_second: must be a number >= 0"}},
		{"miniorange url", func(c *Config) { c.Sources[0].MiniOrange.BaseURL = "ftp://x" }, []string{`sources[0].miniorange.base_url: "ftp://x" must be an absolute http or https URL`}},
		{"url without host", func(c *Config) { c.Sources[0].MiniOrange.BaseURL = "https://" }, []string{"sources[0].miniorange.base_url: \"https:\" has no host"}},
		{"url with query", func(c *Config) { c.Sources[1].SCIMPull.BaseURL = "https://x/v2?a=b" }, []string{"sources[1].scimpull.base_url:", "must not have a query"}},
		{"url bad port", func(c *Config) { c.Sink.Jira.BaseURL = "https://x:0" }, []string{`sink.jira.base_url: port "0"`}},
		{"url unparsable", func(c *Config) { c.Sink.Jira.BaseURL = "https://x y%zz" }, []string{"sink.jira.base_url: not a valid URL"}},
		{"customer key", func(c *Config) { c.Sources[0].MiniOrange.CustomerKey = "" }, []string{"sources[0].miniorange.customer_key: required"}},
		{"customer key digits", func(c *Config) { c.Sources[0].MiniOrange.CustomerKey = "12a" }, []string{"sources[0].miniorange.customer_key: must be the numeric"}},
		{"miniorange api key", func(c *Config) { c.Sources[0].MiniOrange.APIKey = "" }, []string{"sources[0].miniorange.api_key: required"}},
		{"page size 0", func(c *Config) { c.Sources[0].MiniOrange.PageSize = 0 }, []string{"sources[0].miniorange.page_size: must be between 1 and 1000, got 0"}},
		{"scimpull page size", func(c *Config) { c.Sources[1].SCIMPull.PageSize = 1001 }, []string{"sources[1].scimpull.page_size: must be between 1 and 1000, got 1001"}},
		{"endpoint empty", func(c *Config) { c.Sources[0].MiniOrange.Endpoints.UserGet = "" }, []string{"sources[0].miniorange.endpoints.user_get: required"}},
		{"endpoint relative", func(c *Config) { c.Sources[0].MiniOrange.Endpoints.UsersList = "moas/list" }, []string{`sources[0].miniorange.endpoints.users_list: "moas/list" must be a path starting with /`}},
		{"timeout", func(c *Config) { c.Sources[1].SCIMPull.Timeout = 0 }, []string{"sources[1].scimpull.timeout: must be positive"}},
		{"scimpull token", func(c *Config) { c.Sources[1].SCIMPull.Token = "" }, []string{"sources[1].scimpull.token: required"}},
		{"rate limit negative", func(c *Config) { c.Sink.Jira.RateLimit = RateLimit{RequestsPerSecond: 1, Burst: -1, Concurrency: -2} },
			[]string{"sink.jira.rate_limit.burst: must be >= 0, got -1", "sink.jira.rate_limit.concurrency: must be >= 0"}},
		{"rate limit without burst", func(c *Config) { c.Sink.Jira.RateLimit = RateLimit{RequestsPerSecond: 1} }, []string{"sink.jira.rate_limit.burst: must be at least 1"}},
		{"rate limit NaN", func(c *Config) { c.Sink.Jira.RateLimit.RequestsPerSecond = math.NaN() }, []string{"sink.jira.rate_limit.requests_per_second: must be a number >= 0"}},
		{"rate limit Inf", func(c *Config) { c.Sink.Jira.RateLimit.RequestsPerSecond = math.Inf(1) }, []string{"sink.jira.rate_limit.requests_per_second"}},
		{"sink type", func(c *Config) { c.Sink.Type = "confluence" }, []string{`sink.type: unknown sink type "confluence"`}},
		{"sink jira missing", func(c *Config) { c.Sink.Jira = nil }, []string{"sink.jira: required for sink type jira"}},
		{"jira email", func(c *Config) { c.Sink.Jira.Email = "admin" }, []string{`sink.jira.email: "admin" is not an email address`}},
		{"jira email with name", func(c *Config) { c.Sink.Jira.Email = "Admin <admin@example.com>" }, []string{"sink.jira.email:"}},
		{"jira token", func(c *Config) { c.Sink.Jira.APIToken = "" }, []string{"sink.jira.api_token: required"}},
		{"products", func(c *Config) { c.Sink.Jira.Products = []string{"jira-core", "jira-core"} }, []string{`sink.jira.products[1]: "jira-core" is listed twice`}},
		{"no products is legal", func(c *Config) { c.Sink.Jira.Products = nil }, nil},
		{"deactivate", func(c *Config) { c.Sink.Jira.Deactivate = "suspend-access" }, []string{`sink.jira.deactivate: "suspend-access" is not one of remove-access, admin-api, suspend, delete`}},
		{"suspend with org id", func(c *Config) { c.Sink.Jira.Deactivate = DeactivateSuspend; c.Sink.Jira.AdminAPI.OrgID = "org-1" }, nil},
		{"suspend without org id", func(c *Config) { c.Sink.Jira.Deactivate = DeactivateSuspend }, []string{"sink.jira.admin_api.org_id: required with deactivate: suspend"}},
		{"suspend without block", func(c *Config) { c.Sink.Jira.Deactivate = DeactivateSuspend; c.Sink.Jira.AdminAPI = nil }, []string{"sink.jira.deactivate: suspend requires sink.jira.admin_api"}},
		{"admin-api with block", func(c *Config) { c.Sink.Jira.Deactivate = DeactivateAdminAPI }, nil},
		{"admin-api without block", func(c *Config) { c.Sink.Jira.Deactivate = DeactivateAdminAPI; c.Sink.Jira.AdminAPI = nil }, []string{"sink.jira.deactivate: admin-api requires sink.jira.admin_api"}},
		{"org key", func(c *Config) { c.Sink.Jira.AdminAPI.OrgAPIKey = "" }, []string{"sink.jira.admin_api.org_api_key: required"}},
		{"admin api url", func(c *Config) { c.Sink.Jira.AdminAPI.BaseURL = "" }, []string{"sink.jira.admin_api.base_url: required"}},
		{"product access groups", func(c *Config) { c.Sink.Jira.ProductAccessGroups = []string{"a", ""} }, []string{"sink.jira.product_access_groups[1]: must not be empty"}},
		{"group mapping idp", func(c *Config) { c.Mapping.Groups = append(c.Mapping.Groups, GroupMapping{Jira: []string{"x"}}) }, []string{"mapping.groups[1].idp: required"}},
		{"group mapping jira", func(c *Config) { c.Mapping.Groups[0].Jira = nil }, []string{"mapping.groups[0].jira: required"}},
		{"group mapping empty name", func(c *Config) { c.Mapping.Groups[0].Jira = []string{" "} }, []string{"mapping.groups[0].jira[0]: must not be empty"}},
		{"default groups dup", func(c *Config) { c.Mapping.DefaultGroups = []string{"a", "a"} }, []string{`mapping.default_groups[1]: "a" is already listed at mapping.default_groups[0]`}},
		{"customers idp", func(c *Config) { c.Mapping.Customers[0].IdP = "" }, []string{"mapping.customers[0].idp: required"}},
		{"customers dup", func(c *Config) { c.Mapping.Customers = append(c.Mapping.Customers, c.Mapping.Customers[0]) }, []string{"mapping.customers[1].idp: IdP group \"Support\" is already mapped"}},
		{"customers organizations only", func(c *Config) { c.Mapping.Customers[0] = CustomerMapping{IdP: "x", Organizations: []string{"Acme"}} }, nil},
		{"customers by source", func(c *Config) {
			c.Sources[0].CustomersOnly = true
			c.Mapping.Customers = []CustomerMapping{{Source: c.Sources[0].Name, ServiceDesks: []string{"DEMO"}}}
		}, nil},
		{"customers by unknown source", func(c *Config) {
			c.Mapping.Customers[0] = CustomerMapping{Source: "nope", ServiceDesks: []string{"DEMO"}}
		}, []string{`mapping.customers[0].source: "nope" is not the name of a source`}},
		{"customers idp and source", func(c *Config) { c.Mapping.Customers[0].Source = c.Sources[0].Name }, []string{"mapping.customers[0].source: give idp or source, not both"}},
		{"customers source dup", func(c *Config) {
			c.Mapping.Customers = []CustomerMapping{{Source: c.Sources[0].Name, ServiceDesks: []string{"A"}}, {Source: c.Sources[0].Name, ServiceDesks: []string{"B"}}}
		}, []string{"mapping.customers[1].source: source"}},
		{"customers-only source nobody reaches", func(c *Config) { c.Sources[0].CustomersOnly = true; c.Mapping.Customers = nil }, []string{"sources[0].customers_only: no mapping.customers entry reaches source"}},
		{"customers-only source reached by an idp entry", func(c *Config) { c.Sources[0].CustomersOnly = true }, nil},
		{"transform replace without pattern", func(c *Config) { c.Mapping.Email.Replace = "$1" }, []string{"mapping.email.replace: needs a pattern"}},
		{"transform pattern", func(c *Config) { c.Mapping.Email.Pattern = "(?P<x" }, []string{"mapping.email.pattern: does not compile"}},
		{"display name", func(c *Config) { c.Mapping.DisplayName = "full" }, []string{`mapping.display_name: "full" is not one of`}},
		{"display name attribute", func(c *Config) { c.Mapping.DisplayName = "attribute:nickname" }, nil},
		{"display name attribute empty", func(c *Config) { c.Mapping.DisplayName = "attribute:" }, []string{"mapping.display_name:"}},
		{"policy", func(c *Config) { c.Safety.Policy = "" }, []string{"safety.policy: required"}},
		{"policies", func(c *Config) { c.Safety.Policy = PolicyCreateOnly }, nil},
		{"percent negative", func(c *Config) { c.Safety.MaxDeactivationPercent = -1 }, []string{"safety.max_deactivation_percent: must be between 0 and 100, got -1"}},
		{"percent NaN", func(c *Config) { c.Safety.MaxDeactivationPercent = math.NaN() }, []string{"safety.max_deactivation_percent: must be between 0 and 100, got NaN"}},
		{"max_objects 0", func(c *Config) { c.Sources[1].MaxObjects = 0 }, []string{"sources[1].max_objects: must be >= 1", "got 0"}},
		{"max_objects negative", func(c *Config) { c.Sources[0].MaxObjects = -3 }, []string{"sources[0].max_objects: must be >= 1", "got -3"}},
		{"max_objects 1", func(c *Config) { c.Sources[0].MaxObjects = 1 }, nil},
		{"deactivations negative", func(c *Config) { c.Safety.MaxDeactivations = -1 }, []string{"safety.max_deactivations: must be >= 0, got -1"}},
		{"removals negative", func(c *Config) { c.Safety.MaxMembershipRemovals = -2 }, []string{"safety.max_membership_removals: must be >= 0, got -2"}},
		{"thresholds zero are fine", func(c *Config) {
			c.Safety.GracePasses, c.Safety.MaxDeactivations, c.Safety.MaxDeactivationPercent = 0, 0, 0
			c.Safety.MaxMembershipRemovals = 0
		}, nil},
		{"secret with newline", func(c *Config) { c.Sink.Jira.APIToken = "abc\nX-Evil: 1" }, []string{"sink.jira.api_token: contains a line break"}},
		{"secret with space", func(c *Config) { c.Sources[0].MiniOrange.APIKey = "key " }, []string{"sources[0].miniorange.api_key: starts or ends with white space"}},
		{"tls cert only", func(c *Config) { c.TLS.CertFile = "x" }, []string{"tls.key_file: required when tls.cert_file is set"}},
		{"tls key only", func(c *Config) { c.TLS.KeyFile = "x" }, []string{"tls.cert_file: required when tls.key_file is set"}},
		{"tls unreadable", func(c *Config) { c.TLS = TLSConfig{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"} },
			[]string{"tls.cert_file: cannot read", "tls.key_file: cannot read"}},
		{"tls directory", func(c *Config) { c.TLS = TLSConfig{CertFile: os.TempDir(), KeyFile: os.TempDir()} }, []string{"tls.cert_file: cannot read", "not a regular file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want %q, got nil", tc.want)
			}
			var ps *Problems
			if !errors.As(err, &ps) {
				t.Fatalf("%T, want *Problems", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want %q in:\n%v", w, err)
				}
			}
			for _, p := range ps.List {
				if p.Path == "" || p.Err == nil {
					t.Errorf("problem without path or sentinel: %#v", p)
				}
			}
			if strings.Contains(err.Error(), "code-") {
				t.Errorf("a secret leaked:\n%v", err)
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := validConfig()
	c.Listen = "nope"
	c.AdminToken = ""
	c.Sources[0].Name = "Bad Name"
	c.Sources[1].SCIMPull.BaseURL = "x"
	c.Safety.Policy = "yolo"
	c.Safety.GracePasses = -1
	err := c.Validate()
	var ps *Problems
	if !errors.As(err, &ps) || len(ps.List) != 6 {
		t.Fatalf("want 6 problems, got:\n%v", err)
	}
	if !errors.Is(err, ErrRequired) || !errors.Is(err, ErrInvalid) {
		t.Error("sentinels not visible through *Problems")
	}
}

func TestParseSchedule(t *testing.T) {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	good := []struct {
		spec     string
		interval time.Duration
	}{
		{"@every 15m", 15 * time.Minute},
		{"@every 1s", time.Second},
		{"  @every 1h30m ", 90 * time.Minute},
		{"*/15 * * * *", 15 * time.Minute},
		{"0 * * * *", time.Hour},
		{"*/10 * * * * *", 10 * time.Second}, // leading seconds field
		{"@hourly", time.Hour},
		{"@daily", 24 * time.Hour},
		{"CRON_TZ=Europe/Paris 0 3 * * *", 24 * time.Hour},
		{"0 0 29 2 *", 0}, // rare but fires
	}
	for _, g := range good {
		s, err := ParseSchedule(g.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", g.spec, err)
			continue
		}
		if g.interval > 0 {
			if iv := interval(s, from); iv != g.interval {
				t.Errorf("interval(%q) = %s, want %s", g.spec, iv, g.interval)
			}
		}
	}
	bad := map[string]string{
		"":                               "empty schedule",
		"@every":                         "@every <duration>",
		"@every 15":                      "@every <duration>",
		"@every 500ms":                   "whole number of seconds",
		"@every 1500ms":                  "whole number of seconds",
		"@every -5m":                     "at least 1s",
		"@every 0s":                      "at least 1s",
		"* * * *":                        "expected 5 to 6 fields",
		"61 * * * *":                     "above maximum",
		"@fortnightly":                   "unrecognized descriptor",
		"CRON_TZ=UTC":                    "time zone prefix needs a schedule",
		"TZ=Europe/Paris":                "time zone prefix needs a schedule",
		"TZ=Nowhere/X * * * * *":         "bad location",
		"0 0 30 2 *":                     "never fires",
		"1-99999999999999999999 * * * *": "invalid schedule",
	}
	for spec, want := range bad {
		_, err := ParseSchedule(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSchedule(%q) = %v, want %q", spec, err, want)
		}
	}
	var _ cron.Schedule = cron.Every(time.Minute)
}

func TestTLSPair(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t)
	_, otherKey := selfSigned(t)
	writeFile(t, filepath.Join(dir, "cert.pem"), cert)
	writeFile(t, filepath.Join(dir, "key.pem"), key)
	writeFile(t, filepath.Join(dir, "other-key.pem"), otherKey)

	c := validConfig()
	c.TLS = TLSConfig{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid pair: %v", err)
	}
	c.TLS.KeyFile = filepath.Join(dir, "other-key.pem")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tls: cert_file and key_file do not make a usable pair") {
		t.Errorf("mismatched pair: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, "key.pem"), 0); err == nil && os.Geteuid() != 0 {
		c.TLS.KeyFile = filepath.Join(dir, "key.pem")
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tls.key_file: cannot read") {
			t.Errorf("unreadable key: %v", err)
		}
	}
}

// selfSigned returns a PEM certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "idsync-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
}

func TestRedacted(t *testing.T) {
	c := validConfig()
	c.Mapping.DefaultGroups = []string{"jira-software-users"}
	c.Mapping.IncludeGroups = []string{"a"}
	c.Mapping.ExcludeUsers = []string{"b"}
	c.Mapping.ExcludeGroups = []string{"c"}
	c.Mapping.Customers[0].Organizations = []string{"Acme"}
	c.Sink.Jira.ProductAccessGroups = []string{"jira-users"}
	c.Sources[1].Push = &PushConfig{Enabled: true, Token: "code-scim-token-hr"}
	for i := range c.Sources {
		if c.Sources[i].Push != nil {
			c.Sources[i].Push.PreviousToken = Secret("retiring-scim-token-" + c.Sources[i].Name)
		}
	}
	r := c.Redacted()

	// Every secret of the copy is the marker, every secret of the original is untouched.
	for i, s := range r.secrets() {
		if *s.value != Redacted {
			t.Errorf("%s = %q in the copy", s.path, *s.value)
		}
		if orig := c.secrets()[i]; *orig.value == Redacted || *orig.value == "" {
			t.Errorf("%s of the original changed to %q", orig.path, *orig.value)
		}
	}
	if len(r.secrets()) != 11 {
		t.Errorf("%d secrets, want 11 (admin, mo, 3 push with their previous tokens, scimpull, jira, org)", len(r.secrets()))
	}
	// Nothing else differs...
	stripped := func(x *Config) string {
		y := *x
		b, _ := json.Marshal(&y)
		return string(b)
	}
	if stripped(c) != stripped(r) {
		t.Errorf("Redacted changed more than secrets:\n%s\n%s", stripped(c), stripped(r))
	}
	// ...and nothing is shared: every pointer and slice of the copy is its own.
	assertNoAliasing(t, reflect.ValueOf(c).Elem(), reflect.ValueOf(r).Elem(), "config")
	if out := fmt.Sprintf("%+v %#v", *r, r.Sources[0].MiniOrange); strings.Contains(out, "code-") {
		t.Errorf("secret printed: %s", out)
	}
}

func assertNoAliasing(t *testing.T, a, b reflect.Value, path string) {
	t.Helper()
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s is shared between the config and its redacted copy", path)
		}
		assertNoAliasing(t, a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() == 0 {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s is shared between the config and its redacted copy", path)
		}
		for i := range a.Len() {
			assertNoAliasing(t, a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Struct:
		for i := range a.NumField() {
			assertNoAliasing(t, a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)
		}
	}
}

func TestWarnings(t *testing.T) {
	c := validConfig()
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings on a safe config: %v", w)
	}
	c.Listen = "0.0.0.0:8080"
	c.Schedule = "@every 10s"
	c.Sink.Jira.BaseURL = "http://jira.internal"
	c.Sources[0].MiniOrange.BaseURL = "http://127.0.0.1:18082" // loopback: fine
	c.Sources[2].Push.Token = "short"
	c.Sink.Jira.Products = nil
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tok"), "x")
	if err := os.Chmod(filepath.Join(dir, "tok"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Path = filepath.Join(dir, "idsync.yaml")
	c.AdminTokenFile = "tok"
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"listen: reachable from the network without tls",
		"schedule: a full pass every 10s",
		"sink.jira.base_url: plain http",
		"sources[2].push.token: shorter than 16",
		"sink.jira.products: empty",
		"admin_token_file: mode 0644",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("want warning %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "miniorange.base_url") {
		t.Errorf("loopback http warned about:\n%s", all)
	}
}

// TestWarningsSuspendIsAccountWide: suspend is legal, but it reaches beyond the Jira site;
// validate says so once.
func TestWarningsSuspendIsAccountWide(t *testing.T) {
	c := validConfig()
	c.Sink.Jira.Deactivate = DeactivateSuspend
	c.Sink.Jira.AdminAPI.OrgID = "org-1"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, w := range c.Warnings() {
		if w.Path == "sink.jira.deactivate" && strings.Contains(w.Msg, "account-wide") && strings.Contains(w.Msg, "every app of the Atlassian organization") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d account-wide warnings for deactivate: suspend, want 1: %v", n, c.Warnings())
	}
	c.Sink.Jira.Deactivate = DeactivateAdminAPI
	for _, w := range c.Warnings() {
		if w.Path == "sink.jira.deactivate" {
			t.Errorf("warning for admin-api: %v", w)
		}
	}
}

// TestWarningsExplainZeroThresholds: 0 is a legal breaker threshold, but it holds every change
// it counts; validate must say so, key by key, and that no value turns the breaker off.
func TestWarningsExplainZeroThresholds(t *testing.T) {
	want := map[string]string{
		"max_deactivations":        "safety.max_deactivations: 0 holds every deactivation for approval (idsync approve); there is no value that turns the breaker off",
		"max_deactivation_percent": "safety.max_deactivation_percent: 0 holds every deactivation and every membership and customer removal for approval (idsync approve); there is no value that turns the breaker off",
		"max_membership_removals":  "safety.max_membership_removals: 0 holds every membership and customer removal for approval (idsync approve); there is no value that turns the breaker off",
	}
	for key, msg := range want {
		t.Run(key, func(t *testing.T) {
			c := validConfig()
			switch key {
			case "max_deactivations":
				c.Safety.MaxDeactivations = 0
			case "max_deactivation_percent":
				c.Safety.MaxDeactivationPercent = 0
			case "max_membership_removals":
				c.Safety.MaxMembershipRemovals = 0
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("0 must be valid: %v", err)
			}
			var got []string
			for _, w := range c.Warnings() {
				got = append(got, w.Error())
				if w.Path != "safety."+key {
					t.Errorf("unexpected warning %q", w.Error())
				}
			}
			if len(got) != 1 || got[0] != msg {
				t.Errorf("warnings = %q, want exactly %q", got, msg)
			}
		})
	}
	// Through the file, as `idsync validate` reads it.
	body := strings.Replace(minimal, "sink:\n", "safety:\n  max_deactivations: 0\n  max_membership_removals: 0\nsink:\n", 1)
	cfg := mustLoad(t, writeConfig(t, "", body), nil)
	var paths []string
	for _, w := range cfg.Warnings() {
		paths = append(paths, w.Path)
	}
	if strings.Join(paths, ",") != "safety.max_deactivations,safety.max_membership_removals" {
		t.Errorf("warnings at %v, want safety.max_deactivations and safety.max_membership_removals", paths)
	}
}

// TestWithoutSecrets: two configs that differ only in secrets (inline or *_file) compare
// equal without them; any other difference still shows; the original keeps its secrets.
func TestWithoutSecrets(t *testing.T) {
	a := validConfig()
	b := validConfig()
	b.AdminToken = "another-admin-token"
	b.Sink.Jira.APIToken, b.Sink.Jira.APITokenFile = "", "/run/secrets/jira"
	for i := range b.Sources {
		if p := b.Sources[i].Push; p != nil {
			p.Token, p.PreviousToken = Secret("new-"+p.Token.Value()), p.Token
		}
		if m := b.Sources[i].MiniOrange; m != nil {
			m.APIKey = "rotated-mo-key"
		}
	}
	if reflect.DeepEqual(a, b) {
		t.Fatal("the fixture configs do not differ")
	}
	if !reflect.DeepEqual(a.WithoutSecrets(), b.WithoutSecrets()) {
		t.Errorf("configs that differ only in secrets differ without them:\n%+v\n%+v", a.WithoutSecrets(), b.WithoutSecrets())
	}
	for _, s := range a.WithoutSecrets().secrets() {
		if *s.value != "" || *s.file != "" {
			t.Errorf("%s is still set", s.path)
		}
	}
	if a.AdminToken == "" || a.Sink.Jira.APIToken == "" {
		t.Error("WithoutSecrets changed the original")
	}
	b.Sources[0].Priority++
	if reflect.DeepEqual(a.WithoutSecrets(), b.WithoutSecrets()) {
		t.Error("a priority change is hidden by WithoutSecrets")
	}
}
