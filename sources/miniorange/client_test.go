package miniorange

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

func TestSignatureKnownVectors(t *testing.T) {
	// Written out from `printf '%s' "2433211700000000000abcDEF123" | sha512sum`.
	const literal = "67885da5b0e05a2e03718931bb55a1264a53872258effad34be6fe142a619813" +
		"ecbdeb75c535c526b0642990a102ea982a7c788b90bf4999fdfcd5e926a5c381"
	if got := Signature("243321", "1700000000000", "abcDEF123"); got != literal {
		t.Errorf("Signature = %s, want %s", got, literal)
	}
	// Computed independently here: SHA-512 over the concatenation, lowercase hex.
	sum := sha512.Sum512([]byte("100001" + "1712345678901" + "sim-mo-api-key"))
	want := hex.EncodeToString(sum[:])
	if got := Signature("100001", "1712345678901", "sim-mo-api-key"); got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
	if got := Signature("1", "2", "3"); got != strings.ToLower(got) || len(got) != 128 {
		t.Errorf("Signature %q is not 128 lowercase hex digits", got)
	}
}

func TestEveryCallIsSigned(t *testing.T) {
	fixed := time.UnixMilli(1712345678901)
	sim2 := miniorangetest.New(miniorangetest.Options{Org: smallOrg(), Now: func() time.Time { return fixed }})
	for _, sendKey := range []bool{false, true} {
		t.Run("send_api_key_header="+strconv.FormatBool(sendKey), func(t *testing.T) {
			rec := &recorder{h: sim2.Handler()}
			url := serve(t, rec)
			src := newSource(t, url, func(c *configs.MiniOrangeConfig, o *Options) {
				c.SendAPIKeyHeader = sendKey
				o.Now = func() time.Time { return fixed }
			})
			if _, err := src.Snapshot(context.Background()); err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if _, err := src.User(context.Background(), sim2.Users()[0].UserName); err != nil {
				t.Fatalf("User: %v", err)
			}
			if len(rec.reqs) < 4 {
				t.Fatalf("only %d requests recorded", len(rec.reqs))
			}
			wantAuth := hex.EncodeToString(func() []byte { s := sha512.Sum512([]byte("100001" + "1712345678901" + "sim-mo-api-key")); return s[:] }())
			for _, r := range rec.reqs {
				if got := r.header.Get("Customer-Key"); got != "100001" {
					t.Errorf("%s: Customer-Key = %q", r.path, got)
				}
				if got := r.header.Get("Timestamp"); got != "1712345678901" {
					t.Errorf("%s: Timestamp = %q", r.path, got)
				}
				if got := r.header.Get("Authorization"); got != wantAuth {
					t.Errorf("%s: Authorization = %q, want %q", r.path, got, wantAuth)
				}
				if got, want := r.header.Get("Api-Key") != "", sendKey; got != want {
					t.Errorf("%s: Api-Key header sent = %v, want %v", r.path, got, want)
				}
				if got := r.header.Get("Content-Type"); got != "application/json" {
					t.Errorf("%s: Content-Type = %q", r.path, got)
				}
				var body map[string]any
				if err := json.Unmarshal(r.body, &body); err != nil || body["customerKey"] != "100001" {
					t.Errorf("%s: body %s does not repeat customerKey", r.path, r.body)
				}
			}
		})
	}
}

func TestClockSkewRecovery(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*miniorangetest.Server, *Options)
		want  time.Duration
	}{
		{"server ahead 10m", func(s *miniorangetest.Server, _ *Options) { s.SetClockSkew(10 * time.Minute) }, 10 * time.Minute},
		{"server behind 10m", func(s *miniorangetest.Server, _ *Options) { s.SetClockSkew(-10 * time.Minute) }, -10 * time.Minute},
		{"local clock slow 10m", func(_ *miniorangetest.Server, o *Options) {
			o.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
		}, 10 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, nil)
			var opts Options
			tc.setup(srv, &opts)
			src := newSource(t, srv.URL, func(_ *configs.MiniOrangeConfig, o *Options) { o.Now = opts.Now })
			userName := srv.Users()[3].UserName

			if _, err := src.User(context.Background(), userName); err != nil {
				t.Fatalf("first call: %v", err)
			}
			calls := srv.Calls()
			if calls[miniorangetest.PathUserGet] != 2 || calls[miniorangetest.PathTimestamp] != 1 {
				t.Fatalf("first call: want a rejected call, a timestamp fetch and a retry; calls = %v", calls)
			}
			if d := src.ClockOffset() - tc.want; d > 5*time.Second || d < -5*time.Second {
				t.Errorf("ClockOffset = %v, want about %v", src.ClockOffset(), tc.want)
			}
			srv.Reset()
			if _, err := src.Snapshot(context.Background()); err != nil {
				t.Fatalf("later Snapshot: %v", err)
			}
			if _, err := src.User(context.Background(), userName); err != nil {
				t.Fatalf("later User: %v", err)
			}
			calls = srv.Calls()
			if calls[miniorangetest.PathTimestamp] != 0 {
				t.Errorf("later calls fetched the timestamp again: %v", calls)
			}
			if calls[miniorangetest.PathUserGet] != 1 {
				t.Errorf("later User took %d calls, want 1 (offset kept)", calls[miniorangetest.PathUserGet])
			}
		})
	}
}

func TestClockSkewRecoveryUnderConcurrency(t *testing.T) {
	srv := startSim(t, nil)
	srv.SetClockSkew(10 * time.Minute)
	src := newSource(t, srv.URL, func(_ *configs.MiniOrangeConfig, o *Options) { o.Concurrency = 8 })
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatalf("Snapshot with a skewed server: %v", err)
	}
	if n := srv.Calls()[miniorangetest.PathTimestamp]; n != 1 && n != 2 {
		t.Errorf("timestamp fetched %d times; parallel rejections should share one correction", n)
	}
}

func TestAuthFailures(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(*configs.MiniOrangeConfig)
		sim  func(*miniorangetest.Options)
	}{
		{"wrong API key", func(c *configs.MiniOrangeConfig) { c.APIKey = "not-the-key-0123456789" }, nil},
		{"wrong customer key", func(c *configs.MiniOrangeConfig) { c.CustomerKey = "999999" }, nil},
		{"wrong API key, errors as HTTP 200", func(c *configs.MiniOrangeConfig) { c.APIKey = "not-the-key-0123456789" },
			func(o *miniorangetest.Options) { o.ErrorsAsOK = true }},
		{"missing Api-Key header the tenant requires", nil, func(o *miniorangetest.Options) { o.RequireAPIKeyHeader = true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, tc.sim)
			src := newSource(t, srv.URL, func(c *configs.MiniOrangeConfig, _ *Options) {
				if tc.cfg != nil {
					tc.cfg(c)
				}
			})
			_, err := src.User(context.Background(), srv.Users()[0].UserName)
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("User error = %v, want ErrAuth", err)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || !strings.Contains(apiErr.Message, "Authentication failed") {
				t.Errorf("error %v does not carry the server's message", err)
			}
			if strings.Contains(err.Error(), "not-the-key") || strings.Contains(err.Error(), miniorangetest.DefaultAPIKey) {
				t.Errorf("error leaks the API key: %v", err)
			}
			calls := srv.Calls()
			if calls[miniorangetest.PathUserGet] != 2 || calls[miniorangetest.PathTimestamp] != 1 {
				t.Errorf("want exactly one clock correction and one retry, calls = %v", calls)
			}
			_, err = src.Snapshot(context.Background())
			if !errors.Is(err, ErrAuth) || !errors.Is(err, ErrIncomplete) {
				t.Errorf("Snapshot error = %v, want ErrAuth and ErrIncomplete", err)
			}
		})
	}
}

func TestAPIKeyNeverInErrorsOrLogs(t *testing.T) {
	srv := startSim(t, nil)
	const key = miniorangetest.DefaultAPIKey
	// A server that echoes the key back in its message.
	h := rewrite(srv.Handler(), miniorangetest.PathUsersList, func(b map[string]any) {
		b["status"] = "ERROR"
		b["message"] = "bad request for key " + key
	})
	var logs strings.Builder
	src := newSource(t, serve(t, h), func(_ *configs.MiniOrangeConfig, o *Options) {
		o.Logger = newTestLogger(&logs)
	})
	_, err := src.Snapshot(context.Background())
	if err == nil || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Snapshot error = %v, want incomplete", err)
	}
	if strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error does not scrub the key: %v", err)
	}
	if strings.Contains(logs.String(), key) {
		t.Errorf("logs contain the key: %s", logs.String())
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	cases := []struct {
		name  string
		fault miniorangetest.Fault
	}{
		{"connection reset", miniorangetest.Fault{Kind: miniorangetest.FaultReset, Endpoint: miniorangetest.PathUsersList, Page: 2, Times: 2}},
		{"truncated body", miniorangetest.Fault{Kind: miniorangetest.FaultTruncate, Endpoint: miniorangetest.PathGroupMembers, Page: 0, Times: 3}},
		{"503", miniorangetest.Fault{Kind: miniorangetest.FaultStatus, Status: 503, Endpoint: miniorangetest.PathGroupsList, Page: 0, Times: 2}},
		{"500", miniorangetest.Fault{Kind: miniorangetest.FaultStatus, Status: 500, Endpoint: miniorangetest.PathUsersList, Page: 4, Times: 1}},
	}
	clean := func() int {
		srv := startSim(t, nil)
		dir, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
		if err != nil {
			t.Fatalf("clean Snapshot: %v", err)
		}
		return len(dir.Users)
	}()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, nil)
			srv.AddFault(tc.fault)
			dir, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if len(dir.Users) != clean {
				t.Errorf("got %d users, want %d", len(dir.Users), clean)
			}
		})
	}
	t.Run("random 5xx", func(t *testing.T) {
		srv := startSim(t, func(o *miniorangetest.Options) { o.Seed = 3 })
		srv.SetErrorRate(0.2, 0)
		src := newSource(t, srv.URL, func(_ *configs.MiniOrangeConfig, o *Options) { o.RetryMax = 8 })
		dir, err := src.Snapshot(context.Background())
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		if len(dir.Users) != clean {
			t.Errorf("got %d users, want %d", len(dir.Users), clean)
		}
	})
}

func TestRateLimitedServerIsRespected(t *testing.T) {
	srv := startSim(t, nil)
	srv.SetRateLimit(100, 2)
	opts := fastOptions()
	src := newSource(t, srv.URL, func(_ *configs.MiniOrangeConfig, o *Options) {
		o.RetryMax = 30
		o.Metrics = opts.Metrics
		// The simulator asks for Retry-After: 1; capping it keeps the test fast while still
		// spacing retries (TestBackoffHonoursRetryAfter pins the uncapped value).
		o.MaxRetryAfter = 25 * time.Millisecond
	})
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if srv.Throttled() == 0 {
		t.Fatal("the simulator throttled nothing; the test proves nothing")
	}
	if got := metrics.Value(opts.Metrics.Throttled.WithLabelValues("miniorange")); got != float64(srv.Throttled()) {
		t.Errorf("throttled metric = %v, simulator answered %d 429s", got, srv.Throttled())
	}
}

func TestClientTokenBucket(t *testing.T) {
	srv := startSim(t, nil)
	opts := fastOptions()
	src := newSource(t, srv.URL, func(c *configs.MiniOrangeConfig, o *Options) {
		c.RateLimit = configs.RateLimit{RequestsPerSecond: 400, Burst: 1}
		o.Metrics = opts.Metrics
	})
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if got := metrics.Value(opts.Metrics.RateLimitWait.WithLabelValues("miniorange")); got <= 0 {
		t.Errorf("no rate-limit wait recorded with a 400/s bucket of burst 1 over %d calls", srv.TotalCalls())
	}
}

func TestRequestMetrics(t *testing.T) {
	srv := startSim(t, nil)
	m := metrics.New()
	src := newSource(t, srv.URL, func(_ *configs.MiniOrangeConfig, o *Options) { o.Metrics = m })
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	for path, n := range srv.Calls() {
		got := metrics.Value(m.APIRequests.WithLabelValues("miniorange", path, "POST", "200"))
		if got != float64(n) {
			t.Errorf("idsync_api_requests_total{endpoint=%q} = %v, simulator served %d", path, got, n)
		}
	}
	srv.AddFault(miniorangetest.Fault{Kind: miniorangetest.FaultStatus, Status: 502, Endpoint: miniorangetest.PathUsersList, Page: 1, Times: 1})
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := metrics.Value(m.APIRequests.WithLabelValues("miniorange", miniorangetest.PathUsersList, "POST", "502")); got != 1 {
		t.Errorf("the retried 502 was counted %v times, want 1", got)
	}
}

func TestParseServerTime(t *testing.T) {
	for in, want := range map[string]int64{
		"1712345678901":                  1712345678901,
		" 1712345678901\n":               1712345678901,
		`"1712345678901"`:                1712345678901,
		"1.712345678901e12":              1712345678901,
		`{"timestamp": 1712345678901}`:   1712345678901,
		`{"serverTime":"1712345678901"}`: 1712345678901,
	} {
		got, err := parseServerTime([]byte(in))
		if err != nil || got != want {
			t.Errorf("parseServerTime(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "<html>", "-5", `{"status":"ERROR"}`} {
		if _, err := parseServerTime([]byte(bad)); err == nil {
			t.Errorf("parseServerTime(%q) succeeded", bad)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	good := testConfig("https://login.xecurify.com")
	cases := map[string]func(*configs.MiniOrangeConfig){
		"bad url":           func(c *configs.MiniOrangeConfig) { c.BaseURL = "login.xecurify.com" },
		"no customer key":   func(c *configs.MiniOrangeConfig) { c.CustomerKey = " " },
		"no api key":        func(c *configs.MiniOrangeConfig) { c.APIKey = "" },
		"relative endpoint": func(c *configs.MiniOrangeConfig) { c.Endpoints.UsersList = "moas/users" },
	}
	for name, edit := range cases {
		cfg := good
		edit(&cfg)
		if _, err := New("corp", cfg, Options{}); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
	s, err := New("corp", good, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer func() { _ = s.Close() }()
	if s.ep != DefaultEndpoints || s.pageSize != 25 || s.concurrency != DefaultConcurrency {
		t.Errorf("defaults not applied: %+v page %d conc %d", s.ep, s.pageSize, s.concurrency)
	}
	if strings.Contains(strings.ToLower(strings.Join([]string{s.cfg.APIKey.String()}, "")), "sim-mo") {
		t.Error("config secret prints")
	}
}

func TestRetriesAreSignedAfresh(t *testing.T) {
	srv := startSim(t, func(o *miniorangetest.Options) { o.TimestampWindow = time.Hour })
	srv.AddFault(miniorangetest.Fault{Kind: miniorangetest.FaultStatus, Status: 503, Endpoint: miniorangetest.PathGroupsList, Page: 0, Times: 2})
	rec := &recorder{h: srv.Handler()}
	var mu sync.Mutex
	clock := time.Now()
	src := newSource(t, serve(t, rec), func(_ *configs.MiniOrangeConfig, o *Options) {
		o.Now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(time.Second)
			return clock
		}
	})
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	var stamps []string
	for _, r := range rec.reqs {
		if r.path == miniorangetest.PathGroupsList && strings.Contains(string(r.body), `"startIndex":0`) {
			stamps = append(stamps, r.header.Get("Timestamp"))
			if want := Signature("100001", r.header.Get("Timestamp"), "sim-mo-api-key"); r.header.Get("Authorization") != want {
				t.Errorf("attempt with Timestamp %s carries a stale signature", r.header.Get("Timestamp"))
			}
		}
	}
	if len(stamps) != 3 || stamps[0] == stamps[1] || stamps[1] == stamps[2] {
		t.Errorf("groups page 0 attempts carried timestamps %v; want 3 distinct", stamps)
	}
}

func TestQueuedRequestsAreSignedWhenSent(t *testing.T) {
	org := miniorangetest.GenerateOrg(miniorangetest.OrgSpec{Users: 200, Groups: 1, Seed: 3})
	srv := startSim(t, func(o *miniorangetest.Options) { o.Org = &org })
	srv.SetLatency(20*time.Millisecond, 0)
	// 19 user pages queue at once behind one slot and take ~0.4s to drain: a signature made
	// when a request was queued would be older than the window by the time it is sent.
	srv.SetTimestampWindow(200 * time.Millisecond)
	src := newSource(t, srv.URL, func(_ *configs.MiniOrangeConfig, o *Options) { o.Concurrency = 1 })
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if n := srv.Calls()[miniorangetest.PathTimestamp]; n != 0 {
		t.Errorf("%d clock corrections: queued requests carried stale timestamps", n)
	}
}
