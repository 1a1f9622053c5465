package simulation

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/idsync/idsync/sources/google/googletest"
)

// googleIdP is a Google Workspace world's IdP: the googletest simulator (users, groups,
// members and the OAuth token endpoint that checks the service account's signed JWT),
// changed through its control API (Hire, Delete, SetSuspended, SetArchived, SetName,
// AddGroup, DeleteGroup, AddMember, RemoveMember), served through a front (serveGoogle) that injects a pass's
// faults through the simulator's own fault knob. A person's id is their Google user id, their
// userName and email their primary email; a group's id and email are derived from its name,
// and mappings use its name.
//
// A primary email is also the person's userName at Google, where the model keeps userNames
// fixed: Google worlds draw no email change (IdP.caps), and setEmail refuses.
type googleIdP struct {
	w   *world
	sim *googletest.Sim
	url string
}

// googleGroupID and googleGroupEmail name an IdP group at Google.
func googleGroupID(name string) string    { return "g-" + strings.ToLower(name) }
func googleGroupEmail(name string) string { return strings.ToLower(name) + "@groups.example.com" }

func newGoogle(w *world, m *model, seed uint64) (*googleIdP, error) {
	org := &googletest.Org{}
	for _, id := range m.order {
		p := m.people[id]
		org.Users = append(org.Users, googleUser(p))
	}
	for _, g := range m.groupList() {
		grp := googletest.Group{ID: googleGroupID(g), Email: googleGroupEmail(g), Name: g}
		for _, id := range m.order {
			if p := m.people[id]; p.Groups[g] && p.Status != gone {
				grp.Members = append(grp.Members, p.Email)
			}
		}
		org.Groups = append(org.Groups, grp)
	}
	// The simulator keeps real time: the access token's JWT is dated by the host clock.
	i := &googleIdP{w: w, sim: googletest.New(googletest.Options{Org: org, Seed: int64(seed)})}
	srv, err := serveLoopback(http.HandlerFunc(i.serve))
	if err != nil {
		return nil, err
	}
	w.srvs = append(w.srvs, srv)
	i.url = srv.URL
	i.sim.SetTokenURL(srv.URL + googletest.PathToken)
	return i, nil
}

// googleUser is a person as Google keeps them: a disabled person is suspended, or archived
// for a third of them (both read as not active).
func googleUser(p *person) googletest.User {
	u := googletest.User{ID: p.ID, PrimaryEmail: p.Email, GivenName: p.First, FamilyName: p.Last}
	if p.Status == disabled {
		if archivedWhenDisabled(p) {
			u.Archived = true
		} else {
			u.Suspended = true
		}
	}
	return u
}

func archivedWhenDisabled(p *person) bool { return len(p.ID) > 0 && (p.ID[len(p.ID)-1]-'0')%3 == 0 }

var errGoogleCannot = errors.New("a Google world draws no email change: the primary email is also the userName")

func (i *googleIdP) hire(p *person) error {
	var groups []string
	for _, g := range p.groupList() {
		groups = append(groups, googleGroupEmail(g))
	}
	_, err := i.sim.Hire(googleUser(p), groups...)
	return err
}

func (i *googleIdP) leave(p *person) error { return i.sim.Delete(p.Email) }

func (i *googleIdP) move(p *person, from, to string) error {
	if from != "" {
		if err := i.sim.RemoveMember(googleGroupEmail(from), p.Email); err != nil {
			return err
		}
	}
	if to != "" {
		return i.sim.AddMember(googleGroupEmail(to), p.Email)
	}
	return nil
}

func (i *googleIdP) rename(p *person, first, last string) error {
	return i.sim.SetName(p.Email, first, last)
}

func (i *googleIdP) setEmail(*person, string) error { return errGoogleCannot }

func (i *googleIdP) deleteGroup(name string) error { return i.sim.DeleteGroup(googleGroupEmail(name)) }

func (i *googleIdP) createGroup(name string) error {
	return i.sim.AddGroup(googletest.Group{ID: googleGroupID(name), Email: googleGroupEmail(name), Name: name})
}

func (i *googleIdP) setActive(p *person, on bool) error {
	if on {
		if err := i.sim.SetSuspended(p.Email, false); err != nil {
			return err
		}
		return i.sim.SetArchived(p.Email, false)
	}
	if archivedWhenDisabled(p) {
		return i.sim.SetArchived(p.Email, true)
	}
	return i.sim.SetSuspended(p.Email, true)
}

// source is the Google source: the simulated service account's key written into the run's
// folder, one request at a time.
func (i *googleIdP) source(dir string) (string, error) {
	cred := filepath.Join(dir, "google-service-account.json")
	if err := os.WriteFile(cred, googletest.ServiceAccountJSON(i.url+googletest.PathToken), 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf(`  - name: %s
    type: google
    priority: 10
    google:
      customer: my_customer
      admin_email: %s
      credentials_file: %s
      base_url: %s
      page_size: %d
      group_name: name
      rate_limit: {requests_per_second: 0, concurrency: 1}
`, sourceName, googletest.DefaultAdminEmail, cred, i.url, pageSize), nil
}

// arm sets the pass's sticky page fault and the user record without its status, through the
// simulator's knobs.
func (i *googleIdP) arm(plan passFaults) (fired func() int) {
	if s := plan.GoogleSticky; s != nil {
		fired = i.sim.AddFault(googletest.Fault{Kind: s.Kind, Endpoint: s.Endpoint, Key: s.Key, Page: s.Page})
	}
	if who := plan.MissingStatus; who != "" {
		i.sim.SetUserHook(func(email string, rec map[string]any) {
			if strings.EqualFold(email, who) {
				delete(rec, "suspended")
				delete(rec, "archived")
			}
		})
	}
	return fired
}

func (i *googleIdP) disarm() {
	i.sim.ClearFaults()
	i.sim.SetUserHook(nil)
}

func (i *googleIdP) close() {}

// serve is the Google front: a request of the Directory API (never the token endpoint)
// meets a random fault of the pass, drawn from a hash of the request and its attempt, and
// injected through the simulator's fault knob for that one answer.
func (i *googleIdP) serve(rw http.ResponseWriter, r *http.Request) {
	ep, key := googleRoute(r.URL.Path)
	if ep != "" {
		reqKey := r.Method + " " + r.URL.Path + "?" + r.URL.Query().Encode()
		if plan, _, rnd, armed := i.w.faults.draw(reqKey); armed && rnd.Float64() < plan.GoogleRate {
			i.w.faults.count()
			f := googletest.Fault{Endpoint: ep, Key: key, Page: googletest.AnyPage, Times: 1}
			switch plan.GoogleKinds[rnd.IntN(len(plan.GoogleKinds))] {
			case "500":
				f.Kind, f.Status = googletest.FaultStatus, http.StatusInternalServerError
			case "503":
				f.Kind, f.Status = googletest.FaultStatus, http.StatusServiceUnavailable
			case "reset":
				f.Kind = googletest.FaultReset
			case "truncate":
				f.Kind = googletest.FaultTruncate
			case "403-rate":
				f.Kind = googletest.FaultRateLimit
			case "403-user-rate":
				f.Kind = googletest.FaultUserRateLimit
			default:
				f.Kind = googletest.FaultTooMany
			}
			// The source sends one request at a time: this answer is the one the fault
			// hits.
			i.sim.AddFault(f)
		}
	}
	i.sim.Handler().ServeHTTP(rw, r)
}

// googleRoute names the Directory API endpoint of a path and its path key ("" for the token
// endpoint and anything else).
func googleRoute(path string) (endpoint, key string) {
	rest, ok := strings.CutPrefix(path, googletest.PathPrefix)
	if !ok {
		return "", ""
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && parts[0] == "users":
		return googletest.EndpointUsersList, ""
	case len(parts) == 2 && parts[0] == "users":
		return googletest.EndpointUsersGet, parts[1]
	case len(parts) == 1 && parts[0] == "groups":
		return googletest.EndpointGroupsList, ""
	case len(parts) == 3 && parts[0] == "groups" && parts[2] == "members":
		return googletest.EndpointMembersList, parts[1]
	}
	return "", ""
}
