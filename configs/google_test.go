package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// googleConfig is a config with one google source; block is the google block's body,
// indented by six spaces.
func googleConfig(block string) string {
	return `admin_token: fixture-secret-admin-0001
sources:
  - name: workspace
    type: google
    google:
` + block + `
sink:
  jira:
    base_url: https://example.atlassian.net
    email: admin@example.com
    api_token: fixture-secret-jira-token
`
}

// copyServiceAccount puts the example's service account key into dir as name.
func copyServiceAccount(t *testing.T, dir, name string) {
	t.Helper()
	data, err := os.ReadFile("testdata/secrets/google-service-account.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name), string(data))
}

func TestGoogleDefaultsAndRelativeCredentials(t *testing.T) {
	dir := t.TempDir()
	copyServiceAccount(t, filepath.Join(dir, "keys"), "sa.json")
	cfg := mustLoad(t, writeConfig(t, dir, googleConfig(`      admin_email: reader@example.com
      credentials_file: keys/sa.json`)), nil)
	g := cfg.Sources[0].Google
	if g == nil {
		t.Fatal("no google block")
	}
	want := GoogleConfig{
		Customer: DefaultGoogleCustomer, AdminEmail: "reader@example.com",
		CredentialsFile: filepath.Join(dir, "keys", "sa.json"), BaseURL: DefaultGoogleBaseURL,
		PageSize: 500, GroupName: "name", RateLimit: DefaultGoogleRateLimit, Timeout: 30 * time.Second,
		MaxObjects: DefaultMaxObjects,
	}
	if *g != want {
		t.Errorf("google block = %+v\nwant %+v", *g, want)
	}
}

func TestGoogleDomainLeavesCustomerEmpty(t *testing.T) {
	dir := t.TempDir()
	copyServiceAccount(t, dir, "sa.json")
	cfg := mustLoad(t, writeConfig(t, dir, googleConfig(`      domain: example.com
      admin_email: reader@example.com
      credentials_file: sa.json
      rate_limit: {requests_per_second: 2.5}`)), nil)
	g := cfg.Sources[0].Google
	if g.Customer != "" || g.Domain != "example.com" {
		t.Errorf("customer %q domain %q: a domain must not be overridden by the default customer", g.Customer, g.Domain)
	}
	if g.RateLimit.Burst != 3 || g.RateLimit.Concurrency != 4 {
		t.Errorf("rate_limit = %+v, want burst ceil(2.5) and the default concurrency", g.RateLimit)
	}
}

func TestGoogleValidation(t *testing.T) {
	dir := t.TempDir()
	copyServiceAccount(t, dir, "sa.json")
	writeFile(t, filepath.Join(dir, "not-json.json"), "fixture-secret-not-a-key")
	writeFile(t, filepath.Join(dir, "user.json"), `{"type": "authorized_user", "client_id": "x"}`)
	cases := []struct {
		name, block, want string
		is                error
	}{
		{"admin email required", `      credentials_file: sa.json`,
			"sources[0].google.admin_email: required", ErrRequired},
		{"admin email shape", `      admin_email: "Reader <reader@example.com>"
      credentials_file: sa.json`,
			`sources[0].google.admin_email: "Reader <reader@example.com>" is not an email address`, ErrInvalid},
		{"credentials required", `      admin_email: reader@example.com`,
			"sources[0].google.credentials_file: required", ErrRequired},
		{"credentials unreadable", `      admin_email: reader@example.com
      credentials_file: missing.json`,
			"sources[0].google.credentials_file: cannot read", ErrUnreadableFile},
		{"credentials not json", `      admin_email: reader@example.com
      credentials_file: not-json.json`,
			"sources[0].google.credentials_file: the credentials file " + filepath.Join(dir, "not-json.json") + " is not a JSON key", ErrInvalid},
		{"credentials not a service account", `      admin_email: reader@example.com
      credentials_file: user.json`,
			`is not a service account key (type "authorized_user", want service_account)`, ErrInvalid},
		{"customer or domain", `      customer: ""
      admin_email: reader@example.com
      credentials_file: sa.json`,
			"sources[0].google.customer: required: my_customer, your customer id (C0...), or set domain", ErrRequired},
		{"customer shape", `      customer: "acme corp"
      admin_email: reader@example.com
      credentials_file: sa.json`,
			`sources[0].google.customer: "acme corp" is neither my_customer nor a customer id`, ErrInvalid},
		{"domain shape", `      domain: "example com"
      admin_email: reader@example.com
      credentials_file: sa.json`,
			`sources[0].google.domain: "example com" is not a domain name`, ErrInvalid},
		{"page size", `      admin_email: reader@example.com
      credentials_file: sa.json
      page_size: 501`,
			"sources[0].google.page_size: must be between 1 and 500 (users.list's maximum), got 501", ErrInvalid},
		{"base url scheme", `      admin_email: reader@example.com
      credentials_file: sa.json
      base_url: ftp://admin.googleapis.com`,
			`sources[0].google.base_url: "ftp://admin.googleapis.com" must be an absolute http or https URL`, ErrInvalid},
		{"group name", `      admin_email: reader@example.com
      credentials_file: sa.json
      group_name: id`,
			`sources[0].google.group_name: "id" is not one of name, email`, ErrInvalid},
		{"unknown key", `      admin_email: reader@example.com
      credentials_file: sa.json
      credentials: inline`,
			"sources[0].google.credentials: unknown key", ErrUnknownKey},
		{"query control character", `      admin_email: reader@example.com
      credentials_file: sa.json
      user_query: "orgUnitPath='/Staff'\n"`,
			"sources[0].google.user_query: contains a line break", ErrInvalid},
		{"timeout", `      admin_email: reader@example.com
      credentials_file: sa.json
      timeout: 0s`,
			"sources[0].google.timeout: must be positive", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadAndValidate(writeConfig(t, dir, googleConfig(tc.block)), nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error does not wrap %v", tc.is)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "fixture-secret") {
				t.Errorf("the error quotes a secret: %q", err)
			}
		})
	}
}

func TestGoogleBlockBelongsToItsType(t *testing.T) {
	dir := t.TempDir()
	copyServiceAccount(t, dir, "sa.json")
	body := strings.Replace(googleConfig(`      admin_email: reader@example.com
      credentials_file: sa.json`), "type: google", "type: scimpull", 1)
	_, err := LoadAndValidate(writeConfig(t, dir, body), nil)
	for _, want := range []string{"sources[0].scimpull: required for type scimpull", "sources[0].google: does not belong to a source of type scimpull"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

func TestGoogleWarnings(t *testing.T) {
	dir := t.TempDir()
	copyServiceAccount(t, dir, "sa.json")
	if err := os.Chmod(filepath.Join(dir, "sa.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, writeConfig(t, dir, googleConfig(`      admin_email: reader@example.com
      credentials_file: sa.json
      base_url: http://proxy.example.com:8080`)), nil)
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"sources[0].google.base_url: plain http", "sources[0].google.credentials_file: mode 0644"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings:\n%s\nwant %q", all, want)
		}
	}
}

func TestGoogleRedactedCopyIsDeep(t *testing.T) {
	c := &Config{Sources: []SourceConfig{{Name: "w", Type: SourceGoogle, Google: &GoogleConfig{AdminEmail: "a@example.com"}}}}
	r := c.Redacted()
	r.Sources[0].Google.AdminEmail = "changed@example.com"
	if c.Sources[0].Google.AdminEmail != "a@example.com" {
		t.Error("Redacted shares the google block with the original")
	}
}
