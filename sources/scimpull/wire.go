package scimpull

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/idsync/idsync/reconcile"
)

// flexBool accepts true/false and the strings "true"/"false" in any case (some servers, e.g.
// Azure AD's provisioning, send "True"/"False").
type flexBool struct {
	set   bool
	value bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch strings.ToLower(strings.Trim(string(b), `"`)) {
	case "true":
		*f = flexBool{set: true, value: true}
	case "false":
		*f = flexBool{set: true, value: false}
	case "null":
		*f = flexBool{}
	default:
		return fmt.Errorf("want a boolean, got %s", truncate(string(b), 40))
	}
	return nil
}

// flexString accepts a JSON string or number (ids and error statuses vary by server).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %s", truncate(string(b), 40))
	}
	*f = flexString(n.String())
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// multi is a multi-valued attribute entry (emails, phoneNumbers).
type multi struct {
	Value   string   `json:"value"`
	Type    string   `json:"type"`
	Primary flexBool `json:"primary"`
}

// ref is a reference to a group (in User.groups) or a member (in Group.members).
type ref struct {
	Value   flexString `json:"value"`
	Display string     `json:"display"`
	Type    string     `json:"type"`
}

type scimName struct {
	Formatted  string `json:"formatted"`
	GivenName  string `json:"givenName"`
	FamilyName string `json:"familyName"`
	MiddleName string `json:"middleName"`
}

type enterprise struct {
	EmployeeNumber string `json:"employeeNumber"`
	CostCenter     string `json:"costCenter"`
	Organization   string `json:"organization"`
	Division       string `json:"division"`
	Department     string `json:"department"`
	Manager        *struct {
		Value       flexString `json:"value"`
		DisplayName string     `json:"displayName"`
	} `json:"manager"`
}

type scimUser struct {
	ID                flexString `json:"id"`
	ExternalID        string     `json:"externalId"`
	UserName          string     `json:"userName"`
	Name              *scimName  `json:"name"`
	DisplayName       string     `json:"displayName"`
	NickName          string     `json:"nickName"`
	Title             string     `json:"title"`
	UserType          string     `json:"userType"`
	PreferredLanguage string     `json:"preferredLanguage"`
	Locale            string     `json:"locale"`
	Timezone          string     `json:"timezone"`
	Active            flexBool   `json:"active"`
	Emails            []multi    `json:"emails"`
	PhoneNumbers      []multi    `json:"phoneNumbers"`
	Groups            *[]ref     `json:"groups"`
	// Enterprise is the RFC 7643 enterprise user extension.
	Enterprise *enterprise `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

type scimGroup struct {
	ID          flexString `json:"id"`
	DisplayName string     `json:"displayName"`
	// Members is nil when the answer had no members attribute (or null), and empty when it
	// had an empty list: only the latter says the group has no members.
	Members *[]ref `json:"members"`
}

func (g scimGroup) members() []ref {
	if g.Members == nil {
		return nil
	}
	return *g.Members
}

// listResponse is RFC 7644's ListResponse; "Resources" matches any case.
type listResponse[T any] struct {
	TotalResults *int `json:"totalResults"`
	ItemsPerPage int  `json:"itemsPerPage"`
	StartIndex   *int `json:"startIndex"`
	Resources    []T  `json:"Resources"`
}

// pick returns the primary entry's value, else the work one, else the first.
func pick(list []multi) string {
	for _, m := range list {
		if m.Primary.value && m.Value != "" {
			return m.Value
		}
	}
	for _, m := range list {
		if strings.EqualFold(m.Type, "work") && m.Value != "" {
			return m.Value
		}
	}
	for _, m := range list {
		if m.Value != "" {
			return m.Value
		}
	}
	return ""
}

// errNoActive is a user without an active attribute (absent or null).
var errNoActive = errors.New("field active is missing")

// convertUser turns a SCIM user into the model; groups are names already resolved.
//
// Unknown means no: RFC 7643 makes active optional, but a user whose active is absent (or
// null) is never taken as active. convertUser returns errNoActive for it, and the caller
// fails the read as incomplete rather than guess either way.
func convertUser(u scimUser, groups []string) (reconcile.User, error) {
	if strings.TrimSpace(u.UserName) == "" {
		return reconcile.User{}, fmt.Errorf("user with id %q has no userName", string(u.ID))
	}
	if !u.Active.set {
		return reconcile.User{}, errNoActive
	}
	key := string(u.ID)
	if key == "" {
		key = u.UserName
	}
	out := reconcile.User{
		Key:      key,
		UserName: u.UserName,
		Email:    strings.TrimSpace(pick(u.Emails)),
		Active:   u.Active.value,
	}
	if u.Name != nil {
		out.GivenName, out.FamilyName = u.Name.GivenName, u.Name.FamilyName
	}
	switch {
	case strings.TrimSpace(u.DisplayName) != "":
		out.DisplayName = u.DisplayName
	case u.Name != nil && strings.TrimSpace(u.Name.Formatted) != "":
		out.DisplayName = u.Name.Formatted
	case strings.TrimSpace(out.GivenName+" "+out.FamilyName) != "":
		out.DisplayName = strings.TrimSpace(strings.TrimSpace(out.GivenName) + " " + strings.TrimSpace(out.FamilyName))
	default:
		out.DisplayName = u.UserName
	}
	attrs := map[string]string{}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			attrs[k] = v
		}
	}
	set("externalId", u.ExternalID)
	set("nickName", u.NickName)
	set("title", u.Title)
	set("userType", u.UserType)
	set("preferredLanguage", u.PreferredLanguage)
	set("locale", u.Locale)
	set("timezone", u.Timezone)
	set("phone", pick(u.PhoneNumbers))
	if u.Name != nil {
		set("middleName", u.Name.MiddleName)
	}
	if e := u.Enterprise; e != nil {
		set("employeeNumber", e.EmployeeNumber)
		set("costCenter", e.CostCenter)
		set("organization", e.Organization)
		set("division", e.Division)
		set("department", e.Department)
		if e.Manager != nil {
			set("manager", string(e.Manager.Value))
			set("managerDisplayName", e.Manager.DisplayName)
		}
	}
	if len(attrs) > 0 {
		out.Attributes = attrs
	}
	if len(groups) > 0 {
		g := append([]string(nil), groups...)
		sort.Strings(g)
		w := 0
		for _, x := range g {
			if x == "" || (w > 0 && x == g[w-1]) {
				continue
			}
			g[w] = x
			w++
		}
		if w > 0 {
			out.Groups = g[:w]
		}
	}
	return out, nil
}
