package jira

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// createAttempts bounds check-then-create rounds for a create whose outcome was unknown.
const createAttempts = 3

// disableMessage is sent with lifecycle/disable (the person may see it).
const disableMessage = "Deactivated by idsync: the account is no longer in the identity provider."

// Apply performs one change. Every kind is safe to repeat: creates adopt what exists, adds
// and removes already in the wanted state count as done.
func (s *Sink) Apply(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	if c.Unsupported != "" {
		return reconcile.Result{}, fmt.Errorf("%s: %w: %s", c.Kind, ErrUnsupported, c.Unsupported)
	}
	var (
		res reconcile.Result
		err error
	)
	switch c.Kind {
	case reconcile.KindCreateGroup:
		res, err = s.createGroup(ctx, c)
	case reconcile.KindCreateUser:
		res, err = s.createUser(ctx, c.Email, c.DisplayName)
	case reconcile.KindUpdateUser:
		res, err = s.updateUser(ctx, c)
	case reconcile.KindAddMember:
		res, err = s.addMember(ctx, c)
	case reconcile.KindRemoveMember:
		res, err = s.removeMember(ctx, c)
	case reconcile.KindDeactivateUser:
		res, err = s.deactivate(ctx, c)
	case reconcile.KindReactivateUser:
		res, err = s.reactivate(ctx, c)
	case reconcile.KindCreateCustomer:
		res, err = s.createCustomer(ctx, c)
	case reconcile.KindAddCustomer:
		res, err = s.changeCustomer(ctx, c, true)
	case reconcile.KindRemoveCustomer:
		res, err = s.changeCustomer(ctx, c, false)
	case reconcile.KindAddOrganizationMember:
		res, err = s.changeOrgMember(ctx, c, true)
	case reconcile.KindRemoveOrganizationMember:
		res, err = s.changeOrgMember(ctx, c, false)
	default:
		return reconcile.Result{}, fmt.Errorf("change kind %q is not implemented by the Jira sink", c.Kind)
	}
	if err != nil {
		return res, fmt.Errorf("%s %s: %w", c.Kind, describe(c), err)
	}
	return res, nil
}

func describe(c reconcile.Change) string {
	var parts []string
	if c.UserName != "" {
		parts = append(parts, "user "+c.UserName)
	} else if c.Email != "" {
		parts = append(parts, "user "+c.Email)
	}
	if c.AccountID != "" {
		parts = append(parts, "account "+c.AccountID)
	}
	if c.Group != nil {
		parts = append(parts, "group "+c.Group.Name)
	}
	if c.ServiceDesk != "" {
		parts = append(parts, "service desk "+c.ServiceDesk)
	}
	if c.Organization != "" {
		parts = append(parts, "organization "+c.Organization)
	}
	return strings.Join(parts, ", ")
}

func needAccount(c reconcile.Change) error {
	if c.AccountID == "" {
		return errors.New("change has no accountId")
	}
	return nil
}

// createGroup creates a group, or adopts the group of that name when it exists (400 "name in
// use", or found by the check after an unknown outcome).
func (s *Sink) createGroup(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	if c.Group == nil || strings.TrimSpace(c.Group.Name) == "" {
		return reconcile.Result{}, errors.New("create_group names no group")
	}
	name := c.Group.Name
	res := reconcile.Result{}
	for attempt := 1; ; attempt++ {
		b, err := s.c.write(ctx, request{method: http.MethodPost, target: TargetJira, endpoint: epGroup, path: epGroup,
			body: map[string]string{"name": name}, ok: []int{http.StatusCreated, http.StatusOK}})
		res.Writes++
		if err == nil {
			var g apiGroup
			if err := decode(request{method: http.MethodPost, endpoint: epGroup}, b, &g); err != nil {
				return res, err
			}
			if g.GroupID == "" {
				return res, fmt.Errorf("POST %s: %w: no groupId in answer", epGroup, ErrBadResponse)
			}
			s.learnGroup(g.Name, g.GroupID)
			res.GroupID = g.GroupID
			return res, nil
		}
		var apiErr *APIError
		adoptable := errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest || errors.Is(err, ErrAlreadyExists)
		if !adoptable && !errors.Is(err, ErrTransient) {
			return res, err
		}
		found, ferr := s.findGroup(ctx, name)
		if ferr != nil {
			return res, errors.Join(err, ferr)
		}
		if found != nil {
			res.GroupID, res.Adopted = found.GroupID, true
			return res, nil
		}
		if adoptable || attempt >= createAttempts {
			return res, err
		}
	}
}

// createUser sends POST /rest/api/3/user with the configured products. Jira answers 201 with
// the same account when the user exists and has access; a user that exists without access
// (400) is adopted by an exact email search so that the plan can grant access.
//
// Jira ignores a display name on create (the account gets the email's local part); with the
// admin API configured the wanted name is set right away, so a first pass does not leave a
// profile update for the next one. A failure there does not fail the create: the account
// exists and must be linked; the next pass plans the update.
func (s *Sink) createUser(ctx context.Context, email, displayName string) (reconcile.Result, error) {
	if strings.TrimSpace(email) == "" {
		return reconcile.Result{}, errors.New("create_user has no email")
	}
	products := s.cfg.Products
	if products == nil {
		products = []string{}
	}
	res := reconcile.Result{}
	b, err := s.c.write(ctx, request{method: http.MethodPost, target: TargetJira, endpoint: epUser, path: epUser,
		body: map[string]any{"emailAddress": email, "products": products}, idempotent: true, ok: []int{http.StatusCreated, http.StatusOK}})
	res.Writes++
	if err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			us, ferr := s.c.findByEmail(ctx, email)
			if ferr == nil && len(us) == 1 {
				res.AccountID, res.Adopted = us[0].AccountID, true
				return res, nil
			}
		}
		return res, err
	}
	var u apiUser
	if err := decode(request{method: http.MethodPost, endpoint: epUser}, b, &u); err != nil {
		return res, err
	}
	if u.AccountID == "" {
		return res, fmt.Errorf("POST %s: %w: no accountId in answer", epUser, ErrBadResponse)
	}
	res.AccountID = u.AccountID
	// Jira puts the account into its products' default groups; say so, so the engine records
	// those memberships instead of sending adds Jira would refuse as duplicates.
	res.Groups = s.createdIn()
	if s.ProfileWritable() && displayName != "" && u.DisplayName != displayName && !res.Adopted {
		_, err := s.c.write(ctx, request{method: http.MethodPatch, target: TargetAdmin, endpoint: epProfile,
			path: "/users/" + url.PathEscape(u.AccountID) + "/manage/profile", body: map[string]string{"name": displayName}, idempotent: true})
		if err != nil {
			s.log.Warn().Err(err).Str("account_id", u.AccountID).Msg("setting the display name of a new account; the next pass retries")
		} else {
			res.Writes++
		}
	}
	return res, nil
}

// updateUser sets display name and email through the admin API (managed accounts only).
func (s *Sink) updateUser(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	res := reconcile.Result{AccountID: c.AccountID}
	if !s.ProfileWritable() {
		return res, fmt.Errorf("%w: profile updates need sink.jira.admin_api", ErrUnsupported)
	}
	if err := needAccount(c); err != nil {
		return res, err
	}
	id := url.PathEscape(c.AccountID)
	for _, f := range c.Fields {
		var err error
		switch f.Field {
		case "displayName":
			_, err = s.c.write(ctx, request{method: http.MethodPatch, target: TargetAdmin, endpoint: epProfile,
				path: "/users/" + id + "/manage/profile", body: map[string]string{"name": f.New}, idempotent: true})
		case "email":
			_, err = s.c.write(ctx, request{method: http.MethodPut, target: TargetAdmin, endpoint: epEmail,
				path: "/users/" + id + "/manage/email", body: map[string]string{"email": f.New}})
		default:
			err = fmt.Errorf("%w: field %q cannot be updated in Jira", ErrUnsupported, f.Field)
		}
		if err != nil {
			return res, fmt.Errorf("updating %s: %w", f.Field, err)
		}
		res.Writes++
	}
	return res, nil
}

func (s *Sink) addToGroup(ctx context.Context, groupID, accountID string) error {
	_, err := s.c.write(ctx, request{method: http.MethodPost, target: TargetJira, endpoint: epGroupUser, path: epGroupUser,
		query: url.Values{"groupId": {groupID}}, body: map[string]string{"accountId": accountID}, idempotent: true,
		ok: []int{http.StatusCreated, http.StatusOK}})
	if errors.Is(err, ErrAlreadyExists) {
		return nil
	}
	return err
}

// leaveGroup sends DELETE /group/user. It returns true when the account left the group, and
// false with a nil error when Jira answers 404: the group or the user is not found (the only
// answers the spec documents besides 200, 400, 401 and 403), so there is no such membership.
// Any other answer is returned as its error; see settledByRead.
func (s *Sink) leaveGroup(ctx context.Context, groupID, accountID string) (bool, error) {
	_, err := s.c.write(ctx, request{method: http.MethodDelete, target: TargetJira, endpoint: epGroupUser, path: epGroupUser,
		query: url.Values{"groupId": {groupID}, "accountId": {accountID}}})
	if err == nil {
		return true, nil
	}
	if hasStatus(err, http.StatusNotFound) {
		return false, nil
	}
	return false, err
}

// settledByRead reports whether a failed removal is decided by reading the account's
// memberships: an answer of Jira that is neither a success, nor 404, nor transient or
// throttled (those stay failures, and the next pass tries again). Never the wording of the
// answer: only whether the account is still in the group.
func settledByRead(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && !errors.Is(err, ErrTransient)
}

func hasStatus(err error, status int) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == status
}

// memberships reads the groups an account is in (GET /user/groups), in Jira's order. An
// account Jira does not find (404) is in no group.
func (s *Sink) memberships(ctx context.Context, accountID string) ([]apiGroup, error) {
	gs, err := s.c.userGroups(ctx, accountID)
	if hasStatus(err, http.StatusNotFound) {
		return []apiGroup{}, nil
	}
	return gs, err
}

// inGroup reports whether gs holds the group of id (or, without an id, of that name).
func inGroup(gs []apiGroup, ref reconcile.GroupRef) bool {
	for _, g := range gs {
		if ref.ID != "" && g.GroupID == ref.ID || ref.ID == "" && strings.EqualFold(g.Name, ref.Name) {
			return true
		}
	}
	return false
}

// stillMember settles a removal that failed with err (see settledByRead) by reading the
// account's groups: nil when it is not in the group (done), err when it still is, both
// errors when the read fails.
func (s *Sink) stillMember(ctx context.Context, ref reconcile.GroupRef, accountID string, err error) error {
	gs, rerr := s.memberships(ctx, accountID)
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("checking membership: %w", rerr))
	}
	if inGroup(gs, ref) {
		return err
	}
	return nil
}

func (s *Sink) addMember(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	res := reconcile.Result{AccountID: c.AccountID}
	if err := needAccount(c); err != nil {
		return res, err
	}
	gid, err := s.groupID(ctx, c.Group)
	if err != nil {
		return res, err
	}
	res.GroupID = gid
	res.Writes = 1
	return res, s.addToGroup(ctx, gid, c.AccountID)
}

func (s *Sink) removeMember(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	res := reconcile.Result{AccountID: c.AccountID}
	if err := needAccount(c); err != nil {
		return res, err
	}
	gid, err := s.groupID(ctx, c.Group)
	if errors.Is(err, ErrNotFound) {
		return res, nil // no such group: no such membership
	}
	if err != nil {
		return res, err
	}
	res.GroupID = gid
	res.Writes = 1
	if _, err = s.leaveGroup(ctx, gid, c.AccountID); err != nil && settledByRead(err) {
		err = s.stillMember(ctx, reconcile.GroupRef{ID: gid, Name: c.Group.Name}, c.AccountID, err)
	}
	return res, err
}

// deactivate applies the configured method (remove-access: see removeAccess).
func (s *Sink) deactivate(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	res := reconcile.Result{AccountID: c.AccountID, Method: s.method}
	if err := needAccount(c); err != nil {
		return res, err
	}
	switch s.method {
	case configs.DeactivateRemoveAccess:
		return s.removeAccess(ctx, c)
	case configs.DeactivateSuspend:
		return s.suspendAccount(ctx, c)
	case configs.DeactivateAdminAPI:
		_, err := s.c.write(ctx, request{method: http.MethodPost, target: TargetAdmin, endpoint: epDisable,
			path: "/users/" + url.PathEscape(c.AccountID) + "/manage/lifecycle/disable",
			body: map[string]string{"message": disableMessage}, idempotent: true})
		res.Writes = 1
		return res, err
	case configs.DeactivateDelete:
		_, err := s.c.write(ctx, request{method: http.MethodDelete, target: TargetJira, endpoint: epUser, path: epUser,
			query: url.Values{"accountId": {c.AccountID}}})
		res.Writes = 1
		if errors.Is(err, ErrNotFound) {
			return res, nil
		}
		return res, err
	}
	return res, fmt.Errorf("deactivation method %q is not implemented", s.method)
}

// reactivate reverses a deactivation: admin-api enables the account, suspend restores its
// access in the directory (with the groups it kept), delete brings it back by email (POST
// /user: the Atlassian account, and so the accountId, survives removal from the site), and
// in every case the groups of Change.Groups are restored (what remove-access took).
func (s *Sink) reactivate(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	// The method that took the access, not the one configured now: an account suspended
	// before a switch to remove-access is restored, not left suspended.
	method := cmp.Or(c.Method, s.method)
	res := reconcile.Result{AccountID: c.AccountID, Method: method}
	if err := s.canReverse(method); err != nil {
		return res, err
	}
	switch method {
	case configs.DeactivateAdminAPI:
		if err := needAccount(c); err != nil {
			return res, err
		}
		_, err := s.c.write(ctx, request{method: http.MethodPost, target: TargetAdmin, endpoint: epEnable,
			path: "/users/" + url.PathEscape(c.AccountID) + "/manage/lifecycle/enable", idempotent: true})
		res.Writes++
		if err != nil {
			return res, err
		}
	case configs.DeactivateDelete:
		cr, err := s.createUser(ctx, c.Email, "")
		res.Writes += cr.Writes
		if err != nil {
			return res, err
		}
		res.AccountID = cr.AccountID
	case configs.DeactivateSuspend:
		if err := needAccount(c); err != nil {
			return res, err
		}
		n, err := s.setSuspension(ctx, c.AccountID, false)
		res.Writes += n
		if err != nil {
			return res, err
		}
	}
	if res.AccountID == "" && len(c.Groups) > 0 {
		return res, errors.New("change has no accountId")
	}
	for i := range c.Groups {
		g := c.Groups[i]
		gid, err := s.groupID(ctx, &g)
		if err != nil {
			return res, fmt.Errorf("restoring group %s: %w", g.Name, err)
		}
		res.Writes++
		if err := s.addToGroup(ctx, gid, res.AccountID); err != nil {
			return res, fmt.Errorf("restoring group %s: %w", g.Name, err)
		}
		res.Groups = append(res.Groups, reconcile.GroupRef{ID: gid, Name: g.Name})
	}
	return res, nil
}

// createCustomer creates a portal-only customer. With strictConflictStatusCode a duplicate
// email answers 409, and the existing account is then looked up (on the desk of the change,
// then by user search) and adopted.
func (s *Sink) createCustomer(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	email := strings.TrimSpace(c.Email)
	if email == "" {
		return reconcile.Result{}, errors.New("create_customer has no email")
	}
	res := reconcile.Result{}
	name := c.DisplayName
	if name == "" {
		name = email
	}
	for attempt := 1; ; attempt++ {
		b, err := s.c.write(ctx, request{method: http.MethodPost, target: TargetJSM, endpoint: epCustomer, path: epCustomer,
			query: url.Values{"strictConflictStatusCode": {"true"}},
			body:  map[string]string{"email": email, "displayName": name}, ok: []int{http.StatusCreated, http.StatusOK}})
		res.Writes++
		if err == nil {
			var u apiCustomer
			if err := decode(request{method: http.MethodPost, endpoint: epCustomer}, b, &u); err != nil {
				return res, err
			}
			if u.AccountID == "" {
				return res, fmt.Errorf("POST %s: %w: no accountId in answer", epCustomer, ErrBadResponse)
			}
			res.AccountID = u.AccountID
			return res, nil
		}
		exists := errors.Is(err, ErrAlreadyExists)
		if !exists && !errors.Is(err, ErrTransient) {
			return res, err
		}
		id, ferr := s.findCustomer(ctx, c.ServiceDesk, email)
		if ferr != nil {
			return res, errors.Join(err, ferr)
		}
		if id != "" {
			res.AccountID, res.Adopted = id, true
			return res, nil
		}
		if exists || attempt >= createAttempts {
			return res, err
		}
	}
}

// findCustomer finds the account of an email among the desk's customers, then by user search.
func (s *Sink) findCustomer(ctx context.Context, deskRef, email string) (string, error) {
	if deskRef != "" {
		d, err := s.desk(ctx, deskRef)
		if err == nil {
			cs, err := s.c.deskCustomers(ctx, d.ID, email)
			if err != nil {
				return "", err
			}
			for _, cu := range cs {
				if strings.EqualFold(cu.EmailAddress, email) {
					return cu.AccountID, nil
				}
			}
		} else if !errors.Is(err, ErrNotFound) {
			return "", err
		}
	}
	us, err := s.c.findByEmail(ctx, email)
	if err != nil {
		return "", err
	}
	if len(us) == 1 {
		return us[0].AccountID, nil
	}
	return "", nil
}

func (s *Sink) changeCustomer(ctx context.Context, c reconcile.Change, add bool) (reconcile.Result, error) {
	res := reconcile.Result{AccountID: c.AccountID}
	if err := needAccount(c); err != nil {
		return res, err
	}
	d, err := s.desk(ctx, c.ServiceDesk)
	if err != nil {
		return res, err
	}
	r := request{method: http.MethodPost, target: TargetJSM, endpoint: epDeskCustomer, path: deskPath(d.ID),
		body: map[string][]string{"accountIds": {c.AccountID}}, idempotent: true}
	if !add {
		r.method, r.experimental = http.MethodDelete, true
	}
	res.Writes = 1
	_, err = s.c.write(ctx, r)
	return res, err
}

// orgID resolves an organization: the change's id, a name learnt earlier, or (create true)
// POST /organization, which returns the existing organization of that name.
func (s *Sink) orgID(ctx context.Context, c reconcile.Change, create bool) (string, int, error) {
	if c.OrganizationID != "" {
		return c.OrganizationID, 0, nil
	}
	key := strings.ToLower(c.Organization)
	if key == "" {
		return "", 0, errors.New("change names no organization")
	}
	s.mu.Lock()
	id, ok := s.orgIDs[key]
	s.mu.Unlock()
	if ok {
		return id, 0, nil
	}
	if !create {
		os, err := s.c.listOrgs(ctx, "")
		if err != nil {
			return "", 0, err
		}
		for _, o := range os {
			if strings.EqualFold(o.Name, c.Organization) {
				s.mu.Lock()
				s.orgIDs[key] = o.ID
				s.mu.Unlock()
				return o.ID, 0, nil
			}
		}
		return "", 0, fmt.Errorf("organization %q: %w", c.Organization, ErrNotFound)
	}
	b, err := s.c.write(ctx, request{method: http.MethodPost, target: TargetJSM, endpoint: epOrgs, path: epOrgs,
		body: map[string]string{"name": c.Organization}, idempotent: true, ok: []int{http.StatusCreated, http.StatusOK}})
	if err != nil {
		return "", 1, err
	}
	var o apiOrg
	if err := json.Unmarshal(b, &o); err != nil || o.ID == "" {
		return "", 1, fmt.Errorf("POST %s: %w: no organization id in answer", epOrgs, ErrBadResponse)
	}
	s.mu.Lock()
	s.orgIDs[key] = o.ID
	s.mu.Unlock()
	return o.ID, 1, nil
}

func (s *Sink) changeOrgMember(ctx context.Context, c reconcile.Change, add bool) (reconcile.Result, error) {
	res := reconcile.Result{AccountID: c.AccountID}
	if err := needAccount(c); err != nil {
		return res, err
	}
	id, writes, err := s.orgID(ctx, c, add)
	res.Writes += writes
	if !add && errors.Is(err, ErrNotFound) {
		return res, nil // no such organization: no such membership
	}
	if err != nil {
		return res, err
	}
	res.OrganizationID = id
	method := http.MethodPost
	if !add {
		method = http.MethodDelete
	}
	res.Writes++
	_, err = s.c.write(ctx, request{method: method, target: TargetJSM, endpoint: epOrgUsers, path: orgUsersPath(id),
		body: map[string][]string{"accountIds": {c.AccountID}}, idempotent: true})
	return res, err
}

// canReverse says whether this sink's configuration can undo a deactivation made with method.
func (s *Sink) canReverse(method string) error {
	a := s.cfg.AdminAPI
	switch method {
	case configs.DeactivateAdminAPI:
		if !s.ProfileWritable() {
			return fmt.Errorf("%w: the account was deactivated with admin-api; enabling it needs sink.jira.admin_api", ErrUnsupported)
		}
	case configs.DeactivateSuspend:
		if !s.ProfileWritable() || a == nil || strings.TrimSpace(a.OrgID) == "" {
			return fmt.Errorf("%w: the account was suspended; restoring it needs sink.jira.admin_api with org_id", ErrUnsupported)
		}
	}
	return nil
}
