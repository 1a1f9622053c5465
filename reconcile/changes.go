package reconcile

import (
	"cmp"
	"strings"
)

// Kind names one kind of change. The values are stable: they appear in JSON plans, the audit
// log and the idsync_changes_total{kind} metric.
type Kind string

// The change kinds, in the order the executor applies them.
const (
	KindCreateGroup              Kind = "create_group"
	KindCreateUser               Kind = "create_user"
	KindReactivateUser           Kind = "reactivate_user"
	KindUpdateUser               Kind = "update_user"
	KindAddMember                Kind = "add_member"
	KindCreateCustomer           Kind = "create_customer"
	KindAddCustomer              Kind = "add_customer"
	KindAddOrganizationMember    Kind = "add_organization_member"
	KindRemoveMember             Kind = "remove_member"
	KindRemoveCustomer           Kind = "remove_customer"
	KindRemoveOrganizationMember Kind = "remove_organization_member"
	KindDeactivateUser           Kind = "deactivate_user"
)

// Kinds lists every kind in apply order (dependency order: groups -> users -> updates ->
// memberships -> customers -> removals -> deactivations).
var Kinds = []Kind{
	KindCreateGroup, KindCreateUser, KindReactivateUser, KindUpdateUser, KindAddMember,
	KindCreateCustomer, KindAddCustomer, KindAddOrganizationMember,
	KindRemoveMember, KindRemoveCustomer, KindRemoveOrganizationMember, KindDeactivateUser,
}

// IsRemoval reports whether the kind takes access away (what the circuit breaker counts and
// what an incomplete pass, policies and ownership may hold back).
func (k Kind) IsRemoval() bool {
	switch k {
	case KindRemoveMember, KindRemoveCustomer, KindRemoveOrganizationMember, KindDeactivateUser:
		return true
	}
	return false
}

// FieldChange is one profile field an UpdateUser change would set.
type FieldChange struct {
	Field string `json:"field"` // displayName | email
	Old   string `json:"old"`
	New   string `json:"new"`
}

// GroupRef names a Jira group by id (authoritative) and name (for display).
type GroupRef struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// Change is one item of a plan. Which fields are set depends on Kind; Reason always says why
// the item is there, in words an admin understands.
type Change struct {
	Kind Kind `json:"kind"`

	// The person: the source and source key of the winning record, and the Jira account.
	// AccountID is empty for users that do not exist yet (CreateUser, CreateCustomer, and
	// memberships of users created in the same pass); the executor fills it from the result
	// of the earlier item.
	Source      string `json:"source,omitempty"`
	UserKey     string `json:"userKey,omitempty"`
	UserName    string `json:"userName,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"displayName,omitempty"`

	// Group is the Jira group of CreateGroup, AddMember and RemoveMember. Its ID is empty for
	// a group created in the same pass; the executor resolves it by name.
	Group *GroupRef `json:"group,omitempty"`

	// ServiceDesk (project key or id) of CreateCustomer, AddCustomer and RemoveCustomer.
	ServiceDesk string `json:"serviceDesk,omitempty"`
	// ServiceDeskKey is the desk's project key (e.g. DEMO) when known, for people reading
	// plans and audit records; ServiceDesk stays what is applied.
	ServiceDeskKey string `json:"serviceDeskKey,omitempty"`
	// Organization (name) and its id, for organization membership changes.
	Organization   string `json:"organization,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`

	// Fields are the profile changes of UpdateUser.
	Fields []FieldChange `json:"fields,omitempty"`
	// Unsupported marks an item Jira cannot apply with the configured credentials (profile
	// drift without sink.jira.admin_api). It is shown in the plan and never sent or counted
	// as a write.
	Unsupported string `json:"unsupported,omitempty"`

	// Groups are, for DeactivateUser with the remove-access method, the groups to remove the
	// account from (managed groups and every product-access group it is in); for
	// ReactivateUser, the groups to put it back into.
	Groups []GroupRef `json:"groups,omitempty"`
	// Method is, for ReactivateUser, the deactivation method that took the account's access
	// (Link.Method): reactivation reverses that one, even after sink.jira.deactivate changed.
	// Empty: the sink's configured method.
	Method string `json:"method,omitempty"`
	// Unlisted marks a DeactivateUser whose account no member listing shows (Jira's search
	// index may not show an account created moments ago): its Groups are the groups idsync
	// added it to and every product-access group, removed whether listed or not.
	Unlisted bool `json:"unlisted,omitempty"`

	// Deprovision marks changes that take access from a person who is gone: "explicit" (the
	// IdP disabled or deleted them: no grace) or "missing" (absent from every source: the
	// grace guard counts passes). Empty for ordinary membership drift.
	Deprovision string `json:"deprovision,omitempty"`

	Reason string `json:"reason"`
}

// Deprovision values.
const (
	DeprovisionExplicit = "explicit"
	DeprovisionMissing  = "missing"
)

// Result is what the sink did for one change.
type Result struct {
	// AccountID of the created, found or reactivated account.
	AccountID string `json:"accountId,omitempty"`
	// GroupID of the created or adopted group.
	GroupID string `json:"groupId,omitempty"`
	// OrganizationID of a created or adopted organization.
	OrganizationID string `json:"organizationId,omitempty"`
	// Adopted is true when a create found the object already there and took it over.
	Adopted bool `json:"adopted,omitempty"`
	// Groups actually removed by a remove-access deactivation (kept so reactivation can
	// reverse it) or restored by a reactivation; for CreateUser, the groups the create put
	// the new account into (Jira adds it to its products' default groups), with ids when
	// known: the executor records those memberships and sends no add for them
	// (ItemDoneByCreate). Not trusted for an adopted account.
	Groups []GroupRef `json:"groups,omitempty"`
	// Method is the deactivation method used (remove-access | admin-api | delete).
	Method string `json:"method,omitempty"`
	// Writes is the number of write calls the sink made for this change.
	Writes int `json:"writes,omitempty"`
}

// Changes is a plan: everything one pass would do, grouped by kind. It is a value: JSON
// encodable, printable as a table, and computed without I/O.
type Changes struct {
	CreateGroups              []Change `json:"createGroups"`
	CreateUsers               []Change `json:"createUsers"`
	ReactivateUsers           []Change `json:"reactivateUsers"`
	UpdateUsers               []Change `json:"updateUsers"`
	AddMembers                []Change `json:"addMembers"`
	CreateCustomers           []Change `json:"createCustomers"`
	AddCustomers              []Change `json:"addCustomers"`
	AddOrganizationMembers    []Change `json:"addOrganizationMembers"`
	RemoveMembers             []Change `json:"removeMembers"`
	RemoveCustomers           []Change `json:"removeCustomers"`
	RemoveOrganizationMembers []Change `json:"removeOrganizationMembers"`
	DeactivateUsers           []Change `json:"deactivateUsers"`

	// Links are links the pass records without any Jira write: people matched to an existing
	// account by email, further source records of an already linked person, and name or
	// email updates of existing links.
	Links []Link `json:"links,omitempty"`
	// Forget are ownership records of memberships that no longer exist in Jira and are no
	// longer desired (removed by hand, or by an interrupted pass); dropped without a write.
	Forget []Owned `json:"forget,omitempty"`
	// Notes explain what the plan could not do (an unmatched person with import_users off, a
	// mapped service desk that does not exist, two people claiming one account, ...).
	Notes []string `json:"notes,omitempty"`
}

// List returns a pointer to the slice holding kind k, so code can walk kinds generically.
func (c *Changes) List(k Kind) *[]Change {
	switch k {
	case KindCreateGroup:
		return &c.CreateGroups
	case KindCreateUser:
		return &c.CreateUsers
	case KindReactivateUser:
		return &c.ReactivateUsers
	case KindUpdateUser:
		return &c.UpdateUsers
	case KindAddMember:
		return &c.AddMembers
	case KindCreateCustomer:
		return &c.CreateCustomers
	case KindAddCustomer:
		return &c.AddCustomers
	case KindAddOrganizationMember:
		return &c.AddOrganizationMembers
	case KindRemoveMember:
		return &c.RemoveMembers
	case KindRemoveCustomer:
		return &c.RemoveCustomers
	case KindRemoveOrganizationMember:
		return &c.RemoveOrganizationMembers
	case KindDeactivateUser:
		return &c.DeactivateUsers
	}
	panic("reconcile: unknown change kind " + string(k))
}

// HasChanges reports whether the plan holds any item that would be sent to the sink.
// Unsupported items are shown but do not count.
func (c *Changes) HasChanges() bool {
	for _, k := range Kinds {
		for _, ch := range *c.List(k) {
			if ch.Unsupported == "" {
				return true
			}
		}
	}
	return false
}

// Len counts the items of every kind, unsupported ones included.
func (c *Changes) Len() int {
	n := 0
	for _, k := range Kinds {
		n += len(*c.List(k))
	}
	return n
}

// ItemKey names what a change does to whom, independent of why: the kind, the person (the
// Jira account, else the source record) and the target (group by id where known, desk,
// organization). An approval of a held plan binds to these keys, so a later pass applies only
// the items the admin saw.
func (c Change) ItemKey() string {
	who := c.AccountID
	if who == "" {
		who = "record:" + c.Source + "/" + c.UserKey
	}
	target := ""
	switch {
	case c.Group != nil && c.Group.ID != "":
		target = "group-id:" + c.Group.ID
	case c.Group != nil:
		target = "group:" + strings.ToLower(strings.TrimSpace(c.Group.Name))
	case c.ServiceDesk != "":
		target = "desk:" + strings.ToLower(cmp.Or(c.ServiceDeskKey, c.ServiceDesk))
	case c.Organization != "" || c.OrganizationID != "":
		target = "org:" + strings.ToLower(cmp.Or(c.OrganizationID, c.Organization))
	}
	return string(c.Kind) + "|" + who + "|" + target
}

// ItemKeys returns the ItemKey of every deactivation and removal in c.
func (c Changes) ItemKeys() map[string]bool {
	keys := map[string]bool{}
	for _, k := range Kinds {
		if k.IsRemoval() {
			for _, ch := range *c.List(k) {
				keys[ch.ItemKey()] = true
			}
		}
	}
	return keys
}
