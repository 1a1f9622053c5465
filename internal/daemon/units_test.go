package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/testlog"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/state"
)

func TestReadiness(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	failed := func(at time.Time) reconcile.Run {
		return reconcile.Run{Started: at, Result: reconcile.ResultPartial,
			Sources: []reconcile.SourceRun{{Name: "corp", Complete: false, Error: "500"}}}
	}
	ok := func(at time.Time) reconcile.Run {
		return reconcile.Run{Started: at, Result: reconcile.ResultOK, Sources: []reconcile.SourceRun{{Name: "corp", Complete: true}}}
	}
	limit := 2 * time.Minute
	h := newHealth()
	if r, _, _ := h.readiness(t0, limit); !r {
		t.Fatal("not ready before any pass")
	}
	h.observe(failed(t0))
	if r, _, _ := h.readiness(t0.Add(limit), limit); !r {
		t.Error("unready at exactly two intervals")
	}
	h.observe(failed(t0.Add(time.Minute))) // the outage started at t0, not at the latest failure
	r, since, srcs := h.readiness(t0.Add(limit+time.Second), limit)
	if r || !since.Equal(t0) || len(srcs) != 1 || srcs[0].Complete {
		t.Errorf("ready=%v since=%v sources=%v, want unready since t0", r, since, srcs)
	}
	// Targeted and dry runs say nothing about the source's health.
	h.observe(reconcile.Run{Started: t0.Add(3 * time.Minute), Result: reconcile.ResultOK, Target: "users a"})
	h.observe(reconcile.Run{Started: t0.Add(3 * time.Minute), Result: reconcile.ResultOK, DryRun: true})
	if r, _, _ := h.readiness(t0.Add(4*time.Minute), limit); r {
		t.Error("a targeted pass made the daemon ready")
	}
	// Failed items alone (partial, sources complete) do not make it unready.
	h.observe(reconcile.Run{Started: t0.Add(5 * time.Minute), Result: reconcile.ResultPartial, Sources: []reconcile.SourceRun{{Name: "corp", Complete: true}}})
	if r, _, _ := h.readiness(t0.Add(time.Hour), limit); !r {
		t.Error("failed items made the daemon unready")
	}
	h.observe(reconcile.Run{Started: t0.Add(time.Hour), Result: reconcile.ResultFailed})
	h.observe(ok(t0.Add(61 * time.Minute)))
	if r, _, _ := h.readiness(t0.Add(2*time.Hour), limit); !r {
		t.Error("not ready after recovery")
	}
}

func TestSkipIfStillRunning(t *testing.T) {
	var skipped atomic.Int32
	s := newScheduler(t.Context(), zerolog.Nop(), nil, func() { skipped.Add(1) })
	release := make(chan struct{})
	started := make(chan struct{})
	var runs atomic.Int32
	job := s.skipIfStillRunning()(cron.FuncJob(func() {
		if runs.Add(1) == 1 {
			close(started)
			<-release
		}
	}))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); job.Run() }()
	<-started
	job.Run() // the first still runs: skipped
	close(release)
	wg.Wait()
	job.Run() // runs again
	if runs.Load() != 2 || skipped.Load() != 1 {
		t.Errorf("runs=%d skipped=%d, want 2 and 1", runs.Load(), skipped.Load())
	}
}

func TestSchedulerSet(t *testing.T) {
	sc := newScheduler(t.Context(), zerolog.Nop(), func(context.Context) {}, nil)
	if sc.interval() != 0 || !sc.next().IsZero() {
		t.Error("an unset scheduler has an interval")
	}
	sc.stop() // nothing to stop: must not block
	if err := sc.set("every day", 0); err == nil {
		t.Error("a bad spec was accepted")
	}
	if err := sc.set("@every 90s", 0); err != nil {
		t.Fatal(err)
	}
	first := sc.cron
	if err := sc.set("@every 90s", 0); err != nil || sc.cron != first {
		t.Error("an unchanged spec restarted the cron")
	}
	if sc.interval() != 90*time.Second || sc.next().Before(time.Now()) {
		t.Errorf("interval %s next %s", sc.interval(), sc.next())
	}
	if err := sc.set("*/5 * * * *", 10*time.Second); err != nil || sc.cron == first || sc.interval() != 5*time.Minute {
		t.Errorf("a new spec: err %v interval %s", err, sc.interval())
	}
	sc.stop()
	for range 100 {
		if d := jitterDelay(time.Second); d < 0 || d >= time.Second {
			t.Fatalf("jitter %s out of [0, 1s)", d)
		}
	}
	if jitterDelay(0) != 0 {
		t.Error("jitter without a bound")
	}
}

func TestRequireToken(t *testing.T) {
	var tok atomic.Pointer[configs.Secret]
	s := configs.Secret("right-token-0123456789")
	tok.Store(&s)
	h := requireToken(&tok, zerolog.Nop(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	for _, c := range []struct {
		name, header string
		want         int
	}{
		{"missing", "", 401},
		{"wrong", "Bearer wrong", 401},
		{"prefix of the token", "Bearer right-token", 401},
		{"basic auth", "Basic cmlnaHQ6dG9rZW4=", 401},
		{"empty bearer", "Bearer ", 401},
		{"right", "Bearer right-token-0123456789", 204},
		{"lower-case scheme", "bearer right-token-0123456789", 204},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/status", nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Errorf("%d, want %d", w.Code, c.want)
			}
			if c.want == 401 && (w.Body.String() != "{\n  \"error\": \"unauthorized\"\n}\n" || w.Header().Get("WWW-Authenticate") == "") {
				t.Errorf("401 body %q says more than unauthorized", w.Body.String())
			}
		})
	}
	// A reload swaps the token: the old one stops working at once.
	n := configs.Secret("new-token-0123456789")
	tok.Store(&n)
	r := httptest.NewRequest("GET", "/api/v1/status", nil)
	r.Header.Set("Authorization", "Bearer right-token-0123456789")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("old token after the swap: %d", w.Code)
	}
	// An empty configured token never matches an empty presented one.
	empty := configs.Secret("")
	tok.Store(&empty)
	r = httptest.NewRequest("GET", "/api/v1/status", nil)
	r.Header.Set("Authorization", "Bearer ")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("empty token: %d", w.Code)
	}
}

func TestWaitParam(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 7 * time.Second, "true": maxAPIWait, "false": 0, "2s": 2 * time.Second, "10m": maxAPIWait} {
		if got, err := waitParam(in, 7*time.Second); err != nil || got != want {
			t.Errorf("waitParam(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"soon", "-1s", "1"} {
		if _, err := waitParam(bad, 0); err == nil {
			t.Errorf("waitParam(%q) accepted", bad)
		}
	}
}

func TestNeedsRestart(t *testing.T) {
	a := configs.Default()
	b := configs.Default()
	b.Mapping.ImportGroups = !a.Mapping.ImportGroups
	b.Schedule = "@every 1m"
	if k := needsRestart(a, b); len(k) != 0 {
		t.Errorf("live keys reported as restart-only: %v", k)
	}
	b.Listen = "127.0.0.1:9999"
	b.Log.Format = "console"
	if k := needsRestart(a, b); len(k) != 2 || k[0] != "listen" || k[1] != "log.format" {
		t.Errorf("needsRestart = %v", k)
	}
}

func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, cf, kf, 1)
	c, err := loadCertificate(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 { p, _ := c.get(nil); return p.Leaf.SerialNumber.Int64() }
	if serial() != 1 || c.notAfter().IsZero() {
		t.Fatalf("serial %d", serial())
	}
	writePair(t, cf, kf, 2)
	if err := c.reload(); err != nil || serial() != 2 {
		t.Errorf("reload: %v, serial %d", err, serial())
	}
	if err := os.WriteFile(kf, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.reload(); err == nil || serial() != 2 {
		t.Errorf("a broken key was loaded (err %v, serial %d)", err, serial())
	}
	if _, err := loadCertificate(filepath.Join(dir, "none.pem"), kf); err == nil {
		t.Error("a missing certificate loaded")
	}
	if c.tlsConfig().MinVersion == 0 {
		t.Error("no minimum TLS version")
	}
}

func writePair(t *testing.T, cf, kf string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRecovererAnswers500(t *testing.T) {
	h := recoverer(zerolog.Nop(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 500 {
		t.Errorf("%d, want 500", w.Code)
	}
}

func TestGuardRecoversAPanic(t *testing.T) {
	var b testlog.Buffer
	d := &Daemon{log: zerolog.New(&b)}
	if d.guard("test pass", func() { panic("boom") }) {
		t.Error("a panic reported as a normal return")
	}
	if !strings.Contains(b.String(), "test pass panicked") || !strings.Contains(b.String(), "boom") || !strings.Contains(b.String(), "goroutine") {
		t.Errorf("the panic is not logged with its stack: %s", b.String())
	}
	if !d.guard("test pass", func() {}) {
		t.Error("a normal return reported as a panic")
	}
}

func TestStallDetection(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := t0
	h := newHealth()
	h.now = func() time.Time { return clock }
	limit := stallLimit(time.Minute)
	if limit != minStallLimit {
		t.Fatalf("stallLimit(1m) = %s, want the %s floor", limit, minStallLimit)
	}
	if got := stallLimit(time.Hour); got != 2*time.Hour {
		t.Fatalf("stallLimit(1h) = %s, want two intervals", got)
	}
	if _, _, _, s := h.stalled(t0.Add(time.Hour), time.Time{}, limit); s {
		t.Fatal("stalled with no pass in flight")
	}
	obs := healthObserver{h}
	obs.PassStarted(reconcile.Run{ID: "r1"})
	if _, _, _, s := h.stalled(t0.Add(limit), time.Time{}, limit); s {
		t.Error("stalled at exactly the limit")
	}
	// Items done keep a long pass alive.
	clock = t0.Add(limit - time.Minute)
	obs.ChangeApplied(reconcile.KindAddMember, "ok")
	if _, _, _, s := h.stalled(t0.Add(limit+time.Minute), time.Time{}, limit); s {
		t.Error("stalled although an item landed within the limit")
	}
	// So do outbound requests (a long source read reports nothing else).
	late := t0.Add(3 * limit)
	if _, _, _, s := h.stalled(late, late.Add(-time.Minute), limit); s {
		t.Error("stalled although an API request finished a minute ago")
	}
	id, started, last, s := h.stalled(late, t0.Add(time.Minute), limit)
	if !s || id != "r1" || !started.Equal(t0) || !last.Equal(t0.Add(limit-time.Minute)) {
		t.Errorf("stalled=%v id=%q started=%v last=%v, want r1 stalled since its last item", s, id, started, last)
	}
	// A finished pass (even a targeted one) clears it.
	obs.PassFinished(reconcile.Run{ID: "r1", Target: "users a"})
	if _, _, _, s := h.stalled(late, time.Time{}, limit); s {
		t.Error("still stalled after the pass finished")
	}
}

// TestReadyzReportsAStalledPass: the handler turns 503 and names the run when the pass in
// flight has gone quiet for longer than the stall limit, and is ready again once it ends.
func TestReadyzReportsAStalledPass(t *testing.T) {
	st, err := state.Open(filepath.Join(t.TempDir(), "s.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sched := newScheduler(ctx, zerolog.Nop(), func(context.Context) {}, func() {})
	if err := sched.set("@every 1m", 0); err != nil {
		t.Fatal(err)
	}
	defer sched.stop()
	clock := time.Now().Add(-time.Hour)
	h := newHealth()
	h.now = func() time.Time { return clock }
	d := &Daemon{log: zerolog.Nop(), health: h, sched: sched, app: &app.App{Store: st}}
	get := func() (int, map[string]any) {
		w := httptest.NewRecorder()
		d.readyz(w, httptest.NewRequest("GET", "/readyz", nil))
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("readyz body %q: %v", w.Body, err)
		}
		return w.Code, body
	}
	healthObserver{h}.PassStarted(reconcile.Run{ID: "run-stuck"})
	code, body := get()
	if code != http.StatusServiceUnavailable || body["stalledRun"] != "run-stuck" ||
		!strings.Contains(body["reason"].(string), "no progress") {
		t.Fatalf("a pass silent for an hour: %d %v, want 503 naming run-stuck", code, body)
	}
	clock = time.Now()
	healthObserver{h}.Progress(1, 10)
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("a pass that just made progress: %d %v, want 200", code, body)
	}
	clock = time.Now().Add(-time.Hour)
	healthObserver{h}.PassStarted(reconcile.Run{ID: "run-2"})
	healthObserver{h}.PassFinished(reconcile.Run{ID: "run-2", Result: reconcile.ResultOK})
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("after the pass finished: %d %v, want 200", code, body)
	}
}
