package configs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// writeConfig writes body as a config file in dir (a fresh temp dir when empty).
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, "idsync.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustLoad(t *testing.T, path string, fs *pflag.FlagSet) *Config {
	t.Helper()
	cfg, err := LoadAndValidate(path, fs)
	if err != nil {
		t.Fatalf("LoadAndValidate(%s): %v", path, err)
	}
	return cfg
}

// minimal is testdata/minimal.yaml inline, for tests that vary it in a temp dir.
const minimal = `admin_token: fixture-secret-admin-0001
sources:
  - name: corp
    type: miniorange
    miniorange:
      customer_key: "100001"
      api_key: fixture-secret-mo-key
    push:
      token: fixture-secret-scim-corp
sink:
  jira:
    base_url: https://example.atlassian.net
    email: admin@example.com
    api_token: fixture-secret-jira-token
`

func TestDefaults(t *testing.T) {
	cfg := mustLoad(t, "testdata/minimal.yaml", nil)
	if cfg.Path != "testdata/minimal.yaml" {
		t.Errorf("Path = %q", cfg.Path)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"schedule", cfg.Schedule, "@every 15m"},
		{"jitter", cfg.Jitter, time.Duration(0)},
		{"shutdown_timeout", cfg.ShutdownTimeout, 30 * time.Second},
		{"log", cfg.Log, LogConfig{Level: "info", Format: "auto"}},
		{"state.path", cfg.State.Path, "./idsync.db"},
		{"tls", cfg.TLS, TLSConfig{}},
		{"miniorange.base_url", cfg.Sources[0].MiniOrange.BaseURL, "https://login.xecurify.com"},
		{"miniorange.page_size", cfg.Sources[0].MiniOrange.PageSize, 500},
		{"miniorange.endpoints", cfg.Sources[0].MiniOrange.Endpoints, MiniOrangeEndpoints{
			UsersList:    "/moas/api/admin/users/list",
			GroupsList:   "/moas/api/admin/groups/list",
			GroupMembers: "/moas/api/admin/groups/members",
			UserGet:      "/moas/api/admin/users/get",
			Timestamp:    "/moas/rest/mobile/get-timestamp",
		}},
		{"miniorange.timeout", cfg.Sources[0].MiniOrange.Timeout, 30 * time.Second},
		{"miniorange.rate_limit", cfg.Sources[0].MiniOrange.RateLimit, RateLimit{Concurrency: 4}},
		{"miniorange.send_api_key_header", cfg.Sources[0].MiniOrange.SendAPIKeyHeader, false},
		{"push.enabled", cfg.Sources[0].Push.Enabled, true},
		{"push.debounce", cfg.Sources[0].Push.Debounce, 2 * time.Second},
		{"push.rate_limit", cfg.Sources[0].Push.RateLimit, RateLimit{RequestsPerSecond: 500, Burst: 1000}},
		{"sink.type", cfg.Sink.Type, "jira"},
		{"jira.deactivate", cfg.Sink.Jira.Deactivate, "remove-access"},
		{"jira.products", cfg.Sink.Jira.Products, []string{"jira-software"}},
		{"jira.rate_limit", cfg.Sink.Jira.RateLimit, RateLimit{RequestsPerSecond: 10, Burst: 20, Concurrency: 4}},
		{"jira.timeout", cfg.Sink.Jira.Timeout, 30 * time.Second},
		{"jira.admin_api", cfg.Sink.Jira.AdminAPI, (*AdminAPIConfig)(nil)},
		{"mapping.import_users", cfg.Mapping.ImportUsers, true},
		{"mapping.import_groups", cfg.Mapping.ImportGroups, false},
		{"mapping.display_name", cfg.Mapping.DisplayName, "displayName"},
		{"max_objects", cfg.Sources[0].MaxObjects, 1_000_000},
		{"miniorange.max_objects (copied)", cfg.Sources[0].MiniOrange.MaxObjects, 1_000_000},
		{"safety", cfg.Safety, SafetyConfig{Policy: "sync", GracePasses: 2, MaxDeactivations: 25, MaxDeactivationPercent: 10, MaxMembershipRemovals: 250}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestSCIMPullAndPushOnlyDefaults(t *testing.T) {
	body := strings.Replace(minimal, "sources:\n", `sources:
  - name: hr
    type: scimpull
    scimpull:
      base_url: https://scim.example.com/scim/v2
      token: fixture-secret-scimpull
  - name: partners
    type: scim
    push:
      token: fixture-secret-scim-partners
`, 1)
	cfg := mustLoad(t, writeConfig(t, "", body), nil)
	hr, partners := cfg.Sources[0], cfg.Sources[1]
	if hr.SCIMPull.PageSize != 100 || hr.SCIMPull.Timeout != 30*time.Second || hr.SCIMPull.RateLimit != (RateLimit{Concurrency: 4}) {
		t.Errorf("scimpull defaults = %+v", *hr.SCIMPull)
	}
	if hr.Push != nil || hr.PushEnabled() {
		t.Errorf("a scimpull source without a push block got push %+v", hr.Push)
	}
	if partners.Push == nil || !partners.Push.Enabled || partners.Push.Debounce != 2*time.Second || !partners.PushEnabled() {
		t.Errorf("push-only source push = %+v", partners.Push)
	}

	// A scim source needs no push block at all to get one, but then its token is missing.
	body = strings.Replace(minimal, "sources:\n", "sources:\n  - name: partners\n    type: scim\n", 1)
	_, err := LoadAndValidate(writeConfig(t, "", body), nil)
	if err == nil || !strings.Contains(err.Error(), "sources[0].push.token: required") {
		t.Errorf("push-only source without token: %v", err)
	}
}

func TestExplicitZeroIsKept(t *testing.T) {
	// An explicit 0 must not be replaced by the default: the operator asked for it.
	body := strings.Replace(minimal, `      api_key: fixture-secret-mo-key
`, `      api_key: fixture-secret-mo-key
      page_size: 0
      rate_limit: {concurrency: 0}
`, 1)
	cfg, err := Load(writeConfig(t, "", body), nil)
	if err != nil {
		t.Fatal(err)
	}
	mo := cfg.Sources[0].MiniOrange
	if mo.PageSize != 0 || mo.RateLimit.Concurrency != 0 {
		t.Errorf("explicit zeros replaced: page_size %d, concurrency %d", mo.PageSize, mo.RateLimit.Concurrency)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "sources[0].miniorange.page_size: must be between 1 and 1000, got 0") {
		t.Errorf("Validate = %v", err)
	}
	// A key present with no value counts as absent.
	body = strings.Replace(minimal, `      api_key: fixture-secret-mo-key
`, `      api_key: fixture-secret-mo-key
      page_size:
`, 1)
	cfg = mustLoad(t, writeConfig(t, "", body), nil)
	if cfg.Sources[0].MiniOrange.PageSize != 500 {
		t.Errorf("page_size with no value = %d, want the default", cfg.Sources[0].MiniOrange.PageSize)
	}
	// push.enabled: false is honoured.
	body = strings.Replace(minimal, "    push:\n", "    push:\n      enabled: false\n", 1)
	cfg = mustLoad(t, writeConfig(t, "", body), nil)
	if cfg.Sources[0].PushEnabled() {
		t.Error("push.enabled: false ignored")
	}
}

// TestMaxObjectsReachesTheSourceBlock: sources[].max_objects is copied into the block the
// source's constructor takes, for both pull types; it is not a key of the block itself.
func TestMaxObjectsReachesTheSourceBlock(t *testing.T) {
	body := strings.Replace(minimal, "sources:\n", `sources:
  - name: hr
    type: scimpull
    max_objects: 7000
    scimpull:
      base_url: https://scim.example.com/scim/v2
      token: fixture-secret-scimpull
`, 1)
	body = strings.Replace(body, "    type: miniorange\n", "    type: miniorange\n    max_objects: 250000\n", 1)
	cfg := mustLoad(t, writeConfig(t, "", body), nil)
	hr, corp := cfg.Sources[0], cfg.Sources[1]
	if hr.MaxObjects != 7000 || hr.SCIMPull.MaxObjects != 7000 {
		t.Errorf("scimpull max_objects = %d, block %d; want 7000 in both", hr.MaxObjects, hr.SCIMPull.MaxObjects)
	}
	if corp.MaxObjects != 250000 || corp.MiniOrange.MaxObjects != 250000 {
		t.Errorf("miniorange max_objects = %d, block %d; want 250000 in both", corp.MaxObjects, corp.MiniOrange.MaxObjects)
	}

	// An explicit 0 is kept (and refused by Validate), never replaced by the default.
	body = strings.Replace(minimal, "    type: miniorange\n", "    type: miniorange\n    max_objects: 0\n", 1)
	_, err := LoadAndValidate(writeConfig(t, "", body), nil)
	var ps *Problems
	if !errors.As(err, &ps) || len(ps.List) != 1 || ps.List[0].Path != "sources[0].max_objects" || !errors.Is(err, ErrInvalid) {
		t.Errorf("max_objects: 0 gave %v, want one problem at sources[0].max_objects", err)
	}

	// Built in code: ApplyDefaults fills and copies it.
	c := validConfig()
	if c.Sources[0].MaxObjects != DefaultMaxObjects || c.Sources[0].MiniOrange.MaxObjects != DefaultMaxObjects ||
		c.Sources[1].SCIMPull.MaxObjects != DefaultMaxObjects {
		t.Errorf("ApplyDefaults: max_objects %d, miniorange %d, scimpull %d", c.Sources[0].MaxObjects,
			c.Sources[0].MiniOrange.MaxObjects, c.Sources[1].SCIMPull.MaxObjects)
	}
	c = &Config{Sources: []SourceConfig{{Name: "x", Type: SourceMiniOrange, MaxObjects: 42, MiniOrange: &MiniOrangeConfig{}}}}
	c.ApplyDefaults()
	if c.Sources[0].MaxObjects != 42 || c.Sources[0].MiniOrange.MaxObjects != 42 {
		t.Errorf("ApplyDefaults replaced a set max_objects: %d, block %d", c.Sources[0].MaxObjects, c.Sources[0].MiniOrange.MaxObjects)
	}
}

func TestPacedRateLimitGetsABurst(t *testing.T) {
	body := strings.Replace(minimal, `      api_key: fixture-secret-mo-key
`, `      api_key: fixture-secret-mo-key
      rate_limit: {requests_per_second: 2.5}
`, 1)
	cfg := mustLoad(t, writeConfig(t, "", body), nil)
	if got := cfg.Sources[0].MiniOrange.RateLimit; got.Burst != 3 || got.Concurrency != 4 {
		t.Errorf("rate_limit = %+v, want burst 3 and the default concurrency", got)
	}
}

func TestExampleValidates(t *testing.T) {
	cfg := mustLoad(t, "idsync.example.yaml", nil)
	if got := cfg.AdminToken.Value(); got != "example-admin-token-0123456789" {
		t.Errorf("admin token from file = %q (want it trimmed of its newline)", got)
	}
	if got := cfg.Sources[0].MiniOrange.APIKey.Value(); got != "example-miniorange-api-key" {
		t.Errorf("miniorange api key = %q", got)
	}
	if got := cfg.Sink.Jira.AdminAPI.OrgAPIKey.Value(); got != "example-org-api-key" {
		t.Errorf("org api key = %q", got)
	}
	if len(cfg.Sources) < 4 || cfg.Sources[2].Type != SourceSCIM || !cfg.Sources[2].PushEnabled() ||
		!cfg.Sources[3].CustomersOnly || cfg.Sources[3].Push.Token.Value() != "example-scim-token-customers-0123456789" {
		t.Errorf("sources = %+v", cfg.Sources)
	}
	if cfg.Mapping.Email.Replace != "$1@example.com" {
		t.Errorf("a $1 in a replacement was touched by ${VAR} expansion: %q", cfg.Mapping.Email.Replace)
	}
}

// TestExampleCoversSchema walks the schema by reflection: every key must appear in the
// example, so the documentation cannot fall behind the code.
func TestExampleCoversSchema(t *testing.T) {
	data, err := os.ReadFile("idsync.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var walk func(v any, prefix string)
	walk = func(v any, prefix string) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				key := joinKey(prefix, k)
				present[key] = true
				walk(e, key)
			}
		case []any:
			for _, e := range t {
				walk(e, prefix+"[]")
			}
		}
	}
	walk(doc, "")
	var schema []string
	walkSchemaKeys(configType, "", func(key string) { schema = append(schema, key) })
	if len(schema) < 80 {
		t.Fatalf("schema walk found only %d keys", len(schema))
	}
	for _, k := range schema {
		if !present[k] {
			t.Errorf("key %s is missing from idsync.example.yaml", k)
		}
	}
	// And every key of the example is documented by a comment right above it or on its line.
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		trim := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
		if trim == "" || strings.HasPrefix(trim, "#") || !strings.Contains(trim, ":") {
			continue
		}
		if i == 0 || (!strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") && !strings.Contains(l, "#")) {
			// keys inside a documented block (the second and third source repeat the first's)
			if strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "  - ") {
				continue
			}
			t.Errorf("line %d %q has no comment", i+1, l)
		}
	}
}

func TestDemoConfig(t *testing.T) {
	cfg := mustLoad(t, "demo.yaml", nil)
	if cfg.Listen != "127.0.0.1:18080" || cfg.AdminToken.Value() != "demo-admin-token" ||
		cfg.State.Path != "./idsync-demo.db" || cfg.Schedule != "@every 1m" {
		t.Errorf("top = %q %q %q %q", cfg.Listen, cfg.AdminToken.Value(), cfg.State.Path, cfg.Schedule)
	}
	s := cfg.Sources[0]
	if s.Name != "corp" || s.Type != SourceMiniOrange || s.MiniOrange.BaseURL != "http://127.0.0.1:18082" ||
		s.MiniOrange.CustomerKey != "100001" || s.MiniOrange.APIKey.Value() != "sim-mo-api-key" ||
		!s.PushEnabled() || s.Push.Token.Value() != "demo-scim-token" {
		t.Errorf("source = %+v %+v %+v", s, *s.MiniOrange, *s.Push)
	}
	j := cfg.Sink.Jira
	if j.BaseURL != "http://127.0.0.1:18081" || j.Email != "admin@example.com" || j.APIToken.Value() != "sim-jira-token" ||
		j.AdminAPI == nil || j.AdminAPI.BaseURL != "http://127.0.0.1:18081" || j.AdminAPI.OrgAPIKey.Value() != "sim-org-key" ||
		!slices.Equal(j.Products, []string{"jira-software"}) {
		t.Errorf("jira = %+v", *j)
	}
	if len(cfg.Sources) != 2 || !cfg.Sources[1].CustomersOnly || cfg.Sources[1].Type != SourceSCIM || cfg.Sources[1].Push.Token.Value() != "demo-customers-token" {
		t.Errorf("customers source = %+v", cfg.Sources)
	}
	m := cfg.Mapping
	if !m.ImportUsers || !m.ImportGroups || len(m.Groups) != 1 || m.Groups[0].IdP != "Engineering" ||
		!slices.Equal(m.Groups[0].Jira, []string{"engineering", "developers"}) ||
		!slices.Equal(m.DefaultGroups, []string{"jira-software-users"}) ||
		len(m.Customers) != 2 || m.Customers[0].IdP != "Jira-Service-group" || !slices.Equal(m.Customers[0].ServiceDesks, []string{"DEMO"}) ||
		m.Customers[1].Source != "customers" || !slices.Equal(m.Customers[1].ServiceDesks, []string{"DEMO"}) {
		t.Errorf("mapping = %+v", m)
	}
	want := Default().Safety
	want.GracePasses = 1
	if cfg.Safety != want {
		t.Errorf("safety = %+v, want %+v", cfg.Safety, want)
	}

	t.Setenv("IDSYNC_STATE_PATH", "/tmp/other.db")
	if cfg := mustLoad(t, "demo.yaml", nil); cfg.State.Path != "/tmp/other.db" {
		t.Errorf("IDSYNC_STATE_PATH ignored: %q", cfg.State.Path)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("IDSYNC_STATE_PATH", "/var/lib/idsync/env.db")
	t.Setenv("IDSYNC_ADMIN_TOKEN", "env-admin-token-0123456789")
	t.Setenv("IDSYNC_SINK_JIRA_API_TOKEN", "env-jira-token")
	t.Setenv("IDSYNC_LOG_LEVEL", "debug")
	t.Setenv("IDSYNC_SAFETY_GRACE_PASSES", "5")
	t.Setenv("IDSYNC_SAFETY_MAX_DEACTIVATION_PERCENT", "2.5")
	t.Setenv("IDSYNC_JITTER", "10s")
	t.Setenv("IDSYNC_MAPPING_IMPORT_GROUPS", "true")
	t.Setenv("IDSYNC_SINK_JIRA_RATE_LIMIT_REQUESTS_PER_SECOND", "7")
	t.Setenv("IDSYNC_SINK_JIRA_ADMIN_API_ORG_API_KEY", "env-org-key")

	cfg := mustLoad(t, "testdata/minimal.yaml", nil)
	if cfg.State.Path != "/var/lib/idsync/env.db" || cfg.AdminToken.Value() != "env-admin-token-0123456789" ||
		cfg.Sink.Jira.APIToken.Value() != "env-jira-token" || cfg.Log.Level != "debug" ||
		cfg.Safety.GracePasses != 5 || cfg.Safety.MaxDeactivationPercent != 2.5 || cfg.Jitter != 10*time.Second ||
		!cfg.Mapping.ImportGroups || cfg.Sink.Jira.RateLimit.RequestsPerSecond != 7 {
		t.Errorf("env not applied: %+v", cfg)
	}
	// An env key inside an optional block creates it (and gets the block's defaults).
	if a := cfg.Sink.Jira.AdminAPI; a == nil || a.OrgAPIKey.Value() != "env-org-key" || a.BaseURL != DefaultAdminAPIBaseURL {
		t.Errorf("admin_api from env = %+v", a)
	}
	// Keys left alone keep the file's values and the defaults.
	if cfg.Sink.Jira.RateLimit.Burst != 20 || cfg.Sources[0].MiniOrange.CustomerKey != "100001" {
		t.Errorf("unrelated keys changed")
	}
}

func TestEnvSecretReplacesFileSecret(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "secrets", "jira"), "file-jira-token\n")
	body := strings.Replace(minimal, "    api_token: fixture-secret-jira-token\n", "    api_token_file: secrets/jira\n", 1)
	p := writeConfig(t, dir, body)

	cfg := mustLoad(t, p, nil)
	if cfg.Sink.Jira.APIToken.Value() != "file-jira-token" {
		t.Fatalf("token from file = %q", cfg.Sink.Jira.APIToken.Value())
	}
	t.Setenv("IDSYNC_SINK_JIRA_API_TOKEN", "env-jira-token")
	cfg = mustLoad(t, p, nil)
	if cfg.Sink.Jira.APIToken.Value() != "env-jira-token" || cfg.Sink.Jira.APITokenFile != "" {
		t.Errorf("env did not replace the file's secret: %q from %q", cfg.Sink.Jira.APIToken.Value(), cfg.Sink.Jira.APITokenFile)
	}
	// And the other way round: a *_FILE variable replaces an inline secret of the file.
	os.Unsetenv("IDSYNC_SINK_JIRA_API_TOKEN")
	t.Setenv("IDSYNC_ADMIN_TOKEN_FILE", filepath.Join(dir, "admin"))
	writeFile(t, filepath.Join(dir, "admin"), "admin-token-from-env-file\r\n")
	cfg = mustLoad(t, p, nil)
	if cfg.AdminToken.Value() != "admin-token-from-env-file" {
		t.Errorf("admin token = %q", cfg.AdminToken.Value())
	}
	// Both forms in the environment is the same mistake as both in the file.
	t.Setenv("IDSYNC_ADMIN_TOKEN", "env-admin-token-0123456789")
	_, err := Load(p, nil)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "admin_token: give either admin_token or admin_token_file") {
		t.Errorf("both in env: %v", err)
	}
}

func TestEnvWrongTypeNamesTheVariable(t *testing.T) {
	t.Setenv("IDSYNC_SAFETY_GRACE_PASSES", "two")
	t.Setenv("IDSYNC_SHUTDOWN_TIMEOUT", "soon")
	t.Setenv("IDSYNC_MAPPING_IMPORT_USERS", "maybe")
	_, err := Load("testdata/minimal.yaml", nil)
	for _, want := range []string{
		`safety.grace_passes: want an integer, got "two" (from IDSYNC_SAFETY_GRACE_PASSES)`,
		`shutdown_timeout: want a duration such as "30s" or "15m", got "soon" (from IDSYNC_SHUTDOWN_TIMEOUT)`,
		`mapping.import_users: want true or false, got "maybe" (from IDSYNC_MAPPING_IMPORT_USERS)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
}

func TestEnvNames(t *testing.T) {
	vars := EnvVars()
	for _, want := range []string{"IDSYNC_STATE_PATH", "IDSYNC_ADMIN_TOKEN", "IDSYNC_ADMIN_TOKEN_FILE",
		"IDSYNC_SINK_JIRA_API_TOKEN", "IDSYNC_LOG_LEVEL", "IDSYNC_SINK_JIRA_ADMIN_API_ORG_API_KEY_FILE",
		"IDSYNC_SAFETY_MAX_MEMBERSHIP_REMOVALS", "IDSYNC_TLS_CERT_FILE"} {
		if !slices.Contains(vars, want) {
			t.Errorf("%s missing from EnvVars()", want)
		}
	}
	for i := 1; i < len(vars); i++ {
		if vars[i] == vars[i-1] {
			t.Errorf("two keys share %s", vars[i])
		}
	}
	for _, v := range vars {
		if strings.Contains(v, "SOURCES") || strings.Contains(v, "PRODUCTS") || strings.Contains(v, "MAPPING_GROUPS") {
			t.Errorf("%s addresses a list", v)
		}
	}
}

func TestVarExpansionInSources(t *testing.T) {
	t.Setenv("MO_CUSTOMER", "243321")
	t.Setenv("MO_KEY", "key-from-env")
	t.Setenv("MO_HOST", "mo.example.com")
	t.Setenv("EMPTY_BUT_SET", "")
	body := strings.Replace(minimal, `      customer_key: "100001"
      api_key: fixture-secret-mo-key
`, `      base_url: https://${MO_HOST}${EMPTY_BUT_SET}
      customer_key: ${MO_CUSTOMER}
      api_key: ${MO_KEY}
      page_size: ${MO_PAGE}
`, 1)
	body += `mapping:
  username:
    pattern: '^(.*)$$${x}'
    replace: "$1"
`
	t.Setenv("MO_PAGE", "250")
	cfg := mustLoad(t, writeConfig(t, "", body), nil)
	mo := cfg.Sources[0].MiniOrange
	if mo.BaseURL != "https://mo.example.com" || mo.CustomerKey != "243321" || mo.APIKey.Value() != "key-from-env" || mo.PageSize != 250 {
		t.Errorf("expanded = %q %q %q %d", mo.BaseURL, mo.CustomerKey, mo.APIKey.Value(), mo.PageSize)
	}
	if cfg.Mapping.UserName.Pattern != "^(.*)$${x}" || cfg.Mapping.UserName.Replace != "$1" {
		t.Errorf("escapes = %q %q", cfg.Mapping.UserName.Pattern, cfg.Mapping.UserName.Replace)
	}

	// Values read from the environment or from secret files are never expanded.
	t.Setenv("IDSYNC_ADMIN_TOKEN", "literal-${MO_KEY}-token")
	cfg = mustLoad(t, writeConfig(t, "", body), nil)
	if cfg.AdminToken.Value() != "literal-${MO_KEY}-token" {
		t.Errorf("an environment value was expanded: %q", cfg.AdminToken.Value())
	}

	// A malformed reference is an error, not a silent literal.
	bad := strings.Replace(minimal, "api_key: fixture-secret-mo-key", "api_key: ${MO KEY}", 1)
	_, err := Load(writeConfig(t, "", bad), nil)
	if err == nil || !strings.Contains(err.Error(), `sources[0].miniorange.api_key: "${MO KEY}" is not a variable reference`) {
		t.Errorf("malformed reference: %v", err)
	}
}

func TestFlagOverrides(t *testing.T) {
	t.Setenv("IDSYNC_LISTEN", "127.0.0.1:7000")
	t.Setenv("IDSYNC_LOG_FORMAT", "console")
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	BindFlags(fs)
	BindFlags(fs) // twice is harmless
	for _, name := range []string{"listen", "state", "log-level", "log-format", "schedule"} {
		if fs.Lookup(name) == nil {
			t.Fatalf("flag --%s not bound", name)
		}
	}
	if err := fs.Parse([]string{"--listen=127.0.0.1:9999", "--state", "/tmp/flag.db", "--log-level=warn", "--schedule=*/5 * * * *"}); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, "testdata/minimal.yaml", fs)
	if cfg.Listen != "127.0.0.1:9999" || cfg.State.Path != "/tmp/flag.db" || cfg.Log.Level != "warn" || cfg.Schedule != "*/5 * * * *" {
		t.Errorf("flags not applied: %q %q %q %q", cfg.Listen, cfg.State.Path, cfg.Log.Level, cfg.Schedule)
	}
	// A flag not given leaves the environment's value in place.
	if cfg.Log.Format != "console" {
		t.Errorf("log.format = %q, want the environment's console", cfg.Log.Format)
	}

	fs = pflag.NewFlagSet("test", pflag.ContinueOnError)
	BindFlags(fs)
	if err := fs.Parse([]string{"--log-level=loud"}); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAndValidate("testdata/minimal.yaml", fs)
	if err == nil || !strings.Contains(err.Error(), `log.level: "loud" is not one of`) {
		t.Errorf("bad flag value: %v", err)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "etc")
	writeFile(t, filepath.Join(cfgDir, "mo-key"), "mo-secret\n\n")
	writeFile(t, filepath.Join(dir, "abs-token"), "scim-secret")
	body := strings.Replace(minimal, "      api_key: fixture-secret-mo-key\n", "      api_key_file: mo-key\n", 1)
	body = strings.Replace(body, "      token: fixture-secret-scim-corp\n", "      token_file: "+filepath.Join(dir, "abs-token")+"\n", 1)
	p := writeConfig(t, cfgDir, body)

	// Relative to the config file's folder, not to the working directory.
	t.Chdir(dir)
	cfg := mustLoad(t, p, nil)
	if got := cfg.Sources[0].MiniOrange.APIKey.Value(); got != "mo-secret" {
		t.Errorf("relative secret file = %q", got)
	}
	if got := cfg.Sources[0].Push.Token.Value(); got != "scim-secret" {
		t.Errorf("absolute secret file = %q", got)
	}
	if cfg.Sources[0].MiniOrange.APIKeyFile != "mo-key" {
		t.Errorf("the *_file path as written should be kept for display: %q", cfg.Sources[0].MiniOrange.APIKeyFile)
	}

	cases := []struct {
		name, setup, want string
	}{
		{"empty", "empty", "sources[0].miniorange.api_key_file: secret file " + filepath.Join(cfgDir, "empty") + " is empty"},
		{"newlines only", "blank", "is empty"},
		{"directory", "dir", "not a regular file"},
		{"fifo", "fifo", "not a regular file"},
		{"too large", "big", "is larger than 64 KiB"},
		{"missing", "missing", "no such file or directory"},
	}
	writeFile(t, filepath.Join(cfgDir, "empty"), "")
	writeFile(t, filepath.Join(cfgDir, "blank"), "\n\r\n")
	writeFile(t, filepath.Join(cfgDir, "dir", "x"), "x")
	writeFile(t, filepath.Join(cfgDir, "big"), strings.Repeat("k", 64<<10+1))
	if err := mkfifo(filepath.Join(cfgDir, "fifo")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := strings.Replace(body, "api_key_file: mo-key", "api_key_file: "+tc.setup, 1)
			_, err := LoadAndValidate(writeConfig(t, cfgDir, b), nil)
			if !errors.Is(err, ErrUnreadableFile) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			// The unreadable file is the one problem: no extra "api_key: required".
			if ps := (*Problems)(nil); errors.As(err, &ps) && len(ps.List) != 1 {
				t.Errorf("%d problems: %v", len(ps.List), err)
			}
		})
	}
}

func TestTLSPathsResolveAgainstConfigFolder(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	writeFile(t, filepath.Join(dir, "tls", "cert.pem"), certPEM)
	writeFile(t, filepath.Join(dir, "tls", "key.pem"), keyPEM)
	body := minimal + "tls:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n"
	cfg := mustLoad(t, writeConfig(t, dir, body), nil)
	if cfg.TLS.CertFile != filepath.Join(dir, "tls", "cert.pem") || !cfg.TLS.Enabled() {
		t.Errorf("tls = %+v", cfg.TLS)
	}
}

func TestKeysAreCaseInsensitiveButNotTwice(t *testing.T) {
	body := strings.Replace(minimal, "admin_token:", "Admin_Token:", 1)
	cfg := mustLoad(t, writeConfig(t, "", body), nil)
	if cfg.AdminToken.Value() != "fixture-secret-admin-0001" {
		t.Errorf("Admin_Token not read")
	}
	body = minimal + "Listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n"
	_, err := Load(writeConfig(t, "", body), nil)
	if !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), `listen: given twice (as "Listen" and "listen")`) {
		t.Errorf("case duplicate: %v", err)
	}
}

func TestLoadMissingConfigFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if !errors.Is(err, ErrUnreadableFile) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("missing file: %v", err)
	}
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Errorf("%T, want *Problems", err)
	}
}

func TestWrongTypesEverywhere(t *testing.T) {
	body := minimal + `listen: [a]
jitter: 1.5
log: debug
safety:
  grace_passes: 2.5
  max_deactivations: 99999999999999999999
  max_deactivation_percent: ten
mapping:
  import_users: "yes please"
  default_groups: jira-software-users
  groups: {idp: x}
sources_extra: 1
`
	_, err := Load(writeConfig(t, "", body), nil)
	for _, want := range []string{
		"listen: want a string, got a list",
		`jitter: want a duration such as "30s" or "15m", got 1.5`,
		"log: want a mapping of keys, got a string",
		"safety.grace_passes: want an integer, got 2.5",
		"safety.max_deactivations: want an integer",
		`safety.max_deactivation_percent: want a number, got "ten"`,
		`mapping.import_users: want true or false, got "yes please"`,
		`mapping.default_groups: want a list, got "jira-software-users"`,
		"mapping.groups: want a list, got a mapping",
		"sources_extra: unknown key",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	// Unquoted numbers are fine where a string is wanted (customer_key: 100001).
	body = strings.Replace(minimal, `customer_key: "100001"`, "customer_key: 100001", 1)
	if cfg := mustLoad(t, writeConfig(t, "", body), nil); cfg.Sources[0].MiniOrange.CustomerKey != "100001" {
		t.Errorf("customer_key = %q", cfg.Sources[0].MiniOrange.CustomerKey)
	}
}

// TestSecretsNeverInMessages puts secrets where they do not belong and checks every message.
func TestSecretsNeverInMessages(t *testing.T) {
	const s = "Sup3r-S3cret-Value"
	bodies := map[string]string{
		"secret as a list":       strings.Replace(minimal, "api_key: fixture-secret-mo-key", "api_key: ["+s+"]", 1),
		"secret as a mapping":    strings.Replace(minimal, "api_token: fixture-secret-jira-token", "api_token: {"+s+": 1}", 1),
		"secret as a bool":       strings.Replace(minimal, "api_token: fixture-secret-jira-token", "api_token: true", 1),
		"secret as a block":      strings.Replace(minimal, "    push:\n      token: fixture-secret-scim-corp\n", "    push: "+s+"\n", 1),
		"short admin token":      strings.Replace(minimal, "admin_token: fixture-secret-admin-0001", "admin_token: "+s[:10], 1),
		"push token = admin":     strings.Replace(minimal, "token: fixture-secret-scim-corp", "token: fixture-secret-admin-0001", 1),
		"secret with a newline":  strings.Replace(minimal, "api_key: fixture-secret-mo-key", `api_key: "`+s+`\r\nX-Injected: 1"`, 1),
		"both forms":             strings.Replace(minimal, "api_key: fixture-secret-mo-key", "api_key: "+s+"\n      api_key_file: nowhere", 1),
		"secret in url":          strings.Replace(minimal, "base_url: https://example.atlassian.net", "base_url: https://u:"+s+"@example.atlassian.net", 1),
		"secret in bad url":      strings.Replace(minimal, "base_url: https://example.atlassian.net", "base_url: \"https://u:"+s+"@exa mple%zz\"", 1),
		"duplicate push token":   strings.Replace(minimal, "sources:\n", "sources:\n  - {name: other, type: scim, push: {token: fixture-secret-scim-corp}}\n", 1),
		"secret with whitespace": strings.Replace(minimal, "api_token: fixture-secret-jira-token", `api_token: " `+s+`"`, 1),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			_, err := LoadAndValidate(writeConfig(t, "", body), nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, leak := range []string{s, s[:10], "fixture-secret"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("secret %q in message:\n%v", leak, err)
				}
			}
		})
	}
}

func TestProblemsFormat(t *testing.T) {
	p := Problem{Path: "sources[0].miniorange.customer_key", Err: ErrRequired}
	if p.Error() != "sources[0].miniorange.customer_key: required" {
		t.Errorf("Problem.Error() = %q", p.Error())
	}
	ps := &Problems{}
	if ps.Err() != nil {
		t.Error("empty Problems is an error")
	}
	ps.Add("a", "one", ErrInvalid)
	ps.Add("a", "one", ErrInvalid)
	ps.Add("", "file-level", ErrSyntax)
	ps.Add("b.c", "", ErrDuplicate)
	if ps.Error() != "a: one\nfile-level\nb.c: duplicate" {
		t.Errorf("Problems.Error() = %q", ps.Error())
	}
	err := fmt.Errorf("loading: %w", ps.Err())
	if !errors.Is(err, ErrDuplicate) || !errors.Is(err, ErrSyntax) || errors.Is(err, ErrRequired) {
		t.Error("errors.Is does not see the sentinels")
	}
	var one Problem
	if !errors.As(err, &one) || one.Path != "a" {
		t.Errorf("errors.As(Problem) = %+v", one)
	}
}

// BenchmarkLoadExample measures a full load and validation of the example (with its secret
// files): what a start or a SIGHUP reload costs.
func BenchmarkLoadExample(b *testing.B) {
	for b.Loop() {
		if _, err := LoadAndValidate("idsync.example.yaml", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSyntaxErrorsCarryALine(t *testing.T) {
	for name, tc := range map[string]struct{ body, line string }{
		"invalid utf-8":     {"listen: x\nlog:\n  level: \xff\n", "line 3:"},
		"control character": {"listen: x\n\nlog: \x01\n", "line 3:"},
		"bad indentation":   {"log:\n  level: info\n format: json\n", "line 2:"}, // where YAML notices
	} {
		_, err := Load(writeConfig(t, "", tc.body), nil)
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.line) {
			t.Errorf("%s: %v, want a syntax error at %s", name, err, tc.line)
		}
	}
}
