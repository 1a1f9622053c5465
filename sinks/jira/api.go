package jira

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Endpoint templates, as metrics and errors name them.
const (
	epUsersSearch  = "/rest/api/3/users/search"
	epUserSearch   = "/rest/api/3/user/search"
	epUser         = "/rest/api/3/user"
	epUserGroups   = "/rest/api/3/user/groups"
	epGroupBulk    = "/rest/api/3/group/bulk"
	epGroup        = "/rest/api/3/group"
	epGroupMember  = "/rest/api/3/group/member"
	epGroupUser    = "/rest/api/3/group/user"
	epAppRole      = "/rest/api/3/applicationrole"
	epCustomer     = "/rest/servicedeskapi/customer"
	epDesks        = "/rest/servicedeskapi/servicedesk"
	epDeskCustomer = "/rest/servicedeskapi/servicedesk/{serviceDeskId}/customer"
	epOrgs         = "/rest/servicedeskapi/organization"
	epOrgUsers     = "/rest/servicedeskapi/organization/{organizationId}/user"
	epProfile      = "/users/{account_id}/manage/profile"
	epEmail        = "/users/{account_id}/manage/email"
	epDisable      = "/users/{account_id}/manage/lifecycle/disable"
	epEnable       = "/users/{account_id}/manage/lifecycle/enable"
)

// Page sizes asked for: the documented caps.
const (
	pageUsers   = 1000
	pageMembers = 50
	pageGroups  = 50
	pageJSM     = 50
	pageSearch  = 100
	// maxPages stops a listing whose server keeps saying "not the last page".
	maxPages = 100000
)

// apiUser is the platform User / UserDetails.
type apiUser struct {
	AccountID    string `json:"accountId"`
	AccountType  string `json:"accountType"`
	EmailAddress string `json:"emailAddress"`
	DisplayName  string `json:"displayName"`
	Active       bool   `json:"active"`
}

type apiGroup struct {
	GroupID string `json:"groupId"`
	Name    string `json:"name"`
}

type pageBean[T any] struct {
	StartAt    int    `json:"startAt"`
	MaxResults int    `json:"maxResults"`
	Total      int    `json:"total"`
	IsLast     *bool  `json:"isLast"`
	NextPage   string `json:"nextPage"`
	Values     []T    `json:"values"`
}

func (p pageBean[T]) last(asked int) bool {
	if p.IsLast != nil {
		return *p.IsLast
	}
	return len(p.Values) < asked
}

type jsmPage[T any] struct {
	Start      int  `json:"start"`
	Limit      int  `json:"limit"`
	Size       int  `json:"size"`
	IsLastPage bool `json:"isLastPage"`
	Values     []T  `json:"values"`
}

type apiDesk struct {
	ID          string `json:"id"`
	ProjectID   string `json:"projectId"`
	ProjectKey  string `json:"projectKey"`
	ProjectName string `json:"projectName"`
}

type apiCustomer struct {
	AccountID    string `json:"accountId"`
	EmailAddress string `json:"emailAddress"`
	DisplayName  string `json:"displayName"`
	Active       bool   `json:"active"`
}

type apiOrg struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type apiRole struct {
	Key           string   `json:"key"`
	Groups        []string `json:"groups"`
	DefaultGroups []string `json:"defaultGroups"`
}

// listUsers reads users/search page by page (bare arrays of up to 1000) until a short page.
func (c *client) listUsers(ctx context.Context) ([]apiUser, error) {
	var all []apiUser
	for start := 0; start/pageUsers < maxPages; start += pageUsers {
		var page []apiUser
		r := request{target: TargetJira, endpoint: epUsersSearch, path: epUsersSearch, class: classRead,
			query: url.Values{"startAt": {strconv.Itoa(start)}, "maxResults": {strconv.Itoa(pageUsers)}}}
		if err := c.getJSON(ctx, r, &page); err != nil {
			return nil, fmt.Errorf("listing users from %d: %w", start, err)
		}
		all = append(all, page...)
		if len(page) < pageUsers {
			return all, nil
		}
	}
	return nil, fmt.Errorf("listing users: more than %d pages", maxPages)
}

// pageBeanAll reads a PageBean listing: the first page, then (knowing total) the remaining
// pages concurrently, then sequentially onward if the listing grew meanwhile.
func pageBeanAll[T any](ctx context.Context, c *client, base request, size int, conc int) ([]T, error) {
	get := func(ctx context.Context, start int) (pageBean[T], error) {
		r := base
		r.query = url.Values{}
		for k, v := range base.query {
			r.query[k] = v
		}
		r.query.Set("startAt", strconv.Itoa(start))
		r.query.Set("maxResults", strconv.Itoa(size))
		var p pageBean[T]
		if err := c.getJSON(ctx, r, &p); err != nil {
			return p, fmt.Errorf("page at %d: %w", start, err)
		}
		return p, nil
	}
	first, err := get(ctx, 0)
	if err != nil {
		return nil, err
	}
	all := first.Values
	if first.last(size) {
		return all, nil
	}
	step := size
	if first.MaxResults > 0 && first.MaxResults < size {
		step = first.MaxResults // the server capped the page size
	}
	if len(first.Values) > 0 && len(first.Values) < step {
		step = len(first.Values)
	}
	next := len(first.Values)
	if first.Total > next && step > 0 {
		starts := []int{}
		for s := next; s < first.Total; s += step {
			starts = append(starts, s)
		}
		pages := make([]pageBean[T], len(starts))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(max(1, conc))
		for i, s := range starts {
			g.Go(func() error {
				p, err := get(gctx, s)
				pages[i] = p
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		lastDone := true
		for i, p := range pages {
			all = append(all, p.Values...)
			next = starts[i] + len(p.Values)
			lastDone = p.last(step)
		}
		if lastDone {
			return all, nil
		}
	}
	for n := 0; n < maxPages; n++ {
		p, err := get(ctx, next)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Values...)
		next += len(p.Values)
		if p.last(step) || len(p.Values) == 0 {
			return all, nil
		}
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

// jsmAll reads a JSM listing (start/limit/isLastPage) sequentially.
func jsmAll[T any](ctx context.Context, c *client, base request) ([]T, error) {
	var all []T
	start := 0
	for n := 0; n < maxPages; n++ {
		r := base
		r.query = url.Values{}
		for k, v := range base.query {
			r.query[k] = v
		}
		r.query.Set("start", strconv.Itoa(start))
		r.query.Set("limit", strconv.Itoa(pageJSM))
		var p jsmPage[T]
		if err := c.getJSON(ctx, r, &p); err != nil {
			return nil, fmt.Errorf("page at %d: %w", start, err)
		}
		all = append(all, p.Values...)
		if p.IsLastPage || len(p.Values) == 0 {
			return all, nil
		}
		start += len(p.Values)
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

func (c *client) listGroups(ctx context.Context, q url.Values, conc int) ([]apiGroup, error) {
	gs, err := pageBeanAll[apiGroup](ctx, c, request{target: TargetJira, endpoint: epGroupBulk, path: epGroupBulk, class: classRead, query: q}, pageGroups, conc)
	if err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	return gs, nil
}

// groupsByName looks groups up by name (case-insensitive), 50 names per request.
func (c *client) groupsByName(ctx context.Context, names []string, conc int) ([]apiGroup, error) {
	var out []apiGroup
	for i := 0; i < len(names); i += pageGroups {
		q := url.Values{"groupName": names[i:min(len(names), i+pageGroups)]}
		gs, err := c.listGroups(ctx, q, conc)
		if err != nil {
			return nil, err
		}
		out = append(out, gs...)
	}
	return out, nil
}

// apiMember is a group member as a member listing is read: only the id is kept, so reading
// a group of 100,000 members does not hold 100,000 profiles.
type apiMember struct {
	AccountID string `json:"accountId"`
}

func (c *client) groupMembers(ctx context.Context, groupID string, conc int) ([]apiMember, error) {
	q := url.Values{"groupId": {groupID}, "includeInactiveUsers": {"true"}}
	us, err := pageBeanAll[apiMember](ctx, c, request{target: TargetJira, endpoint: epGroupMember, path: epGroupMember, class: classRead, query: q}, pageMembers, conc)
	if err != nil {
		return nil, fmt.Errorf("reading members of group %s: %w", groupID, err)
	}
	return us, nil
}

func (c *client) getUser(ctx context.Context, accountID string) (apiUser, error) {
	var u apiUser
	err := c.getJSON(ctx, request{target: TargetJira, endpoint: epUser, path: epUser, class: classRead,
		query: url.Values{"accountId": {accountID}}}, &u)
	if err != nil {
		return u, fmt.Errorf("reading account %s: %w", accountID, err)
	}
	return u, nil
}

// findByEmail searches active users by email and keeps only exact (case-insensitive) matches
// on emailAddress; hidden emails never match.
func (c *client) findByEmail(ctx context.Context, email string) ([]apiUser, error) {
	var out []apiUser
	for start := 0; start < 1000; start += pageSearch {
		var page []apiUser
		r := request{target: TargetJira, endpoint: epUserSearch, path: epUserSearch, class: classSearch,
			query: url.Values{"query": {email}, "startAt": {strconv.Itoa(start)}, "maxResults": {strconv.Itoa(pageSearch)}}}
		if err := c.getJSON(ctx, r, &page); err != nil {
			return nil, fmt.Errorf("searching users by email: %w", err)
		}
		for _, u := range page {
			if u.EmailAddress != "" && strings.EqualFold(u.EmailAddress, email) {
				out = append(out, u)
			}
		}
		if len(page) < pageSearch {
			break
		}
	}
	return out, nil
}

func (c *client) userGroups(ctx context.Context, accountID string) ([]apiGroup, error) {
	var gs []apiGroup
	err := c.getJSON(ctx, request{target: TargetJira, endpoint: epUserGroups, path: epUserGroups, class: classRead,
		query: url.Values{"accountId": {accountID}}}, &gs)
	if err != nil {
		return nil, fmt.Errorf("reading groups of %s: %w", accountID, err)
	}
	return gs, nil
}

func (c *client) appRoles(ctx context.Context) ([]apiRole, error) {
	var rs []apiRole
	if err := c.getJSON(ctx, request{target: TargetJira, endpoint: epAppRole, path: epAppRole, class: classRead}, &rs); err != nil {
		return nil, fmt.Errorf("reading application roles: %w", err)
	}
	return rs, nil
}

func (c *client) listDesks(ctx context.Context) ([]apiDesk, error) {
	ds, err := jsmAll[apiDesk](ctx, c, request{target: TargetJSM, endpoint: epDesks, path: epDesks, class: classRead})
	if err != nil {
		return nil, fmt.Errorf("listing service desks: %w", err)
	}
	return ds, nil
}

func deskPath(id string) string {
	return "/rest/servicedeskapi/servicedesk/" + url.PathEscape(id) + "/customer"
}

func (c *client) deskCustomers(ctx context.Context, deskID, query string) ([]apiCustomer, error) {
	q := url.Values{}
	if query != "" {
		q.Set("query", query)
	}
	cs, err := jsmAll[apiCustomer](ctx, c, request{target: TargetJSM, endpoint: epDeskCustomer, path: deskPath(deskID),
		class: classRead, query: q, experimental: true})
	if err != nil {
		return nil, fmt.Errorf("reading customers of service desk %s: %w", deskID, err)
	}
	return cs, nil
}

func (c *client) listOrgs(ctx context.Context, accountID string) ([]apiOrg, error) {
	q := url.Values{}
	if accountID != "" {
		q.Set("accountId", accountID)
	}
	os, err := jsmAll[apiOrg](ctx, c, request{target: TargetJSM, endpoint: epOrgs, path: epOrgs, class: classRead, query: q})
	if err != nil {
		return nil, fmt.Errorf("listing organizations: %w", err)
	}
	return os, nil
}

func orgUsersPath(id string) string {
	return "/rest/servicedeskapi/organization/" + url.PathEscape(id) + "/user"
}

func (c *client) orgMembers(ctx context.Context, orgID string) ([]apiCustomer, error) {
	us, err := jsmAll[apiCustomer](ctx, c, request{target: TargetJSM, endpoint: epOrgUsers, path: orgUsersPath(orgID), class: classRead})
	if err != nil {
		return nil, fmt.Errorf("reading members of organization %s: %w", orgID, err)
	}
	return us, nil
}

// write sends a write request of class classWrite (or classAdmin for admin targets).
func (c *client) write(ctx context.Context, r request) ([]byte, error) {
	if r.target == TargetAdmin {
		r.class = classAdmin
	} else {
		r.class = classWrite
	}
	_, b, err := c.do(ctx, r)
	return b, err
}

// forEach runs fn over items with at most conc at once, stopping at the first error.
func forEach[T any](ctx context.Context, conc int, items []T, fn func(context.Context, T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, conc))
	for _, it := range items {
		g.Go(func() error { return fn(gctx, it) })
	}
	return g.Wait()
}
