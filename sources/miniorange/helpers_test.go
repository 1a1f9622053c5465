package miniorange

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// smallOrg is big enough for several pages at a small batch cap.
func smallOrg() *miniorangetest.Org {
	o := miniorangetest.GenerateOrg(miniorangetest.OrgSpec{
		Users: 50, Groups: 12, MembershipsPerUser: 2, DisabledCount: 3, CustomAttributes: true, Seed: 7,
	})
	return &o
}

func testConfig(url string) configs.MiniOrangeConfig {
	return configs.MiniOrangeConfig{
		BaseURL:     url,
		CustomerKey: miniorangetest.DefaultCustomerKey,
		APIKey:      configs.Secret(miniorangetest.DefaultAPIKey),
		PageSize:    25,
	}
}

// fastOptions keep retries from waiting real seconds.
func fastOptions() Options {
	return Options{
		Metrics:       metrics.New(),
		RetryWaitMin:  time.Millisecond,
		RetryWaitMax:  2 * time.Millisecond,
		MaxRetryAfter: time.Millisecond,
	}
}

func newSource(t *testing.T, url string, edit func(*configs.MiniOrangeConfig, *Options)) *Source {
	t.Helper()
	cfg, opts := testConfig(url), fastOptions()
	if edit != nil {
		edit(&cfg, &opts)
	}
	s, err := New("corp", cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startSim starts a simulator with a small org and a batch cap of 10.
func startSim(t *testing.T, edit func(*miniorangetest.Options)) *miniorangetest.Server {
	t.Helper()
	opts := miniorangetest.Options{Org: smallOrg(), BatchCap: 10}
	if edit != nil {
		edit(&opts)
	}
	return miniorangetest.NewServer(t, opts)
}

// rewrite serves h but lets fn edit the JSON answers of one path.
func rewrite(h http.Handler, path string, fn func(map[string]any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		fn(body)
		b, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(b)
	})
}

// serve starts h on a loopback test server.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// inflight tracks the most requests h served at once.
type inflight struct {
	h        http.Handler
	cur, max atomic.Int64
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.cur.Add(1)
	for {
		m := f.max.Load()
		if n <= m || f.max.CompareAndSwap(m, n) {
			break
		}
	}
	defer f.cur.Add(-1)
	f.h.ServeHTTP(w, r)
}

// recorder keeps the requests a handler saw.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	h    http.Handler
}

type recorded struct {
	path   string
	header http.Header
	body   []byte
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recorded{path: r.URL.Path, header: r.Header.Clone(), body: buf.Bytes()})
	rc.mu.Unlock()
	r.Body = readCloser{bytes.NewReader(buf.Bytes())}
	rc.h.ServeHTTP(w, r)
}

func newTestLogger(w io.Writer) zerolog.Logger {
	return zerolog.New(zerolog.SyncWriter(w)).Level(zerolog.DebugLevel)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
