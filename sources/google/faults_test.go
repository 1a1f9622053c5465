package google

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/sources/google/googletest"
)

func pagedEnv(t *testing.T) *env {
	t.Helper()
	org := googletest.GenerateOrg(googletest.OrgSpec{Users: 40, Groups: 6, MembershipsPerUser: 2, Nested: 2, Seed: 9})
	// Patient retries: a quota storm of 300 requests/s lets one through every 3.3 ms.
	e := newEnvWith(t, googletest.Options{Org: &org}, nil, Options{RetryMax: 12, RetryWaitMin: 2 * time.Millisecond, RetryWaitMax: 20 * time.Millisecond, MaxRetryAfter: 20 * time.Millisecond})
	e.sim.SetPageCaps(10, 3, 4)
	return e
}

func throttled(m *metrics.Metrics) float64 {
	return metrics.Value(m.Throttled.WithLabelValues(target))
}

func waited(m *metrics.Metrics) float64 {
	return metrics.Value(m.RateLimitWait.WithLabelValues(target))
}

// Transient failures anywhere in the read are retried; the directory comes back whole.
func TestTransientFaultsAreRetried(t *testing.T) {
	for _, f := range []googletest.Fault{
		{Kind: googletest.FaultStatus, Endpoint: googletest.EndpointUsersList, Page: 1, Times: 2, Status: http.StatusInternalServerError},
		{Kind: googletest.FaultStatus, Endpoint: googletest.EndpointMembersList, Page: googletest.AnyPage, Times: 3, Status: http.StatusServiceUnavailable},
		{Kind: googletest.FaultReset, Endpoint: googletest.EndpointUsersList, Page: 2, Times: 2},
		{Kind: googletest.FaultTruncate, Endpoint: googletest.EndpointUsersList, Page: 3, Times: 2},
		{Kind: googletest.FaultTruncate, Endpoint: googletest.EndpointGroupsList, Page: 1, Times: 1},
		{Kind: googletest.FaultReset, Endpoint: googletest.EndpointMembersList, Page: 0, Times: 2},
	} {
		e := pagedEnv(t)
		want, err := e.src.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		e.sim.AddFault(f)
		got, err := e.src.Snapshot(context.Background())
		if err != nil {
			t.Errorf("fault %+v: %v", f, err)
			continue
		}
		if e.sim.Injected() == 0 {
			t.Errorf("fault %+v never fired", f)
		}
		if len(got.Users) != len(want.Users) {
			t.Errorf("fault %+v: %d users, want %d", f, len(got.Users), len(want.Users))
		}
		for i := range got.Users {
			if strings.Join(got.Users[i].Groups, ",") != strings.Join(want.Users[i].Groups, ",") {
				t.Errorf("fault %+v: %s groups %v, want %v", f, got.Users[i].UserName, got.Users[i].Groups, want.Users[i].Groups)
			}
		}
	}
}

// A failure that outlasts the retries fails the read as incomplete: never a partial one.
func TestPersistentFaultFailsTheRead(t *testing.T) {
	e := pagedEnv(t)
	e.sim.AddFault(googletest.Fault{Kind: googletest.FaultStatus, Endpoint: googletest.EndpointMembersList, Page: 1, Status: http.StatusBadGateway})
	dir, err := e.src.Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) || len(dir.Users) != 0 {
		t.Fatalf("dir %d users, err %v", len(dir.Users), err)
	}
	if !strings.Contains(err.Error(), "members of group") || !strings.Contains(err.Error(), "502") {
		t.Errorf("err = %v", err)
	}
}

// The Admin SDK's throttling answers (403 rateLimitExceeded / userRateLimitExceeded, 429)
// slow the read down; they do not fail it, and they show in the rate-limit metrics.
func TestThrottlingIsWaitedOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		arm  func(*googletest.Server)
	}{
		{"403 rateLimitExceeded", func(s *googletest.Server) {
			s.AddFault(googletest.Fault{Kind: googletest.FaultRateLimit, Endpoint: googletest.EndpointUsersList, Page: 1, Times: 2})
		}},
		{"403 userRateLimitExceeded", func(s *googletest.Server) {
			s.AddFault(googletest.Fault{Kind: googletest.FaultUserRateLimit, Endpoint: googletest.EndpointMembersList, Page: googletest.AnyPage, Times: 3})
		}},
		{"429", func(s *googletest.Server) {
			s.AddFault(googletest.Fault{Kind: googletest.FaultTooMany, Endpoint: googletest.EndpointGroupsList, Page: 0, Times: 1})
		}},
		{"quota storm", func(s *googletest.Server) { s.SetRateLimit(300, 2, googletest.Throttle403) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := pagedEnv(t)
			tc.arm(e.sim)
			dir, err := e.src.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(dir.Users) != 40 {
				t.Errorf("%d users", len(dir.Users))
			}
			if e.sim.Throttled() == 0 {
				t.Fatal("nothing was throttled")
			}
			if throttled(e.m) < 1 || waited(e.m) <= 0 {
				t.Errorf("metrics: throttled %v, waited %vs", throttled(e.m), waited(e.m))
			}
		})
	}
}

// A 403 that is not a rate limit (no privilege) is not retried.
func TestForbiddenIsNotRetried(t *testing.T) {
	e := newEnv(t, googletest.Options{Org: smallOrg()}, nil)
	e.sim.SetGranted([]string{googletest.ReadOnlyScopes[0], googletest.ReadOnlyScopes[1], googletest.ReadOnlyScopes[2], "https://www.googleapis.com/auth/admin.directory.user.alias.readonly"})
	_, err := e.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Reset()
	// Only groups.list's scopes withdrawn from the token: a fresh source asks again.
	e.sim.SetGranted(googletest.ReadOnlyScopes)
	e.sim.RevokeTokens()
	_, err = e.src.Snapshot(context.Background())
	if err == nil || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("a revoked token: %v", err)
	}
	if n := e.sim.Calls()[googletest.EndpointUsersList] + e.sim.Calls()[googletest.EndpointGroupsList]; n > 2 {
		t.Errorf("%d listing calls: a 401 must not be retried", n)
	}
}

func TestRateLimitedAnswers(t *testing.T) {
	body := func(reason string) []byte {
		return []byte(`{"error":{"code":403,"message":"x","errors":[{"domain":"usageLimits","reason":"` + reason + `"}]}}`)
	}
	for _, tc := range []struct {
		code int
		body []byte
		want bool
	}{
		{403, body("rateLimitExceeded"), true},
		{403, body("userRateLimitExceeded"), true},
		{403, []byte(`{"error":{"code":403,"status":"RESOURCE_EXHAUSTED"}}`), true},
		{403, []byte(`{"error":{"code":403,"details":[{"reason":"RATE_LIMIT_EXCEEDED"}]}}`), true},
		{403, body("forbidden"), false},
		{403, body("dailyLimitExceeded"), false},
		{403, []byte("not json"), false},
		{429, nil, true},
		{500, body("rateLimitExceeded"), false},
	} {
		if got := RateLimited(tc.code, tc.body); got != tc.want {
			t.Errorf("%d %s: %v, want %v", tc.code, tc.body, got, tc.want)
		}
	}
}

// Every request is counted in idsync_api_requests_total with a bounded endpoint label.
func TestRequestsAreCounted(t *testing.T) {
	e := newEnv(t, googletest.Options{Org: smallOrg()}, nil)
	if _, err := e.src.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	for ep, want := range map[string]float64{
		"/admin/directory/v1/users":                     1,
		"/admin/directory/v1/groups":                    1,
		"/admin/directory/v1/groups/{groupKey}/members": 4,
		"token": 1,
	} {
		got := metrics.Value(e.m.APIRequests.WithLabelValues(target, ep, http.MethodGet, "200"))
		if ep == "token" {
			got = metrics.Value(e.m.APIRequests.WithLabelValues(target, ep, http.MethodPost, "200"))
		}
		if got != want {
			t.Errorf("%s: %v requests counted, want %v", ep, got, want)
		}
	}
}
