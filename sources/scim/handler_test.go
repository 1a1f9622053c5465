package scim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/internal/testlog"
)

func TestAuth(t *testing.T) {
	f := newFixture(t)
	id := f.createUser("alice@example.com")

	for name, c := range map[string]struct {
		path, auth string
	}{
		"no token":            {"/scim/v2/corp/Users", ""},
		"wrong token":         {"/scim/v2/corp/Users", "Bearer nope"},
		"other source token":  {"/scim/v2/corp/Users", "Bearer " + tokenB},
		"basic scheme":        {"/scim/v2/corp/Users", "Basic " + tokenA},
		"token prefix":        {"/scim/v2/corp/Users", "Bearer " + tokenA[:5]},
		"unknown source":      {"/scim/v2/nosuch/Users", "Bearer " + tokenA},
		"other's id by token": {"/scim/v2/corp/Users/" + id, "Bearer " + tokenB},
	} {
		t.Run(name, func(t *testing.T) {
			req := "GET"
			r := f.do(req, c.path, "", "", "Authorization: "+c.auth)
			mustSCIMError(t, r, http.StatusUnauthorized, "")
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if strings.Contains(r.Raw, "corp") || strings.Contains(r.Raw, "nosuch") || strings.Contains(r.Raw, tokenA) {
				t.Fatalf("401 body leaks detail: %s", r.Raw)
			}
		})
	}
	// Lower-case scheme is accepted (RFC 6750 schemes are case-insensitive).
	mustCode(t, f.do("GET", "/scim/v2/corp/Users/"+id, "", "", "Authorization: bearer "+tokenA), http.StatusOK)
}

func TestSourceIsolation(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("alice@example.com")
	gid := f.createGroup("Engineering", uid)
	other := func(method, rest, body string) resp {
		return f.do(method, "/scim/v2/other/"+rest, tokenB, body)
	}
	// The other source sees none of corp's resources, by id, list or filter.
	mustSCIMError(t, other("GET", "Users/"+uid, ""), http.StatusNotFound, "")
	mustSCIMError(t, other("GET", "Groups/"+gid, ""), http.StatusNotFound, "")
	mustSCIMError(t, other("PUT", "Users/"+uid, `{"userName":"x"}`), http.StatusNotFound, "")
	mustSCIMError(t, other("PATCH", "Users/"+uid, `{"Operations":[{"op":"replace","path":"active","value":false}]}`), http.StatusNotFound, "")
	mustSCIMError(t, other("DELETE", "Users/"+uid, ""), http.StatusNotFound, "")
	mustSCIMError(t, other("DELETE", "Groups/"+gid, ""), http.StatusNotFound, "")
	if r := other("GET", "Users?filter="+url.QueryEscape(`userName eq "alice@example.com"`), ""); r.Body["totalResults"] != jsonNum(0) {
		t.Fatalf("other source lists corp's user: %s", r.Raw)
	}
	// The other source cannot add corp's user to its groups.
	mustSCIMError(t, other("POST", "Groups", `{"displayName":"X","members":[{"value":"`+uid+`"}]}`), http.StatusBadRequest, errInvalidValue)
	// Names are unique per source only.
	mustCode(t, other("POST", "Users", `{"userName":"alice@example.com"}`), http.StatusCreated)
	// corp's user is untouched.
	r := mustCode(t, f.corp("GET", "Users/"+uid, ""), http.StatusOK)
	if r.Body["active"] != true || r.str("meta", "version") != `W/"1"` {
		t.Fatalf("corp user changed: %s", r.Raw)
	}
}

func jsonNum(i int) any { return json.Number(fmt.Sprint(i)) }

func TestCreateAndGetUser(t *testing.T) {
	f := newFixture(t)
	body := `{
		"schemas": ["` + SchemaUser + `", "` + SchemaEnterprise + `"],
		"externalId": "00u1",
		"userName": "Barbara.Jensen@example.com",
		"name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
		"displayName": "Babs Jensen",
		"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
		"active": true,
		"password": "t1meMa$heen",
		"groups": [{"value": "forged"}],
		"id": "client-chosen",
		"meta": {"resourceType": "User", "version": "W/\"99\""},
		"nosuchAttribute": 1,
		"urn:example:custom:1.0:User": {"x": 1},
		"` + SchemaEnterprise + `": {"department": "Sales", "employeeNumber": 701984, "manager": {"value": "m-1", "displayName": "ignored"}}
	}`
	r := mustCode(t, f.corp("POST", "Users", body), http.StatusCreated)
	id := r.str("id")
	if id == "" || id == "client-chosen" {
		t.Fatalf("id = %q", id)
	}
	loc := "https://idsync.example.com/scim/v2/corp/Users/" + id
	if r.Header.Get("Location") != loc || r.str("meta", "location") != loc {
		t.Fatalf("location header %q meta %q", r.Header.Get("Location"), r.str("meta", "location"))
	}
	if r.Header.Get("ETag") != `W/"1"` || r.str("meta", "version") != `W/"1"` {
		t.Fatalf("etag %q version %q", r.Header.Get("ETag"), r.str("meta", "version"))
	}
	if r.str("meta", "resourceType") != "User" || r.str("meta", "created") != "2026-03-01T09:00:00Z" || r.str("meta", "lastModified") != "2026-03-01T09:00:00Z" {
		t.Fatalf("meta = %v", r.Body["meta"])
	}
	for _, k := range []string{"password", "groups", "nosuchAttribute", "urn:example:custom:1.0:User"} {
		if _, ok := r.Body[k]; ok {
			t.Fatalf("%s was kept: %s", k, r.Raw)
		}
	}
	if strings.Contains(string(f.store.data["corp/User/"+id].Data), "t1meMa") {
		t.Fatal("password reached the store")
	}
	ent, _ := r.Body[SchemaEnterprise].(map[string]any)
	if ent["employeeNumber"] != "701984" || ent["department"] != "Sales" {
		t.Fatalf("enterprise = %v", ent)
	}
	if m, _ := ent["manager"].(map[string]any); m["value"] != "m-1" || m["displayName"] != nil {
		t.Fatalf("manager = %v", ent["manager"])
	}
	g := mustCode(t, f.corp("GET", "Users/"+id, ""), http.StatusOK)
	if g.Raw != r.Raw {
		t.Fatalf("GET differs from POST answer:\n%s\n%s", g.Raw, r.Raw)
	}
	// Conditional GET.
	mustCode(t, f.corp("GET", "Users/"+id, "", `If-None-Match: W/"1"`), http.StatusNotModified)
	mustCode(t, f.corp("GET", "Users/"+id, "", `If-None-Match: W/"2"`), http.StatusOK)
	mustCode(t, f.corp("GET", "Users/"+id, "", `If-None-Match: *`), http.StatusNotModified)
	// Unknown ids.
	mustSCIMError(t, f.corp("GET", "Users/nope", ""), http.StatusNotFound, "")
	mustSCIMError(t, f.corp("GET", "Groups/"+id, ""), http.StatusNotFound, "")
	// Stored durably before the answer.
	if f.store.count() != 1 {
		t.Fatalf("store holds %d resources", f.store.count())
	}
}

func TestUniqueness(t *testing.T) {
	f := newFixture(t)
	f.createUser("alice@example.com")
	mustSCIMError(t, f.corp("POST", "Users", `{"userName":"ALICE@example.com"}`), http.StatusConflict, errUniqueness)
	f.createGroup("Engineering")
	mustSCIMError(t, f.corp("POST", "Groups", `{"displayName":"engineering"}`), http.StatusConflict, errUniqueness)
	// Renames into a taken name conflict too.
	bob := f.createUser("bob@example.com")
	mustSCIMError(t, f.corp("PATCH", "Users/"+bob, `{"Operations":[{"op":"replace","path":"userName","value":"Alice@Example.com"}]}`), http.StatusConflict, errUniqueness)
	sales := f.createGroup("Sales")
	mustSCIMError(t, f.corp("PUT", "Groups/"+sales, `{"displayName":"ENGINEERING"}`), http.StatusConflict, errUniqueness)
	// A case-only rename of oneself is fine.
	mustCode(t, f.corp("PATCH", "Users/"+bob, `{"Operations":[{"op":"replace","path":"userName","value":"Bob@example.com"}]}`), http.StatusOK)
	if f.store.count() != 4 {
		t.Fatalf("store holds %d resources", f.store.count())
	}
}

func TestConcurrentCreatesOfOneName(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	codes := make(chan int, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes <- f.corp("POST", "Users", fmt.Sprintf(`{"userName":"Same@Example.com","externalId":"%d"}`, i)).Code
		}(i)
	}
	wg.Wait()
	close(codes)
	created := 0
	for c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("status %d", c)
		}
	}
	if created != 1 || f.store.count() != 1 {
		t.Fatalf("created %d, stored %d; want exactly one", created, f.store.count())
	}
	if n := len(f.h.sources["corp"].reserved); n != 0 {
		t.Fatalf("%d name reservations left behind", n)
	}
}

func TestListFilterPaging(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, f.createUser(fmt.Sprintf("user%d@example.com", i), fmt.Sprintf(`"title":"T%d"`, i%2)))
		f.clock.Advance(time.Minute)
	}
	f.corp("PATCH", "Users/"+ids[4], `{"Operations":[{"op":"replace","path":"active","value":false}]}`)
	list := func(q string) resp {
		t.Helper()
		return mustCode(t, f.corp("GET", "Users?"+q, ""), http.StatusOK)
	}
	names := func(r resp) []string {
		var out []string
		for _, el := range r.Body["Resources"].([]any) {
			out = append(out, el.(map[string]any)["userName"].(string))
		}
		return out
	}
	r := list("")
	if r.Body["totalResults"] != jsonNum(5) || r.Body["itemsPerPage"] != jsonNum(5) || r.Body["startIndex"] != jsonNum(1) {
		t.Fatalf("list = %s", r.Raw)
	}
	if s, _ := r.Body["schemas"].([]any); len(s) != 1 || s[0] != schemaListResp {
		t.Fatalf("schemas = %v", r.Body["schemas"])
	}
	for q, want := range map[string]string{
		`userName eq "USER3@example.com"`:                                            "user3@example.com",
		`userName co "2@"`:                                                           "user2@example.com",
		`userName sw "user1"`:                                                        "user1@example.com",
		`title eq "T1" and userName ew "3@example.com"`:                              "user3@example.com",
		`active eq false`:                                                            "user4@example.com",
		`not (active eq true)`:                                                       "user4@example.com",
		`emails[type eq "work" and value eq "user0@example.com"]`:                    "user0@example.com",
		`meta.lastModified lt "2026-03-01T09:00:30Z"`:                                "user0@example.com",
		`(userName eq "user0@example.com" or userName eq "x") and title pr`:          "user0@example.com",
		`id eq "` + ids[2] + `"`:                                                     "user2@example.com",
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "user1@example.com"`: "user1@example.com",
	} {
		got := names(list("filter=" + url.QueryEscape(q)))
		if len(got) != 1 || got[0] != want {
			t.Errorf("filter %s = %v, want [%s]", q, got, want)
		}
	}
	if got := names(list("filter=" + url.QueryEscape(`title eq "T0" or userName pr`))); len(got) != 5 {
		t.Errorf("or = %v", got)
	}
	if got := names(list("filter=" + url.QueryEscape(`meta.lastModified gt "2026-03-01T09:01:30Z"`))); len(got) != 3 {
		t.Errorf("lastModified gt = %v", got)
	}
	if got := names(list("filter=" + url.QueryEscape(`userName eq "nobody"`))); len(got) != 0 {
		t.Errorf("no match = %v", got)
	}
	// Paging.
	p := list("startIndex=2&count=2")
	if got := names(p); len(got) != 2 || got[0] != "user1@example.com" || got[1] != "user2@example.com" || p.Body["startIndex"] != jsonNum(2) || p.Body["totalResults"] != jsonNum(5) {
		t.Fatalf("page = %v %s", got, p.Raw)
	}
	if got := names(list("startIndex=5&count=10")); len(got) != 1 {
		t.Fatalf("last page = %v", got)
	}
	if r := list("startIndex=99"); r.Body["itemsPerPage"] != jsonNum(0) || r.Body["totalResults"] != jsonNum(5) {
		t.Fatalf("past the end = %s", r.Raw)
	}
	if r := list("count=0"); r.Body["totalResults"] != jsonNum(5) || len(r.Body["Resources"].([]any)) != 0 {
		t.Fatalf("count=0 = %s", r.Raw)
	}
	if r := list("startIndex=0&count=-3"); r.Body["startIndex"] != jsonNum(1) || r.Body["itemsPerPage"] != jsonNum(0) {
		t.Fatalf("clamped = %s", r.Raw)
	}
	// Errors.
	mustSCIMError(t, f.corp("GET", "Users?filter="+url.QueryEscape(`userName eq`), ""), http.StatusBadRequest, errInvalidFilter)
	mustSCIMError(t, f.corp("GET", "Users?filter="+url.QueryEscape(`nosuch eq "x"`), ""), http.StatusBadRequest, errInvalidFilter)
	mustSCIMError(t, f.corp("GET", "Users?filter="+url.QueryEscape(`active gt true`), ""), http.StatusBadRequest, errInvalidFilter)
	mustSCIMError(t, f.corp("GET", "Users?count=ten", ""), http.StatusBadRequest, errInvalidValue)
	mustSCIMError(t, f.corp("GET", "Users?startIndex=x", ""), http.StatusBadRequest, errInvalidValue)
	// sortBy is ignored: creation order.
	if got := names(list("sortBy=userName&sortOrder=descending&count=2")); len(got) != 2 || got[0] != "user0@example.com" {
		t.Errorf("sortBy = %v", got)
	}
}

func TestCountCap(t *testing.T) {
	f := newFixture(t, func(o *HandlerOptions) { o.MaxCount = 3 })
	for i := 0; i < 5; i++ {
		f.createUser(fmt.Sprintf("u%d", i))
	}
	r := mustCode(t, f.corp("GET", "Users?count=100", ""), http.StatusOK)
	if r.Body["itemsPerPage"] != jsonNum(3) || r.Body["totalResults"] != jsonNum(5) {
		t.Fatalf("capped list = %s", r.Raw)
	}
	r = mustCode(t, f.corp("GET", "Users", ""), http.StatusOK)
	if r.Body["itemsPerPage"] != jsonNum(3) {
		t.Fatalf("default page = %s", r.Raw)
	}
}

func TestGroupFilterAndMembersFilter(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com")
	b := f.createUser("b@example.com")
	f.createGroup("Engineering", a)
	f.createGroup("Sales", a, b)
	for q, want := range map[string]int{
		`displayName eq "engineering"`:      1,
		`members[value eq "` + b + `"]`:     1,
		`members.value eq "` + a + `"`:      2,
		`displayName sw "S" and members pr`: 1,
		`displayName eq "nope"`:             0,
	} {
		r := mustCode(t, f.corp("GET", "Groups?filter="+url.QueryEscape(q), ""), http.StatusOK)
		if r.Body["totalResults"] != jsonNum(want) {
			t.Errorf("%s: %s", q, r.Raw)
		}
	}
	// Users can be filtered by the groups they are in.
	r := mustCode(t, f.corp("GET", "Users?filter="+url.QueryEscape(`groups.display eq "sales"`), ""), http.StatusOK)
	if r.Body["totalResults"] != jsonNum(2) {
		t.Fatalf("users by group = %s", r.Raw)
	}
}

func TestAttributesProjection(t *testing.T) {
	f := newFixture(t)
	id := f.createUser("a@example.com", `"`+SchemaEnterprise+`":{"department":"Sales","costCenter":"4130"}`)
	r := mustCode(t, f.corp("GET", "Users/"+id+"?attributes=userName,emails.value,"+url.QueryEscape(SchemaEnterprise+":department"), ""), http.StatusOK)
	if r.Body["id"] != id || r.Body["userName"] != "a@example.com" || r.Body["name"] != nil || r.Body["meta"] != nil || r.Body["schemas"] == nil {
		t.Fatalf("attributes = %s", r.Raw)
	}
	em := r.Body["emails"].([]any)[0].(map[string]any)
	if em["value"] != "a@example.com" || em["type"] != nil {
		t.Fatalf("emails.value = %v", em)
	}
	ent := r.Body[SchemaEnterprise].(map[string]any)
	if ent["department"] != "Sales" || ent["costCenter"] != nil {
		t.Fatalf("enterprise = %v", ent)
	}
	r = mustCode(t, f.corp("GET", "Users?excludedAttributes=emails,name.familyName,id,"+url.QueryEscape(SchemaEnterprise), ""), http.StatusOK)
	u := r.Body["Resources"].([]any)[0].(map[string]any)
	if u["emails"] != nil || u["id"] != id || u[SchemaEnterprise] != nil || u["name"].(map[string]any)["familyName"] != nil || u["name"].(map[string]any)["givenName"] != "G" {
		t.Fatalf("excluded = %v", u)
	}
	g := f.createGroup("G", id)
	r = mustCode(t, f.corp("GET", "Groups/"+g+"?excludedAttributes=members", ""), http.StatusOK)
	if r.Body["members"] != nil || r.Body["displayName"] != "G" {
		t.Fatalf("group without members = %s", r.Raw)
	}
	mustSCIMError(t, f.corp("GET", "Users?attributes="+url.QueryEscape(`emails[type eq "work"]`), ""), http.StatusBadRequest, errInvalidValue)
}

func TestPutAndETags(t *testing.T) {
	f := newFixture(t)
	id := f.createUser("a@example.com")
	f.clock.Advance(time.Hour)
	put := `{"schemas":["` + SchemaUser + `"],"id":"` + id + `","userName":"a@example.com","displayName":"Alice","active":true,"meta":{"resourceType":"User"}}`
	mustCode(t, f.corp("PUT", "Users/"+id, put, `If-Match: W/"7"`), http.StatusPreconditionFailed)
	r := mustCode(t, f.corp("PUT", "Users/"+id, put, `If-Match: W/"1"`), http.StatusOK)
	if r.Header.Get("ETag") != `W/"2"` || r.str("meta", "version") != `W/"2"` || r.str("meta", "lastModified") != "2026-03-01T10:00:00Z" || r.str("meta", "created") != "2026-03-01T09:00:00Z" {
		t.Fatalf("after PUT: %s", r.Raw)
	}
	// PUT replaces: attributes not sent are gone.
	if r.Body["name"] != nil || r.Body["emails"] != nil || r.Body["displayName"] != "Alice" {
		t.Fatalf("PUT did not replace: %s", r.Raw)
	}
	// The same PUT again changes nothing: no version bump, no store write.
	puts := f.store.puts
	r = mustCode(t, f.corp("PUT", "Users/"+id, put), http.StatusOK)
	if r.str("meta", "version") != `W/"2"` || f.store.puts != puts {
		t.Fatalf("no-op PUT wrote: %s", r.Raw)
	}
	mustSCIMError(t, f.corp("PUT", "Users/"+id, `{"id":"other","userName":"a@example.com"}`), http.StatusBadRequest, errMutability)
	mustSCIMError(t, f.corp("PUT", "Users/"+id, `{"displayName":"no userName"}`), http.StatusBadRequest, errInvalidValue)
	mustSCIMError(t, f.corp("PUT", "Users/nope", put), http.StatusNotFound, "")
	mustCode(t, f.corp("DELETE", "Users/"+id, "", `If-Match: W/"1"`), http.StatusPreconditionFailed)
	mustCode(t, f.corp("PATCH", "Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`, `If-Match: W/"1"`), http.StatusPreconditionFailed)
	mustCode(t, f.corp("PATCH", "Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`, `If-Match: "2"`), http.StatusOK)
	mustCode(t, f.corp("DELETE", "Users/"+id, "", `If-Match: W/"3"`), http.StatusNoContent)
}

func TestDeleteUserTombstone(t *testing.T) {
	f := newFixture(t)
	id := f.createUser("Alice@example.com")
	gid := f.createGroup("Eng", id)
	f.clock.Advance(time.Hour)
	mustCode(t, f.corp("DELETE", "Users/"+id, ""), http.StatusNoContent)
	mustSCIMError(t, f.corp("GET", "Users/"+id, ""), http.StatusNotFound, "")
	mustSCIMError(t, f.corp("DELETE", "Users/"+id, ""), http.StatusNotFound, "")
	mustSCIMError(t, f.corp("PATCH", "Users/"+id, `{"Operations":[{"op":"replace","path":"active","value":true}]}`), http.StatusNotFound, "")
	if r := mustCode(t, f.corp("GET", "Users", ""), http.StatusOK); r.Body["totalResults"] != jsonNum(0) {
		t.Fatalf("tombstone listed: %s", r.Raw)
	}
	if r := mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusOK); r.Body["members"] != nil {
		t.Fatalf("deleted user still shown as member: %s", r.Raw)
	}
	// The tombstone is stored, not deleted.
	recs := f.store.records(t, "corp", TypeUser)
	if recs[id].Deleted == nil || !recs[id].Deleted.Equal(f.clock.Now()) {
		t.Fatalf("stored tombstone = %+v", recs[id])
	}
	// Adding the deleted user to a group is refused.
	mustSCIMError(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+id+`"}]}]}`), http.StatusBadRequest, errInvalidValue)
	// The userName is free again.
	id2 := f.createUser("alice@example.com")
	if id2 == id {
		t.Fatal("id reused")
	}
}

func TestDeleteGroup(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("a@example.com")
	gid := f.createGroup("Eng", uid)
	mustCode(t, f.corp("DELETE", "Groups/"+gid, ""), http.StatusNoContent)
	mustSCIMError(t, f.corp("GET", "Groups/"+gid, ""), http.StatusNotFound, "")
	if f.store.count() != 1 {
		t.Fatalf("store holds %d", f.store.count())
	}
	if r := mustCode(t, f.corp("GET", "Users/"+uid, ""), http.StatusOK); r.Body["groups"] != nil {
		t.Fatalf("user still in deleted group: %s", r.Raw)
	}
	f.createGroup("eng") // the name is free
}

func TestUserGroupsAttribute(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("a@example.com")
	r := mustCode(t, f.corp("GET", "Users/"+uid, ""), http.StatusOK) // warm the render cache
	gid := f.createGroup("Eng", uid)
	r = mustCode(t, f.corp("GET", "Users/"+uid, ""), http.StatusOK)
	gs, _ := r.Body["groups"].([]any)
	if len(gs) != 1 || gs[0].(map[string]any)["value"] != gid || gs[0].(map[string]any)["display"] != "Eng" {
		t.Fatalf("groups = %s", r.Raw)
	}
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"replace","path":"displayName","value":"Engineering"}]}`), http.StatusNoContent)
	r = mustCode(t, f.corp("GET", "Users/"+uid, ""), http.StatusOK)
	if r.Body["groups"].([]any)[0].(map[string]any)["display"] != "Engineering" {
		t.Fatalf("rename not reflected: %s", r.Raw)
	}
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"remove","path":"members[value eq \"`+uid+`\"]"}]}`), http.StatusNoContent)
	r = mustCode(t, f.corp("GET", "Users/"+uid, ""), http.StatusOK)
	if r.Body["groups"] != nil {
		t.Fatalf("removal not reflected: %s", r.Raw)
	}
}

func TestGroupMembersValidation(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("a@example.com")
	gid := f.createGroup("Eng", uid)
	before := f.store.puts
	for name, body := range map[string]string{
		"unknown id":   `{"displayName":"X","members":[{"value":"no-such-user"}]}`,
		"nested group": `{"displayName":"X","members":[{"value":"` + gid + `"}]}`,
		"group type":   `{"displayName":"X","members":[{"value":"` + uid + `","type":"Group"}]}`,
		"no value":     `{"displayName":"X","members":[{"display":"x"}]}`,
		"no name":      `{"members":[]}`,
		"name not str": `{"displayName":["X"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := f.corp("POST", "Groups", body)
			mustCode(t, r, http.StatusBadRequest)
		})
	}
	mustSCIMError(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":["no-such-user"]}]}`), http.StatusBadRequest, errInvalidValue)
	if f.store.puts != before {
		t.Fatal("a refused write reached the store")
	}
	r := mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusOK)
	if len(r.Body["members"].([]any)) != 1 {
		t.Fatalf("members changed: %s", r.Raw)
	}
}

func TestHostileInput(t *testing.T) {
	f := newFixture(t, func(o *HandlerOptions) { o.MaxBodyBytes = 4096 })
	uid := f.createUser("a@example.com")
	before := f.store.puts
	deep := strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)
	deepList := `{"userName":"x","emails":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`
	cases := []struct {
		name, method, path, body, ctype string
		status                          int
		scimType                        string
	}{
		{"malformed JSON", "POST", "Users", `{"userName":`, "", 400, errInvalidSyntax},
		{"trailing data", "POST", "Users", `{"userName":"x"} {"userName":"y"}`, "", 400, errInvalidSyntax},
		{"not an object", "POST", "Users", `["userName"]`, "", 400, errInvalidSyntax},
		{"empty body", "POST", "Users", ` `, "", 400, errInvalidSyntax},
		{"deep nesting", "POST", "Users", deep, "", 400, errInvalidSyntax},
		{"deep list", "POST", "Users", deepList, "", 400, errInvalidSyntax},
		{"invalid UTF-8", "POST", "Users", "{\"userName\":\"\xff\xfe\"}", "", 400, errInvalidSyntax},
		{"huge body", "POST", "Users", `{"userName":"` + strings.Repeat("x", 5000) + `"}`, "", 413, ""},
		{"huge patch", "PATCH", "Users/" + uid, `{"Operations":[{"op":"add","path":"title","value":"` + strings.Repeat("x", 5000) + `"}]}`, "", 413, ""},
		{"wrong content type", "POST", "Users", `{"userName":"x"}`, "text/plain", 415, ""},
		{"form content type", "PUT", "Users/" + uid, `userName=x`, "application/x-www-form-urlencoded", 415, ""},
		{"userName number-ish object", "POST", "Users", `{"userName":{"a":1}}`, "", 400, errInvalidValue},
		{"userName bool", "POST", "Users", `{"userName":true}`, "", 400, errInvalidValue},
		{"active not bool", "POST", "Users", `{"userName":"x","active":"maybe"}`, "", 400, errInvalidValue},
		{"active number", "POST", "Users", `{"userName":"x","active":1}`, "", 400, errInvalidValue},
		{"emails not objects", "POST", "Users", `{"userName":"x","emails":[true]}`, "", 400, errInvalidValue},
		{"name a list", "POST", "Users", `{"userName":"x","name":[{"givenName":"a"}]}`, "", 400, errInvalidValue},
		{"enterprise not object", "POST", "Users", `{"userName":"x","` + SchemaEnterprise + `":"Sales"}`, "", 400, errInvalidValue},
		{"duplicate case keys", "POST", "Users", `{"userName":"x","USERNAME":"y"}`, "", 400, errInvalidSyntax},
		{"missing userName", "POST", "Users", `{"displayName":"x"}`, "", 400, errInvalidValue},
		{"blank userName", "POST", "Users", `{"userName":"  "}`, "", 400, errInvalidValue},
		{"primary not bool", "POST", "Users", `{"userName":"x","emails":[{"value":"a","primary":"yes"}]}`, "", 400, errInvalidValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := []string{}
			if c.ctype != "" {
				hdr = append(hdr, "Content-Type: "+c.ctype)
			}
			r := f.corp(c.method, c.path, c.body, hdr...)
			mustSCIMError(t, r, c.status, c.scimType)
		})
	}
	if f.store.puts != before || f.store.count() != 1 {
		t.Fatalf("hostile input reached the store: %d puts", f.store.puts-before)
	}
	// application/json and a charset are accepted; so is a missing Content-Type.
	mustCode(t, f.corp("POST", "Users", `{"userName":"j1"}`, "Content-Type: application/json; charset=utf-8"), http.StatusCreated)
	req := f.do("POST", "/scim/v2/corp/Users", tokenA, `{"userName":"j2"}`, "Content-Type:")
	mustCode(t, req, http.StatusCreated)
}

func TestMethodsAndRoutes(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("a@example.com")
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "Users", "GET, POST"},
		{"PUT", "Groups", "GET, POST"},
		{"POST", "Users/" + uid, "GET, PUT, PATCH, DELETE"},
		{"POST", "ServiceProviderConfig", "GET"},
		{"DELETE", "Schemas", "GET"},
	} {
		r := f.corp(c.method, c.path, `{}`)
		mustSCIMError(t, r, http.StatusMethodNotAllowed, "")
		if r.Header.Get("Allow") != c.allow {
			t.Fatalf("%s %s: Allow %q", c.method, c.path, r.Header.Get("Allow"))
		}
	}
	mustSCIMError(t, f.corp("POST", "Bulk", `{}`), http.StatusNotImplemented, "")
	mustSCIMError(t, f.corp("GET", "Me", ""), http.StatusNotImplemented, "")
	mustSCIMError(t, f.corp("POST", "Users/.search", `{}`), http.StatusNotImplemented, "")
	mustSCIMError(t, f.corp("GET", "Devices", ""), http.StatusNotFound, "")
	mustSCIMError(t, f.corp("GET", "Users/"+uid+"/x", ""), http.StatusNotFound, "")
	// Endpoint names are matched case-insensitively, and the prefix may be stripped.
	mustCode(t, f.do("GET", "/scim/v2/corp/users/"+uid, tokenA, ""), http.StatusOK)
	mustCode(t, f.do("GET", "/corp/Users/"+uid, tokenA, ""), http.StatusOK)
	if r := mustCode(t, f.corp("GET", "Users/", ""), http.StatusOK); r.Body["totalResults"] != jsonNum(1) {
		t.Fatalf("trailing slash: %s", r.Raw)
	}
	// The base URL answers a connection test with the service provider config.
	if r := mustCode(t, f.do("GET", "/scim/v2/corp", tokenA, ""), http.StatusOK); r.Body["patch"] == nil {
		t.Fatalf("base URL: %s", r.Raw)
	}
	mustCode(t, f.do("GET", "/scim/v2/corp/", tokenA, ""), http.StatusOK)
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t)
	r := mustCode(t, f.corp("GET", "ServiceProviderConfig", ""), http.StatusOK)
	if r.Body["patch"].(map[string]any)["supported"] != true || r.Body["sort"].(map[string]any)["supported"] != false ||
		r.Body["bulk"].(map[string]any)["supported"] != false || r.Body["etag"].(map[string]any)["supported"] != true ||
		r.Body["filter"].(map[string]any)["maxResults"] != jsonNum(DefaultMaxCount) {
		t.Fatalf("spconfig = %s", r.Raw)
	}
	r = mustCode(t, f.corp("GET", "ResourceTypes", ""), http.StatusOK)
	if r.Body["totalResults"] != jsonNum(2) {
		t.Fatalf("resource types = %s", r.Raw)
	}
	r = mustCode(t, f.corp("GET", "ResourceTypes/User", ""), http.StatusOK)
	if r.Body["endpoint"] != "/Users" || r.Body["schema"] != SchemaUser || !strings.Contains(r.Raw, SchemaEnterprise) {
		t.Fatalf("User type = %s", r.Raw)
	}
	mustSCIMError(t, f.corp("GET", "ResourceTypes/Device", ""), http.StatusNotFound, "")
	r = mustCode(t, f.corp("GET", "Schemas", ""), http.StatusOK)
	if r.Body["totalResults"] != jsonNum(3) {
		t.Fatalf("schemas = %s", r.Raw)
	}
	r = mustCode(t, f.corp("GET", "Schemas/"+SchemaUser, ""), http.StatusOK)
	attrs := r.Body["attributes"].([]any)
	found := false
	for _, a := range attrs {
		m := a.(map[string]any)
		if m["name"] == "userName" {
			found = m["uniqueness"] == "server" && m["required"] == true && m["caseExact"] == false
		}
	}
	if !found {
		t.Fatalf("userName attribute wrong in %s", r.Raw)
	}
	mustCode(t, f.corp("GET", "Schemas/"+SchemaEnterprise, ""), http.StatusOK)
	mustCode(t, f.corp("GET", "Schemas/"+SchemaGroup, ""), http.StatusOK)
	mustSCIMError(t, f.corp("GET", "Schemas/urn:nope", ""), http.StatusNotFound, "")
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, func(o *HandlerOptions) {
		o.Sources[0].RateLimit = configs.RateLimit{RequestsPerSecond: 0.5, Burst: 2}
		o.Metrics = metrics.New()
	})
	mustCode(t, f.corp("GET", "Users", ""), http.StatusOK)
	mustCode(t, f.corp("GET", "Users", ""), http.StatusOK)
	r := f.corp("GET", "Users", "")
	mustSCIMError(t, r, http.StatusTooManyRequests, "")
	if r.Header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	// The other source has its own budget.
	mustCode(t, f.do("GET", "/scim/v2/other/Users", tokenB, ""), http.StatusOK)
	f.clock.Advance(2 * time.Second)
	mustCode(t, f.corp("GET", "Users", ""), http.StatusOK)
	if got := counterValue(t, f.h.opts.Metrics.SCIMRequests.WithLabelValues("corp", "GET", "429")); got != 1 {
		t.Fatalf("429 metric = %v", got)
	}
	if got := counterValue(t, f.h.opts.Metrics.SCIMRequests.WithLabelValues("corp", "GET", "200")); got != 3 {
		t.Fatalf("200 metric = %v", got)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{})
	f := newFixture(t, func(o *HandlerOptions) {
		o.Sources[0].RateLimit = configs.RateLimit{Concurrency: 1}
	})
	f.store.failPut = func(Resource) error {
		entered <- struct{}{}
		<-block
		return nil
	}
	done := make(chan int)
	go func() { done <- f.corp("POST", "Users", `{"userName":"slow"}`).Code }()
	<-entered
	r := f.corp("GET", "Users", "")
	mustSCIMError(t, r, http.StatusTooManyRequests, "")
	if r.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	close(block)
	if c := <-done; c != http.StatusCreated {
		t.Fatalf("slow create = %d", c)
	}
}

func TestStoreFailureChangesNothing(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("a@example.com")
	f.clock.Advance(time.Minute) // flush the create's trigger
	seen := len(f.changes())
	f.store.failPut = func(Resource) error { return errBoom }
	mustSCIMError(t, f.corp("POST", "Users", `{"userName":"b@example.com"}`), http.StatusInternalServerError, "")
	mustSCIMError(t, f.corp("PATCH", "Users/"+uid, `{"Operations":[{"op":"replace","path":"active","value":false}]}`), http.StatusInternalServerError, "")
	mustSCIMError(t, f.corp("DELETE", "Users/"+uid, ""), http.StatusInternalServerError, "")
	f.store.failPut = nil
	r := mustCode(t, f.corp("GET", "Users/"+uid, ""), http.StatusOK)
	if r.Body["active"] != true || r.str("meta", "version") != `W/"1"` {
		t.Fatalf("failed write changed the index: %s", r.Raw)
	}
	// The name reserved by the failed create is free.
	f.createUser("b@example.com")
	f.clock.Advance(time.Minute)
	for _, c := range f.changes()[seen:] {
		for _, u := range c.Users {
			if u == "a@example.com" {
				t.Fatalf("failed writes triggered a pass: %v", f.changes())
			}
		}
	}
}

func TestClosedHandlerRefusesWrites(t *testing.T) {
	f := newFixture(t)
	f.createUser("a@example.com")
	_ = f.h.Close()
	mustSCIMError(t, f.corp("POST", "Users", `{"userName":"b"}`), http.StatusServiceUnavailable, "")
	mustCode(t, f.corp("GET", "Users", ""), http.StatusOK)
}

func TestNewHandlerValidation(t *testing.T) {
	st := newMemStore()
	for name, opts := range map[string]HandlerOptions{
		"no store":  {Sources: []SourceOptions{{Name: "a", Token: "t"}}},
		"bad name":  {Store: st, Sources: []SourceOptions{{Name: "Corp", Token: "t"}}},
		"duplicate": {Store: st, Sources: []SourceOptions{{Name: "a", Token: "t"}, {Name: "a", Token: "u"}}},
		"no token":  {Store: st, Sources: []SourceOptions{{Name: "a"}}},
	} {
		if _, err := NewHandler(opts); err == nil {
			t.Errorf("%s: NewHandler succeeded", name)
		}
	}
}

func TestLoadFromStoreAndCorruptRecord(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("a@example.com")
	f.createGroup("Eng", uid)
	// A second handler on the same store serves the same resources.
	h2, err := NewHandler(HandlerOptions{Store: f.store, Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	dir, err := NewSource("corp", h2).Snapshot(t.Context())
	if err != nil || len(dir.Users) != 1 || len(dir.Groups) != 1 || len(dir.Users[0].Groups) != 1 {
		t.Fatalf("reloaded snapshot = %+v, %v", dir, err)
	}
	// A damaged record: the rest is served, but Snapshot refuses to answer so no pass
	// deactivates the users it cannot see.
	_ = f.store.PutSCIM(Resource{Source: "corp", Type: TypeUser, ID: "broken", Data: []byte(`{"version":`)})
	h3, err := NewHandler(HandlerOptions{Store: f.store, Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer h3.Close()
	if _, err := NewSource("corp", h3).Snapshot(t.Context()); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Snapshot with a damaged record = %v", err)
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestDeletedUserLeavesGroups(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com")
	b := f.createUser("b@example.com")
	g1 := f.createGroup("One", a, b)
	g2 := f.createGroup("Two", a)
	// The group write of the cascade fails for g2: the tombstone still lands.
	f.store.failPut = func(r Resource) error {
		if r.ID == g2 {
			return errBoom
		}
		return nil
	}
	mustCode(t, f.corp("DELETE", "Users/"+a, ""), http.StatusNoContent)
	f.store.failPut = nil
	groups := f.store.records(t, "corp", TypeGroup)
	if ids := memberIDs(groups[g1].Resource); len(ids) != 1 || ids[0] != b || groups[g1].Version != 2 {
		t.Fatalf("g1 after delete = %+v", groups[g1])
	}
	if ids := memberIDs(groups[g2].Resource); len(ids) != 1 || ids[0] != a {
		t.Fatalf("g2 should still hold the stale id: %+v", groups[g2])
	}
	// Reads hide the stale member, and the group's next write drops it instead of failing.
	if r := mustCode(t, f.corp("GET", "Groups/"+g2, ""), http.StatusOK); r.Body["members"] != nil {
		t.Fatalf("stale member shown: %s", r.Raw)
	}
	mustCode(t, f.corp("PATCH", "Groups/"+g2, `{"Operations":[{"op":"add","path":"members","value":["`+b+`"]}]}`), http.StatusNoContent)
	groups = f.store.records(t, "corp", TypeGroup)
	if ids := memberIDs(groups[g2].Resource); len(ids) != 1 || ids[0] != b {
		t.Fatalf("g2 after write = %+v", groups[g2])
	}
}

func TestDebugLogRedactsSecrets(t *testing.T) {
	var buf testlog.Buffer
	f := newFixture(t, func(o *HandlerOptions) { o.Logger = zerolog.New(&buf).Level(zerolog.DebugLevel) })
	id := f.createUser("a@example.com", `"password":"hunter2-secret"`, `"x-api-token":"tok-123"`)
	f.corp("PATCH", "Users/"+id, `{"Operations":[{"op":"replace","path":"password","value":"patched-secret"}]}`)
	f.corp("POST", "Users", `{"userName":`) // malformed: logged without a body
	out := buf.String()
	for _, secret := range []string{"hunter2-secret", "tok-123", "patched-secret", tokenA} {
		if strings.Contains(out, secret) {
			t.Fatalf("log leaks %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`"message":"SCIM request body"`, `"userName":"a@example.com"`, `[redacted]`, `"message":"SCIM user created"`, `"body_bytes":12`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %s:\n%s", want, out)
		}
	}
}

// TestSetTokens: a rotation accepts the current and the previous token, then only the
// current one; a bad rotation is refused and leaves the running tokens in place.
func TestSetTokens(t *testing.T) {
	h, err := NewHandler(HandlerOptions{Store: newMemStore(), Logger: zerolog.Nop(),
		Sources: []SourceOptions{{Name: "corp", Token: "tok-old"}}})
	if err != nil {
		t.Fatal(err)
	}
	code := func(tok string) int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/scim/v2/corp/Users", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		h.ServeHTTP(w, r)
		return w.Code
	}
	if err := h.SetTokens("corp", "tok-new", "tok-old"); err != nil {
		t.Fatal(err)
	}
	if a, b, c := code("tok-new"), code("tok-old"), code("tok-other"); a != 200 || b != 200 || c != 401 {
		t.Fatalf("during a rotation: new %d, previous %d, other %d; want 200, 200, 401", a, b, c)
	}
	if err := h.SetTokens("corp", "tok-new", ""); err != nil {
		t.Fatal(err)
	}
	if a, b := code("tok-new"), code("tok-old"); a != 200 || b != 401 {
		t.Fatalf("after the rotation: new %d, old %d; want 200, 401", a, b)
	}
	if err := h.SetTokens("corp", " ", ""); err == nil {
		t.Error("an empty token was accepted")
	}
	if err := h.SetTokens("partners", "x", ""); err == nil {
		t.Error("a token for an unknown source was accepted")
	}
	if code("tok-new") != 200 {
		t.Error("a refused rotation changed the running token")
	}
}

// A group's members carry display (RFC 7643 section 2.4, read-only): the member's
// displayName, else its userName, kept current when the user is renamed.
func TestGroupMembersCarryDisplay(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com", `"displayName":"Ada Lovelace"`)
	b := f.createUser("b@example.com")
	g := f.createGroup("Eng", a, b)
	display := func() map[string]any {
		r := mustCode(t, f.corp("GET", "Groups/"+g, ""), http.StatusOK)
		out := map[string]any{}
		for _, m := range r.Body["members"].([]any) {
			mm := m.(map[string]any)
			out[mm["value"].(string)] = mm["display"]
		}
		return out
	}
	if d := display(); d[a] != "Ada Lovelace" || d[b] != "b@example.com" {
		t.Fatalf("member display %v", d)
	}
	mustCode(t, f.corp("PATCH", "Users/"+a, `{"Operations":[{"op":"replace","path":"displayName","value":"Ada King"}]}`), http.StatusOK)
	if d := display(); d[a] != "Ada King" {
		t.Fatalf("a rename is not shown in the group (cached render): %v", d)
	}
	mustCode(t, f.corp("PATCH", "Users/"+b, `{"Operations":[{"op":"replace","path":"userName","value":"bee@example.com"}]}`), http.StatusOK)
	if d := display(); d[b] != "bee@example.com" {
		t.Fatalf("a new userName is not shown in the group: %v", d)
	}
	r := mustCode(t, f.corp("GET", "Groups?filter="+url.QueryEscape(`displayName eq "Eng"`), ""), http.StatusOK)
	if !strings.Contains(string(r.Raw), `"display":"Ada King"`) {
		t.Fatalf("a listed group's members have no display: %s", r.Raw)
	}
}
