package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idsync/idsync/internal/sim"
	"github.com/idsync/idsync/internal/testlog"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

const testAdminToken = "test-admin-token-0123456789"

// inProcess is a daemon running in this test's process against the simulators.
type inProcess struct {
	t      testing.TB
	sims   *sim.Sims
	sigs   chan os.Signal
	base   string
	logs   *testlog.Buffer
	done   chan error
	client *http.Client
}

func startInProcess(t testing.TB, extra string) *inProcess {
	t.Helper()
	return startInProcessEdit(t, extra, nil)
}

// startInProcessEdit is startInProcess with edit applied to the config text first.
func startInProcessEdit(t testing.TB, extra string, edit func(string) string) *inProcess {
	t.Helper()
	s, err := sim.Start(sim.Options{JiraAddr: "127.0.0.1:0", MiniOrangeAddr: "127.0.0.1:0",
		Org: miniorangetest.OrgSpec{Users: 10, Groups: 3, MembershipsPerUser: 1, Seed: 5}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin_token: %s
state: {path: %s}
schedule: "@every 1h"
shutdown_timeout: 10s
log: {level: debug, format: json}
sources:
  - name: corp
    type: miniorange
    miniorange: {base_url: %s, customer_key: "100001", api_key: sim-mo-api-key}
sink:
  type: jira
  jira:
    base_url: %s
    email: admin@example.com
    api_token: sim-jira-token
    products: [jira-software]
    rate_limit: {requests_per_second: 500, burst: 50, concurrency: 4}
mapping: {import_users: true, import_groups: true, default_groups: [jira-software-users]}
%s`, testAdminToken, filepath.Join(dir, "state.db"), s.MiniOrangeURL, s.JiraURL, extra)
	if edit != nil {
		cfg = edit(cfg)
	}
	path := filepath.Join(dir, "idsync.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &inProcess{t: t, sims: s, sigs: make(chan os.Signal, 4), logs: &testlog.Buffer{}, done: make(chan error, 1),
		client: &http.Client{Timeout: 30 * time.Second}}
	addr := make(chan string, 1)
	go func() {
		p.done <- Run(context.Background(), Options{ConfigPath: path, NoInitialPass: true, Signals: p.sigs,
			LogOutput: p.logs, Listening: func(a string) { addr <- a }})
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case err := <-p.done:
		t.Fatalf("Run: %v\n%s", err, p.logs)
	case <-time.After(20 * time.Second):
		t.Fatal("no listener")
	}
	t.Cleanup(func() {
		select {
		case p.sigs <- syscall.SIGTERM:
		default:
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
		p.client.CloseIdleConnections()
		if strings.Contains(p.logs.String(), testAdminToken) {
			t.Error("the admin token is in the log")
		}
	})
	return p
}

func (p *inProcess) call(method, path string) (int, []byte) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestInProcessAdminAPI(t *testing.T) {
	p := startInProcess(t, "")

	code, body := p.call("POST", "/api/v1/reconcile?wait=true")
	var run reconcile.Run
	if code != http.StatusOK || json.Unmarshal(body, &run) != nil || run.Result != reconcile.ResultOK || run.Trigger != reconcile.TriggerAPI {
		t.Fatalf("reconcile?wait=true: %d %s", code, body)
	}
	if code, body := p.call("POST", "/api/v1/reconcile?source=nope"); code != http.StatusBadRequest {
		t.Errorf("unknown source: %d %s", code, body)
	}
	if code, body := p.call("POST", "/api/v1/reconcile?wait=soon"); code != http.StatusBadRequest {
		t.Errorf("bad wait: %d %s", code, body)
	}
	if code, _ := p.call("POST", "/api/v1/reconcile"); code != http.StatusAccepted {
		t.Errorf("reconcile without wait: %d, want 202", code)
	}
	if code, body := p.call("POST", "/api/v1/sync/users/nobody@example.com"); code != http.StatusNotFound || !strings.Contains(string(body), "nobody@example.com") {
		t.Errorf("sync of a user no source has: %d %s, want 404", code, body)
	}
	u := p.sims.MiniOrange.Users()[0]
	code, body = p.call("POST", "/api/v1/sync/users/"+u.UserName+"?dry_run=true")
	if code != http.StatusOK || json.Unmarshal(body, &run) != nil || !run.DryRun {
		t.Errorf("dry-run sync: %d %s", code, body)
	}
	if code, body := p.call("GET", "/api/v1/runs?limit=0"); code != http.StatusBadRequest {
		t.Errorf("runs?limit=0: %d %s", code, body)
	}
	if code, _ := p.call("GET", "/api/v1/nothing"); code != http.StatusNotFound {
		t.Errorf("unknown admin route: %d", code)
	}

	// Shutdown: the listener answers no more, Run returns nil.
	p.sigs <- syscall.SIGTERM
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no stop")
	}
	p.done <- nil // for the cleanup
	if _, err := p.client.Get(p.base + "/healthz"); err == nil {
		t.Error("the listener still answers after stop")
	}
	if !strings.Contains(p.logs.String(), `"message":"stopped"`) {
		t.Error("no stopped line")
	}
}

// reload edits the daemon's config file, sends SIGHUP and waits for the n-th good reload.
func (p *inProcess) reload(edit func(string) string, n int) {
	p.t.Helper()
	_, body := p.call("GET", "/api/v1/status")
	var st struct {
		ConfigFile string `json:"configFile"`
	}
	if err := json.Unmarshal(body, &st); err != nil || st.ConfigFile == "" {
		p.t.Fatalf("status: %s", body)
	}
	b, err := os.ReadFile(st.ConfigFile)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(st.ConfigFile, []byte(edit(string(b))), 0o600); err != nil {
		p.t.Fatal(err)
	}
	p.sigs <- syscall.SIGHUP
	want := fmt.Sprintf(`idsync_config_reloads_total{result="ok"} %d`, n)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, m := p.call("GET", "/metrics"); strings.Contains(string(m), want) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no reload %d:\n%s", n, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInProcessReloadLogLevel(t *testing.T) {
	p := startInProcess(t, "")
	p.reload(func(c string) string { return strings.Replace(c, "level: debug", "level: warn", 1) }, 1)
	// Info lines stop at warn level: a pass logs "pass finished" at info.
	before := strings.Count(p.logs.String(), "pass finished")
	if code, _ := p.call("POST", "/api/v1/reconcile?wait=true"); code != http.StatusOK {
		t.Fatal("pass")
	}
	if after := strings.Count(p.logs.String(), "pass finished"); after != before {
		t.Errorf("info lines still logged after the level became warn")
	}
	p.sigs <- syscall.SIGUSR1 // a pass request, then the cleanup's SIGTERM
}

// TestInProcessSCIMTokenRotation: SIGHUP applies new SCIM push tokens without a restart; a
// previous_token is accepted until it is removed, and its use is logged.
func TestInProcessSCIMTokenRotation(t *testing.T) {
	const oldTok, newTok = "scim-token-old-0001", "scim-token-new-0002"
	const start = "push: {enabled: true, token: " + oldTok + "}"
	p := startInProcessEdit(t, "", func(cfg string) string {
		return strings.Replace(cfg, "api_key: sim-mo-api-key}", "api_key: sim-mo-api-key}\n    "+start, 1)
	})
	scim := func(tok string) int {
		req, _ := http.NewRequest("GET", p.base+"/scim/v2/corp/Users", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	push := func(block string) func(string) string {
		return func(c string) string { return strings.Replace(c, start, "push: "+block, 1) }
	}
	if got := scim(oldTok); got != http.StatusOK {
		t.Fatalf("old token before the rotation: %d", got)
	}
	p.reload(push(`{enabled: true, token: `+newTok+`, previous_token: `+oldTok+`}`), 1)
	if a, b := scim(newTok), scim(oldTok); a != http.StatusOK || b != http.StatusOK {
		t.Fatalf("during the rotation: new token %d, previous token %d, want both 200", a, b)
	}
	if !strings.Contains(p.logs.String(), "authenticated with push.previous_token") {
		t.Error("a request with the previous token was not logged")
	}
	p.reload(func(c string) string {
		return strings.Replace(c, `push: {enabled: true, token: `+newTok+`, previous_token: `+oldTok+`}`, `push: {enabled: true, token: `+newTok+`}`, 1)
	}, 2)
	if a, b := scim(newTok), scim(oldTok); a != http.StatusOK || b != http.StatusUnauthorized {
		t.Fatalf("after the rotation: new token %d, old token %d, want 200 and 401", a, b)
	}
	logs := p.logs.String()
	if strings.Contains(logs, "after a restart") {
		t.Errorf("a token change was reported as needing a restart:\n%s", logs)
	}
	if strings.Contains(logs, oldTok) || strings.Contains(logs, newTok) {
		t.Error("a SCIM token is in the log")
	}
	if _, body := p.call("GET", "/api/v1/status"); strings.Contains(string(body), newTok) {
		t.Error("the SCIM token is in /api/v1/status")
	}
}

// TestInProcessCredentialRotation: the IdP and Jira both move to new credentials; passes fail
// until the config holds them, and after a SIGHUP (no restart) they succeed again.
func TestInProcessCredentialRotation(t *testing.T) {
	const joTok, moKey = "rotated-jira-token-0003", "rotated-mo-key-0004"
	p := startInProcess(t, "")
	pass := func() reconcile.Run {
		t.Helper()
		code, body := p.call("POST", "/api/v1/reconcile?wait=true")
		var run reconcile.Run
		if (code != http.StatusOK && code != http.StatusBadGateway) || json.Unmarshal(body, &run) != nil {
			t.Fatalf("reconcile: %d %s", code, body)
		}
		return run
	}
	if run := pass(); run.Result != reconcile.ResultOK {
		t.Fatalf("first pass: %s", run.Result)
	}
	p.sims.Jira.SetAPITokens(joTok)
	p.sims.MiniOrange.SetAPIKey(moKey)
	if run := pass(); run.Result == reconcile.ResultOK || len(run.Sources) != 1 || run.Sources[0].Complete {
		t.Fatalf("a pass with revoked credentials: result %s, sources %+v; want the read to fail", run.Result, run.Sources)
	}
	p.reload(func(c string) string {
		c = strings.Replace(c, "api_token: sim-jira-token", "api_token: "+joTok, 1)
		return strings.Replace(c, "api_key: sim-mo-api-key", "api_key: "+moKey, 1)
	}, 1)
	if run := pass(); run.Result != reconcile.ResultOK {
		t.Fatalf("a pass after the reload: %s %v", run.Result, run.Errors)
	}
	logs := p.logs.String()
	if strings.Contains(logs, "after a restart") {
		t.Errorf("a credential change was reported as needing a restart:\n%s", logs)
	}
	for _, secret := range []string{joTok, moKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("the secret %s is in the log", secret)
		}
	}
}
