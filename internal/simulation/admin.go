package simulation

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
)

// adminEdit makes an admin's edit by hand in Jira, through the REST API with the site
// admin's credentials (the write log keeps these apart from idsync's). An edit whose
// account is not on the site is skipped.
func (r *run) adminEdit(a *adminAction) error {
	w := r.w
	before := snapshotJira(w.jira)
	acc := ""
	switch {
	case a.Person != "":
		var ids []string
		for id, x := range before.Accounts {
			if x.OnSite && w.dir.person(id) == a.Person {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		if len(ids) > 0 {
			acc = ids[0]
		}
	case a.Email != "":
		if x, ok := w.jira.AccountByEmail(a.Email); ok && x.OnSite {
			acc = x.AccountID
		}
	}
	call := func(method, path, body string) error {
		code, b, err := w.adminCall(method, path, body)
		if err != nil {
			return fmt.Errorf("admin edit %s: %w", a.Kind, err)
		}
		if code >= 300 && code != http.StatusNotFound {
			return fmt.Errorf("admin edit %s: %s %s: %d %s", a.Kind, method, path, code, b)
		}
		return nil
	}
	addTo := func(group, id string) error {
		gid := before.GroupID[lower(group)]
		if gid == "" || id == "" || before.member(group, id) {
			return nil
		}
		return call(http.MethodPost, "/rest/api/3/group/user?groupId="+url.QueryEscape(gid), fmt.Sprintf(`{"accountId":%q}`, id))
	}
	var err error
	switch a.Kind {
	case adminUnowned:
		if acc == "" {
			if err = call(http.MethodPost, "/rest/api/3/user", fmt.Sprintf(`{"emailAddress":%q,"products":["jira-software"]}`, a.Email)); err == nil {
				if x, ok := w.jira.AccountByEmail(a.Email); ok {
					err = addTo(contractorsGroup, x.AccountID)
				}
			}
		}
	case adminContractor, adminServiceDesk, adminUnownedMapped, adminMisc:
		err = addTo(a.Group, acc)
	case adminRemoveManaged:
		if gid := before.GroupID[lower(a.Group)]; gid != "" && acc != "" && before.member(a.Group, acc) {
			err = call(http.MethodDelete, "/rest/api/3/group/user?groupId="+url.QueryEscape(gid)+"&accountId="+url.QueryEscape(acc), "")
		}
	case adminDeleteAccount, adminDeleteUnowned:
		if acc != "" {
			err = call(http.MethodDelete, "/rest/api/3/user?accountId="+url.QueryEscape(acc), "")
		}
	}
	r.trackOwners(before, snapshotJira(w.jira), "admin")
	return err
}

// trackOwners records who made the memberships that appeared between two states, and
// forgets those that went.
func (r *run) trackOwners(before, after jiraState, actor string) {
	for g, m := range after.Members {
		for acc := range m {
			if !before.Members[g][acc] {
				r.owner[memKey{g, acc}] = actor
			}
		}
	}
	for g, m := range before.Members {
		for acc := range m {
			if !after.Members[g][acc] {
				delete(r.owner, memKey{g, acc})
			}
		}
	}
}
