package simulation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// Write is one change the Jira simulator processed (any method but GET, answered 2xx),
// including changes whose answer a fault then cut off: those were made too.
type Write struct {
	Pass      int // the pass it was made in (0: between passes, by an admin)
	Admin     bool
	Method    string
	Template  string
	Status    int
	Accounts  []string
	GroupID   string
	GroupName string
	Email     string // POST /user: the address the account was created for
	// Ahead says whether idsync's audit log held a matching write-ahead record ("started")
	// when the request reached Jira; Why names what was looked for when it did not.
	Ahead bool
	Why   string
}

func (w Write) String() string {
	who := "idsync"
	if w.Admin {
		who = "admin"
	}
	return fmt.Sprintf("%s %s %s acc=%v group=%s email=%s (%s)", w.Method, w.Template, http.StatusText(w.Status), w.Accounts, w.GroupName, w.Email, who)
}

// removal reports whether the write takes access away.
func (w Write) removal() bool {
	return w.Method == http.MethodDelete || strings.HasSuffix(w.Template, "/lifecycle/disable")
}

// grantsAccess reports whether the write can give product access: a created (or returning)
// account, an add to a product-access group, an enabled account.
func (w Write) grantsAccess(product map[string]bool) bool {
	switch {
	case w.Method == http.MethodPost && w.Template == "/rest/api/3/user":
		return true
	case w.Method == http.MethodPost && w.Template == "/rest/api/3/group/user":
		return product[strings.ToLower(w.GroupName)]
	case strings.HasSuffix(w.Template, "/lifecycle/enable"):
		return true
	}
	return false
}

type writeLog struct {
	mu  sync.Mutex
	all []Write
}

func (l *writeLog) add(w Write) {
	l.mu.Lock()
	l.all = append(l.all, w)
	l.mu.Unlock()
}

// since returns the writes from index i on, and the next index.
func (l *writeLog) since(i int) ([]Write, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]Write(nil), l.all[i:]...)
	return out, len(l.all)
}

func (l *writeLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

type metaKey struct{}

// reqMeta travels with a request into the simulator's OnExchange.
type reqMeta struct {
	admin bool
	ahead bool
	why   string
}

// serveJira is the Jira front: it checks the write-ahead audit record of each of idsync's
// writes as the request arrives, lets the fault box answer or cut it, and passes the rest on.
func (w *world) serveJira(rw http.ResponseWriter, r *http.Request) {
	body := readBody(r)
	m := &reqMeta{admin: r.Header.Get(adminHeader) != ""}
	if !m.admin && r.Method != http.MethodGet {
		m.ahead, m.why = w.auditedAhead(r, body)
	}
	r = r.WithContext(context.WithValue(r.Context(), metaKey{}, m))
	if !m.admin && w.locked != "" && r.Method == http.MethodDelete && r.URL.Path == "/rest/api/3/group/user" &&
		strings.EqualFold(w.groupName(r.URL.Query().Get("groupId")), w.locked) {
		jiraError(rw, http.StatusForbidden, "You do not have the permission to remove users from group "+w.locked+": it is managed elsewhere.")
		return
	}
	if !m.admin && w.faults.jira(w, rw, r, body) {
		return
	}
	w.jira.Handler().ServeHTTP(rw, r)
}

// observe is the simulator's OnExchange: it logs every write it processed.
func (w *world) observe(x jiratest.Exchange) {
	if x.Method == http.MethodGet || x.Status < 200 || x.Status > 299 {
		return
	}
	m, _ := x.Request.Context().Value(metaKey{}).(*reqMeta)
	if m == nil {
		m = &reqMeta{}
	}
	wr := Write{Pass: int(w.pass.Load()), Admin: m.admin, Method: x.Method, Template: x.Template, Status: x.Status,
		Ahead: m.ahead, Why: m.why}
	accs, email := requestSubjects(x.Request, x.ReqBody)
	wr.Accounts, wr.Email = accs, email
	wr.GroupID = x.Request.URL.Query().Get("groupId")
	var resp struct {
		AccountID string `json:"accountId"`
		GroupID   string `json:"groupId"`
		Name      string `json:"name"`
	}
	_ = json.Unmarshal(x.Body, &resp)
	switch {
	case x.Method == http.MethodPost && x.Template == "/rest/api/3/user":
		wr.Accounts = append(wr.Accounts, resp.AccountID)
		w.dir.learn(resp.AccountID, email)
	case x.Method == http.MethodPost && x.Template == "/rest/api/3/group":
		wr.GroupID, wr.GroupName = resp.GroupID, resp.Name
		w.mu.Lock()
		w.groupNames[resp.GroupID] = resp.Name
		w.mu.Unlock()
	}
	if wr.GroupName == "" {
		wr.GroupName = w.groupName(wr.GroupID)
	}
	w.writes.add(wr)
}

// requestSubjects returns the accounts a request names (query, body, path) and the email of
// a create.
func requestSubjects(r *http.Request, body []byte) ([]string, string) {
	var accs []string
	if id := r.URL.Query().Get("accountId"); id != "" {
		accs = append(accs, id)
	}
	var req struct {
		AccountID    string   `json:"accountId"`
		AccountIDs   []string `json:"accountIds"`
		EmailAddress string   `json:"emailAddress"`
	}
	_ = json.Unmarshal(body, &req)
	if req.AccountID != "" {
		accs = append(accs, req.AccountID)
	}
	accs = append(accs, req.AccountIDs...)
	if rest, ok := strings.CutPrefix(r.URL.Path, "/users/"); ok {
		if id, _, ok := strings.Cut(rest, "/"); ok && id != "" {
			accs = append(accs, id)
		}
	}
	return accs, strings.TrimSpace(req.EmailAddress)
}

// auditedAhead checks that idsync journaled a write-ahead audit record for this request
// before sending it: a "started" record of a matching action about the same account (or,
// for a create, the same person) and, for memberships, the same group.
func (w *world) auditedAhead(r *http.Request, body []byte) (bool, string) {
	accs, email := requestSubjects(r, body)
	path := r.URL.Path
	var subjects []string
	for _, a := range accs {
		subjects = append(subjects, "acc:"+a)
		if id := w.dir.person(a); id != "" {
			subjects = append(subjects, "user:"+strings.ToLower(w.dir.userNameOf(id)))
		}
	}
	if email != "" {
		if id := w.dir.byEmailID(email); id != "" {
			subjects = append(subjects, "user:"+strings.ToLower(w.dir.userNameOf(id)))
		}
	}
	var kinds []reconcile.Kind
	target := ""
	switch {
	case r.Method == http.MethodPost && path == "/rest/api/3/user":
		kinds = []reconcile.Kind{reconcile.KindCreateUser, reconcile.KindReactivateUser}
	case r.Method == http.MethodPost && path == "/rest/api/3/group":
		var g struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(body, &g)
		kinds, subjects = []reconcile.Kind{reconcile.KindCreateGroup}, []string{"group"}
		target = g.Name
	case path == "/rest/api/3/group/user":
		kinds = []reconcile.Kind{reconcile.KindAddMember, reconcile.KindReactivateUser}
		if r.Method == http.MethodDelete {
			kinds = []reconcile.Kind{reconcile.KindRemoveMember, reconcile.KindDeactivateUser}
		}
		target = w.groupName(r.URL.Query().Get("groupId"))
	case strings.HasSuffix(path, "/manage/profile") || strings.HasSuffix(path, "/manage/email"):
		kinds = []reconcile.Kind{reconcile.KindUpdateUser, reconcile.KindCreateUser}
	case strings.HasSuffix(path, "/lifecycle/disable"):
		kinds = []reconcile.Kind{reconcile.KindDeactivateUser}
	case strings.HasSuffix(path, "/lifecycle/enable"):
		kinds = []reconcile.Kind{reconcile.KindReactivateUser}
	default:
		kinds = []reconcile.Kind{reconcile.KindDeactivateUser}
	}
	if w.audit.covers(kinds, subjects, target) {
		return true, ""
	}
	return false, fmt.Sprintf("no started %v record for %v target %q", kinds, subjects, target)
}
