package jiratest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

type avatarURLs struct {
	X16 string `json:"16x16"`
	X24 string `json:"24x24"`
	X32 string `json:"32x32"`
	X48 string `json:"48x48"`
}

func avatars(id string) avatarURLs {
	b := "https://avatar-management.example.invalid/initials/" + url.PathEscape(id) + ".png?size="
	return avatarURLs{X16: b + "16", X24: b + "24", X32: b + "32", X48: b + "48"}
}

// userJSON is the platform User (and, without AppType/Locale/Groups, UserDetails).
type userJSON struct {
	Self             string          `json:"self"`
	AccountID        string          `json:"accountId"`
	AccountType      string          `json:"accountType"`
	AppType          string          `json:"appType,omitempty"`
	EmailAddress     string          `json:"emailAddress,omitempty"`
	DisplayName      string          `json:"displayName"`
	Active           bool            `json:"active"`
	TimeZone         string          `json:"timeZone"`
	Locale           string          `json:"locale,omitempty"`
	AvatarURLs       avatarURLs      `json:"avatarUrls"`
	Groups           *listWrapper    `json:"groups,omitempty"`
	ApplicationRoles *listWrapperAny `json:"applicationRoles,omitempty"`
	Expand           string          `json:"expand,omitempty"`
}

type listWrapper struct {
	Size       int         `json:"size"`
	Items      []groupName `json:"items"`
	MaxResults int         `json:"max-results"`
}

type listWrapperAny struct {
	Size  int               `json:"size"`
	Items []applicationRole `json:"items"`
}

type groupName struct {
	GroupID string `json:"groupId"`
	Name    string `json:"name"`
	Self    string `json:"self"`
}

func (s *Sim) userJSON(base string, a *account, details bool) userJSON {
	u := userJSON{
		Self:        base + "/rest/api/3/user?accountId=" + url.QueryEscape(a.id),
		AccountID:   a.id,
		AccountType: a.typ,
		DisplayName: a.displayName,
		Active:      a.usable(),
		TimeZone:    "Etc/UTC",
		AvatarURLs:  avatars(a.id),
	}
	if !a.hideEmail {
		u.EmailAddress = a.email
	}
	if !details {
		u.Locale = "en_US"
		u.AppType = a.appType
	}
	return u
}

func groupSelf(base, id string) string {
	return base + "/rest/api/3/group?groupId=" + url.QueryEscape(id)
}

// pageBean is Jira's PageBean.
type pageBean[T any] struct {
	Self       string `json:"self"`
	NextPage   string `json:"nextPage,omitempty"`
	MaxResults int    `json:"maxResults"`
	StartAt    int    `json:"startAt"`
	Total      int    `json:"total"`
	IsLast     bool   `json:"isLast"`
	Values     []T    `json:"values"`
}

func newPageBean[T any](r *http.Request, all []T, start, max int) pageBean[T] {
	vals := window(all, start, max)
	p := pageBean[T]{MaxResults: max, StartAt: start, Total: len(all), Values: vals,
		IsLast: start+len(vals) >= len(all)}
	q := r.URL.Query()
	q.Set("startAt", strconv.Itoa(start))
	q.Set("maxResults", strconv.Itoa(max))
	p.Self = baseURL(r) + r.URL.Path + "?" + q.Encode()
	if !p.IsLast {
		q.Set("startAt", strconv.Itoa(start+len(vals)))
		p.NextPage = baseURL(r) + r.URL.Path + "?" + q.Encode()
	}
	return p
}

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return errors.New("request body is empty")
	}
	return json.Unmarshal(b, v)
}
