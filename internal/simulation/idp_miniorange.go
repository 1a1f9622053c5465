package simulation

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// moIdP is a miniOrange world's IdP: the miniorangetest simulator, changed through its
// control API, served through a front (serveMO) that injects a pass's faults, fires race
// pushes at the users listing, and leaves a user's status out of the listing.
type moIdP struct {
	w   *world
	mo  *miniorangetest.Sim
	url string
}

func newMiniOrange(w *world, m *model, seed uint64) (*moIdP, error) {
	var users []miniorangetest.User
	for _, id := range m.order {
		p := m.people[id]
		users = append(users, miniorangetest.User{ID: p.ID, UserName: p.UserName, Email: p.Email,
			FirstName: p.First, LastName: p.Last, Disabled: p.Status == disabled, Groups: p.groupList()})
	}
	var groups []miniorangetest.Group
	for _, g := range m.groupList() {
		groups = append(groups, miniorangetest.Group{Name: g})
	}
	w.mo = miniorangetest.New(miniorangetest.Options{Org: &miniorangetest.Org{Users: users, Groups: groups},
		BatchCap: pageSize, Seed: int64(seed), Now: w.clock.Now})
	srv, err := serveLoopback(http.HandlerFunc(w.serveMO))
	if err != nil {
		return nil, err
	}
	w.srvs = append(w.srvs, srv)
	return &moIdP{w: w, mo: w.mo, url: srv.URL}, nil
}

func (i *moIdP) hire(p *person) error {
	_, err := i.mo.Hire(miniorangetest.User{ID: p.ID, UserName: p.UserName, Email: p.Email,
		FirstName: p.First, LastName: p.Last, Groups: p.groupList()})
	return err
}

func (i *moIdP) leave(p *person) error { return i.mo.Leave(p.UserName) }

func (i *moIdP) move(p *person, from, to string) error {
	switch {
	case from != "" && to != "":
		return i.mo.Move(p.UserName, from, to)
	case from != "":
		return i.mo.RemoveFromGroup(p.UserName, from)
	}
	return i.mo.AddToGroup(p.UserName, to)
}

func (i *moIdP) rename(p *person, first, last string) error {
	return i.mo.Rename(p.UserName, miniorangetest.Profile{FirstName: first, LastName: last})
}

func (i *moIdP) setEmail(p *person, email string) error {
	return i.mo.Rename(p.UserName, miniorangetest.Profile{Email: email})
}

func (i *moIdP) setActive(p *person, on bool) error {
	if on {
		return i.mo.Enable(p.UserName)
	}
	return i.mo.Disable(p.UserName)
}

func (i *moIdP) createGroup(name string) error {
	_, err := i.mo.CreateGroup(name, "")
	return err
}

func (i *moIdP) deleteGroup(name string) error { return i.mo.DeleteGroup(name) }

// source is the miniOrange source, pushing over SCIM too.
func (i *moIdP) source(string) (string, error) {
	return fmt.Sprintf(`  - name: %s
    type: miniorange
    priority: 10
    miniorange:
      base_url: %s
      customer_key: %q
      api_key: %q
      page_size: %d
      rate_limit: {requests_per_second: 0, concurrency: 1}
    push:
      enabled: true
      token: %q
      rate_limit: {requests_per_second: 0, concurrency: 0}
`, sourceName, i.url, miniorangetest.DefaultCustomerKey, miniorangetest.DefaultAPIKey, pageSize, scimToken), nil
}

// arm sets the pass's sticky listing fault through the simulator's fault knob (the random
// ones are drawn per request by serveMO).
func (i *moIdP) arm(plan passFaults) func() int {
	if s := plan.MOSticky; s != nil {
		return i.mo.AddFault(miniorangetest.Fault{Kind: s.Kind, Endpoint: s.Endpoint, Page: s.Page, Delta: s.Delta})
	}
	return nil
}

func (i *moIdP) disarm() { i.mo.ClearFaults() }

func (i *moIdP) close() {}

// serveMO is the miniOrange front: race pushes at the users listing's first page, random
// page faults through the simulator's own fault knob, 429s, and a user record without its
// status.
func (w *world) serveMO(rw http.ResponseWriter, r *http.Request) {
	body := readBody(r)
	var req struct {
		StartIndex *int   `json:"startIndex"`
		GroupName  string `json:"groupName"`
		UserName   string `json:"username"`
	}
	_ = json.Unmarshal(body, &req)
	start := -1
	if req.StartIndex != nil {
		start = *req.StartIndex
	}
	if n := swollen(w.faults.hugeArmed()); n > 0 {
		// A read sized by a claimed count, not by what arrived: note it and end the read.
		w.faults.swell(n)
		rw.WriteHeader(http.StatusOK)
		_, _ = rw.Write([]byte(`{"status":"ERROR","message":"simulation: too many goroutines"}`))
		return
	}
	firstUsers := r.URL.Path == miniorangetest.PathUsersList && start == 0
	if fire := w.faults.takeRace(false); fire != nil {
		fire()
	}
	key := fmt.Sprintf("%s|%s|%d|%s", r.URL.Path, req.GroupName, start, req.UserName)
	plan, _, rnd, armed := w.faults.draw(key)
	switch {
	case armed && plan.MissingStatus != "" && r.URL.Path == miniorangetest.PathUsersList:
		// Every users page goes without the status, whatever else is armed: the read
		// cannot complete.
		w.withoutStatus(rw, r, plan.MissingStatus)
	case armed && rnd.Float64() < plan.MORate:
		w.moFault(rw, r, plan.MOKinds[rnd.IntN(len(plan.MOKinds))], start, req.GroupName, rnd)
	default:
		w.mo.Handler().ServeHTTP(rw, r)
	}
	if firstUsers {
		if fire := w.faults.takeRace(true); fire != nil {
			fire()
		}
	}
}

func (w *world) moFault(rw http.ResponseWriter, r *http.Request, kind string, start int, group string, rnd *rand.Rand) {
	w.faults.count()
	if kind == "429" || start < 0 {
		rw.Header().Set("Retry-After", "1")
		rw.Header().Set("Content-Type", "application/json")
		code := http.StatusTooManyRequests
		if kind != "429" {
			code = http.StatusServiceUnavailable
		}
		rw.WriteHeader(code)
		_, _ = rw.Write([]byte(`{"status":"ERROR","message":"Too many requests"}`))
		return
	}
	f := miniorangetest.Fault{Endpoint: r.URL.Path, Group: group, Page: start / pageSize, Times: 1}
	switch kind {
	case "status":
		f.Kind, f.Status = miniorangetest.FaultStatus, pick(rnd, []int{500, 502, 503})
	case "body-error":
		f.Kind = miniorangetest.FaultBodyError
	case "reset":
		f.Kind = miniorangetest.FaultReset
	case "truncate":
		f.Kind = miniorangetest.FaultTruncate
	case "skew":
		f.Kind, f.Delta = miniorangetest.FaultTotalSkew, pick(rnd, []int{-1, 1, 2})
	case "shift":
		f.Kind = miniorangetest.FaultShift
	}
	w.mo.AddFault(f)
	w.mo.Handler().ServeHTTP(rw, r)
}

// withoutStatus serves a users listing page with one user's status left out.
func (w *world) withoutStatus(rw http.ResponseWriter, r *http.Request, userName string) {
	rec := httptest.NewRecorder()
	w.mo.Handler().ServeHTTP(rec, r)
	var page map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &page) != nil {
		copyRecorded(rw, rec, rec.Body.Bytes())
		return
	}
	users, _ := page["users"].([]any)
	hit := false
	for _, u := range users {
		if m, ok := u.(map[string]any); ok && strings.EqualFold(fmt.Sprint(m["username"]), userName) {
			delete(m, "status")
			delete(m, "userStatus")
			hit = true
		}
	}
	if !hit {
		copyRecorded(rw, rec, rec.Body.Bytes())
		return
	}
	w.faults.count()
	b, _ := json.Marshal(page)
	copyRecorded(rw, rec, b)
}

func copyRecorded(rw http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		rw.Header()[k] = v
	}
	rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.WriteHeader(rec.Code)
	_, _ = rw.Write(body)
}
