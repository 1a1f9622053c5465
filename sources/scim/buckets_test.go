package scim

import (
	"errors"
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

// batchMemStore is a memStore that also writes in batches, as *state.Store does.
type batchMemStore struct {
	*memStore
	batches   [][]string // ids of each batch
	failBatch bool
}

func (b *batchMemStore) PutSCIMBatch(rs []Resource) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failBatch {
		return errors.New("disk full")
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
		r.Data = append([]byte(nil), r.Data...)
		b.data[r.Source+"/"+r.Type+"/"+r.ID] = r
	}
	b.batches = append(b.batches, ids)
	return nil
}

// TestLargeGroupWritesOneBatch: a store that writes batches gets a large group's header and
// the buckets a change touched in one batch; when that batch fails the client gets an
// error and nothing changes, in the store or in what the listener serves.
func TestLargeGroupWritesOneBatch(t *testing.T) {
	defer func(v int) { groupInlineMax = v }(groupInlineMax)
	groupInlineMax = 8
	var bs *batchMemStore
	f := newFixture(t, func(o *HandlerOptions) {
		bs = &batchMemStore{memStore: o.Store.(*memStore)}
		o.Store = bs
	})
	var ids []string
	for i := 0; i < 14; i++ {
		ids = append(ids, f.createUser(fmt.Sprintf("u%02d@example.com", i)))
	}
	puts := f.store.puts
	gid := f.createGroup("Big", ids[:12]...)
	if len(bs.batches) != 1 || len(bs.batches[0]) != 1+memberBuckets || bs.batches[0][0] != gid || f.store.puts != puts {
		t.Fatalf("creating a large group: batches %v and %d single writes, want one batch of the header and %d buckets",
			bs.batches, f.store.puts-puts, memberBuckets)
	}
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":["`+ids[12]+`"]}]}`), http.StatusNoContent)
	if last := bs.batches[len(bs.batches)-1]; len(bs.batches) != 2 || len(last) != 2 || last[0] != gid || last[1] != bucketID(gid, bucketOf(ids[12])) {
		t.Fatalf("a member add: batches %v, want a second batch of the header and bucket %d", bs.batches, bucketOf(ids[12]))
	}
	before := f.store.records(t, "corp", TypeGroup)
	bs.failBatch = true
	r := f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":["`+ids[13]+`"]}]}`)
	if r.Code < 500 {
		t.Fatalf("a failed batch answered %d: %s", r.Code, r.Raw)
	}
	bs.failBatch = false
	if after := f.store.records(t, "corp", TypeGroup); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("a failed batch changed the stored group")
	}
	got := mustCode(t, f.corp("GET", "Groups/"+gid, ""), http.StatusOK)
	if n := len(elements(got.Body["members"])); n != 13 || strings.Contains(got.Raw, ids[13]) {
		t.Errorf("after a failed batch the group serves %d members (want 13, without %s)", n, ids[13])
	}
}
