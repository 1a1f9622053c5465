package simkit

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDelayEndsWithTheContext(t *testing.T) {
	k := NewKnobs(1, 2)
	if !k.Delay(context.Background()) {
		t.Fatal("Delay without latency reported a cancelled context")
	}
	k.SetLatency(time.Hour, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if k.Delay(ctx) {
		t.Fatal("Delay of an hour returned true for a cancelled context")
	}
}

func TestRandomErrorIsSeededAndCounted(t *testing.T) {
	draw := func() []int {
		k := NewKnobs(7, 9)
		k.SetErrorRate(0.5, 0)
		var out []int
		for range 40 {
			code, fail := k.RandomError()
			if fail != (code != 0) {
				t.Fatalf("RandomError = %d, %v", code, fail)
			}
			out = append(out, code)
		}
		if n := k.Injected(); n == 0 || n == 40 {
			t.Fatalf("Injected = %d of 40 at rate 0.5", n)
		}
		return out
	}
	a, b := draw(), draw()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs between two knobs of one seed: %d, %d", i, a[i], b[i])
		}
		if a[i] != 0 && a[i] != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503 by default", a[i])
		}
	}
	k := NewKnobs(7, 9)
	k.SetErrorRate(1, http.StatusBadGateway)
	if code, fail := k.RandomError(); !fail || code != http.StatusBadGateway {
		t.Fatalf("rate 1 with 502: %d, %v", code, fail)
	}
	k.SetErrorRate(0, 0)
	if _, fail := k.RandomError(); fail {
		t.Fatal("rate 0 failed a request")
	}
}

func TestCounters(t *testing.T) {
	k := NewKnobs(1, 1)
	k.Count("a")
	k.Count("a")
	k.Count("token")
	k.AddThrottled()
	k.AddInjected()
	if got := k.Calls(); got["a"] != 2 || got["token"] != 1 {
		t.Fatalf("Calls = %v", got)
	}
	if n := k.TotalCalls(); n != 3 {
		t.Fatalf("TotalCalls() = %d", n)
	}
	if n := k.TotalCalls("token"); n != 2 {
		t.Fatalf("TotalCalls(token) = %d", n)
	}
	k.Calls()["a"] = 99
	if k.Calls()["a"] != 2 {
		t.Fatal("Calls returned the knobs' own map")
	}
	k.ResetCounters()
	if k.TotalCalls()+k.Throttled()+k.Injected() != 0 {
		t.Fatal("ResetCounters kept counts")
	}
}

func TestRateLimit(t *testing.T) {
	k := NewKnobs(1, 1)
	if k.Limiter() != nil {
		t.Fatal("new knobs have a rate limit")
	}
	k.SetRateLimit(1, 0)
	lim := k.Limiter()
	if lim == nil || lim.Burst() != 1 || !lim.Allow() || lim.Allow() {
		t.Fatalf("SetRateLimit(1, 0): %+v", lim)
	}
	k.SetRateLimit(0, 5)
	if k.Limiter() != nil {
		t.Fatal("rps 0 kept the limit")
	}
}

func TestBrokenAnswers(t *testing.T) {
	body := []byte(`{"users":[1,2,3,4,5,6,7,8]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/reset":
			ResetConn(w)
		case "/truncate":
			Truncate(w, "application/json", body)
		default:
			WriteJSON(w, "application/json", http.StatusTeapot, map[string]int{"n": 1})
		}
	}))
	defer srv.Close()
	c := srv.Client()

	if _, err := c.Get(srv.URL + "/reset"); err == nil {
		t.Error("a reset connection answered")
	}
	resp, err := c.Get(srv.URL + "/truncate")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || resp.StatusCode != http.StatusOK || string(b) != string(body[:len(body)/2]) {
		t.Errorf("truncated answer: %d %q %v", resp.StatusCode, b, err)
	}
	resp, err = c.Get(srv.URL + "/json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(b) != `{"n":1}` || resp.Header.Get("Content-Length") != "7" {
		t.Errorf("WriteJSON: %d %q %v", resp.StatusCode, b, resp.Header)
	}

	rec := httptest.NewRecorder()
	if ResetConn(rec) || Truncate(rec, "application/json", body) {
		t.Error("a recorder cannot be taken over, yet ResetConn or Truncate said it was")
	}
}

func TestFaultListFiresInOrderUpToTimes(t *testing.T) {
	type fault struct {
		name string
		page int
	}
	var l FaultList[fault]
	twice := l.Add(fault{"twice", 1}, 2)
	l.Add(fault{"always", 1}, 0)
	unreached := l.Add(fault{"other page", 2}, 0)
	fire := func(page int) string {
		f, ok := l.Fire(func(f *fault) bool { return f.page == page })
		if !ok {
			return ""
		}
		return f.name
	}
	for i, want := range []string{"twice", "twice", "always", "always"} {
		if got := fire(1); got != want {
			t.Fatalf("firing %d on page 1 = %q, want %q", i, got, want)
		}
	}
	if n := twice(); n != 2 {
		t.Fatalf("the twice fault fired %d times", n)
	}
	if n := unreached(); n != 0 {
		t.Fatalf("a fault of an unread page fired %d times", n)
	}
	if got := fire(2); got != "other page" {
		t.Fatalf("page 2 = %q", got)
	}
	if got := fire(3); got != "" {
		t.Fatalf("page 3 = %q, want no fault", got)
	}
	l.Clear()
	if got := fire(1); got != "" {
		t.Fatalf("after Clear = %q", got)
	}
}
