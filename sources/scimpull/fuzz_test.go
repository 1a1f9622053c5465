package scimpull

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeListResponse feeds arbitrary bytes to the ListResponse decoder and the
// converter: any input must give a value or an error, never a panic.
func FuzzDecodeListResponse(f *testing.F) {
	for _, seed := range []string{
		`{"totalResults":1,"Resources":[{"id":"1","userName":"a","active":"True","emails":[{"value":"a@x","primary":"true"}],"name":{"givenName":"A"},"groups":[{"value":"g","display":"G"}]}]}`,
		`{"totalResults":1,"resources":[{"id":2,"userName":"b","active":false,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":3}}}]}`,
		`{"totalResults":1,"Resources":[{"id":"g","displayName":"G","members":[{"value":"1","type":"User"}]}]}`,
		`{"totalResults":1,"Resources":[{"id":"3","userName":"c"}]}`,
		`{"totalResults":1,"Resources":[{"id":"4","userName":"d","active":null}]}`,
		`{"totalResults":1,"Resources":[{"id":"5","userName":"e","active":"FALSE"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":400,"scimType":"invalidFilter"}`,
		`{}`, `[]`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var users listResponse[scimUser]
		if json.Unmarshal(b, &users) == nil {
			for _, u := range users.Resources {
				out, err := convertUser(u, []string{"G"})
				if err == nil && out.Active && !(u.Active.set && u.Active.value) {
					t.Fatalf("user %q without active:true was taken as active", u.UserName)
				}
				if !u.Active.set && !errors.Is(err, errNoActive) && strings.TrimSpace(u.UserName) != "" {
					t.Fatalf("user %q without active converted with error %v, want errNoActive", u.UserName, err)
				}
			}
		}
		var groups listResponse[scimGroup]
		_ = json.Unmarshal(b, &groups)
		var e scimError
		_ = json.Unmarshal(b, &e)
	})
}
