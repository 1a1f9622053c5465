package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/state"
)

func TestInProcessStateBackup(t *testing.T) {
	p := startInProcess(t, "")
	code, body := p.call("POST", "/api/v1/reconcile?wait=true")
	var run reconcile.Run
	if code != http.StatusOK || json.Unmarshal(body, &run) != nil || run.ID == "" {
		t.Fatalf("reconcile?wait=true: %d %s", code, body)
	}

	resp, err := p.client.Get(p.base + "/api/v1/state/backup")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("backup without the admin token: %d, want 401", resp.StatusCode)
	}

	req, _ := http.NewRequest("GET", p.base+"/api/v1/state/backup", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err = p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %d %.300s", resp.StatusCode, data)
	}
	h := resp.Header
	if h.Get("Content-Type") != "application/octet-stream" || h.Get("Cache-Control") != "no-store" ||
		h.Get("Content-Length") != strconv.Itoa(len(data)) ||
		!regexp.MustCompile(`^attachment; filename="idsync-state-\d{8}T\d{6}Z\.db"$`).MatchString(h.Get("Content-Disposition")) {
		t.Errorf("backup headers: %v (%d bytes)", h, len(data))
	}

	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("the downloaded backup does not open: %v", err)
	}
	defer st.Close()
	if got, err := st.Run(run.ID); err != nil || got.Result != run.Result {
		t.Errorf("run %s in the backup: %+v, %v", run.ID, got, err)
	}
	if links, err := st.Links(); err != nil || len(links) == 0 {
		t.Errorf("links in the backup: %d, %v", len(links), err)
	}

	// Logged before the answer starts, so it is in the log by now if it happened.
	if logs := p.logs.String(); strings.Contains(logs, "keeps the server's write timeout") {
		t.Errorf("the write deadline was not extended:\n%s", logs)
	}

	// The spooled copy is gone from the state file's folder.
	_, body = p.call("GET", "/api/v1/status")
	var status Status
	if err := json.Unmarshal(body, &status); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(status.ConfigFile)) // the state file's folder too
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "idsync.yaml" && e.Name() != "state.db" {
			t.Errorf("left in the state folder: %s", e.Name())
		}
	}
}

func TestStateBackupWhileStateIsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, d := range map[string]*Daemon{
		"no state":      {app: &app.App{}, log: zerolog.Nop()},
		"shutting down": {app: &app.App{Store: st}, log: zerolog.Nop(), closing: true},
	} {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			d.apiStateBackup(w, httptest.NewRequest("GET", "/api/v1/state/backup", nil))
			var e apiError
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Content-Type") != "application/json" ||
				json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Errorf("%d %s %q, want a 503 JSON error", w.Code, w.Header().Get("Content-Type"), w.Body.String())
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the state folder holds %d files, want the state file alone", len(entries))
	}
}
