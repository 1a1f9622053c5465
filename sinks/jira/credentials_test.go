package jira_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/swaptest"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

const (
	rotatedToken  = "rotated-jira-token-7c1e"
	rotatedOrgKey = "rotated-org-key-9b4d"
)

// authLog keeps the Authorization headers the simulator received.
type authLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *authLog) record(x jiratest.Exchange) {
	l.mu.Lock()
	l.seen = append(l.seen, x.Request.Header.Get("Authorization"))
	l.mu.Unlock()
}

func (l *authLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) == 0 {
		return ""
	}
	return l.seen[len(l.seen)-1]
}

func (l *authLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

func basic(token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(jiratest.DefaultEmail+":"+token))
}

// rotationEnv is a sink with admin_api, one account and one group: jiraCall sends one Jira
// request (POST /group/user, done again when already a member), adminCall one admin request
// (PATCH profile).
type rotationEnv struct {
	*env
	auth                *authLog
	jiraCall, adminCall func() error
}

func newRotationEnv(t *testing.T, opts ...envOpt) *rotationEnv {
	t.Helper()
	auth := &authLog{}
	opts = append(opts, withSim(func(o *jiratest.Options) { o.OnExchange = auth.record }))
	e := newEnv(t, opts...)
	uid, err := e.sim.AddUser(jiratest.User{Email: "rot@example.com", DisplayName: "Rot"})
	if err != nil {
		t.Fatal(err)
	}
	gid, err := e.sim.AddGroup("rotation", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	return &rotationEnv{env: e, auth: auth,
		jiraCall: func() error {
			_, err := e.sink.Apply(ctx, reconcile.Change{Kind: reconcile.KindAddMember, AccountID: uid,
				Group: &reconcile.GroupRef{ID: gid, Name: "rotation"}})
			return err
		},
		adminCall: func() error {
			_, err := e.sink.Apply(ctx, reconcile.Change{Kind: reconcile.KindUpdateUser, AccountID: uid,
				Fields: []reconcile.FieldChange{{Field: "displayName", New: "Rot Two"}}})
			return err
		},
	}
}

func TestSetCredentialsRotatesTokenAndOrgKey(t *testing.T) {
	e := newRotationEnv(t, withAdmin)
	if err := e.jiraCall(); err != nil {
		t.Fatalf("Jira request with the first token: %v", err)
	}
	if err := e.adminCall(); err != nil {
		t.Fatalf("admin request with the first org key: %v", err)
	}

	// The site revokes the token: the sink's requests fail as unauthorized until it is told.
	e.sim.SetAPITokens(rotatedToken)
	if err := e.jiraCall(); !errors.Is(err, jira.ErrUnauthorized) {
		t.Fatalf("Jira request with the revoked token: err = %v, want ErrUnauthorized", err)
	}
	if err := e.sink.SetCredentials(rotatedToken, jiratest.DefaultOrgAPIKey); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	if err := e.jiraCall(); err != nil {
		t.Fatalf("Jira request with the new token: %v", err)
	}
	if got := e.auth.last(); got != basic(rotatedToken) {
		t.Fatalf("the simulator saw Authorization %q, want basic auth with the new token", got)
	}
	if err := e.adminCall(); err != nil {
		t.Fatalf("admin request with the unchanged org key: %v", err)
	}

	// Same for the org API key on the admin routes.
	e.sim.SetOrgAPIKeys(rotatedOrgKey)
	if err := e.adminCall(); !errors.Is(err, jira.ErrUnauthorized) {
		t.Fatalf("admin request with the revoked org key: err = %v, want ErrUnauthorized", err)
	}
	if err := e.sink.SetCredentials(rotatedToken, rotatedOrgKey); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	if err := e.adminCall(); err != nil {
		t.Fatalf("admin request with the new org key: %v", err)
	}
	if got := e.auth.last(); got != "Bearer "+rotatedOrgKey {
		t.Fatalf("the simulator saw Authorization %q, want the new org key", got)
	}
	if err := e.jiraCall(); err != nil {
		t.Fatalf("Jira request after the org key changed: %v", err)
	}
}

func TestSetCredentialsRejectsBadInput(t *testing.T) {
	cases := []struct {
		name         string
		admin        bool
		token, org   string
		wantInErrors string
	}{
		{"blank token", true, "", rotatedOrgKey, "api_token is empty"},
		{"white-space token", true, "  \t", rotatedOrgKey, "api_token is empty"},
		{"token with a line break", true, rotatedToken + "\n", rotatedOrgKey, "control character"},
		{"token with a trailing space", true, rotatedToken + " ", rotatedOrgKey, "white space"},
		{"blank org key with admin_api", true, rotatedToken, "", "admin_api is configured"},
		{"org key with a line break", true, rotatedToken, "org\r\nX-Injected: 1", "control character"},
		{"org key without admin_api", false, rotatedToken, rotatedOrgKey, "admin_api is not configured; restart to add it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e *rotationEnv
			if tc.admin {
				e = newRotationEnv(t, withAdmin)
			} else {
				e = newRotationEnv(t)
			}
			err := e.sink.SetCredentials(tc.token, tc.org)
			if err == nil || !strings.Contains(err.Error(), tc.wantInErrors) {
				t.Fatalf("SetCredentials error = %v, want one saying %q", err, tc.wantInErrors)
			}
			for _, secret := range []string{rotatedToken, rotatedOrgKey, "org\r\n"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error holds a secret: %v", err)
				}
			}
			// Nothing changed: the simulator still accepts only the first pair, and the sink
			// still sends it (a half-applied pair would fail one of these).
			if err := e.jiraCall(); err != nil {
				t.Errorf("Jira request after a rejected SetCredentials: %v", err)
			}
			if tc.admin {
				if err := e.adminCall(); err != nil {
					t.Errorf("admin request after a rejected SetCredentials: %v", err)
				}
			}
		})
	}

	t.Run("blank org key without admin_api keeps none", func(t *testing.T) {
		e := newRotationEnv(t)
		if err := e.sink.SetCredentials(rotatedToken, " "); err != nil {
			t.Fatalf("SetCredentials: %v", err)
		}
		e.sim.SetAPITokens(rotatedToken)
		if err := e.jiraCall(); err != nil {
			t.Fatalf("Jira request with the new token: %v", err)
		}
	})
}

// A server that echoes secrets in its error text: the current and the replaced values are all
// scrubbed, also where the text is cut to length.
func TestSetCredentialsScrubsCurrentAndPreviousSecrets(t *testing.T) {
	secrets := []string{jiratest.DefaultAPIToken, jiratest.DefaultOrgAPIKey, rotatedToken, rotatedOrgKey}
	echo := strings.Join(secrets, " / ")
	cases := map[string]func(w http.ResponseWriter){
		"json message": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errorMessages":["credentials ` + echo + ` are not valid here"]}`))
		},
		// The new token straddles the 300-character cut of a plain-text body.
		"text cut to length": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(strings.Repeat("x", 290) + rotatedToken + " " + echo))
		},
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			sim := jiratest.New(jiratest.Options{Clock: jiratest.NewScaledClock(100)})
			sim.SetAPITokens(rotatedToken)
			sim.SetOrgAPIKeys(rotatedOrgKey)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.URL.Path == "/rest/api/3/group" {
					answer(w)
					return
				}
				sim.Handler().ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			s, err := jira.New(configs.JiraConfig{BaseURL: srv.URL, Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
				AdminAPI: &configs.AdminAPIConfig{BaseURL: srv.URL, OrgAPIKey: jiratest.DefaultOrgAPIKey}},
				jira.Options{Logger: zerolog.Nop(), Clock: jiratest.NewScaledClock(100)})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SetCredentials(rotatedToken, rotatedOrgKey); err != nil {
				t.Fatal(err)
			}
			_, err = s.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "g"}})
			var apiErr *jira.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want the 400", err)
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("nothing was redacted: %v", err)
			}
			for _, secret := range secrets {
				// A cut secret must not leave its start behind either.
				if strings.Contains(err.Error(), secret[:8]) {
					t.Errorf("the error holds (part of) %q: %v", secret, err)
				}
			}
		})
	}
}

// Requests on both paths run while the credentials flip between two pairs the site accepts:
// every request succeeds and carries a value of one of the pairs (-race checks the swap).
func TestSetCredentialsUnderLoad(t *testing.T) {
	e := newRotationEnv(t, withAdmin)
	e.sim.SetAPITokens(jiratest.DefaultAPIToken, rotatedToken)
	e.sim.SetOrgAPIKeys(jiratest.DefaultOrgAPIKey, rotatedOrgKey)
	pairs := [2][2]string{{jiratest.DefaultAPIToken, jiratest.DefaultOrgAPIKey}, {rotatedToken, rotatedOrgKey}}

	swaptest.Run(t, 4, 25, func(int, int) error {
		return errors.Join(e.jiraCall(), e.adminCall())
	}, func(n int) error { return e.sink.SetCredentials(pairs[n%2][0], pairs[n%2][1]) })
	valid := map[string]bool{}
	for _, p := range pairs {
		valid[basic(p[0])], valid["Bearer "+p[1]] = true, true
	}
	seen := map[string]int{}
	for _, a := range e.auth.all() {
		if !valid[a] {
			t.Fatalf("the simulator saw Authorization %q, not one of the pairs", a)
		}
		seen[a]++
	}
	if len(seen) != len(valid) {
		t.Errorf("saw %d of the %d credential values (%v): the swaps did not reach the requests", len(seen), len(valid), seen)
	}
}
