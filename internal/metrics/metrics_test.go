package metrics

import (
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/version"
)

func TestSumReadsTheExposition(t *testing.T) {
	m := New()
	m.Pass("schedule", "ok", time.Second, time.Now())
	m.Pass("schedule", "ok", time.Second, time.Now())
	m.Pass("signal", "failed", time.Second, time.Now())
	m.SourceRead("corp", false, 0, 0)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	if v, ok := Sum(text, "idsync_passes_total", nil); !ok || v != 3 {
		t.Errorf("all passes = %v, %v; want 3", v, ok)
	}
	if v, ok := Sum(text, "idsync_passes_total", map[string]string{"trigger": "schedule", "result": "ok"}); !ok || v != 2 {
		t.Errorf("scheduled ok passes = %v, %v; want 2", v, ok)
	}
	if _, ok := Sum(text, "idsync_passes_total", map[string]string{"trigger": "api"}); ok {
		t.Error("no api pass was counted, yet a sample matched")
	}
	if v, ok := Sum(text, "idsync_source_read_complete", map[string]string{"source": "corp"}); !ok || v != 0 {
		t.Errorf("source complete = %v, %v; want a 0 sample", v, ok)
	}
	if _, ok := Sum("not { metrics", "idsync_passes_total", nil); ok {
		t.Error("garbage parsed")
	}
}

func TestLastOutbound(t *testing.T) {
	var none *Metrics
	if !none.LastOutbound().IsZero() {
		t.Error("a nil Metrics reports an outbound request")
	}
	m := New()
	if !m.LastOutbound().IsZero() {
		t.Error("a fresh Metrics reports an outbound request")
	}
	before := time.Now()
	m.APIRequest("jira", "/rest/api/3/myself", "GET", 0, time.Millisecond) // a failed request is a sign of life too
	if got := m.LastOutbound(); got.Before(before) || got.After(time.Now()) {
		t.Errorf("LastOutbound = %v, want between %v and now", got, before)
	}
}

func TestBuildInfo(t *testing.T) {
	rec := httptest.NewRecorder()
	New().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	b := version.Get()
	labels := map[string]string{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion}
	if v, ok := Sum(string(body), "idsync_build_info", labels); !ok || v != 1 {
		t.Errorf("idsync_build_info%v = %v, %v; want a sample of 1 in\n%s", labels, v, ok, body)
	}
	if b.Version == "" || b.Revision == "" || b.GoVersion == "" {
		t.Errorf("build identity has an empty part: %+v", b)
	}
}
