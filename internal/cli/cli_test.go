package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idsync/idsync/reconcile"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

func TestExitCode(t *testing.T) {
	complete := []reconcile.SourceRun{{Name: "corp", Complete: true}}
	for _, c := range []struct {
		name string
		run  reconcile.Run
		want int
	}{
		{"all applied", reconcile.Run{Result: reconcile.ResultOK, Sources: complete,
			Counts: map[reconcile.Kind]map[string]int{reconcile.KindCreateUser: {"ok": 3, "unsupported": 1}}}, ExitOK},
		{"nothing to do", reconcile.Run{Result: reconcile.ResultOK, Sources: complete}, ExitOK},
		{"an item failed", reconcile.Run{Result: reconcile.ResultPartial, Sources: complete,
			Counts: map[reconcile.Kind]map[string]int{reconcile.KindCreateUser: {"ok": 3, "failed": 1}}}, ExitPartial},
		{"an item skipped", reconcile.Run{Result: reconcile.ResultPartial, Sources: complete,
			Counts: map[reconcile.Kind]map[string]int{reconcile.KindAddMember: {"skipped": 1}}}, ExitPartial},
		{"stopped by an interrupt", reconcile.Run{Result: reconcile.ResultPartial, Sources: complete}, ExitPartial},
		{"source unreadable", reconcile.Run{Result: reconcile.ResultPartial,
			Sources: []reconcile.SourceRun{{Name: "corp", Complete: false, Error: "connection refused"}}}, ExitConfig},
		{"could not plan", reconcile.Run{Result: reconcile.ResultFailed}, ExitConfig},
		{"held", reconcile.Run{Result: reconcile.ResultHeld, Held: 4, Sources: complete}, ExitHeld},
		{"held wins over failed items", reconcile.Run{Result: reconcile.ResultHeld, Sources: complete,
			Counts: map[reconcile.Kind]map[string]int{reconcile.KindCreateUser: {"failed": 1}}}, ExitHeld},
	} {
		if got := ExitCode(c.run); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}

func TestNoneFound(t *testing.T) {
	empty := []reconcile.SourceRun{{Name: "corp", Complete: true}}
	if !NoneFound(reconcile.Run{Target: "users x", Sources: empty}) {
		t.Error("an empty targeted read is not reported")
	}
	if NoneFound(reconcile.Run{Sources: empty}) {
		t.Error("a full pass is reported")
	}
	if NoneFound(reconcile.Run{Target: "users x", Sources: []reconcile.SourceRun{{Complete: false}}}) {
		t.Error("a failed read is reported as not found")
	}
	if NoneFound(reconcile.Run{Target: "users x", Sources: []reconcile.SourceRun{{Complete: true, Users: 1}}}) {
		t.Error("a found user is reported")
	}
}

func TestSummary(t *testing.T) {
	var b bytes.Buffer
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	errs := make([]string, 12)
	for i := range errs {
		errs[i] = "boom"
	}
	Summary(&b, reconcile.Run{ID: "r1", Result: reconcile.ResultHeld, Started: start, Finished: start.Add(1500 * time.Millisecond),
		Held: 7, DryRun: true, Target: "users a",
		Sources: []reconcile.SourceRun{{Name: "corp", Complete: false, Error: "timeout", Users: 3}},
		Counts: map[reconcile.Kind]map[string]int{
			reconcile.KindDeactivateUser: {"held": 7},
			reconcile.KindCreateUser:     {"ok": 2, "failed": 1, "weird": 1},
		},
		Errors: errs})
	out := b.String()
	for _, want := range []string{"run r1 (dry run): held in 1.5s [users a]", "INCOMPLETE: timeout",
		"2 ok, 1 failed, 1 weird", "7 held", "idsync approve -c FILE r1", "... 2 more errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "create_user") > strings.Index(out, "deactivate_user") {
		t.Errorf("kinds not in apply order:\n%s", out)
	}
}

func TestAdminClient(t *testing.T) {
	const token = "secret-admin-token-123456"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":"unauthorized"}`))
			return
		}
		switch r.URL.Path {
		case "/api/v1/status":
			_, _ = w.Write([]byte(`{"version":"v1"}`))
		case "/api/v1/held/r9/approve":
			w.WriteHeader(409)
			_, _ = w.Write([]byte(`{"error":"not approved","detail":"the latest is r10"}`))
		default:
			w.WriteHeader(502)
			_, _ = w.Write([]byte(`<html>bad gateway</html>`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := AdminClient{Base: srv.URL + "/", Token: token, HTTP: srv.Client()}
	var st struct{ Version string }
	if code, err := c.Do(ctx, "GET", "/api/v1/status", &st); err != nil || code != 200 || st.Version != "v1" {
		t.Fatalf("status: %d %v %+v", code, err, st)
	}
	if _, err := c.Do(ctx, "POST", "/api/v1/held/r9/approve", nil); err == nil || !strings.Contains(err.Error(), "409 not approved: the latest is r10") {
		t.Errorf("approve error: %v", err)
	}
	if _, err := c.Do(ctx, "GET", "/other", nil); err == nil || !strings.Contains(err.Error(), "502 Bad Gateway") {
		t.Errorf("non-JSON error: %v", err)
	}
	bad := AdminClient{Base: srv.URL, Token: "wrong", HTTP: srv.Client()}
	_, err := bad.Do(ctx, "GET", "/api/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("401: %v", err)
	}
	for _, base := range []string{"127.0.0.1:8080", "ftp://x", "://"} {
		if _, err := (AdminClient{Base: base, Token: token}).Do(ctx, "GET", "/api/v1/status", nil); err == nil || strings.Contains(err.Error(), token) {
			t.Errorf("base %q: %v", base, err)
		}
	}
	srv.Client().CloseIdleConnections()
}

func TestLoadConfigAndFormat(t *testing.T) {
	if _, err := LoadConfig("", nil); err == nil || !strings.Contains(err.Error(), "-c FILE") {
		t.Errorf("no path: %v", err)
	}
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("listen: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p, nil); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("bad file: %v", err)
	}
	for f, ok := range map[string]bool{"table": true, "json": true, "yaml": false, "": false} {
		if (CheckFormat(f) == nil) != ok {
			t.Errorf("CheckFormat(%q)", f)
		}
	}
}

func TestProgressOffTerminal(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b)
	if p != nil || p.Observer() != nil {
		t.Fatal("a progress bar on a non-terminal")
	}
	// A bar that exists draws and clears on the writer it was given.
	bar := &Progress{w: &b}
	bar.Progress(0, 0)
	bar.Progress(5, 10)
	bar.Progress(10, 10)
	bar.PassFinished(reconcile.Run{})
	if b.Len() == 0 {
		t.Error("the bar drew nothing")
	}
}

func TestCollapseIntents(t *testing.T) {
	recs := []reconcile.AuditRecord{
		{Intent: "a", Result: reconcile.ItemStarted, Action: "create_user"},
		{Intent: "a", Result: "ok", Action: "create_user"},
		{Intent: "b", Result: reconcile.ItemStarted, Action: "add_member"}, // died mid-change
		{Result: "approved", Action: "approve"},
	}
	got := CollapseIntents(recs)
	if len(got) != 3 || got[0].Result != "ok" || got[1].Intent != "b" || got[2].Action != "approve" {
		t.Fatalf("CollapseIntents = %+v", got)
	}
	if len(recs) != 4 || recs[0].Result != reconcile.ItemStarted {
		t.Fatal("the input was modified")
	}
}
