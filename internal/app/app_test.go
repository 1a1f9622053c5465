package app

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/idsync/idsync/configs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(t *testing.T) *configs.Config {
	t.Helper()
	cfg := configs.Default()
	cfg.AdminToken = "admin-token-0123456789"
	cfg.State.Path = filepath.Join(t.TempDir(), "state.db")
	cfg.Sources = []configs.SourceConfig{{Name: "corp", Type: configs.SourceMiniOrange,
		MiniOrange: &configs.MiniOrangeConfig{BaseURL: "http://127.0.0.1:9", CustomerKey: "1", APIKey: "k"},
		Push:       &configs.PushConfig{Enabled: true, Token: "scim-token-0123456789"}}}
	cfg.Sink = configs.SinkConfig{Type: configs.SinkJira, Jira: &configs.JiraConfig{BaseURL: "http://127.0.0.1:9",
		Email: "admin@example.com", APIToken: "t", Products: []string{"jira-software"}}}
	cfg.ApplyDefaults()
	return cfg
}

func TestOpenWiresEverything(t *testing.T) {
	cfg := testConfig(t)
	a, err := Open(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if a.Store == nil || a.Sink == nil || a.Runner == nil || a.SCIM == nil || a.Metrics == nil {
		t.Fatalf("missing parts: %+v", a)
	}
	// A second process (here: a second Open) is refused with ErrStateLocked.
	if _, err := Open(cfg, Options{Logger: zerolog.Nop(), StateTimeout: 1}); !errors.Is(err, ErrStateLocked) {
		t.Errorf("second Open: %v, want ErrStateLocked", err)
	}
	a.SaveBudget() // nothing known yet: no write, no panic
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Closed means released.
	b, err := Open(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = b.Close()
}

func TestOpenFailureReleasesState(t *testing.T) {
	cfg := testConfig(t)
	cfg.Sources[0].Type = "ldap"
	if _, err := Open(cfg, Options{Logger: zerolog.Nop()}); err == nil {
		t.Fatal("an unsupported source type was wired")
	}
	cfg.Sources[0].Type = configs.SourceMiniOrange
	cfg.Sink.Type = "atlassianscim"
	if _, err := Open(cfg, Options{Logger: zerolog.Nop()}); err == nil {
		t.Fatal("an unsupported sink was wired")
	}
	// The failed Opens closed the state file again.
	cfg.Sink.Type = configs.SinkJira
	a, err := Open(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("Open after failed Opens: %v", err)
	}
	_ = a.Close()
	if _, err := Open(nil, Options{}); err == nil {
		t.Error("nil config accepted")
	}
}

func TestPushOnlySourceAndNoPush(t *testing.T) {
	cfg := testConfig(t)
	cfg.Sources = append(cfg.Sources, configs.SourceConfig{Name: "okta", Type: configs.SourceSCIM,
		Push: &configs.PushConfig{Enabled: true, Token: "okta-token-0123456789"}})
	a, err := Open(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	a.pushed("okta", []string{"a"}, nil) // queues a targeted pass; must not block
	if !a.Runner.Status().Pending {
		t.Error("a push did not request a pass")
	}
	_ = a.Close()

	cfg = testConfig(t)
	cfg.Sources[0].Push = nil
	a, err = Open(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if a.SCIM != nil {
		t.Error("a SCIM listener without any push source")
	}
	_ = a.Close()
}
