package scim

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/sources/scim/scimload"
	"github.com/idsync/idsync/state"
)

func TestLoadTestSmall(t *testing.T) {
	st := newMemStore()
	h, err := NewHandler(HandlerOptions{Store: st, Sources: []SourceOptions{{Name: "bench", Token: tokenA}}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	rep, err := scimload.LoadTest(t.Context(), srv.URL+"/scim/v2/bench", tokenA, 4, 60)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CreateRPS <= 0 || rep.FilterRPS <= 0 || rep.PatchRPS <= 0 || rep.CreateP99ms < rep.CreateP50ms || rep.Clients != 4 || rep.Requests != 60 {
		t.Fatalf("report = %+v", rep)
	}
	dir, err := NewSource("bench", h).Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	inGroups := 0
	for _, u := range dir.Users {
		inGroups += len(u.Groups)
	}
	if len(dir.Users) != 60 || len(dir.Groups) != 4 || inGroups != 60 {
		t.Fatalf("after load: %d users, %d groups, %d memberships", len(dir.Users), len(dir.Groups), inGroups)
	}
	// A wrong token fails the run with a clear error instead of reporting numbers.
	if _, err := scimload.LoadTest(t.Context(), srv.URL+"/scim/v2/bench", "wrong", 2, 4); err == nil {
		t.Fatal("LoadTest with a wrong token succeeded")
	}
}

// BenchmarkSCIMLoad measures the listener on loopback with the real bbolt store: 16
// clients doing durable creates, filtered reads and group-member PATCHes. Requests per
// phase: IDSYNC_SCIM_LOAD_N (default 3000).
//
//	go test -run '^$' -bench SCIMLoad -benchtime 1x ./sources/scim/
func BenchmarkSCIMLoad(b *testing.B) {
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("IDSYNC_SCIM_LOAD_N")); err == nil && v > 0 {
		n = v
	}
	st, err := state.Open(filepath.Join(b.TempDir(), "idsync.db"), state.Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h, err := NewHandler(HandlerOptions{Store: st, Sources: []SourceOptions{{Name: "bench", Token: tokenA}}, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	var (
		rep     scimload.LoadReport
		cpu     time.Duration
		elapsed time.Duration
	)
	for b.Loop() {
		c0, t0 := processCPU(), time.Now()
		rep, err = scimload.LoadTest(b.Context(), srv.URL+"/scim/v2/bench", tokenA, 16, n)
		if err != nil {
			b.Fatal(err)
		}
		cpu, elapsed = processCPU()-c0, time.Since(t0)
	}
	// CPU per request (server, client and store together) does not depend on what else the
	// machine runs, unlike the rates: 2 cores / cpu_us_per_req bounds the request rate.
	b.ReportMetric(float64(cpu.Microseconds())/float64(3*n), "cpu_us_per_req")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores_used")
	b.ReportMetric(rep.CreateRPS, "create_rps")
	b.ReportMetric(rep.CreateP50ms, "create_p50_ms")
	b.ReportMetric(rep.CreateP99ms, "create_p99_ms")
	b.ReportMetric(rep.FilterRPS, "filter_rps")
	b.ReportMetric(rep.FilterP50ms, "filter_p50_ms")
	b.ReportMetric(rep.FilterP99ms, "filter_p99_ms")
	b.ReportMetric(rep.PatchRPS, "patch_rps")
	b.ReportMetric(rep.PatchP50ms, "patch_p50_ms")
	b.ReportMetric(rep.PatchP99ms, "patch_p99_ms")
}

// BenchmarkHandlerFilter measures the handler alone (no network) answering the lookup IdPs
// make before every write, among 10,000 users.
func BenchmarkHandlerFilter(b *testing.B) {
	h, err := NewHandler(HandlerOptions{Store: newMemStore(), Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	f := &fixture{t: &testing.T{}, h: h}
	for i := 0; i < 10000; i++ {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/scim/v2/corp/Users", strings.NewReader(`{"userName":"user`+strconv.Itoa(i)+`@example.com","name":{"givenName":"A","familyName":"B"},"emails":[{"value":"u@example.com","type":"work","primary":true}],"active":true}`))
		req.Header.Set("Authorization", "Bearer "+tokenA)
		f.h.ServeHTTP(rec, req)
		if rec.Code != 201 {
			b.Fatal(rec.Body.String())
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest("GET", "/scim/v2/corp/Users?filter="+url.QueryEscape(`userName eq "user`+strconv.Itoa(i%10000)+`@example.com"`), nil)
		req.Header.Set("Authorization", "Bearer "+tokenA)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Body.String())
		}
	}
}

// BenchmarkHandlerMemberPatch measures adding one member to a group of 5,000 (memory store).
func BenchmarkHandlerMemberPatch(b *testing.B) {
	h, err := NewHandler(HandlerOptions{Store: newMemStore(), Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	do := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokenA)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var ids []string
	for i := 0; i < 5000+10000; i++ {
		rec := do("POST", "/scim/v2/corp/Users", `{"userName":"u`+strconv.Itoa(i)+`"}`)
		var out struct{ ID string }
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		ids = append(ids, out.ID)
	}
	var members []string
	for _, id := range ids[:5000] {
		members = append(members, `{"value":"`+id+`"}`)
	}
	rec := do("POST", "/scim/v2/corp/Groups", `{"displayName":"Big","members":[`+strings.Join(members, ",")+`]}`)
	var g struct{ ID string }
	_ = json.Unmarshal(rec.Body.Bytes(), &g)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := ids[5000+i%10000]
		i++
		op := "add"
		if i > 10000 {
			op = "remove"
		}
		rec := do("PATCH", "/scim/v2/corp/Groups/"+g.ID, `{"Operations":[{"op":"`+op+`","path":"members","value":[{"value":"`+id+`"}]}]}`)
		if rec.Code != 204 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
