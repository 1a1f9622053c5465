package jiratest

import "net/http"

type family int

const (
	famJira family = iota
	famJSM
	famAdmin
	famOrg // the organization API (/admin/v1, /admin/v2): the org API key, Errors bodies
)

type handlerFunc func(w http.ResponseWriter, r *http.Request)

func (s *Sim) routes() {
	s.mux = http.NewServeMux()
	h := func(pattern string, fam family, fn handlerFunc) {
		s.mux.Handle(pattern, s.wrap(pattern, fam, fn))
	}
	// Jira platform.
	h("GET /rest/api/3/users/search", famJira, s.getAllUsers)
	h("GET /rest/api/3/users", famJira, s.getAllUsers)
	h("GET /rest/api/3/user/search", famJira, s.findUsers)
	h("GET /rest/api/3/user", famJira, s.getUser)
	h("POST /rest/api/3/user", famJira, s.createUser)
	h("DELETE /rest/api/3/user", famJira, s.removeUser)
	h("GET /rest/api/3/user/groups", famJira, s.getUserGroups)
	h("GET /rest/api/3/myself", famJira, s.myself)
	h("GET /rest/api/3/group/bulk", famJira, s.bulkGetGroups)
	h("POST /rest/api/3/group", famJira, s.createGroup)
	h("DELETE /rest/api/3/group", famJira, s.removeGroup)
	h("GET /rest/api/3/group/member", famJira, s.getGroupMembers)
	h("POST /rest/api/3/group/user", famJira, s.addUserToGroup)
	h("DELETE /rest/api/3/group/user", famJira, s.removeUserFromGroup)
	h("GET /rest/api/3/applicationrole", famJira, s.getApplicationRoles)
	// JSM.
	const sd = "/rest/servicedeskapi"
	h("POST "+sd+"/customer", famJSM, s.createCustomer)
	h("GET "+sd+"/servicedesk", famJSM, s.getServiceDesks)
	h("GET "+sd+"/servicedesk/{serviceDeskId}", famJSM, s.getServiceDesk)
	h("GET "+sd+"/servicedesk/{serviceDeskId}/customer", famJSM, s.getCustomers)
	h("POST "+sd+"/servicedesk/{serviceDeskId}/customer", famJSM, s.addCustomers)
	h("DELETE "+sd+"/servicedesk/{serviceDeskId}/customer", famJSM, s.removeCustomers)
	h("GET "+sd+"/organization", famJSM, s.getOrganizations)
	h("POST "+sd+"/organization", famJSM, s.createOrganization)
	h("GET "+sd+"/organization/{organizationId}/user", famJSM, s.getOrganizationUsers)
	h("POST "+sd+"/organization/{organizationId}/user", famJSM, s.addOrganizationUsers)
	h("DELETE "+sd+"/organization/{organizationId}/user", famJSM, s.removeOrganizationUsers)
	// Admin user management.
	h("GET /users/{account_id}/manage/profile", famAdmin, s.getProfile)
	h("PATCH /users/{account_id}/manage/profile", famAdmin, s.patchProfile)
	h("PUT /users/{account_id}/manage/email", famAdmin, s.putEmail)
	h("POST /users/{account_id}/manage/lifecycle/disable", famAdmin, s.disableUser)
	h("POST /users/{account_id}/manage/lifecycle/enable", famAdmin, s.enableUser)
	// Organization API, v2 directories (orgapi.go).
	const dirs = "/admin/v2/orgs/{orgId}/directories"
	h("GET "+dirs, famOrg, s.getDirectories)
	h("GET "+dirs+"/{directoryId}/users", famOrg, s.getDirectoryUsers)
	h("POST "+dirs+"/{directoryId}/users/{accountId}/suspend", famOrg, s.suspendUser)
	h("POST "+dirs+"/{directoryId}/users/{accountId}/restore", famOrg, s.restoreUser)
	s.mux.Handle("/", s.wrap("", famJira, func(w http.ResponseWriter, r *http.Request) {
		writeJira(w, http.StatusNotFound, "No API route matches "+r.Method+" "+r.URL.Path+".")
	}))
}
