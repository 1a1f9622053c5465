// Package reconcile is idsync's domain, pure: the model every source converts into, the
// mapping, the planner (desired + live + ownership -> Changes), the guards that filter a plan,
// the pull/push overlay and the vocabulary of run records. It imports no logger, metrics or
// state package. Its runtime, the executor that applies Changes through a Sink while
// journaling each item and the Runner that drives passes, is reconcile/runner.
//
// No vendor type crosses into this package: sources convert their payloads into User and Group,
// sinks report Jira's state as Live.
package reconcile

import (
	"context"
	"errors"
	"time"
)

// User is one person as a source describes them.
type User struct {
	// Key is the source's immutable id for the person where one exists, else the userName.
	// It is what links a source record to a Jira account, so it must not change when the
	// person's name or email does.
	Key         string `json:"key"`
	UserName    string `json:"userName"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	GivenName   string `json:"givenName,omitempty"`
	FamilyName  string `json:"familyName,omitempty"`
	// Active false is an explicit deprovision by the IdP (disabled, or deleted by a push):
	// it skips the grace period but not the circuit breaker.
	Active bool `json:"active"`
	// Groups are the names of the IdP groups the user is a member of.
	Groups     []string          `json:"groups,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Modified is when a push source last wrote this user; zero for pulled users.
	Modified time.Time `json:"modified,omitempty"`
	// Aliases are further keys of this same person in this same source: when a source is
	// pulled and also pushes, the SCIM id of the pushed record joined to the pulled one
	// (DESIGN "Pull and push of one source"). A link made under any of them finds the
	// person, so none of them counts as missing while the person is listed.
	Aliases []string `json:"aliases,omitempty"`
}

// Group is one IdP group. Membership is carried by User.Groups.
type Group struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Directory is the complete desired state one source describes.
type Directory struct {
	Source string  `json:"source"`
	Users  []User  `json:"users"`
	Groups []Group `json:"groups"`
}

// ErrUserNotFound is returned by UserSource.User when the source knows no such user.
var ErrUserNotFound = errors.New("user not found in source")

// Source is one identity provider, read in full.
type Source interface {
	// Name is the source's configured name ([a-z0-9-]+); it prefixes link keys and labels metrics.
	Name() string
	// Snapshot reads every page of every listing and returns the complete directory, or an
	// error. It never returns a partial directory without an error: a failed page, a short
	// read or a count that changed mid-read is an error, and the pass is then incomplete.
	// It must honour ctx cancellation.
	Snapshot(ctx context.Context) (Directory, error)
}

// UserSource is implemented by sources that can fetch one user quickly, for targeted and
// login-time runs.
type UserSource interface {
	// User returns the user whose userName equals userName (case-insensitive), with its
	// Groups filled. It returns an error wrapping ErrUserNotFound when the source has no
	// such user, and any other error when the source could not answer.
	User(ctx context.Context, userName string) (User, error)
}

// Account types as Jira reports them.
const (
	AccountAtlassian = "atlassian"
	AccountApp       = "app"
	AccountCustomer  = "customer"
)

// Account is one Jira account as the sink reads it.
type Account struct {
	AccountID   string `json:"accountId"`
	AccountType string `json:"accountType"`
	// Email may be empty when the user's privacy settings hide it.
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	Active      bool   `json:"active"`
	// SiteAdmin is set for members of a site-admin group; such accounts are never touched
	// unless a source maps them.
	SiteAdmin bool `json:"siteAdmin,omitempty"`
}

// LiveGroup is one Jira group.
type LiveGroup struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Members are accountIds; filled only when MembersRead is true (groups in Scope).
	Members     []string `json:"members,omitempty"`
	MembersRead bool     `json:"membersRead"`
	// ProductAccess marks a group that grants product access (ApplicationRole.groups or
	// sink.jira.product_access_groups).
	ProductAccess bool `json:"productAccess,omitempty"`
	// Admin marks a group that grants admin rights: Jira lists it under the site-admin or
	// the admin access type (group/bulk?accessType=site-admin|admin). Like ProductAccess,
	// it is set on full and targeted reads alike: on-the-fly group import never touches
	// such a group (see Plan).
	Admin bool `json:"admin,omitempty"`
}

// LiveDesk is one JSM service desk and its customers.
type LiveDesk struct {
	ID        string   `json:"id"`
	Key       string   `json:"key"` // project key
	Name      string   `json:"name"`
	Customers []string `json:"customers"` // accountIds
}

// LiveOrg is one JSM organization and its members.
type LiveOrg struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members"` // accountIds
}

// Scope says which parts of Jira a pass needs to read: idsync reads only what it manages.
type Scope struct {
	// Groups are Jira group names whose members must be read (mapped, default, owned and
	// product-access groups). Groups not named here are listed without members.
	Groups []string `json:"groups"`
	// GroupIDs are further groups, named by id, whose members must be read: groups idsync
	// owns memberships in, which may have been renamed since.
	GroupIDs []string `json:"groupIds,omitempty"`
	// ServiceDesks are project keys or ids whose customers must be read.
	ServiceDesks []string `json:"serviceDesks"`
	// Organizations are JSM organization names whose members must be read.
	Organizations []string `json:"organizations"`
	// Accounts are accountIds (linked accounts) the pass must know even if a listing misses
	// them (for example because of search-index lag); the sink fetches them one by one only
	// when the listing did not return them.
	Accounts []string `json:"accounts,omitempty"`
	// Emails are addresses of unlinked people a targeted pass must match; the sink looks
	// them up (user search by email, exact match afterwards).
	Emails []string `json:"emails,omitempty"`
	// Targeted asks for a narrow read, for one-user and push-triggered passes that must
	// finish in seconds: instead of listing every account and every member page, the sink
	// reads only Accounts and Emails, fills their group memberships from the per-user group
	// listing (LiveGroup.Members then holds only those accounts), and reads desk customers
	// and organization members only for them.
	Targeted bool `json:"targeted,omitempty"`
}

// Live is Jira's current state, as far as Scope asked.
type Live struct {
	Accounts      []Account   `json:"accounts"`
	Groups        []LiveGroup `json:"groups"`
	ServiceDesks  []LiveDesk  `json:"serviceDesks"`
	Organizations []LiveOrg   `json:"organizations"`
}

// Sink is the target system.
type Sink interface {
	// Live reads the current state in scope: every account (paged), every group (names and
	// ids), members of the groups in scope (paged, by groupId), customers of the desks and
	// members of the organizations in scope. It returns an error rather than partial data.
	Live(ctx context.Context, scope Scope) (Live, error)
	// Apply performs one change and reports what it did. It must be safe to call again for
	// a change whose earlier attempt's outcome is unknown (after a crash or timeout): creates
	// adopt an existing object instead of duplicating it; adds and removes are idempotent.
	// Errors should wrap the sink's typed errors so the executor can tell transient from
	// permanent failures.
	Apply(ctx context.Context, c Change) (Result, error)
}
