package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/state"
)

// BenchmarkSCIMHotGroup measures the listener on loopback with the real bbolt store when 16
// clients write at once: first each creates users (every create is its own resource), then
// all of them add those users to one group, one member per PATCH, the way an IdP assigns a
// large group. Requests per phase: IDSYNC_SCIM_LOAD_N (default 3000).
//
//	go test -run '^$' -bench SCIMHotGroup -benchtime 1x -count 5 ./sources/scim/
func BenchmarkSCIMHotGroup(b *testing.B) {
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("IDSYNC_SCIM_LOAD_N")); err == nil && v > 0 {
		n = v
	}
	const clients = 16
	var create, patch hotPhase
	for b.Loop() {
		st, err := state.Open(filepath.Join(b.TempDir(), "idsync.db"), state.Options{Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		h, err := NewHandler(HandlerOptions{Store: st, Sources: []SourceOptions{{Name: "bench", Token: tokenA}}, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(h)
		c := newHotClient(srv.URL+"/scim/v2/bench", clients)
		ids := make([]string, n)
		create, err = runHotPhase(b.Context(), clients, n, func(ctx context.Context, i int) error {
			body := fmt.Sprintf(`{"schemas":[%q],"userName":"hot-%06d@example.com","name":{"givenName":"Hot","familyName":"User"},"active":true}`, SchemaUser, i)
			var out struct{ ID string }
			if err := c.do(ctx, http.MethodPost, "/Users", body, http.StatusCreated, &out); err != nil {
				return err
			}
			ids[i] = out.ID
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		var g struct{ ID string }
		if err := c.do(b.Context(), http.MethodPost, "/Groups", `{"schemas":["`+SchemaGroup+`"],"displayName":"Everyone"}`, http.StatusCreated, &g); err != nil {
			b.Fatal(err)
		}
		patch, err = runHotPhase(b.Context(), clients, n, func(ctx context.Context, i int) error {
			body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, ids[i])
			return c.do(ctx, http.MethodPatch, "/Groups/"+g.ID, body, http.StatusNoContent, nil)
		})
		if err != nil {
			b.Fatal(err)
		}
		var got struct {
			Members []struct{ Value string }
		}
		if err := c.do(b.Context(), http.MethodGet, "/Groups/"+g.ID, "", http.StatusOK, &got); err != nil {
			b.Fatal(err)
		}
		if len(got.Members) != n {
			b.Fatalf("the group has %d members after %d acknowledged adds", len(got.Members), n)
		}
		c.close()
		srv.Close()
		_ = h.Close()
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(create.rps, "create_rps")
	b.ReportMetric(create.p50, "create_p50_ms")
	b.ReportMetric(create.p99, "create_p99_ms")
	b.ReportMetric(patch.rps, "patch_rps")
	b.ReportMetric(patch.p50, "patch_p50_ms")
	b.ReportMetric(patch.p99, "patch_p99_ms")
}

// hotPhase is the rate and latency percentiles (ms) of one phase.
type hotPhase struct{ rps, p50, p99 float64 }

// runHotPhase runs f for i in [0, n) on clients workers, each sending its next request as
// soon as the last is answered.
func runHotPhase(ctx context.Context, clients, n int, f func(ctx context.Context, i int) error) (hotPhase, error) {
	lat := make([]time.Duration, n)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			for i := w; i < n; i += clients {
				t0 := time.Now()
				if err := f(ctx, i); err != nil {
					errs[w] = err
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return hotPhase{}, err
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := min(max(int(p*float64(n)+0.5)-1, 0), n-1)
		return float64(lat[i]) / float64(time.Millisecond)
	}
	return hotPhase{rps: float64(n) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99)}, nil
}

// hotClient sends requests to one source's SCIM base URL over kept-alive connections.
type hotClient struct {
	base string
	tr   *http.Transport
	http *http.Client
}

func newHotClient(base string, clients int) *hotClient {
	tr := &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients}
	return &hotClient{base: base, tr: tr, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *hotClient) close() { c.tr.CloseIdleConnections() }

func (c *hotClient) do(ctx context.Context, method, path, body string, want int, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tokenA)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %.300s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
