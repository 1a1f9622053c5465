package reliability

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// TestCrashSCIMAck sends SCIM writes to a running `idsync run`, SIGKILLs it as soon as the first
// write is answered 2xx, restarts it and reads every acknowledged write back: a write the
// listener acknowledged is never lost. Deletes that were acknowledged stay deleted.
func TestCrashSCIMAck(t *testing.T) {
	t.Parallel()
	timed(t)
	rounds := 3
	if long {
		rounds = 20
	}
	w := newWorld(t, worldOpts{Org: miniorangetest.Org{}, Seed: 3})
	cfg := cfgOpts{
		Dir: t.TempDir(), JiraURL: w.JiraURL, MOURL: w.MOURL, NoSource: true,
		SCIMTokens: map[string]string{"hr": "rel-scim-hr-token-91b2"}, Grace: 1,
	}
	cfg.write(t)
	token := cfg.SCIMTokens["hr"]
	start := func() *proc {
		return startIdsync(t, cfg.secrets(), true, "run", "-c", cfg.path(), "--no-initial-pass")
	}

	type acked struct{ id, userName string }
	var (
		mu      sync.Mutex
		users   []acked             // acknowledged creates
		deleted []acked             // acknowledged deletes
		members = map[string]bool{} // user ids acknowledged as members of the group
		tried   = map[string]bool{} // ids a delete was sent for: unknown outcome unless acknowledged
	)
	fig := scimFigure{}
	d := start()
	code, body := d.httpDo(http.MethodPost, "/scim/v2/hr/Groups", token, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"ack-group"}`)
	if code != http.StatusCreated {
		t.Fatalf("creating the group: %d %s", code, body)
	}
	var grp struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(body), &grp)

	for round := range rounds {
		firstAck := make(chan struct{})
		var once sync.Once
		ack := func() { once.Do(func() { close(firstAck) }) }
		var wg sync.WaitGroup
		// Four creates, a delete of an earlier user and a member add, all at once.
		for i := range 4 {
			name := fmt.Sprintf("ack.%02d.%d@example.com", round, i)
			wg.Go(func() {
				b := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"name":{"givenName":"Ack","familyName":"R%d"},"emails":[{"value":%q,"primary":true}],"active":true}`, name, round, name)
				code, resp, err := doHTTP(http.MethodPost, "http://"+d.addr+"/scim/v2/hr/Users", token, b)
				if err != nil || code != http.StatusCreated {
					return // not acknowledged: no promise was made
				}
				var u struct {
					ID string `json:"id"`
				}
				if json.Unmarshal([]byte(resp), &u) == nil && u.ID != "" {
					mu.Lock()
					users = append(users, acked{u.ID, name})
					mu.Unlock()
				}
				ack()
			})
		}
		mu.Lock()
		var victim, member *acked
		var live []acked
		for _, u := range users {
			if !tried[u.id] {
				live = append(live, u)
			}
		}
		if n := len(live); n >= 2 {
			victim, member = &live[n-1], &live[n-2]
			tried[victim.id] = true
		}
		mu.Unlock()
		if victim != nil {
			wg.Go(func() {
				code, _, err := doHTTP(http.MethodDelete, "http://"+d.addr+"/scim/v2/hr/Users/"+victim.id, token, "")
				if err == nil && code == http.StatusNoContent {
					mu.Lock()
					deleted = append(deleted, *victim)
					mu.Unlock()
					ack()
				}
			})
			wg.Go(func() {
				b := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, member.id)
				code, _, err := doHTTP(http.MethodPatch, "http://"+d.addr+"/scim/v2/hr/Groups/"+grp.ID, token, b)
				if err == nil && (code == http.StatusOK || code == http.StatusNoContent) {
					mu.Lock()
					members[member.id] = true
					mu.Unlock()
					ack()
				}
			})
		}
		select {
		case <-firstAck:
		case <-time.After(30 * time.Second):
			t.Fatal("no SCIM write was acknowledged within 30s")
		}
		d.kill() // SIGKILL right after the first 2xx; the others may or may not have landed
		fig.Kills++
		wg.Wait()
		d = start()

		mu.Lock()
		gone := map[string]bool{}
		for _, x := range deleted {
			gone[x.id] = true
		}
		for _, u := range users {
			if tried[u.id] && !gone[u.id] {
				continue // a delete without an answer may or may not have landed
			}
			code, body := d.httpDo(http.MethodGet, "/scim/v2/hr/Users/"+u.id, token, "")
			switch {
			case gone[u.id] && code != http.StatusNotFound:
				t.Errorf("round %d: user %s was deleted with 204 but reads %d after the kill", round, u.userName, code)
				fig.Lost++
			case !gone[u.id] && (code != http.StatusOK || !jsonHas(body, "userName", u.userName)):
				t.Errorf("round %d: user %s was created with 201 but reads %d after the kill: %s", round, u.userName, code, body)
				fig.Lost++
			}
		}
		code, body := d.httpDo(http.MethodGet, "/scim/v2/hr/Groups/"+grp.ID, token, "")
		if code != http.StatusOK {
			t.Fatalf("round %d: the group reads %d: %s", round, code, body)
		}
		for id := range members {
			if !tried[id] && !containsValue(body, id) {
				t.Errorf("round %d: member %s was added with 2xx but is missing after the kill", round, id)
				fig.Lost++
			}
		}
		fig.Writes = len(users) + len(deleted) + len(members)
		mu.Unlock()
	}
	d.kill()
	t.Logf("SCIM: %d acknowledged writes over %d kills, %d lost", fig.Writes, fig.Kills, fig.Lost)
	if fig.Writes < rounds {
		t.Errorf("only %d writes were acknowledged in %d rounds", fig.Writes, rounds)
	}
	figures.update(func(r *report) { r.SCIM = &fig })
}

func jsonHas(body, key, want string) bool {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return false
	}
	v, _ := m[key].(string)
	return v == want
}

func containsValue(groupJSON, id string) bool {
	var g struct {
		Members []struct {
			Value string `json:"value"`
		} `json:"members"`
	}
	if json.Unmarshal([]byte(groupJSON), &g) != nil {
		return false
	}
	for _, m := range g.Members {
		if m.Value == id {
			return true
		}
	}
	return false
}
