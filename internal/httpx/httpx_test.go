package httpx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
)

func TestBackoffHonoursRetryAfter(t *testing.T) {
	b := Backoff("t", nil, 2*time.Minute)
	resp := func(code int, ra string) *http.Response {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	if got := b(time.Millisecond, time.Second, 0, resp(429, "3")); got != 3*time.Second {
		t.Errorf("429 Retry-After 3: wait %v, want 3s", got)
	}
	if got := b(time.Millisecond, time.Second, 0, resp(503, "7")); got != 7*time.Second {
		t.Errorf("503 Retry-After 7: wait %v, want 7s", got)
	}
	if got := b(time.Millisecond, time.Second, 0, resp(429, "3600")); got != 2*time.Minute {
		t.Errorf("Retry-After 3600: wait %v, want the 2m cap", got)
	}
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	if got := b(time.Millisecond, time.Second, 0, resp(429, date)); got < 80*time.Second || got > 91*time.Second {
		t.Errorf("Retry-After as a date 90s ahead: wait %v", got)
	}
	for attempt := range 6 {
		got := b(100*time.Millisecond, time.Second, attempt, resp(500, ""))
		if got <= 0 || got > time.Second {
			t.Errorf("attempt %d: exponential wait %v outside (0, 1s]", attempt, got)
		}
	}
}

func TestRetryAfterRejectsGarbage(t *testing.T) {
	for _, v := range []string{"", "soon", "-5", "1.5"} {
		if d, ok := RetryAfter(v, time.Now()); ok {
			t.Errorf("RetryAfter(%q) = %v, want not ok", v, d)
		}
	}
}

func TestCheckRetryStopsOnListedErrors(t *testing.T) {
	check := CheckRetry(ErrTooLarge)
	if retry, _ := check(context.Background(), nil, errors.New("connection reset")); !retry {
		t.Error("a connection error must be retried")
	}
	if retry, _ := check(context.Background(), nil, ErrTooLarge); retry {
		t.Error("an oversized answer must not be retried")
	}
	if retry, _ := check(context.Background(), &http.Response{StatusCode: 400}, nil); retry {
		t.Error("a 400 must not be retried")
	}
	if retry, _ := check(context.Background(), &http.Response{StatusCode: 503}, nil); !retry {
		t.Error("a 503 must be retried")
	}
}

func TestReadBodyLimit(t *testing.T) {
	b, err := ReadBody(strings.NewReader("hello"), -1, 5)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadBody at the limit = %q, %v", b, err)
	}
	if _, err := ReadBody(strings.NewReader("hello!"), 6, 5); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: err = %v, want ErrTooLarge", err)
	}
}

func TestTransportPacesAndCounts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	defer srv.Close()
	m := metrics.New()
	tr := &Transport{Limiter: rate.NewLimiter(rate.Every(50*time.Millisecond), 1), Metrics: m, Target: "t",
		Endpoint: func(string) string { return "/x/{id}" }}
	c := &http.Client{Transport: tr}
	for range 3 {
		resp, err := c.Get(srv.URL + "/x/123")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := metrics.Value(m.APIRequests.WithLabelValues("t", "/x/{id}", "GET", "418")); got != 3 {
		t.Errorf("counted %v requests, want 3 under the bounded label", got)
	}
	if got := metrics.Value(m.RateLimitWait.WithLabelValues("t")); got < 0.05 {
		t.Errorf("rate-limit wait %vs, want about 0.1s for 3 requests at 20/s", got)
	}
}

func TestLimiterAndRetryDefaults(t *testing.T) {
	if Limiter(configs.RateLimit{}) != nil {
		t.Error("no requests_per_second must mean no limiter")
	}
	l := Limiter(configs.RateLimit{RequestsPerSecond: 2.5})
	if l == nil || l.Limit() != 2.5 || l.Burst() != 2 {
		t.Errorf("limiter = %v, want 2.5/s with a burst of 2", l)
	}
	if l := Limiter(configs.RateLimit{RequestsPerSecond: 10, Burst: 3}); l.Burst() != 3 {
		t.Errorf("burst = %d, want the configured 3", l.Burst())
	}
	r := Retry{WaitMax: time.Second}.WithDefaults()
	if r.Max != DefaultRetryMax || r.WaitMin != DefaultWaitMin || r.WaitMax != time.Second || r.MaxRetryAfter != DefaultMaxRetryAfter {
		t.Errorf("defaults = %+v", r)
	}
}

func TestRedact(t *testing.T) {
	got := Redact(`token "tok-1" then key-2, tok-1 again`, "tok-1", "", "key-2")
	if want := `token "[redacted]" then [redacted], [redacted] again`; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if got := Redact("nothing to hide", ""); got != "nothing to hide" {
		t.Errorf("an empty secret changed the text: %q", got)
	}
}

func TestCheckBaseURL(t *testing.T) {
	for _, ok := range []string{"https://login.xecurify.com", "http://127.0.0.1:18082/base"} {
		if err := CheckBaseURL("miniorange", "corp", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "login.xecurify.com", "ftp://x", "https://", "://x"} {
		if err := CheckBaseURL("miniorange", "corp", bad); err == nil || !strings.Contains(err.Error(), `miniorange source "corp": base_url`) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
