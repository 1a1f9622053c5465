package configs

import (
	"errors"
	"strings"
	"testing"
)

// A block with a value of the wrong type still has its other problems listed: its missing
// secret files, its other invalid keys, and the problems of the blocks around it.
func TestValidateListsEveryProblemOfABlock(t *testing.T) {
	body := `admin_token: fixture-secret-admin-0001
sources:
  - name: corp
    type: miniorange
    miniorange:
      customer_key: "not-a-number"
      api_key_file: secrets/missing-mo-key
      page_size: "many"
    push:
      token_file: secrets/missing-push-token
      debounce: 5
  - name: hr
    type: scimpull
    scimpull:
      base_url: https://scim.example.com/v2
      token_file: secrets/missing-scim-token
      page_size: 5000
sink:
  jira:
    base_url: https://example.atlassian.net
    email: admin@example.com
    api_token_file: secrets/missing-jira-token
    rate_limit: {requests_per_second: fast, burst: -1}
`
	_, err := LoadAndValidate(writeConfig(t, "", body), nil)
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want *Problems, got %v", err)
	}
	want := []string{
		// the type errors
		`sources[0].miniorange.page_size: want an integer, got "many"`,
		`sources[0].push.debounce: want a duration`,
		`sink.jira.rate_limit.requests_per_second: want a number, got "fast"`,
		// the secret files of the same blocks
		"sources[0].miniorange.api_key_file: cannot read secret file",
		"sources[0].push.token_file: cannot read secret file",
		"sink.jira.api_token_file: cannot read secret file",
		// other invalid keys of the same blocks
		"sources[0].miniorange.customer_key: must be the numeric customer key",
		"sink.jira.rate_limit.burst: must be >= 0, got -1",
		// a block without a type error, as before
		"sources[1].scimpull.token_file: cannot read secret file",
		"sources[1].scimpull.page_size: must be between 1 and 1000, got 5000",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	// Nothing the type errors and missing files cause on their own is listed twice or
	// blamed on the block ("sources[0].miniorange: required for type miniorange").
	for _, p := range ps.List {
		if p.Path == "sources[0].miniorange" || p.Path == "sink.jira" || p.Path == "sources[0].push.token" ||
			p.Path == "sources[0].miniorange.api_key" || p.Path == "sink.jira.api_token" {
			t.Errorf("a consequence is listed as a problem: %v", p)
		}
	}
	if len(ps.List) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ps.List), len(want), err)
	}
}

func TestDropPath(t *testing.T) {
	m := map[string]any{
		"sources": []any{
			map[string]any{"name": "a", "MiniOrange": map[string]any{"page_size": "x", "customer_key": "1"}},
			"not a block",
		},
		"listen": []any{"a"},
	}
	dropPath(m, "sources[0].miniorange.page_size")
	dropPath(m, "sources[1]")
	dropPath(m, "listen")
	dropPath(m, "nothing.here[3].at")
	dropPath(m, "sources[7].name")
	mo := m["sources"].([]any)[0].(map[string]any)["MiniOrange"].(map[string]any)
	if _, ok := mo["page_size"]; ok || mo["customer_key"] != "1" {
		t.Errorf("miniorange block = %v", mo)
	}
	if m["sources"].([]any)[1] != nil {
		t.Errorf("a failed list item stays: %v", m["sources"])
	}
	if _, ok := m["listen"]; ok {
		t.Error("listen stays")
	}
}
