package simulation

import (
	"strings"
	"sync"

	"github.com/idsync/idsync/reconcile"
)

// auditIndex holds every audit record idsync journaled durably (the store wrapper adds them
// once Journal returned), across restarts: what I7 checks a Jira write against when it
// arrives, and whether every write-ahead record got its outcome in the end.
type auditIndex struct {
	mu sync.Mutex
	// started maps action -> subject -> targets of write-ahead ("started") records. A
	// subject is "acc:<accountId>", "user:<lower userName>" or "group" (group creates).
	started map[string]map[string][]string
	// intents maps the intent of a started record to whether an outcome followed.
	intents map[string]bool
	order   []string // intents in the order they were started
}

func newAuditIndex() *auditIndex {
	return &auditIndex{started: map[string]map[string][]string{}, intents: map[string]bool{}}
}

func (x *auditIndex) add(recs []reconcile.AuditRecord) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, a := range recs {
		if a.Result != reconcile.ItemStarted {
			if a.Intent != "" {
				if _, ok := x.intents[a.Intent]; ok {
					x.intents[a.Intent] = true
				}
			}
			continue
		}
		if a.Intent != "" {
			if _, ok := x.intents[a.Intent]; !ok {
				x.order = append(x.order, a.Intent)
			}
			x.intents[a.Intent] = false
		}
		m := x.started[a.Action]
		if m == nil {
			m = map[string][]string{}
			x.started[a.Action] = m
		}
		var subjects []string
		if a.AccountID != "" {
			subjects = append(subjects, "acc:"+a.AccountID)
		}
		if a.UserName != "" {
			subjects = append(subjects, "user:"+strings.ToLower(a.UserName))
		}
		if a.Action == string(reconcile.KindCreateGroup) {
			subjects = append(subjects, "group")
		}
		for _, s := range subjects {
			m[s] = append(m[s], strings.ToLower(a.Target))
		}
	}
}

// covers reports whether a started record of one of kinds names one of subjects (and, for
// memberships and group creates, target).
func (x *auditIndex) covers(kinds []reconcile.Kind, subjects []string, target string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	target = strings.ToLower(target)
	for _, k := range kinds {
		matchTarget := k == reconcile.KindAddMember || k == reconcile.KindRemoveMember || k == reconcile.KindCreateGroup
		for _, s := range subjects {
			for _, t := range x.started[string(k)][s] {
				if !matchTarget || target == "" || t == target || strings.HasPrefix(t, target+" ") {
					return true
				}
			}
		}
	}
	return false
}

// unresolved lists write-ahead intents that never got an outcome record.
func (x *auditIndex) unresolved() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for _, i := range x.order {
		if !x.intents[i] {
			out = append(out, i)
		}
	}
	return out
}
