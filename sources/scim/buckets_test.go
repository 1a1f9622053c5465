package scim

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
)

func TestLargeGroupBuckets(t *testing.T) {
	defer func(v int) { groupInlineMax = v }(groupInlineMax)
	groupInlineMax = 8
	f := newFixture(t)
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, f.createUser(fmt.Sprintf("u%02d@example.com", i)))
	}
	gid := f.createGroup("Big", ids[:12]...)
	headerOf := func() record {
		t.Helper()
		return f.store.records(t, "corp", TypeGroup)[gid]
	}
	bucketCount := func() int {
		n := 0
		f.store.mu.Lock()
		defer f.store.mu.Unlock()
		for k := range f.store.data {
			if strings.Contains(k, gid+bucketSep) {
				n++
			}
		}
		return n
	}
	if h := headerOf(); h.Buckets != memberBuckets || h.Resource["members"] != nil || bucketCount() != memberBuckets {
		t.Fatalf("header %+v, %d buckets", h, bucketCount())
	}
	// A member change rewrites one bucket and the header.
	puts := f.store.puts
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":["`+ids[12]+`"]}]}`), http.StatusNoContent)
	if got := f.store.puts - puts; got != 2 {
		t.Fatalf("a member add made %d store writes, want 2", got)
	}
	puts = f.store.puts
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"remove","path":"members[value eq \"`+ids[0]+`\"]"}]}`), http.StatusNoContent)
	if got := f.store.puts - puts; got != 2 {
		t.Fatalf("a member removal made %d store writes, want 2", got)
	}
	want := append([]string(nil), ids[1:13]...)
	sort.Strings(want)
	// A fresh handler reassembles the members from the buckets.
	reload := func() []string {
		t.Helper()
		h2, err := NewHandler(HandlerOptions{Store: f.store, Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer h2.Close()
		f2 := &fixture{t: t, h: h2}
		r := mustCode(t, f2.corp("GET", "Groups/"+gid, ""), http.StatusOK)
		var got []string
		for _, m := range elements(r.Body["members"]) {
			got = append(got, m.(map[string]any)["value"].(string))
		}
		sort.Strings(got)
		if r.Body["displayName"] != "Big" || r.str("meta", "version") != `W/"3"` {
			t.Fatalf("reloaded group: %s", r.Raw)
		}
		return got
	}
	if got := reload(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("reloaded members = %v, want %v", got, want)
	}
	// Shrinking below half the threshold goes back inline and drops the buckets.
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"replace","path":"members","value":["`+ids[1]+`","`+ids[2]+`"]}]}`), http.StatusNoContent)
	if h := headerOf(); h.Buckets != 0 || len(memberIDs(h.Resource)) != 2 || bucketCount() != 0 {
		t.Fatalf("after shrinking: header %+v, %d buckets", h, bucketCount())
	}
	// Growing again, then deleting the group, removes header and buckets.
	mustCode(t, f.corp("PUT", "Groups/"+gid, `{"displayName":"Big","members":[`+memberList(ids)+`]}`), http.StatusOK)
	if bucketCount() != memberBuckets {
		t.Fatalf("%d buckets after growing", bucketCount())
	}
	// A deleted user leaves the bucketed group through one bucket write.
	puts = f.store.puts
	mustCode(t, f.corp("DELETE", "Users/"+ids[5], ""), http.StatusNoContent)
	if got := f.store.puts - puts; got != 3 { // tombstone, bucket, header
		t.Fatalf("user delete made %d store writes, want 3", got)
	}
	mustCode(t, f.corp("DELETE", "Groups/"+gid, ""), http.StatusNoContent)
	if bucketCount() != 0 || f.store.records(t, "corp", TypeGroup)[gid].Version != 0 {
		t.Fatalf("group delete left %d buckets", bucketCount())
	}
	// Orphan buckets (a delete interrupted after the header) are ignored when loading.
	_ = f.store.PutSCIM(Resource{Source: "corp", Type: TypeGroup, ID: bucketID("gone", 3), Data: []byte(`{"members":[{"value":"x"}]}`)})
	h3, err := NewHandler(HandlerOptions{Store: f.store, Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer h3.Close()
	dir, err := NewSource("corp", h3).Snapshot(t.Context())
	if err != nil || len(dir.Groups) != 0 {
		t.Fatalf("snapshot with an orphan bucket = %+v, %v", dir.Groups, err)
	}
}

func memberList(ids []string) string {
	var parts []string
	for _, id := range ids {
		parts = append(parts, `{"value":"`+id+`"}`)
	}
	return strings.Join(parts, ",")
}
