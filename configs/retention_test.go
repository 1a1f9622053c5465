package configs

import (
	"strings"
	"testing"
	"time"
)

func TestStateRetention(t *testing.T) {
	cfg := mustLoad(t, writeConfig(t, "", minimal), nil)
	if r := cfg.State.Retention; r.Runs != 90*24*time.Hour || r.Audit != 400*24*time.Hour {
		t.Errorf("default retention = %+v", r)
	}
	cfg = mustLoad(t, writeConfig(t, "", minimal+"state: {retention: {runs: 0, audit: 8760h}}\n"), nil)
	if r := cfg.State.Retention; r.Runs != 0 || r.Audit != 8760*time.Hour || cfg.State.Path != DefaultStatePath {
		t.Errorf("retention = %+v, path %q: 0 must keep all", r, cfg.State.Path)
	}
	_, err := LoadAndValidate(writeConfig(t, "", minimal+"state: {retention: {runs: -1h, audit: 90d}}\n"), nil)
	for _, want := range []string{"state.retention.runs: must not be negative", `state.retention.audit: want a duration`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
}
