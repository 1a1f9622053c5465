package jira

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrorShapes(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		endpoint string
		body     string
		want     string
		is       []error
		isNot    []error
	}{
		{"jira collection", 400, epGroup, `{"errorMessages":["A group with this name already exists."],"errors":{}}`, "already exists", []error{ErrAlreadyExists}, []error{ErrTransient, ErrNotFound}},
		{"jira field errors", 400, epUser, `{"errorMessages":[],"errors":{"emailAddress":"You must specify an email address."}}`, "emailAddress: You must", nil, []error{ErrAlreadyExists}},
		{"seat limit", 400, epUser, `{"errorMessages":["Unable to create or add the user: you have exceeded the number of licensed users for your site."]}`, "licensed", []error{ErrLicenseLimit}, nil},
		{"jsm", 409, epCustomer, `{"errorMessage":"An account already exists for this email.","i18nErrorMessage":{"i18nKey":"sd.customer.email.exists","parameters":[]}}`, "already exists", []error{ErrAlreadyExists}, nil},
		{"jsm key only", 404, epDesks, `{"i18nErrorMessage":{"i18nKey":"sd.servicedesk.error.not.found"}}`, "sd.servicedesk", []error{ErrNotFound}, nil},
		{"scim", 409, "/scim/Users", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"User already exists"}`, "uniqueness: User already exists", []error{ErrAlreadyExists}, nil},
		{"error traceId", 401, epProfile, `{"error":"Unauthorized","traceId":"abc"}`, "Unauthorized (traceId abc)", []error{ErrUnauthorized}, []error{ErrForbidden}},
		{"admin key", 400, epEmail, `{"key":"fieldConstraintsViolated","context":{"fieldViolations":[{"field":"email","violations":[{"key":"conflict"}]}]}}`, "fieldConstraintsViolated (email: conflict)", nil, nil},
		{"forbidden", 403, epGroupBulk, `{"errorMessages":["Browse users and groups permission is required to view groups."],"errors":{}}`, "Browse users", []error{ErrForbidden}, nil},
		{"rate limited", 429, epGroupUser, `{"errorMessages":["Rate limit exceeded."]}`, "Rate limit", []error{ErrRateLimited, ErrTransient}, nil},
		{"users/search timeout", 409, epUsersSearch, ``, "Conflict", []error{ErrTransient}, []error{ErrAlreadyExists}},
		{"gateway html", 502, epUser, `<html>Bad Gateway</html>`, "Bad Gateway", []error{ErrTransient}, nil},
		{"plain text", 500, epUser, `oops`, "oops", []error{ErrTransient}, nil},
		// Membership is decided from data, not from wording: this 400 is not "not found".
		{"not a member", 400, epGroupUser, `{"errorMessages":["Cannot remove user. User is not a member of the group."]}`, "not a member", nil, []error{ErrNotFound}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := parseError("POST", c.endpoint, c.status, []byte(c.body))
			if !strings.Contains(e.Error(), c.want) || !strings.Contains(e.Error(), c.endpoint) {
				t.Errorf("Error() = %q, want it to contain %q and the endpoint", e.Error(), c.want)
			}
			var err error = e
			for _, s := range c.is {
				if !errors.Is(err, s) {
					t.Errorf("not %v", s)
				}
			}
			for _, s := range c.isNot {
				if errors.Is(err, s) {
					t.Errorf("unexpectedly %v", s)
				}
			}
		})
	}
}

func FuzzParseError(f *testing.F) {
	f.Add(400, []byte(`{"errorMessages":["x"],"errors":{"a":"b"}}`))
	f.Add(409, []byte(`{"errorMessage":"x","i18nErrorMessage":{"i18nKey":"k"}}`))
	f.Add(500, []byte(`{"error":{"message":"m"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseError("GET", epUser, status, body)
		_ = e.Error()
		_ = errors.Is(e, ErrAlreadyExists)
	})
}
