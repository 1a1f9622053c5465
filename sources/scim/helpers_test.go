package scim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/idsync/idsync/configs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memStore is an in-memory Store with a failure knob.
type memStore struct {
	mu      sync.Mutex
	data    map[string]Resource // source/type/id
	puts    int
	deletes int
	failPut func(Resource) error
}

func newMemStore() *memStore { return &memStore{data: map[string]Resource{}} }

func (m *memStore) PutSCIM(r Resource) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPut != nil {
		if err := m.failPut(r); err != nil {
			return err
		}
	}
	m.puts++
	r.Data = append([]byte(nil), r.Data...)
	m.data[r.Source+"/"+r.Type+"/"+r.ID] = r
	return nil
}

func (m *memStore) DeleteSCIM(source, typ, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deletes++
	delete(m.data, source+"/"+typ+"/"+id)
	return nil
}

func (m *memStore) SCIMResources(source, typ string) ([]Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Resource
	for _, r := range m.data {
		if r.Source == source && r.Type == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}

// records decodes every stored resource of a source and type.
func (m *memStore) records(t *testing.T, source, typ string) map[string]record {
	t.Helper()
	rs, _ := m.SCIMResources(source, typ)
	out := map[string]record{}
	for _, r := range rs {
		var rec record
		if err := unmarshalNumbers(r.Data, &rec); err != nil {
			t.Fatalf("stored %s %s: %v", typ, r.ID, err)
		}
		out[r.ID] = rec
	}
	return out
}

// fakeClock is a manual clock whose AfterFunc timers fire on Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// Advance moves the clock and runs, synchronously, every timer now due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.stopped && !t.fired && !t.at.After(c.now) {
			t.fired = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

// pending counts timers not yet fired or stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

type changeCall struct {
	Source        string
	Users, Groups []string
}

// fixture is a handler with two sources, a memStore and a fake clock.
type fixture struct {
	t     *testing.T
	h     *Handler
	store *memStore
	clock *fakeClock
	mu    sync.Mutex
	calls []changeCall
}

const (
	tokenA = "token-for-source-a"
	tokenB = "token-for-source-b"
)

func newFixture(t *testing.T, mutate ...func(*HandlerOptions)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: newMemStore(), clock: newFakeClock()}
	opts := HandlerOptions{
		Sources: []SourceOptions{
			{Name: "corp", Token: configs.Secret(tokenA)},
			{Name: "other", Token: configs.Secret(tokenB)},
		},
		Store:     f.store,
		Now:       f.clock.Now,
		AfterFunc: f.clock.AfterFunc,
		BaseURL:   "https://idsync.example.com",
		Logger:    zerolog.Nop(),
		OnChange: func(source string, users, groups []string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls = append(f.calls, changeCall{source, users, groups})
		},
	}
	for _, m := range mutate {
		m(&opts)
	}
	h, err := NewHandler(opts)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	f.h = h
	t.Cleanup(func() { _ = h.Close() })
	return f
}

func (f *fixture) changes() []changeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]changeCall(nil), f.calls...)
}

// resp is a recorded answer.
type resp struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r resp) str(path ...string) string {
	var v any = r.Body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// do sends one request; token "" sends none. Headers are "Name: value" strings.
func (f *fixture) do(method, path, token, body string, headers ...string) resp {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	out := resp{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		dec := json.NewDecoder(rec.Body)
		dec.UseNumber()
		if err := dec.Decode(&out.Body); err != nil {
			f.t.Fatalf("%s %s: answer is not a JSON object: %v: %q", method, path, err, out.Raw)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/scim+json" {
			f.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
		}
	}
	return out
}

// corp sends a request to source corp with its token.
func (f *fixture) corp(method, rest, body string, headers ...string) resp {
	f.t.Helper()
	return f.do(method, "/scim/v2/corp/"+rest, tokenA, body, headers...)
}

// mustCode fails unless the answer has the wanted status.
func mustCode(t *testing.T, r resp, want int) resp {
	t.Helper()
	if r.Code != want {
		t.Fatalf("status %d, want %d: %s", r.Code, want, r.Raw)
	}
	return r
}

// mustSCIMError checks a SCIM error body.
func mustSCIMError(t *testing.T, r resp, status int, scimType string) {
	t.Helper()
	mustCode(t, r, status)
	schemas, _ := r.Body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != schemaError {
		t.Fatalf("error schemas = %v: %s", r.Body["schemas"], r.Raw)
	}
	if r.str("status") != http.StatusText(status) && r.str("status") != itoa(status) {
		t.Fatalf("error status = %q, want %d", r.str("status"), status)
	}
	if r.str("scimType") != scimType {
		t.Fatalf("scimType = %q, want %q: %s", r.str("scimType"), scimType, r.Raw)
	}
	if r.str("detail") == "" {
		t.Fatalf("error without detail: %s", r.Raw)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// createUser posts a user and returns its id.
func (f *fixture) createUser(userName string, extra ...string) string {
	f.t.Helper()
	body := `{"schemas":["` + SchemaUser + `"],"userName":"` + userName + `","name":{"givenName":"G","familyName":"F"},` +
		`"emails":[{"value":"` + userName + `","type":"work","primary":true}],"active":true`
	for _, e := range extra {
		body += "," + e
	}
	body += "}"
	r := mustCode(f.t, f.corp("POST", "Users", body), http.StatusCreated)
	return r.str("id")
}

func (f *fixture) createGroup(name string, memberIDs ...string) string {
	f.t.Helper()
	var ms []string
	for _, id := range memberIDs {
		ms = append(ms, `{"value":"`+id+`"}`)
	}
	body := `{"schemas":["` + SchemaGroup + `"],"displayName":"` + name + `","members":[` + strings.Join(ms, ",") + `]}`
	r := mustCode(f.t, f.corp("POST", "Groups", body), http.StatusCreated)
	return r.str("id")
}

var errBoom = errors.New("disk on fire")
