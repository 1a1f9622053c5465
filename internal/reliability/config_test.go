package reliability

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// Secrets of the simulators; every output a test captures is searched for them.
const (
	jiraToken = jiratest.DefaultAPIToken
	orgAPIKey = jiratest.DefaultOrgAPIKey
	moAPIKey  = miniorangetest.DefaultAPIKey
)

// cfgOpts render one idsync config. Zero values take the defaults noted.
type cfgOpts struct {
	Dir        string // the config's folder; the state file lives there too
	JiraURL    string
	MOURL      string
	Listen     string // default 127.0.0.1:0
	Schedule   string // default @every 1h
	LogLevel   string // default info
	AdminToken string // default a fixed test token
	// SCIMTokens maps extra push-only (type scim) source names to their tokens; PushToken,
	// when set, turns on push for the miniOrange source corp.
	SCIMTokens map[string]string
	// CustomersOnly marks those of SCIMTokens' sources that are customers_only.
	CustomersOnly map[string]bool
	PushToken     string
	NoSource      bool // leave the miniOrange source out (push-only sources only)

	JiraRPS     float64 // sink.jira.rate_limit.requests_per_second (default 500)
	Concurrency int     // default 4
	PageSize    int     // sources[].miniorange.page_size (default 500)
	// SecretsIn says how secrets are given: inline (""), "files" (*_file next to the config)
	// or "env" (${VAR} in the file, the value in the environment: see env).
	SecretsIn string

	ImportGroups  bool
	Groups        string // YAML flow items under mapping.groups, e.g. "{idp: Engineering, jira: [engineering]}"
	Customers     string // YAML flow items under mapping.customers
	DefaultGroups string // default [jira-software-users]
	ExcludeGroups string // mapping.exclude_groups, a YAML flow list
	Grace         int
	MaxDeact      int     // default 25
	MaxPercent    float64 // default 10
	MaxRemovals   int     // default 250
	// Deactivate is sink.jira.deactivate (default remove-access); suspend also names the
	// simulator's organization (admin_api.org_id).
	Deactivate string
}

const defaultAdminToken = "rel-admin-token-7f3a9c"

func (o cfgOpts) path() string      { return filepath.Join(o.Dir, "idsync.yaml") }
func (o cfgOpts) statePath() string { return filepath.Join(o.Dir, "idsync.db") }

// secrets are the secret values the config holds.
func (o cfgOpts) secrets() []string {
	out := []string{jiraToken, orgAPIKey, moAPIKey, or(o.AdminToken, defaultAdminToken)}
	if o.PushToken != "" {
		out = append(out, o.PushToken)
	}
	for _, tok := range o.SCIMTokens {
		out = append(out, tok)
	}
	return out
}

// secretEnvName names the variable (or file) that carries a secret value.
func secretEnvName(value string) string {
	sum := sha256.Sum256([]byte(value))
	return "REL_SECRET_" + strings.ToUpper(hex.EncodeToString(sum[:4]))
}

// env is the environment the processes need for SecretsIn "env".
func (o cfgOpts) env() []string {
	if o.SecretsIn != "env" {
		return nil
	}
	var out []string
	for _, s := range o.secrets() {
		out = append(out, secretEnvName(s)+"="+s)
	}
	return out
}

func or[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// write renders the config to Dir/idsync.yaml (and the secret files) and returns its path.
func (o cfgOpts) write(t testing.TB) string {
	t.Helper()
	secret := func(key, value string) string {
		switch o.SecretsIn {
		case "files":
			file := filepath.Join(o.Dir, "secret-"+secretEnvName(value))
			if err := os.WriteFile(file, []byte(value+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%s_file: %q", key, file)
		case "env":
			return fmt.Sprintf("%s: ${%s}", key, secretEnvName(value))
		}
		return fmt.Sprintf("%s: %q", key, value)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\n", or(o.Listen, "127.0.0.1:0"))
	fmt.Fprintf(&b, "%s\n", secret("admin_token", or(o.AdminToken, defaultAdminToken)))
	fmt.Fprintf(&b, "state: {path: %q}\n", o.statePath())
	fmt.Fprintf(&b, "schedule: %q\n", or(o.Schedule, "@every 1h"))
	fmt.Fprintf(&b, "shutdown_timeout: 20s\n")
	fmt.Fprintf(&b, "log: {level: %s, format: json}\n", or(o.LogLevel, "info"))
	b.WriteString("sources:\n")
	if !o.NoSource {
		fmt.Fprintf(&b, `  - name: corp
    type: miniorange
    priority: 10
    miniorange:
      base_url: %s
      customer_key: %q
      %s
      page_size: %d
`, o.MOURL, miniorangetest.DefaultCustomerKey, secret("api_key", moAPIKey), or(o.PageSize, 500))
		if o.PushToken != "" {
			fmt.Fprintf(&b, "    push:\n      enabled: true\n      debounce: 200ms\n      %s\n", secret("token", o.PushToken))
		}
	}
	for _, name := range sortedKeys(o.SCIMTokens) {
		fmt.Fprintf(&b, "  - name: %s\n    type: scim\n    customers_only: %v\n    push:\n      enabled: true\n      debounce: 200ms\n      %s\n",
			name, o.CustomersOnly[name], secret("token", o.SCIMTokens[name]))
	}
	fmt.Fprintf(&b, `sink:
  type: jira
  jira:
    base_url: %s
    email: %s
    %s
    admin_api:
      base_url: %s
      %s%s
    products: [jira-software]
    deactivate: %s
    rate_limit: {requests_per_second: %g, burst: 50, concurrency: %d}
mapping:
  import_users: true
  import_groups: %v
`, o.JiraURL, jiratest.DefaultEmail, secret("api_token", jiraToken), o.JiraURL, secret("org_api_key", orgAPIKey), orgID(o.Deactivate),
		or(o.Deactivate, "remove-access"), or(o.JiraRPS, 500), or(o.Concurrency, 4), o.ImportGroups)
	if o.Groups != "" {
		fmt.Fprintf(&b, "  groups:\n")
		for _, g := range strings.Split(o.Groups, "\n") {
			fmt.Fprintf(&b, "    - %s\n", g)
		}
	}
	fmt.Fprintf(&b, "  default_groups: %s\n", or(o.DefaultGroups, "[jira-software-users]"))
	if o.ExcludeGroups != "" {
		fmt.Fprintf(&b, "  exclude_groups: %s\n", o.ExcludeGroups)
	}
	if o.Customers != "" {
		fmt.Fprintf(&b, "  customers:\n")
		for _, c := range strings.Split(o.Customers, "\n") {
			fmt.Fprintf(&b, "    - %s\n", c)
		}
	}
	fmt.Fprintf(&b, `safety:
  policy: sync
  grace_passes: %d
  max_deactivations: %d
  max_deactivation_percent: %g
  max_membership_removals: %d
`, o.Grace, or(o.MaxDeact, 25), or(o.MaxPercent, 10), or(o.MaxRemovals, 250))
	if err := os.WriteFile(o.path(), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return o.path()
}

// orgID is the admin_api.org_id line deactivate: suspend needs (none otherwise).
func orgID(deactivate string) string {
	if deactivate != "suspend" {
		return ""
	}
	return fmt.Sprintf("\n      org_id: %q", jiratest.DefaultOrgID)
}

func sortedKeys[V any](m map[string]V) []string {
	return unionKeys(m, nil)
}
