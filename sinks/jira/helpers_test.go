package jira_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a sink wired to a simulator on a shared scaled clock: virtual seconds pass 100x
// faster, so Retry-After and backoff waits cost milliseconds.
type env struct {
	sim   *jiratest.Sim
	url   string
	sink  *jira.Sink
	clock *jiratest.ScaledClock
	cfg   configs.JiraConfig
}

type envOpt func(*configs.JiraConfig, *jiratest.Options)

// withScale replaces the default 100x clock. Rate-limit tests use 4x so that a one-second
// Retry-After (250 ms real) is well past the simulator's in-flight grace (100 ms real) and
// an early request is really counted.
func withScale(f float64) envOpt {
	return func(_ *configs.JiraConfig, o *jiratest.Options) { o.Clock = jiratest.NewScaledClock(f) }
}

func withAdmin(cfg *configs.JiraConfig, _ *jiratest.Options) {
	// Base URL filled in by newEnv once the server runs.
	cfg.AdminAPI = &configs.AdminAPIConfig{OrgAPIKey: jiratest.DefaultOrgAPIKey}
}

func withMethod(m string) envOpt {
	return func(cfg *configs.JiraConfig, _ *jiratest.Options) { cfg.Deactivate = m }
}

func withRate(rps float64, burst, conc int) envOpt {
	return func(cfg *configs.JiraConfig, _ *jiratest.Options) {
		cfg.RateLimit = configs.RateLimit{RequestsPerSecond: rps, Burst: burst, Concurrency: conc}
	}
}

func withSim(f func(*jiratest.Options)) envOpt {
	return func(_ *configs.JiraConfig, o *jiratest.Options) { f(o) }
}

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	clock := jiratest.NewScaledClock(100)
	so := jiratest.Options{Clock: clock, Seed: 1}
	cfg := configs.JiraConfig{
		Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
		Products: []string{"jira-software"}, Deactivate: configs.DeactivateRemoveAccess,
		RateLimit: configs.RateLimit{Concurrency: 4},
		Timeout:   10 * time.Second,
	}
	for _, o := range opts {
		o(&cfg, &so)
	}
	clock = so.Clock.(*jiratest.ScaledClock)
	sim, srv := jiratest.NewServer(t, so)
	cfg.BaseURL = srv.URL
	if cfg.AdminAPI != nil {
		cfg.AdminAPI.BaseURL = srv.URL
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	hc := &http.Client{Transport: tr}
	t.Cleanup(hc.CloseIdleConnections)
	s, err := jira.New(cfg, jira.Options{Logger: zerolog.Nop(), HTTPClient: hc, Version: "test", Clock: clock})
	if err != nil {
		t.Fatalf("jira.New: %v", err)
	}
	return &env{sim: sim, url: srv.URL, sink: s, clock: clock, cfg: cfg}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
