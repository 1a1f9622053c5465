package scim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// Incremental readers (scimpull among them) list what changed with a meta.lastModified
// filter and find deletions with an id-only listing: lastModified moves with every stored
// change of the resource, and only then.
func TestLastModifiedFilterAndIDListing(t *testing.T) {
	f := newFixture(t)
	a := f.createUser("a@example.com")
	b := f.createUser("b@example.com")
	c := f.createUser("c@example.com")
	g := f.createGroup("One", a, b)
	h := f.createGroup("Two", c)
	t0 := f.clock.Now()
	changedSince := func(typ string, at time.Time, format string) []string {
		t.Helper()
		q := url.QueryEscape(`meta.lastModified gt "` + at.UTC().Format(format) + `"`)
		r := mustCode(t, f.corp("GET", typ+"?filter="+q, ""), http.StatusOK)
		var ids []string
		for _, x := range r.Body["Resources"].([]any) {
			ids = append(ids, x.(map[string]any)["id"].(string))
		}
		return ids
	}
	if got := changedSince("Users", t0.Add(-time.Second), time.RFC3339); len(got) != 3 {
		t.Fatalf("users changed since before their creation: %v", got)
	}
	if got := changedSince("Users", t0, time.RFC3339); len(got) != 0 {
		t.Fatalf("users changed since their creation: %v", got)
	}

	f.clock.Advance(time.Minute)
	mustCode(t, f.corp("PATCH", "Users/"+b, `{"Operations":[{"op":"replace","path":"title","value":"Boss"}]}`), http.StatusOK)
	// A write that changes nothing moves nothing.
	mustCode(t, f.corp("PATCH", "Users/"+c, `{"Operations":[{"op":"replace","path":"active","value":true}]}`), http.StatusOK)
	mustCode(t, f.corp("PATCH", "Groups/"+h, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+c+`"}]}]}`), http.StatusNoContent)
	if got := changedSince("Users", t0, time.RFC3339Nano); !slices.Equal(got, []string{b}) {
		t.Errorf("users changed: %v, want only b", got)
	}
	if got := changedSince("Groups", t0, time.RFC3339Nano); len(got) != 0 {
		t.Errorf("groups changed by nothing: %v", got)
	}

	// Deleting a user moves the groups it leaves; it is gone from every listing.
	t1 := f.clock.Now()
	f.clock.Advance(time.Minute)
	mustCode(t, f.corp("DELETE", "Users/"+a, ""), http.StatusNoContent)
	if got := changedSince("Groups", t1, time.RFC3339); !slices.Equal(got, []string{g}) {
		t.Errorf("groups changed by the delete: %v, want One", got)
	}
	if got := changedSince("Users", t1, time.RFC3339); len(got) != 0 {
		t.Errorf("users changed since the delete: %v (a deleted user is not listed)", got)
	}
	r := mustCode(t, f.corp("GET", "Groups/"+g, ""), http.StatusOK)
	if r.str("meta", "lastModified") != f.clock.Now().UTC().Format(time.RFC3339Nano) {
		t.Errorf("group One lastModified %q, want the time of the delete", r.str("meta", "lastModified"))
	}

	// attributes=id lists ids only, for users and groups.
	for typ, want := range map[string][]string{"Users": {b, c}, "Groups": {g, h}} {
		r := mustCode(t, f.corp("GET", typ+"?attributes=id&count=1000", ""), http.StatusOK)
		var ids []string
		for _, x := range r.Body["Resources"].([]any) {
			m := x.(map[string]any)
			delete(m, "schemas")
			if len(m) != 1 {
				t.Errorf("%s?attributes=id answered %v", typ, m)
			}
			ids = append(ids, m["id"].(string))
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s ids %v, want %v", typ, ids, want)
		}
	}
	// The configuration says filtering is supported, with the page cap as maxResults.
	r = mustCode(t, f.corp("GET", "ServiceProviderConfig", ""), http.StatusOK)
	if fl := r.Body["filter"].(map[string]any); fl["supported"] != true || fl["maxResults"] != json.Number(itoa(DefaultMaxCount)) {
		t.Errorf("filter = %v", fl)
	}
}
