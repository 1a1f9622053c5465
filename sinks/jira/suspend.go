package jira

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// sink.jira.deactivate: suspend, through the organization API's v2 directories (Atlassian
// deprecated the v1 directory endpoints after 30 June 2026; they are not used). Suspension is
// the admin console's "remove access": the account keeps its groups and roles, uses no
// licence, and gets everything back on restore. It is account-wide: every app of the
// organization, not only this site.

// Endpoint templates of the organization API, relative to admin_api.base_url (the API's
// server is https://api.atlassian.com/admin).
const (
	epDirectories = "/admin/v2/orgs/{orgId}/directories"
	epDirUsers    = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users"
	epSuspend     = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend"
	epRestore     = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore"
)

// pageOrg is the largest page the organization API's cursor listings allow (limit 1..100).
const pageOrg = 100

// Membership statuses of a directory user (MultiDirectoryUser.membershipStatus).
const (
	membershipActive    = "active"
	membershipSuspended = "suspended"
)

type orgPage[T any] struct {
	Data  []T `json:"data"`
	Links struct {
		Next string `json:"next"`
	} `json:"links"`
}

type apiDirectory struct {
	DirectoryID string `json:"directoryId"`
	Name        string `json:"name"`
}

// apiDirUser is what suspend and restore read of a MultiDirectoryUser.
type apiDirUser struct {
	AccountID        string `json:"accountId"`
	MembershipStatus string `json:"membershipStatus"`
	Status           string `json:"status"`
}

// suspended reports whether the directory lists the account as suspended. The composite
// status stands in only when membershipStatus is absent; anything else is not suspended.
func (u apiDirUser) suspended() bool {
	return u.MembershipStatus == membershipSuspended || u.MembershipStatus == "" && u.Status == membershipSuspended
}

// restored reports whether the directory lists the account's membership as active.
func (u apiDirUser) restored() bool {
	return u.MembershipStatus == membershipActive || u.MembershipStatus == "" && u.Status == membershipActive
}

func orgPath(orgID string) string {
	return "/admin/v2/orgs/" + url.PathEscape(orgID) + "/directories"
}

// orgAll reads a cursor listing of the organization API (data, links.next) to its end.
func orgAll[T any](ctx context.Context, c *client, base request) ([]T, error) {
	var all []T
	cursor := ""
	for n := 0; n < maxPages; n++ {
		r := base
		r.query = url.Values{}
		for k, v := range base.query {
			r.query[k] = v
		}
		r.query.Set("limit", strconv.Itoa(pageOrg))
		if cursor != "" {
			r.query.Set("cursor", cursor)
		}
		var p orgPage[T]
		if err := c.getJSON(ctx, r, &p); err != nil {
			return nil, fmt.Errorf("page %d: %w", n+1, err)
		}
		all = append(all, p.Data...)
		if p.Links.Next == "" || len(p.Data) == 0 {
			return all, nil
		}
		if p.Links.Next == cursor {
			return nil, fmt.Errorf("%s %s: %w: the next cursor repeats the current one", http.MethodGet, base.endpoint, ErrBadResponse)
		}
		cursor = p.Links.Next
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

// directory returns the directory suspend and restore act in: admin_api.directory_id, or
// the organization's only directory, discovered once (GET /v2/orgs/{orgId}/directories).
// Several directories, or none, is an error that says to set directory_id.
func (s *Sink) directory(ctx context.Context) (string, error) {
	a := s.cfg.AdminAPI
	if id := strings.TrimSpace(a.DirectoryID); id != "" {
		return id, nil
	}
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if s.dirID != "" {
		return s.dirID, nil
	}
	dirs, err := orgAll[apiDirectory](ctx, s.c, request{target: TargetAdmin, endpoint: epDirectories,
		path: orgPath(a.OrgID), class: classAdmin})
	if err != nil {
		return "", fmt.Errorf("listing the directories of organization %s: %w", a.OrgID, err)
	}
	if len(dirs) == 1 && dirs[0].DirectoryID != "" {
		s.dirID = dirs[0].DirectoryID
		return s.dirID, nil
	}
	names := make([]string, 0, len(dirs))
	for _, d := range dirs {
		names = append(names, fmt.Sprintf("%s (%q)", d.DirectoryID, d.Name))
	}
	found := "no directory"
	if len(dirs) > 0 {
		found = plural(len(dirs), "directory") + ": " + strings.Join(names, ", ")
	}
	return "", fmt.Errorf("%w: sink.jira.admin_api.directory_id is not set and organization %s has %s; set directory_id to the directory the accounts idsync manages are in",
		ErrUnsupported, a.OrgID, found)
}

// checkDirectory makes sure, for deactivate: suspend, that suspend and restore know their
// directory, so that the first pass says what is missing rather than the first leaver.
func (s *Sink) checkDirectory(ctx context.Context) error {
	if s.method != configs.DeactivateSuspend {
		return nil
	}
	_, err := s.directory(ctx)
	return err
}

// dirUser reads one account of the directory (GET .../users?accountIds=); found is false
// when the directory does not list it.
func (s *Sink) dirUser(ctx context.Context, dir, accountID string) (apiDirUser, bool, error) {
	us, err := orgAll[apiDirUser](ctx, s.c, request{target: TargetAdmin, endpoint: epDirUsers,
		path: orgPath(s.cfg.AdminAPI.OrgID) + "/" + url.PathEscape(dir) + "/users", class: classAdmin,
		query: url.Values{"accountIds": {accountID}}})
	if err != nil {
		return apiDirUser{}, false, fmt.Errorf("reading account %s in directory %s: %w", accountID, dir, err)
	}
	for _, u := range us {
		if u.AccountID == accountID {
			return u, true, nil
		}
	}
	return apiDirUser{}, false, nil
}

// setSuspension suspends (or restores) an account. Both are idempotent: 2xx is done; an
// answer that is neither a success nor transient (a repeat, which the spec does not
// document, may be refused) is settled by reading the account's membershipStatus, never by
// the wording of the answer. A transient failure stays a failure (the client has retried
// it already; the next pass tries again).
func (s *Sink) setSuspension(ctx context.Context, accountID string, suspend bool) (int, error) {
	dir, err := s.directory(ctx)
	if err != nil {
		return 0, err
	}
	op, ep := "restore", epRestore
	if suspend {
		op, ep = "suspend", epSuspend
	}
	path := orgPath(s.cfg.AdminAPI.OrgID) + "/" + url.PathEscape(dir) + "/users/" + url.PathEscape(accountID) + "/" + op
	_, err = s.c.write(ctx, request{method: http.MethodPost, target: TargetAdmin, endpoint: ep, path: path, idempotent: true})
	if err == nil || !settledByRead(err) {
		return 1, err
	}
	u, found, rerr := s.dirUser(ctx, dir, accountID)
	switch {
	case rerr != nil:
		return 1, errors.Join(err, fmt.Errorf("checking the account's suspension: %w", rerr))
	case found && suspend && u.suspended(), found && !suspend && u.restored():
		return 1, nil
	case !found:
		return 1, fmt.Errorf("%w (directory %s does not list account %s)", err, dir, accountID)
	}
	return 1, err
}

// suspendAccount is the suspend deactivation: the account keeps its groups, so the result
// lists none (reactivation restores the account, not memberships).
func (s *Sink) suspendAccount(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	res := reconcile.Result{AccountID: c.AccountID, Method: s.method}
	n, err := s.setSuspension(ctx, c.AccountID, true)
	res.Writes += n
	return res, err
}
