package simulation

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// world is everything outside idsync: the Jira simulator, the IdP (idp: miniOrange,
// Google Workspace or LDAP) and the SCIM listener's address, each served on 127.0.0.1
// through a front that injects this pass's faults and records what Jira was asked to change.
type world struct {
	clock *Clock
	jira  *jiratest.Sim
	idp   idpSide
	mo    *miniorangetest.Sim // the miniOrange simulator of a miniOrange world (else nil)
	srvs  []*httptest.Server

	JiraURL, SCIMURL string

	// scim is the SCIM listener of the idsync running now (nil while it is down): a restart
	// builds a new one behind the same address.
	scim atomic.Pointer[http.Handler]
	hc   *http.Client

	writes *writeLog
	faults *faultBox
	locked string // a group whose memberships idsync may not remove (403)
	audit  *auditIndex
	dir    *directory
	// pass is the number of the pass running now (0 between passes), stamped on writes.
	pass atomic.Int64

	mu         sync.Mutex
	groupNames map[string]string // Jira groupId -> name
	scimUsers  map[string]string // lower userName -> SCIM id
	scimGroups map[string]string // IdP group -> SCIM id
}

const adminHeader = "X-Sim-Admin" // marks an admin's edit by hand (not idsync's)

// newWorld seeds the simulators from the history's initial org and starts the fronts.
func newWorld(h History, clock *Clock, seed uint64, fb *faultBox) (*world, error) {
	w := &world{clock: clock, writes: &writeLog{}, faults: fb, audit: newAuditIndex(), locked: h.Locked,
		groupNames: map[string]string{}, scimUsers: map[string]string{}, scimGroups: map[string]string{},
		dir: newDirectory()}
	m := h.Initial
	for _, id := range m.order {
		w.dir.addPerson(m.people[id])
	}

	seedData := jiratest.Seed{
		Groups: []jiratest.SeedGroup{{Name: contractorsGroup}, {Name: "engineering"}},
		Roles: []jiratest.Role{{Key: "jira-servicedesk", Name: "Jira Service Management",
			Groups: []string{serviceDeskGroup}}},
	}
	for i, e := range h.Unowned {
		u := jiratest.User{Email: e, Groups: []string{defaultGroup, contractorsGroup}}
		if i%2 == 1 {
			u.Groups = append(u.Groups, "engineering")
		}
		seedData.Users = append(seedData.Users, u)
	}
	seedData.Users = append(seedData.Users, jiratest.User{Type: jiratest.TypeCustomer, Email: "customer-1@client.example"})
	for _, id := range m.order {
		if p := m.people[id]; p.Seeded {
			seedData.Users = append(seedData.Users, jiratest.User{Email: p.Email, DisplayName: p.First + " " + p.Last,
				Groups: []string{defaultGroup}})
		}
	}
	w.jira = jiratest.New(jiratest.Options{Seed: seed, Clock: clock, Data: seedData, OnExchange: w.observe})
	for _, a := range w.jira.Accounts() {
		w.dir.seedAccount(a)
	}

	w.hc = &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	for _, s := range []struct {
		h   http.Handler
		url *string
	}{
		{http.HandlerFunc(w.serveJira), &w.JiraURL},
		{http.HandlerFunc(w.serveSCIM), &w.SCIMURL},
	} {
		srv, err := serveLoopback(s.h)
		if err != nil {
			w.close()
			return nil, err
		}
		w.srvs = append(w.srvs, srv)
		*s.url = srv.URL
	}
	var err error
	if w.idp, err = newIdP(h.IdP, w, m, seed); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// serveLoopback serves h on 127.0.0.1.
func serveLoopback(h http.Handler) (*httptest.Server, error) {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = 30 * time.Second
	srv.Start()
	if host, _, _ := net.SplitHostPort(srv.Listener.Addr().String()); !net.ParseIP(host).IsLoopback() {
		srv.Close()
		return nil, fmt.Errorf("server listens on %s, not loopback", host)
	}
	return srv, nil
}

func (w *world) close() {
	if w.idp != nil {
		w.idp.close()
	}
	for _, s := range w.srvs {
		s.Close()
	}
	if t, ok := w.hc.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}

func (w *world) serveSCIM(rw http.ResponseWriter, r *http.Request) {
	h := w.scim.Load()
	if h == nil {
		http.Error(rw, "idsync is down", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(rw, r)
}

// groupName names a Jira group by id (the name it had when first asked).
func (w *world) groupName(id string) string {
	if id == "" {
		return ""
	}
	w.mu.Lock()
	n, ok := w.groupNames[id]
	w.mu.Unlock()
	if ok {
		return n
	}
	for _, g := range w.jira.Groups() {
		w.mu.Lock()
		w.groupNames[g.ID] = g.Name
		w.mu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.groupNames[id]
}

// readBody reads a request body and puts it back for the next handler.
func readBody(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(r.Body)
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// --- admin edits by hand -------------------------------------------------------------------

// adminCall sends one Jira request as a site admin editing by hand (not idsync): it is
// never faulted, and the write log keeps it apart from idsync's writes.
func (w *world) adminCall(method, path string, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.JiraURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(jiratest.DefaultEmail, jiratest.DefaultAPIToken)
	req.Header.Set(adminHeader, "1")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := w.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}
