package scimpull

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSCIM is a small SCIM 2.0 server: GET /Users and /Groups with paging, `eq` filters on
// userName and members.value, `meta.lastModified gt` when lastModifiedFilter is set, and
// attributes=id; GET /Users/{id} and /Groups/{id}; /ServiceProviderConfig when spc is set;
// bearer auth, and hooks that inject faults. Resources are JSON objects so tests can shape
// them freely.
type fakeSCIM struct {
	mu       sync.Mutex
	tokens   []string // accepted bearer tokens
	users    []map[string]any
	groups   []map[string]any
	maxCount int
	calls    map[string]int
	requests []string // path?query of every request, in order
	// noMembersFilter answers members.value filters with 400 invalidFilter.
	noMembersFilter bool
	// lastModifiedFilter serves `meta.lastModified gt "..."` (else 400 invalidFilter).
	lastModifiedFilter bool
	// spc is the /ServiceProviderConfig answer (404 when nil).
	spc map[string]any
	// before may answer a request itself (a fault); it returns false to let it through.
	before func(w http.ResponseWriter, r *http.Request) bool
	// edit may change a list page before it is sent.
	edit func(path string, startIndex int, page map[string]any)
}

const testToken = "test-scim-token-5f2a"

func newFakeSCIM(t *testing.T, users, groups int) (*fakeSCIM, string) {
	t.Helper()
	f := &fakeSCIM{tokens: []string{testToken}, maxCount: 1000, calls: map[string]int{}}
	f.users, f.groups = directory(users, groups)
	srv := httptest.NewServer(http.StripPrefix("/scim/v2", f))
	t.Cleanup(srv.Close)
	return f, srv.URL + "/scim/v2"
}

// directory builds n users and g groups; user i is in groups i%g and (i+1)%g.
func directory(n, g int) ([]map[string]any, []map[string]any) {
	users := make([]map[string]any, n)
	groups := make([]map[string]any, g)
	members := make([][]any, g)
	for i := range users {
		id := fmt.Sprintf("u-%04d", i)
		var refs []any
		if g > 0 {
			for _, gi := range []int{i % g, (i + 1) % g} {
				if len(refs) == 1 && gi == i%g {
					continue
				}
				refs = append(refs, map[string]any{"value": fmt.Sprintf("g-%02d", gi), "display": fmt.Sprintf("Group %02d", gi)})
				members[gi] = append(members[gi], map[string]any{"value": id, "display": fmt.Sprintf("User %d", i), "type": "User"})
			}
		}
		users[i] = map[string]any{
			"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"id":          id,
			"userName":    fmt.Sprintf("user%d@example.com", i),
			"name":        map[string]any{"givenName": "Given" + strconv.Itoa(i), "familyName": "Family"},
			"displayName": fmt.Sprintf("User %d", i),
			"emails":      []any{map[string]any{"value": fmt.Sprintf("User%d@Example.com", i), "type": "work", "primary": true}},
			"active":      i%10 != 9,
			"groups":      refs,
		}
	}
	for i := range groups {
		groups[i] = map[string]any{
			"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"id":          fmt.Sprintf("g-%02d", i),
			"displayName": fmt.Sprintf("Group %02d", i),
			"members":     members[i],
		}
	}
	return users, groups
}

var (
	eqFilter           = regexp.MustCompile(`^(\S+) eq ("(?:[^"\\]|\\.)*")$`)
	lastModifiedFilter = regexp.MustCompile(`^meta\.lastModified gt "([^"]*)"$`)
)

func scimErr(w http.ResponseWriter, code int, scimType, detail string) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"schemas":  []any{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":   strconv.Itoa(code),
		"scimType": scimType,
		"detail":   detail,
	})
}

func (f *fakeSCIM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls[r.URL.Path]++
	f.requests = append(f.requests, r.URL.Path+"?"+r.URL.RawQuery)
	before, tokens := f.before, f.tokens
	f.mu.Unlock()
	accepted := 0
	for _, tok := range tokens {
		accepted |= subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+tok))
	}
	if accepted != 1 {
		scimErr(w, http.StatusUnauthorized, "", "Invalid bearer token")
		return
	}
	if r.Method != http.MethodGet {
		scimErr(w, http.StatusMethodNotAllowed, "", "read-only")
		return
	}
	if before != nil && before(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	path := r.URL.Path
	if path == "/ServiceProviderConfig" && f.spc != nil {
		w.Header().Set("Content-Type", "application/scim+json")
		_ = json.NewEncoder(w).Encode(f.spc)
		return
	}
	if id, ok := strings.CutPrefix(path, "/Users/"); ok {
		for _, u := range f.users {
			if u["id"] == id {
				w.Header().Set("Content-Type", "application/scim+json")
				_ = json.NewEncoder(w).Encode(u)
				return
			}
		}
		scimErr(w, http.StatusNotFound, "", "no such user")
		return
	}
	if id, ok := strings.CutPrefix(path, "/Groups/"); ok {
		for _, g := range f.groups {
			if g["id"] == id {
				out := map[string]any{"id": g["id"], "displayName": g["displayName"]}
				w.Header().Set("Content-Type", "application/scim+json")
				_ = json.NewEncoder(w).Encode(out)
				return
			}
		}
		scimErr(w, http.StatusNotFound, "", "no such group")
		return
	}
	var list []map[string]any
	switch path {
	case "/Users":
		list = f.users
	case "/Groups":
		list = f.groups
	default:
		scimErr(w, http.StatusNotFound, "", "no such endpoint")
		return
	}
	q := r.URL.Query()
	if m := lastModifiedFilter.FindStringSubmatch(q.Get("filter")); m != nil && f.lastModifiedFilter {
		since, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			scimErr(w, http.StatusBadRequest, "invalidFilter", "bad time "+m[1])
			return
		}
		var kept []map[string]any
		for _, x := range list {
			meta, _ := x["meta"].(map[string]any)
			lm, _ := meta["lastModified"].(string)
			if t, err := time.Parse(time.RFC3339Nano, lm); err == nil && t.After(since) {
				kept = append(kept, x)
			}
		}
		list = kept
	} else if filter := q.Get("filter"); filter != "" {
		m := eqFilter.FindStringSubmatch(filter)
		var want string
		if m == nil || json.Unmarshal([]byte(m[2]), &want) != nil {
			scimErr(w, http.StatusBadRequest, "invalidFilter", "unsupported filter "+filter)
			return
		}
		var kept []map[string]any
		switch {
		case path == "/Users" && m[1] == "userName":
			for _, u := range list {
				if strings.EqualFold(u["userName"].(string), want) {
					kept = append(kept, u)
				}
			}
		case path == "/Groups" && m[1] == "members.value" && !f.noMembersFilter:
			for _, g := range list {
				ms, _ := g["members"].([]any)
				for _, x := range ms {
					if x.(map[string]any)["value"] == want {
						kept = append(kept, g)
						break
					}
				}
			}
		default:
			scimErr(w, http.StatusBadRequest, "invalidFilter", "unsupported filter "+filter)
			return
		}
		list = kept
	}
	start, count := 1, f.maxCount
	if v := q.Get("startIndex"); v != "" {
		start, _ = strconv.Atoi(v)
	}
	if v := q.Get("count"); v != "" {
		count, _ = strconv.Atoi(v)
	}
	start = max(start, 1)
	count = min(max(count, 0), f.maxCount)
	lo := min(start-1, len(list))
	hi := min(lo+count, len(list))
	res := make([]any, 0, hi-lo)
	for _, x := range list[lo:hi] {
		if q.Get("attributes") == "id" {
			x = map[string]any{"id": x["id"]}
		}
		if q.Get("excludedAttributes") == "members" {
			c := map[string]any{}
			for k, v := range x {
				if k != "members" {
					c[k] = v
				}
			}
			x = c
		}
		res = append(res, x)
	}
	page := map[string]any{
		"schemas":      []any{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
		"totalResults": len(list),
		"itemsPerPage": len(res),
		"startIndex":   start,
		"Resources":    res,
	}
	if f.edit != nil {
		f.edit(path, start, page)
	}
	w.Header().Set("Content-Type", "application/scim+json")
	_ = json.NewEncoder(w).Encode(page)
}

// setTokens replaces the bearer tokens the server accepts (a rotation).
func (f *fakeSCIM) setTokens(tokens ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = tokens
}

func (f *fakeSCIM) callCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

// requestsLike counts the requests whose path?query contains every part.
func (f *fakeSCIM) requestsLike(parts ...string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
outer:
	for _, r := range f.requests {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue outer
			}
		}
		n++
	}
	return n
}

// requestsExactly counts the requests to exactly path?query.
func (f *fakeSCIM) requestsExactly(pathQuery string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r == pathQuery {
			n++
		}
	}
	return n
}

// resetRequests forgets the requests made so far.
func (f *fakeSCIM) resetRequests() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}
