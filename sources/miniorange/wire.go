package miniorange

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/idsync/idsync/reconcile"
)

// Wire types of the assumed list contract (see docs/setup-miniorange.md).
// Decoding is lenient where the real service may differ from the assumption without harm
// (ids as numbers, groups as objects, attributes as a list), and strict where a guess could
// cost access (status values, missing counts).

// DefaultGroupName is miniOrange's automatic group of every user.
const DefaultGroupName = "DEFAULT"

// flexString accepts a JSON string or number.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %s", truncateJSON(b))
	}
	*f = flexString(n.String())
	return nil
}

// nameList accepts ["a", "b"] or [{"name": "a"}, {"groupName": "b"}, {"username": "c"}].
type nameList []string

func (l *nameList) UnmarshalJSON(b []byte) error {
	var plain []string
	if json.Unmarshal(b, &plain) == nil {
		*l = plain
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("want a list of names: %w", err)
	}
	out := make(nameList, 0, len(raw))
	for _, r := range raw {
		r = bytes.TrimSpace(r)
		if len(r) > 0 && r[0] == '"' {
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return err
			}
			out = append(out, s)
			continue
		}
		var obj struct {
			Name      string `json:"name"`
			GroupName string `json:"groupName"`
			UserName  string `json:"username"`
		}
		if err := json.Unmarshal(r, &obj); err != nil {
			return fmt.Errorf("want a name or an object with one, got %s", truncateJSON(r))
		}
		switch {
		case obj.Name != "":
			out = append(out, obj.Name)
		case obj.GroupName != "":
			out = append(out, obj.GroupName)
		case obj.UserName != "":
			out = append(out, obj.UserName)
		default:
			return fmt.Errorf("entry without a name: %s", truncateJSON(r))
		}
	}
	*l = out
	return nil
}

// attributes accepts {"k": "v"} or [{"name"|"key": "k", "value": "v"}]; non-string values
// keep their JSON text.
type attributes map[string]string

func (a *attributes) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var plain map[string]string
	if json.Unmarshal(b, &plain) == nil {
		*a = plain
		return nil
	}
	out := attributes{}
	if len(b) > 0 && b[0] == '[' {
		var list []struct {
			Name  string          `json:"name"`
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("custom attributes: %w", err)
		}
		for _, e := range list {
			k := e.Name
			if k == "" {
				k = e.Key
			}
			if v, ok := attrValue(e.Value); ok && k != "" {
				out[k] = v
			}
		}
		*a = out
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("custom attributes: %w", err)
	}
	for k, raw := range obj {
		if v, ok := attrValue(raw); ok {
			out[k] = v
		}
	}
	*a = out
	return nil
}

func attrValue(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String(), true
	}
	return string(raw), true
}

func truncateJSON(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// moUser is one user of users/list, or the flat users/get answer.
type moUser struct {
	ID        flexString `json:"id"`
	UserName  string     `json:"username"`
	Email     string     `json:"email"`
	FirstName string     `json:"firstName"`
	LastName  string     `json:"lastName"`
	Phone     string     `json:"phone"`
	// Status is the user's state in users/list; in users/get it is the call's result and
	// the state is UserStatus.
	Status           string     `json:"status"`
	UserStatus       string     `json:"userStatus"`
	Groups           *nameList  `json:"groups"`
	CustomAttributes attributes `json:"customAttributes"`
}

type usersAnswer struct {
	statusBody
	TotalCount *int     `json:"totalCount"`
	Users      []moUser `json:"users"`
}

type moGroup struct {
	ID          flexString `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
}

type groupsAnswer struct {
	statusBody
	TotalCount *int      `json:"totalCount"`
	Groups     []moGroup `json:"groups"`
}

type membersAnswer struct {
	statusBody
	TotalCount *int     `json:"totalCount"`
	Members    nameList `json:"members"`
}

// userGetAnswer is users/get: the call's status plus the user's fields, flat.
type userGetAnswer struct {
	moUser
	Message string `json:"message"`
}

func (a *usersAnswer) result() statusBody   { return a.statusBody }
func (a *groupsAnswer) result() statusBody  { return a.statusBody }
func (a *membersAnswer) result() statusBody { return a.statusBody }

func (a *groupsAnswer) decode(b []byte) error  { return json.Unmarshal(b, a) }
func (a *userGetAnswer) decode(b []byte) error { return json.Unmarshal(b, a) }

// Listings are decoded first with plain types (the shape the contract names) and only when
// that fails with the lenient ones: the custom unmarshalers re-validate every field they
// see, which triples the work on a 100,000-user read.

// moUserPlain is moUser in the contract's exact shape.
type moUserPlain struct {
	ID               string            `json:"id"`
	UserName         string            `json:"username"`
	Email            string            `json:"email"`
	FirstName        string            `json:"firstName"`
	LastName         string            `json:"lastName"`
	Phone            string            `json:"phone"`
	Status           string            `json:"status"`
	UserStatus       string            `json:"userStatus"`
	Groups           *[]string         `json:"groups"`
	CustomAttributes map[string]string `json:"customAttributes"`
}

func (a *usersAnswer) decode(b []byte) error {
	var plain struct {
		statusBody
		TotalCount *int          `json:"totalCount"`
		Users      []moUserPlain `json:"users"`
	}
	if json.Unmarshal(b, &plain) != nil {
		type lenient usersAnswer // no decode method: plain encoding/json with the lenient fields
		return json.Unmarshal(b, (*lenient)(a))
	}
	a.statusBody, a.TotalCount = plain.statusBody, plain.TotalCount
	a.Users = make([]moUser, len(plain.Users))
	for i, u := range plain.Users {
		a.Users[i] = moUser{
			ID: flexString(u.ID), UserName: u.UserName, Email: u.Email, FirstName: u.FirstName,
			LastName: u.LastName, Phone: u.Phone, Status: u.Status, UserStatus: u.UserStatus,
			Groups: (*nameList)(u.Groups), CustomAttributes: attributes(u.CustomAttributes),
		}
	}
	return nil
}

func (a *membersAnswer) decode(b []byte) error {
	var plain struct {
		statusBody
		TotalCount *int     `json:"totalCount"`
		Members    []string `json:"members"`
	}
	if json.Unmarshal(b, &plain) != nil {
		type lenient membersAnswer
		return json.Unmarshal(b, (*lenient)(a))
	}
	a.statusBody, a.TotalCount, a.Members = plain.statusBody, plain.TotalCount, plain.Members
	return nil
}

// result of users/get: its status field is the call's result.
func (a *userGetAnswer) result() statusBody {
	return statusBody{Status: a.Status, Message: a.Message}
}

// statusField names the field a user's state is read from, for messages: users/list
// answers it as status, users/get as userStatus.
const (
	statusField     = "status"
	userStatusField = "userStatus"
)

// errNoStatus is a user record without a state.
var errNoStatus = errors.New("no status")

// parseStatus maps a miniOrange user state to active. Unknown means no: a missing state, or
// one idsync does not know, is an error and never active, so the read is incomplete and
// nobody's access changes on a guess (neither granted nor taken).
func parseStatus(s string) (active bool, err error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return false, errNoStatus
	case "ACTIVE", "ENABLED", "TRUE":
		return true, nil
	case "DISABLED", "INACTIVE", "SUSPENDED", "LOCKED", "BLOCKED", "DEACTIVATED", "FALSE":
		return false, nil
	}
	return false, fmt.Errorf("unknown user status %q", truncate(s, 40))
}

// convertUser turns one miniOrange user into the model. active is the user's parsed state
// (see parseStatus); extraGroups are memberships learned from group member listings.
func convertUser(u moUser, active bool, extraGroups []string) reconcile.User {
	key := string(u.ID)
	if key == "" {
		key = u.UserName
	}
	display := strings.TrimSpace(strings.TrimSpace(u.FirstName) + " " + strings.TrimSpace(u.LastName))
	if display == "" {
		display = u.UserName
	}
	out := reconcile.User{
		Key:         key,
		UserName:    u.UserName,
		Email:       strings.TrimSpace(u.Email),
		DisplayName: display,
		GivenName:   u.FirstName,
		FamilyName:  u.LastName,
		Active:      active,
	}
	// The decoded map belongs to this conversion alone, so it is kept rather than copied.
	if len(u.CustomAttributes) > 0 {
		out.Attributes = u.CustomAttributes
	}
	if u.Phone != "" {
		if out.Attributes == nil {
			out.Attributes = make(map[string]string, 1)
		}
		// The profile's phone field wins over a custom attribute of the same name.
		out.Attributes["phone"] = u.Phone
	}
	out.Groups = mergeGroups(u.Groups, extraGroups)
	return out
}

// truncate cuts s to n bytes (on a rune boundary) for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// mergeGroups returns the sorted union of both lists without duplicates or empty names.
func mergeGroups(a *nameList, b []string) []string {
	n := len(b)
	if a != nil {
		n += len(*a)
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	if a != nil {
		out = append(out, (*a)...)
	}
	out = append(out, b...)
	sort.Strings(out)
	w := 0
	for _, g := range out {
		if g == "" || (w > 0 && g == out[w-1]) {
			continue
		}
		out[w] = g
		w++
	}
	if w == 0 {
		return nil
	}
	return out[:w]
}
