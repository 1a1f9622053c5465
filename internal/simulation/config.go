package simulation

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// Fixed names and secrets of a simulated world.
const (
	sourceName = "corp"
	scimToken  = "sim-scim-token-4c1d7e"
	adminToken = "sim-admin-token-9b2f60"
	// pageSize is small so a modest org still takes several pages per listing: page faults,
	// shifted pages and pushes fired at page N need pages to land on.
	pageSize = 10
)

// Params are the parts of the config a history changes (mapping and safety); everything
// else is fixed.
type Params struct {
	// Mappings map IdP groups to Jira groups (mapping.groups), by IdP group name.
	Mappings    map[string][]string
	Grace       int
	MaxDeact    int
	MaxPercent  float64
	MaxRemovals int
}

func (p Params) clone() Params {
	c := p
	c.Mappings = make(map[string][]string, len(p.Mappings))
	for k, v := range p.Mappings {
		c.Mappings[k] = append([]string(nil), v...)
	}
	return c
}

// managedGroups are the Jira groups the mapping names, lower-cased, the default group
// included.
func (p Params) managedGroups() map[string]bool {
	out := map[string]bool{strings.ToLower(defaultGroup): true}
	for _, js := range p.Mappings {
		for _, j := range js {
			out[strings.ToLower(j)] = true
		}
	}
	return out
}

func (p Params) String() string {
	var m []string
	for _, idp := range sortedKeys(p.Mappings) {
		m = append(m, idp+"->"+strings.Join(p.Mappings[idp], "+"))
	}
	return fmt.Sprintf("grace=%d max_deact=%d max_pct=%g max_removals=%d map=[%s]",
		p.Grace, p.MaxDeact, p.MaxPercent, p.MaxRemovals, strings.Join(m, " "))
}

// render is the YAML config of a world: its IdP's source (source, a sources item), the Jira
// sink with the admin API on the same simulator, one request at a time on both sides (so the
// order of requests, and with it every fault draw, is the same in every run of a seed).
func (p Params) render(dir, jiraURL, source string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: \"127.0.0.1:0\"\nadmin_token: %q\n", adminToken)
	fmt.Fprintf(&b, "state: {path: %q}\n", filepath.Join(dir, "idsync.db"))
	fmt.Fprintf(&b, "log: {level: error, format: json}\n")
	b.WriteString("sources:\n")
	b.WriteString(source)
	fmt.Fprintf(&b, `sink:
  type: jira
  jira:
    base_url: %s
    email: %s
    api_token: %q
    admin_api:
      base_url: %s
      org_api_key: %q
    products: [jira-software]
    deactivate: remove-access
    rate_limit: {requests_per_second: 0, concurrency: 1}
mapping:
  import_users: true
  import_groups: false
`, jiraURL, jiratest.DefaultEmail, jiratest.DefaultAPIToken, jiraURL, jiratest.DefaultOrgAPIKey)
	if len(p.Mappings) > 0 {
		b.WriteString("  groups:\n")
		for _, idp := range sortedKeys(p.Mappings) {
			fmt.Fprintf(&b, "    - {idp: %s, jira: [%s]}\n", idp, strings.Join(p.Mappings[idp], ", "))
		}
	}
	fmt.Fprintf(&b, "  default_groups: [%s]\n", defaultGroup)
	fmt.Fprintf(&b, `safety:
  policy: sync
  grace_passes: %d
  max_deactivations: %d
  max_deactivation_percent: %g
  max_membership_removals: %d
`, p.Grace, p.MaxDeact, p.MaxPercent, p.MaxRemovals)
	return b.String()
}

// load writes the config of a world whose IdP is idp to dir and loads it as the binary does
// (validation included).
func (p Params) load(dir, jiraURL string, idp idpSide) (*configs.Config, error) {
	source, err := idp.source(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "idsync.yaml")
	if err := os.WriteFile(path, []byte(p.render(dir, jiraURL, source)), 0o600); err != nil {
		return nil, err
	}
	cfg, err := configs.LoadAndValidate(path, nil)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", p, err)
	}
	return cfg, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
