package configs

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// GoogleConfig is Google Workspace read through the Admin SDK Directory API with a service
// account and domain-wide delegation: the service account signs a JWT that impersonates
// AdminEmail, with the read-only directory scopes only.
type GoogleConfig struct {
	// Customer is the Workspace account whose users and groups are listed: my_customer (the
	// account of AdminEmail) or a customer id such as C03az79cb. Not sent when Domain is set.
	Customer string `mapstructure:"customer" json:"customer"`
	// Domain limits the listings to one domain of the account (instead of Customer).
	Domain string `mapstructure:"domain" json:"domain,omitempty"`
	// AdminEmail is the administrator the service account impersonates (the JWT's sub).
	AdminEmail string `mapstructure:"admin_email" json:"admin_email"`
	// CredentialsFile is the service account's JSON key (a file only, never inline). A
	// relative path is relative to the config file's folder.
	CredentialsFile string `mapstructure:"credentials_file" json:"credentials_file"`
	// BaseURL is the Admin SDK's root (tests and proxies only).
	BaseURL string `mapstructure:"base_url" json:"base_url"`
	// UserQuery and GroupQuery are the listings' query parameters (Google's search syntax,
	// such as "orgUnitPath='/Staff'" or "name:Eng*"); empty lists everything.
	UserQuery  string `mapstructure:"user_query" json:"user_query,omitempty"`
	GroupQuery string `mapstructure:"group_query" json:"group_query,omitempty"`
	// PageSize is maxResults of users.list (1..500); group and member listings ask for
	// min(page_size, 200), their documented maximum.
	PageSize int `mapstructure:"page_size" json:"page_size"`
	// NestedGroups asks Google for members of nested groups (members.list with
	// includeDerivedMembership). Off, idsync expands nested groups itself from the member
	// listings it reads. Either way a member of a group inside a group counts as a member
	// of both.
	NestedGroups bool `mapstructure:"nested_groups" json:"nested_groups"`
	// GroupName is what names an IdP group for mapping: name (default) or email.
	GroupName string `mapstructure:"group_name" json:"group_name"`
	// EmailDomain, when set, makes a user's email the address in this domain: the primary
	// email when it is in it, else the first alias in it. Empty: the primary email.
	EmailDomain string        `mapstructure:"email_domain" json:"email_domain,omitempty"`
	RateLimit   RateLimit     `mapstructure:"rate_limit" json:"rate_limit"`
	Timeout     time.Duration `mapstructure:"timeout" json:"timeout"`
	// MaxObjects is the source's max_objects (SourceConfig.MaxObjects), copied here by Load
	// and ApplyDefaults; it is not a key of this block. 0 leaves the source's default.
	MaxObjects int `mapstructure:"-" json:"-"`
}

// Google defaults and bounds.
const (
	DefaultGoogleBaseURL  = "https://admin.googleapis.com"
	DefaultGoogleCustomer = "my_customer"
	// DefaultGooglePageSize is users.list's documented maximum.
	DefaultGooglePageSize = 500
	MaxGooglePageSize     = 500
	GoogleGroupNameName   = "name"
	GoogleGroupNameEmail  = "email"
)

// GoogleGroupNames are the allowed values of sources[].google.group_name.
var GoogleGroupNames = []string{GoogleGroupNameName, GoogleGroupNameEmail}

// GoogleScopes are the only OAuth scopes the Google source asks for: the admin must grant
// exactly these to the service account's client id (domain-wide delegation).
var GoogleScopes = []string{
	"https://www.googleapis.com/auth/admin.directory.user.readonly",
	"https://www.googleapis.com/auth/admin.directory.group.readonly",
	"https://www.googleapis.com/auth/admin.directory.group.member.readonly",
}

// DefaultGoogleRateLimit stays under the Admin SDK's default quota (2,400 queries a minute
// per user, i.e. 40/s): 20 requests/s, at most 4 in flight.
var DefaultGoogleRateLimit = RateLimit{RequestsPerSecond: 20, Burst: 20, Concurrency: 4}

// fillGoogleDefaults sets the defaults of a google block for every key set reports absent
// (keys relative to the source item: "google.page_size").
func fillGoogleDefaults(g *GoogleConfig, set func(key string) bool) {
	if g == nil {
		return
	}
	if !set("google.base_url") {
		g.BaseURL = DefaultGoogleBaseURL
	}
	if !set("google.customer") && !set("google.domain") {
		g.Customer = DefaultGoogleCustomer
	}
	if !set("google.page_size") {
		g.PageSize = DefaultGooglePageSize
	}
	if !set("google.group_name") {
		g.GroupName = GoogleGroupNameName
	}
	if !set("google.timeout") {
		g.Timeout = DefaultRequestTimeout
	}
	fillRateLimit(&g.RateLimit, DefaultGoogleRateLimit, "google.rate_limit.", set)
	if set("google.rate_limit.requests_per_second") && !set("google.rate_limit.burst") {
		// A paced limit without a burst gets one second's worth, as for the other sources.
		g.RateLimit.Burst = 0
		if r := g.RateLimit.RequestsPerSecond; r > 0 && r < math.MaxInt32 {
			g.RateLimit.Burst = max(1, int(math.Ceil(r)))
		}
	}
}

// resolveGooglePaths makes every credentials_file relative to the config file's folder.
func (c *Config) resolveGooglePaths() {
	for i := range c.Sources {
		if g := c.Sources[i].Google; g != nil {
			g.CredentialsFile = c.resolvePath(g.CredentialsFile)
		}
	}
}

var (
	googleCustomerRE = regexp.MustCompile(`^(my_customer|C[0-9A-Za-z]{4,20})$`)
	// googleDomainRE is a DNS name of at least two labels.
	googleDomainRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)
)

// maxCredentialsSize bounds a service account key file: real ones are about 2.3 KiB.
const maxCredentialsSize = 64 << 10

// google checks one source's google block.
func (v *validator) google(p string, g *GoogleConfig) {
	switch {
	case g.Customer == "" && g.Domain == "":
		v.add(p+".customer", "required: my_customer, your customer id (C0...), or set domain", ErrRequired)
	case g.Customer != "" && !googleCustomerRE.MatchString(g.Customer):
		v.add(p+".customer", fmt.Sprintf("%q is neither my_customer nor a customer id such as C03az79cb (Admin console > Account > Account settings)", truncate(g.Customer, 40)), ErrInvalid)
	}
	if g.Domain != "" && !googleDomainRE.MatchString(g.Domain) {
		v.add(p+".domain", fmt.Sprintf("%q is not a domain name such as example.com", truncate(g.Domain, 60)), ErrInvalid)
	}
	if g.EmailDomain != "" && !googleDomainRE.MatchString(g.EmailDomain) {
		v.add(p+".email_domain", fmt.Sprintf("%q is not a domain name such as example.com", truncate(g.EmailDomain, 60)), ErrInvalid)
	}
	if g.AdminEmail == "" {
		v.add(p+".admin_email", "required: the Workspace administrator the service account impersonates", ErrRequired)
	} else if a, err := mail.ParseAddress(g.AdminEmail); err != nil || a.Address != g.AdminEmail {
		v.add(p+".admin_email", fmt.Sprintf("%q is not an email address", truncate(g.AdminEmail, 60)), ErrInvalid)
	}
	if g.CredentialsFile == "" {
		v.add(p+".credentials_file", "required: the service account's JSON key file", ErrRequired)
	} else if v.readable(p+".credentials_file", g.CredentialsFile) {
		if msg := serviceAccountProblem(g.CredentialsFile); msg != "" {
			v.add(p+".credentials_file", msg, ErrInvalid)
		}
	}
	v.url(p+".base_url", g.BaseURL)
	for _, q := range []struct{ key, val string }{{"user_query", g.UserQuery}, {"group_query", g.GroupQuery}} {
		if strings.IndexFunc(q.val, unicode.IsControl) >= 0 {
			v.add(p+"."+q.key, "contains a line break or another control character", ErrInvalid)
		}
	}
	if g.PageSize < 1 || g.PageSize > MaxGooglePageSize {
		v.add(p+".page_size", fmt.Sprintf("must be between 1 and %d (users.list's maximum), got %d", MaxGooglePageSize, g.PageSize), ErrInvalid)
	}
	if !slices.Contains(GoogleGroupNames, g.GroupName) {
		v.add(p+".group_name", fmt.Sprintf("%q is not one of %s", truncate(g.GroupName, 40), strings.Join(GoogleGroupNames, ", ")), ErrInvalid)
	}
	v.positive(p+".timeout", g.Timeout)
	v.rateLimit(p+".rate_limit", g.RateLimit)
}

// ServiceAccountKey is what idsync reads from a service account's JSON key file.
type ServiceAccountKey struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	ClientID     string `json:"client_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	TokenURI     string `json:"token_uri"`
}

// ReadServiceAccount reads and checks a service account key file. Its errors never quote the
// file's contents.
func ReadServiceAccount(path string) ([]byte, *ServiceAccountKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the credentials file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("cannot read the credentials file %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the credentials file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialsSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the credentials file %s: %w", path, err)
	}
	if len(data) > maxCredentialsSize {
		return nil, nil, fmt.Errorf("the credentials file %s is larger than %d KiB: is it the service account's JSON key?", path, maxCredentialsSize>>10)
	}
	var k ServiceAccountKey
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, nil, fmt.Errorf("the credentials file %s is not a JSON key (create one under IAM > Service accounts > Keys > Add key > JSON)", path)
	}
	switch {
	case k.Type != "service_account":
		return nil, nil, fmt.Errorf("the credentials file %s is not a service account key (type %q, want service_account)", path, truncate(k.Type, 40))
	case k.ClientEmail == "":
		return nil, nil, fmt.Errorf("the credentials file %s has no client_email", path)
	case k.PrivateKey == "":
		return nil, nil, fmt.Errorf("the credentials file %s has no private_key", path)
	}
	block, _ := pem.Decode([]byte(k.PrivateKey))
	if block == nil {
		return nil, nil, fmt.Errorf("the credentials file %s: private_key is not a PEM key", path)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return nil, nil, fmt.Errorf("the credentials file %s: private_key does not parse as an RSA key", path)
		}
	}
	if k.TokenURI != "" {
		if u, err := url.Parse(k.TokenURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, nil, fmt.Errorf("the credentials file %s: token_uri is not an http(s) URL", path)
		}
	}
	return data, &k, nil
}

func serviceAccountProblem(path string) string {
	if _, _, err := ReadServiceAccount(path); err != nil {
		return err.Error()
	}
	return ""
}

// googleWarnings words what is legal but risky in a google block.
func googleWarnings(p string, g *GoogleConfig, add func(path, msg string)) {
	if g == nil {
		return
	}
	if u, err := url.Parse(g.BaseURL); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		add(p+".base_url", "plain http to another machine sends access tokens unencrypted; use https")
	}
	if g.CredentialsFile == "" {
		return
	}
	if st, err := os.Stat(g.CredentialsFile); err == nil && st.Mode().Perm()&0o077 != 0 {
		add(p+".credentials_file", fmt.Sprintf("mode %04o lets other users read the service account's private key; chmod 600", st.Mode().Perm()))
	}
	if _, k, err := ReadServiceAccount(g.CredentialsFile); err == nil && k.TokenURI != "" {
		if u, err := url.Parse(k.TokenURI); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			add(p+".credentials_file", "token_uri is plain http to another machine: the signed token request travels unencrypted")
		}
	}
}
