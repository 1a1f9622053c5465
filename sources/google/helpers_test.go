package google

import (
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/sources/google/googletest"
)

// env is one simulator and a source reading it.
type env struct {
	sim *googletest.Server
	src *Source
	m   *metrics.Metrics
}

// fastRetry keeps retries quick: the simulator's faults are retried in milliseconds.
var fastRetry = Options{RetryMax: 4, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, MaxRetryAfter: 20 * time.Millisecond}

func newEnv(t *testing.T, o googletest.Options, edit func(*configs.GoogleConfig)) *env {
	t.Helper()
	return newEnvWith(t, o, edit, fastRetry)
}

func newEnvWith(t *testing.T, o googletest.Options, edit func(*configs.GoogleConfig), opts Options) *env {
	t.Helper()
	sim := googletest.NewServer(t, o)
	cfg := configs.GoogleConfig{
		Customer: "my_customer", AdminEmail: googletest.DefaultAdminEmail,
		CredentialsFile: sim.CredentialsFile(), BaseURL: sim.URL, PageSize: 500,
		GroupName: configs.GoogleGroupNameName,
	}
	if edit != nil {
		edit(&cfg)
	}
	m := metrics.New()
	opts.Metrics = m
	src, err := New("gws", cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return &env{sim: sim, src: src, m: m}
}
