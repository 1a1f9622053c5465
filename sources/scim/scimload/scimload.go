// Package scimload is a load generator for a SCIM 2.0 service provider: concurrent clients
// create users, look them up by filter, and add them to groups with PATCH, and it reports
// requests per second and latency percentiles of each phase. BenchmarkSCIMLoad and
// `idsync bench --scenario scim` run it against idsync's own listener; it works against any
// SCIM server that accepts the same requests.
package scimload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoadReport is what one LoadTest measured. Latencies are in milliseconds.
type LoadReport struct {
	Clients  int `json:"clients"`
	Requests int `json:"requests"` // per phase

	CreateRPS   float64 `json:"create_rps"`
	CreateP50ms float64 `json:"create_p50_ms"`
	CreateP99ms float64 `json:"create_p99_ms"`

	FilterRPS   float64 `json:"filter_rps"`
	FilterP50ms float64 `json:"filter_p50_ms"`
	FilterP99ms float64 `json:"filter_p99_ms"`

	PatchRPS   float64 `json:"patch_rps"`
	PatchP50ms float64 `json:"patch_p50_ms"`
	PatchP99ms float64 `json:"patch_p99_ms"`
}

// phase is the result of one timed phase.
type phase struct {
	rps, p50, p99 float64
}

// LoadTest runs three phases against the SCIM base URL of one source (for idsync,
// http://host:port/scim/v2/{source}), each of n requests spread over clients concurrent
// clients: POST /Users, GET /Users?filter=userName eq "...", and PATCH /Groups/{id} adding
// one member (each client patches its own group, created before the phase). It stops at the
// first request that does not get the expected status and returns that error. Names carry a
// random run prefix, so runs can repeat against the same server.
func LoadTest(ctx context.Context, baseURL, token string, clients, n int) (LoadReport, error) {
	if clients <= 0 || n <= 0 {
		return LoadReport{}, fmt.Errorf("scim load: clients (%d) and n (%d) must be positive", clients, n)
	}
	base := strings.TrimRight(baseURL, "/")
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	c := &client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: base, token: token}
	run := randomHex(4)
	userName := func(i int) string { return fmt.Sprintf("load-%s-%06d@example.com", run, i) }

	rep := LoadReport{Clients: clients, Requests: n}
	ids := make([]string, n)
	create, err := timed(ctx, clients, n, func(ctx context.Context, i int) error {
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,`+
			`"name":{"givenName":"Load","familyName":"User %d"},"emails":[{"value":%q,"type":"work","primary":true}],"active":true}`,
			userName(i), i, userName(i))
		var out struct {
			ID string `json:"id"`
		}
		if err := c.do(ctx, http.MethodPost, "/Users", body, http.StatusCreated, &out); err != nil {
			return err
		}
		if out.ID == "" {
			return errors.New("POST /Users answered without an id")
		}
		ids[i] = out.ID
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("scim load: create phase: %w", err)
	}
	rep.CreateRPS, rep.CreateP50ms, rep.CreateP99ms = create.rps, create.p50, create.p99

	filter, err := timed(ctx, clients, n, func(ctx context.Context, i int) error {
		// Look users up in a scattered order so the phase does not follow insertion order.
		j := (i * 7919) % n
		q := url.QueryEscape(fmt.Sprintf(`userName eq %q`, userName(j)))
		var out struct {
			TotalResults int `json:"totalResults"`
		}
		if err := c.do(ctx, http.MethodGet, "/Users?filter="+q, "", http.StatusOK, &out); err != nil {
			return err
		}
		if out.TotalResults != 1 {
			return fmt.Errorf("filter for %s found %d users, want 1", userName(j), out.TotalResults)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("scim load: filter phase: %w", err)
	}
	rep.FilterRPS, rep.FilterP50ms, rep.FilterP99ms = filter.rps, filter.p50, filter.p99

	groups := make([]string, clients)
	for g := range groups {
		var out struct {
			ID string `json:"id"`
		}
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"load-%s-group-%d"}`, run, g)
		if err := c.do(ctx, http.MethodPost, "/Groups", body, http.StatusCreated, &out); err != nil {
			return rep, fmt.Errorf("scim load: creating group %d: %w", g, err)
		}
		groups[g] = out.ID
	}
	patch, err := timed(ctx, clients, n, func(ctx context.Context, i int) error {
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, ids[i])
		return c.do(ctx, http.MethodPatch, "/Groups/"+groups[i%clients], body, 0, nil)
	})
	if err != nil {
		return rep, fmt.Errorf("scim load: patch phase: %w", err)
	}
	rep.PatchRPS, rep.PatchP50ms, rep.PatchP99ms = patch.rps, patch.p50, patch.p99
	return rep, nil
}

// timed runs f for i in [0, n) on clients workers and measures the phase. Request i is
// handled by worker i % clients so that, in the patch phase, each group has one writer.
func timed(ctx context.Context, clients, n int, f func(ctx context.Context, i int) error) (phase, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make([]time.Duration, n)
	var (
		wg       sync.WaitGroup
		firstErr atomic.Pointer[error]
	)
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += clients {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := f(ctx, i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					cancel()
					return
				}
				lat[i] = time.Since(t0)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return phase{}, *p
	}
	if err := ctx.Err(); err != nil {
		return phase{}, err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		i := int(p*float64(n)+0.5) - 1
		i = min(max(i, 0), n-1)
		return float64(lat[i]) / float64(time.Millisecond)
	}
	return phase{rps: float64(n) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99)}, nil
}

type client struct {
	http  *http.Client
	base  string
	token string
}

// do sends one request and checks its status (any 2xx when want is 0), decoding the
// answer into out when given.
func (c *client) do(ctx context.Context, method, path, body string, want int, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("building %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/scim+json")
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	ok := resp.StatusCode == want || (want == 0 && resp.StatusCode/100 == 2)
	if !ok {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data[:min(len(data), 300)]))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
