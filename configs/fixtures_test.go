package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every secret in the fixtures contains this marker; no message may ever show it.
const fixtureSecretMarker = "fixture-secret"

// badFixtures pairs each testdata/*.bad.yaml with the message it must produce (field path
// included), the sentinel it wraps, and how many problems the file has in all.
var badFixtures = []struct {
	file  string
	want  string
	is    error
	count int
}{
	{"missing-secret.bad.yaml", "sources[0].miniorange.api_key: required", ErrRequired, 1},
	{"secret-inline-and-file.bad.yaml", "sink.jira.api_token: give either api_token or api_token_file, not both", ErrConflict, 1},
	{"bad-cron.bad.yaml", `schedule: invalid schedule "*/15 * * *": expected 5 to 6 fields, found 4`, ErrInvalid, 1},
	{"unknown-key-top.bad.yaml", "lisen: unknown key (did you mean listen?)", ErrUnknownKey, 1},
	{"empty-key.bad.yaml", `log."": unknown key`, ErrUnknownKey, 1},
	{"unknown-key-nested.bad.yaml", "sink.jira.rate_limt: unknown key", ErrUnknownKey, 1},
	{"unknown-key-source.bad.yaml", "sources[1].miniorange.pagesize: unknown key", ErrUnknownKey, 1},
	{"wrong-type.bad.yaml", `safety.grace_passes: want an integer, got "two"`, ErrWrongType, 1},
	{"wrong-type-secret.bad.yaml", "admin_token: want a string, got a list", ErrWrongType, 1},
	{"wrong-type-block.bad.yaml", "sink: want a mapping of keys, got a string", ErrWrongType, 1},
	{"duration-without-unit.bad.yaml", `shutdown_timeout: want a duration such as "30s"`, ErrWrongType, 1},
	{"duplicate-source-name.bad.yaml", `sources[1].name: "corp" is already the name of sources[0]`, ErrDuplicate, 1},
	{"bad-source-name.bad.yaml", `sources[0].name: "Corp_1" must match [a-z0-9-]+`, ErrInvalid, 1},
	{"unknown-source-type.bad.yaml", `sources[0].type: unknown source type "okta"`, ErrInvalid, 1},
	{"ldap-source.bad.yaml", "sources[0].ldap: required for type ldap", ErrRequired, 1},
	{"ldap-block.bad.yaml", `sources[0].ldap.start_tls: ldaps:// is TLS from the first byte`, ErrConflict, 7},
	{"type-block-mismatch.bad.yaml", "sources[0].scimpull: required for type scimpull", ErrRequired, 2},
	{"customer-key-not-numeric.bad.yaml", "sources[0].miniorange.customer_key: must be the numeric customer key", ErrInvalid, 1},
	{"page-size-range.bad.yaml", "sources[0].miniorange.page_size: must be between 1 and 1000, got 5000", ErrInvalid, 1},
	{"max-objects-zero.bad.yaml", "sources[0].max_objects: must be >= 1 (the most users or groups one listing of the source may report), got 0", ErrInvalid, 1},
	{"max-objects-in-block.bad.yaml", "sources[0].miniorange.max_objects: unknown key", ErrUnknownKey, 1},
	{"bad-policy.bad.yaml", `safety.policy: "delete-all" is not one of sync, upsert-only, create-only`, ErrInvalid, 1},
	{"negative-thresholds.bad.yaml", "safety.max_deactivations: must be >= 0, got -5", ErrInvalid, 3},
	{"negative-thresholds.bad.yaml", "safety.max_membership_removals: must be >= 0, got -1", ErrInvalid, 3},
	{"percent-over-100.bad.yaml", "safety.max_deactivation_percent: must be between 0 and 100, got 150", ErrInvalid, 1},
	{"malformed-url.bad.yaml", `sink.jira.base_url: "example.atlassian.net" must be an absolute http or https URL`, ErrInvalid, 1},
	{"url-with-credentials.bad.yaml", "sources[0].miniorange.base_url: must not hold credentials", ErrInvalid, 1},
	{"unreadable-file.bad.yaml", "admin_token_file: cannot read secret file: stat testdata/secrets/does-not-exist: no such file or directory", ErrUnreadableFile, 1},
	{"push-token-is-admin-token.bad.yaml", "sources[0].push.token: must differ from admin_token", ErrDuplicate, 1},
	{"duplicate-push-token.bad.yaml", "sources[1].push.token: same token as sources[0].push.token", ErrDuplicate, 1},
	{"previous-token-reused.bad.yaml", "sources[1].push.previous_token: same token as sources[0].push.token", ErrDuplicate, 2},
	{"admin-api-without-config.bad.yaml", "sink.jira.deactivate: admin-api requires sink.jira.admin_api", ErrRequired, 1},
	{"suspend-without-org-id.bad.yaml", "sink.jira.admin_api.org_id: required with deactivate: suspend", ErrRequired, 1},
	{"unknown-product.bad.yaml", `sink.jira.products[0]: unknown product "confluence"`, ErrInvalid, 1},
	{"duplicate-group-mapping.bad.yaml", `mapping.groups[1].idp: IdP group "Engineering" is already mapped by mapping.groups[0]`, ErrDuplicate, 1},
	{"group-mapping-without-jira.bad.yaml", "mapping.groups[0].jira: required", ErrRequired, 1},
	{"customer-without-target.bad.yaml", "mapping.customers[0]: needs at least one of service_desks or organizations", ErrRequired, 1},
	{"bad-transform.bad.yaml", "mapping.username.pattern: does not compile", ErrInvalid, 1},
	{"jitter-too-long.bad.yaml", "jitter: 2m0s must be shorter than the schedule's interval (1m0s)", ErrInvalid, 1},
	{"tls-half.bad.yaml", "tls.key_file: required when tls.cert_file is set", ErrRequired, 1},
	{"bad-listen.bad.yaml", `listen: want host:port such as "127.0.0.1:8080", got "8080"`, ErrInvalid, 1},
	{"undefined-variable.bad.yaml", "sources[0].miniorange.api_key: environment variable IDSYNC_FIXTURE_UNSET_VARIABLE is not set", ErrInvalid, 1},
	{"no-sources.bad.yaml", "sources: at least one source is required", ErrRequired, 1},
	{"invalid-yaml.bad.yaml", "testdata/invalid-yaml.bad.yaml: line 3: did not find expected '-' indicator", ErrSyntax, 1},
	{"duplicate-key.bad.yaml", `testdata/duplicate-key.bad.yaml: line 4: mapping key "listen" already defined at line 3`, ErrSyntax, 1},
	{"two-documents.bad.yaml", "line 16: a second YAML document (---)", ErrSyntax, 1},
	{"top-level-list.bad.yaml", "the top level must be a mapping of keys", ErrWrongType, 1},
	{"comments-only.bad.yaml", "testdata/comments-only.bad.yaml: the file holds no settings", ErrEmpty, 1},
	{"empty.bad.yaml", "testdata/empty.bad.yaml: the file is empty", ErrEmpty, 1},
}

func TestBadFixtures(t *testing.T) {
	// Make sure the variable the fixture refers to is unset whatever the environment holds.
	t.Setenv("IDSYNC_FIXTURE_UNSET_VARIABLE", "")
	os.Unsetenv("IDSYNC_FIXTURE_UNSET_VARIABLE")

	for _, tc := range badFixtures {
		t.Run(strings.TrimSuffix(tc.file, ".bad.yaml"), func(t *testing.T) {
			cfg, err := LoadAndValidate(filepath.Join("testdata", tc.file), nil)
			if err == nil {
				t.Fatalf("LoadAndValidate succeeded, want %q", tc.want)
			}
			if cfg != nil {
				t.Errorf("config returned together with an error")
			}
			var ps *Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error is %T, want *Problems: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not mention %q:\n%v", tc.want, err)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(err, %v) = false:\n%v", tc.is, err)
			}
			if len(ps.List) != tc.count {
				t.Errorf("%d problems, want %d:\n%v", len(ps.List), tc.count, err)
			}
			if strings.Contains(err.Error(), fixtureSecretMarker) {
				t.Errorf("a secret leaked into the error:\n%v", err)
			}
		})
	}
}

// TestEveryFixtureIsListed keeps fixtures and the table in step.
func TestEveryFixtureIsListed(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tc := range badFixtures {
		listed[tc.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no entry in badFixtures", f)
		}
		delete(listed, filepath.Base(f))
	}
	for f := range listed {
		t.Errorf("badFixtures lists %s, which does not exist", f)
	}
	if len(files) < 15 {
		t.Errorf("%d fixtures, want at least 15", len(files))
	}
}

func TestLoadAlsoReportsFixtureProblems(t *testing.T) {
	// Load alone (no validation) already fails on what it finds: unknown keys, wrong types,
	// unreadable secret files, syntax.
	for _, f := range []string{"unknown-key-source.bad.yaml", "wrong-type.bad.yaml", "unreadable-file.bad.yaml", "invalid-yaml.bad.yaml"} {
		cfg, err := Load(filepath.Join("testdata", f), nil)
		if err == nil || cfg != nil {
			t.Errorf("Load(%s) = %v, %v; want nil and an error", f, cfg, err)
		}
	}
	// ...and leaves validation to Validate.
	cfg, err := Load("testdata/bad-policy.bad.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "safety.policy") {
		t.Errorf("Validate = %v, want the policy problem", err)
	}
}
