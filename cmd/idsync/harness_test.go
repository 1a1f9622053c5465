package main

// Process-level test harness: TestMain builds the idsync binary once (with -race when the
// tests run with -race), each test starts the simulators in-process on 127.0.0.1:0, writes a
// config pointing at them, and runs the binary as operators do.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/internal/proctest"
	"github.com/idsync/idsync/internal/sim"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

var binPath string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "idsync-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binPath, err = proctest.Build(dir, raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// Fixed credentials of the simulators; tests grep every output for them.
const (
	jiraToken  = "sim-jira-token"
	moAPIKey   = "sim-mo-api-key"
	orgAPIKey  = "sim-org-key"
	moCustomer = "100001"
)

// env is one test's simulators, folder, config values and secrets.
type env struct {
	t    *testing.T
	sims *sim.Sims
	dir  string
	cfg  cfgOpts

	adminToken string
	scimToken  string
}

// cfgOpts are the knobs of the test config.
type cfgOpts struct {
	Listen          string // default 127.0.0.1:0
	Schedule        string
	ShutdownTimeout string
	LogLevel        string
	GracePasses     int
	ExtraGroups     string // YAML lines under mapping.groups, indented 4
	JiraURL         string // default the simulator's
	MiniOrangeURL   string
	JiraRate        string // requests_per_second
	TLSCert         string
	TLSKey          string
	AdminToken      string // default the env's
	Broken          bool   // write problems a reload must refuse
}

func newEnv(t *testing.T, so sim.Options) *env {
	t.Helper()
	so.JiraAddr, so.MiniOrangeAddr = "127.0.0.1:0", "127.0.0.1:0"
	if so.Org.Users == 0 {
		so.Org = miniorangetest.OrgSpec{Users: 20, Groups: 4, MembershipsPerUser: 1, DisabledCount: 1, Seed: 7}
	}
	s, err := sim.Start(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e := &env{t: t, sims: s, dir: t.TempDir(), adminToken: "adm-" + randHex(12), scimToken: "scim-" + randHex(12)}
	e.cfg = cfgOpts{Schedule: "@every 1h", ShutdownTimeout: "20s", LogLevel: "info", GracePasses: 2}
	return e
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) statePath() string  { return filepath.Join(e.dir, "idsync.db") }
func (e *env) configPath() string { return filepath.Join(e.dir, "idsync.yaml") }

// secrets are every secret value the config holds; no output may contain one.
func (e *env) secrets() []string {
	return []string{e.adminToken, e.scimToken, jiraToken, moAPIKey, orgAPIKey}
}

// writeConfig renders the config to idsync.yaml (atomically, as editors and config
// management do, so a reload never reads half a file).
func (e *env) writeConfig(o cfgOpts) {
	e.t.Helper()
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\n", def(o.Listen, "127.0.0.1:0"))
	fmt.Fprintf(&b, "admin_token: %q\n", def(o.AdminToken, e.adminToken))
	fmt.Fprintf(&b, "state: {path: %q}\n", e.statePath())
	fmt.Fprintf(&b, "schedule: %q\n", def(o.Schedule, "@every 1h"))
	fmt.Fprintf(&b, "shutdown_timeout: %s\n", def(o.ShutdownTimeout, "20s"))
	fmt.Fprintf(&b, "log: {level: %s, format: json}\n", def(o.LogLevel, "info"))
	if o.TLSCert != "" {
		fmt.Fprintf(&b, "tls: {cert_file: %q, key_file: %q}\n", o.TLSCert, o.TLSKey)
	}
	fmt.Fprintf(&b, `sources:
  - name: corp
    type: miniorange
    miniorange:
      base_url: %s
      customer_key: %q
      api_key: %s
    push:
      enabled: true
      token: %s
sink:
  type: jira
  jira:
    base_url: %s
    email: admin@example.com
    api_token: %s
    admin_api: {base_url: %s, org_api_key: %s}
    products: [jira-software]
    rate_limit: {requests_per_second: %s, burst: 50, concurrency: 4}
mapping:
  import_users: true
  import_groups: true
  groups:
    - {idp: Engineering, jira: [engineering]}
%s  default_groups: [jira-software-users]
safety:
  grace_passes: %d
`, def(o.MiniOrangeURL, e.sims.MiniOrangeURL), moCustomer, moAPIKey, e.scimToken,
		def(o.JiraURL, e.sims.JiraURL), jiraToken, e.sims.JiraURL, orgAPIKey, def(o.JiraRate, "500"),
		o.ExtraGroups, o.GracePasses)
	if o.Broken {
		b.WriteString("  polcy: sync\n  max_deactivation_percent: 250\n")
	}
	tmp := e.configPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.configPath()); err != nil {
		e.t.Fatal(err)
	}
}

// cmdResult is one finished CLI command.
type cmdResult struct {
	code           int
	stdout, stderr string
}

// idsync runs the binary to completion.
func (e *env) idsync(args ...string) cmdResult {
	e.t.Helper()
	return e.idsyncEnv(nil, args...)
}

// idsyncEnv is idsync with extra environment variables (NAME=value).
func (e *env) idsyncEnv(extra []string, args ...string) cmdResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = e.dir
	cmd.Env = append(proctest.CleanEnv(), extra...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := cmdResult{stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		e.t.Fatalf("idsync %v: %v", args, err)
	}
	e.noSecrets("idsync "+strings.Join(args, " "), r.stdout+r.stderr)
	proctest.NoRace(e.t, r.stderr)
	return r
}

// cleanEnv keeps IDSYNC_* settings of the caller's shell out of the tests.
func (e *env) noSecrets(what, text string) {
	e.t.Helper()
	proctest.NoSecrets(e.t, what, text, e.secrets())
}

// daemonProc is a running `idsync run`.
type daemonProc struct {
	t      *testing.T
	e      *env
	cmd    *exec.Cmd
	scheme string
	addr   string
	client *http.Client

	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer

	done chan struct{}
	code int
}

// startDaemon starts `idsync run -c idsync.yaml` and waits for its listener.
func (e *env) startDaemon(args ...string) *daemonProc {
	t := e.t
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"run", "-c", e.configPath()}, args...)...)
	cmd.Dir = e.dir
	cmd.Env = proctest.CleanEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	d := &daemonProc{t: t, e: e, cmd: cmd, scheme: "http", done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second}}
	if e.cfg.TLSCert != "" {
		d.scheme = "https"
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			d.mu.Lock()
			d.raw.WriteString(line + "\n")
			if m != nil {
				d.lines = append(d.lines, m)
			}
			d.mu.Unlock()
			if m != nil && m["message"] == "listening" {
				if a, ok := m["listen"].(string); ok {
					addr <- a
				}
			}
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			d.code = ee.ExitCode()
		}
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = cmd.Process.Kill()
			<-d.done
		}
		d.client.CloseIdleConnections()
		out := d.output()
		e.noSecrets("daemon log", out)
		proctest.NoRace(t, out)
		if t.Failed() {
			t.Logf("daemon log:\n%s", proctest.Tail(out, 12000))
		}
	})
	select {
	case d.addr = <-addr:
	case <-d.done:
		t.Fatalf("daemon exited with %d before listening:\n%s", d.code, d.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon did not listen within 60s:\n%s", d.output())
	}
	return d
}

func (d *daemonProc) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.raw.String()
}

func (d *daemonProc) url(path string) string { return d.scheme + "://" + d.addr + path }

func (d *daemonProc) signal(s syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(s); err != nil {
		d.t.Fatalf("signal %v: %v", s, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (d *daemonProc) wait(timeout time.Duration) (int, time.Duration) {
	d.t.Helper()
	start := time.Now()
	select {
	case <-d.done:
		return d.code, time.Since(start)
	case <-time.After(timeout):
		d.t.Fatalf("daemon still running after %s", timeout)
		return -1, 0
	}
}

// logged reports whether a log line matches every field given (values compared as text).
func (d *daemonProc) logged(fields map[string]string) bool {
	return d.countLogs(fields) > 0
}

func (d *daemonProc) countLogs(fields map[string]string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, l := range d.lines {
		ok := true
		for k, v := range fields {
			if fmt.Sprint(l[k]) != v {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// do sends a request with an optional bearer token.
func (d *daemonProc) do(method, path, token string) (int, []byte) {
	d.t.Helper()
	req, err := http.NewRequest(method, d.url(path), nil)
	if err != nil {
		d.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	d.e.noSecrets(method+" "+path, string(body))
	return resp.StatusCode, body
}

// metric sums the samples of name whose labels include every pair given.
func (d *daemonProc) metric(name string, labels map[string]string) float64 {
	d.t.Helper()
	code, body := d.do("GET", "/metrics", "")
	if code != 200 {
		d.t.Fatalf("/metrics: %d", code)
	}
	v, _ := metrics.Sum(string(body), name, labels)
	return v
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tlsClient trusts exactly the given PEM certificate.
func tlsClient(t *testing.T, pool *tls.Config) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: pool}}
}
