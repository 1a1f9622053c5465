package reliability

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/google/googletest"
)

// The Google half of the fault matrix: the Directory API simulator fails, throttles (403
// rateLimitExceeded and userRateLimitExceeded, 429) and answers records without a state,
// during an initial sync and a churn; each scenario must end where the fault-free run ends,
// with no removal made on an incomplete read.

func googleFaultOrg() googletest.Org {
	n := 40
	if long {
		n = 200
	}
	return googletest.GenerateOrg(googletest.OrgSpec{Users: n, Groups: 8, MembershipsPerUser: 2, Suspended: 2, Archived: 1, Nested: 3, Seed: 21})
}

// googleRetry keeps the source's retries short: the simulator's Retry-After of 1 s is capped
// at 50 ms, backoffs at 40 ms.
var googleRetry = httpx.Retry{Max: 8, WaitMin: 5 * time.Millisecond, WaitMax: 40 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond}

// googleChurn changes the Google org the same way in every run: leavers, a suspension, a
// move, hires.
func googleChurn(t testing.TB, g *googletest.Server, org googletest.Org) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	users := org.Users
	must(g.Delete(users[0].PrimaryEmail))
	must(g.Delete(users[1].PrimaryEmail))
	must(g.SetSuspended(users[2].PrimaryEmail, true))
	mover := users[3].PrimaryEmail
	for _, gr := range org.Groups {
		if slices.Contains(gr.Members, mover) {
			must(g.RemoveMember(gr.Email, mover))
			break
		}
	}
	must(g.AddMember(org.Groups[len(org.Groups)-1].Email, mover))
	for i := range 2 {
		_, err := g.Hire(googletest.User{PrimaryEmail: fmt.Sprintf("google.hire.%d@example.com", i), GivenName: "Hire", FamilyName: fmt.Sprint(i)}, org.Groups[i].Email)
		must(err)
	}
}

type googleScenario struct {
	name string
	// arm turns the fault on; the returned function turns it off.
	arm func(g *googletest.Server) (clear func())
}

func googleFault(f googletest.Fault) func(*googletest.Server) func() {
	return func(g *googletest.Server) func() {
		g.AddFault(f)
		return g.ClearFaults
	}
}

func googleScenarios() []googleScenario {
	return []googleScenario{
		{"google-5xx", func(g *googletest.Server) func() {
			g.SetErrorRate(0.2, http.StatusInternalServerError)
			return g.ClearFaults
		}},
		{"google-reset-mid-pagination", googleFault(googletest.Fault{Kind: googletest.FaultReset, Endpoint: googletest.EndpointUsersList, Page: 1, Times: 3})},
		{"google-truncated-page", googleFault(googletest.Fault{Kind: googletest.FaultTruncate, Endpoint: googletest.EndpointUsersList, Page: 2, Times: 3})},
		{"google-members-502", googleFault(googletest.Fault{Kind: googletest.FaultStatus, Endpoint: googletest.EndpointMembersList, Page: googletest.AnyPage, Status: http.StatusBadGateway})},
		{"google-403-rate-limit-storm", func(g *googletest.Server) func() {
			g.SetRateLimit(30, 2, googletest.Throttle403)
			return g.ClearFaults
		}},
		{"google-403-user-rate-limit", googleFault(googletest.Fault{Kind: googletest.FaultUserRateLimit, Endpoint: googletest.EndpointMembersList, Page: googletest.AnyPage, Times: 6})},
		{"google-429-retry-after", func(g *googletest.Server) func() {
			g.SetRateLimit(30, 2, googletest.Throttle429)
			return g.ClearFaults
		}},
		{"google-state-missing", func(g *googletest.Server) func() {
			g.SetUserHook(func(email string, rec map[string]any) {
				if strings.HasPrefix(email, "o") || strings.HasPrefix(email, "l") {
					delete(rec, "suspended")
				}
			})
			return func() { g.SetUserHook(nil) }
		}},
	}
}

type googleResult struct {
	phase1, phase2 endState
	passes         int
}

// runGoogleScenario runs the initial sync and the churn, each to convergence, with the fault
// armed for the first passes of each phase when sc is not nil.
func runGoogleScenario(t *testing.T, sc *googleScenario, fig *faultFigure) googleResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	org := googleFaultOrg()
	w := newGWorld(t, gworldOpts{Org: &org, UsersCap: 10, GroupsCap: 3, MembersCap: 5, Grace: 1})
	p := w.open(t, googleRetry)
	var res googleResult
	for phase := range 2 {
		if phase == 1 {
			googleChurn(t, w.google, org)
		}
		var clear func()
		before, incBefore := w.google.Injected()+w.google.Throttled(), fig.Incomplete
		if sc != nil {
			clear = sc.arm(w.google)
		}
		check := func(i int, run reconcile.Run) {
			checkPass(t, run)
			if sc == nil {
				return
			}
			if i < faultPasses() {
				fig.PassesWithFaults++
			}
			fig.FailedItems += failedItems(run)
			if !sourcesComplete(run) {
				fig.Incomplete++
			}
			if i == faultPasses()-1 && clear != nil {
				clear()
				clear = nil
			}
		}
		n, _ := p.converge(ctx, 12, check)
		if clear != nil {
			clear()
		}
		res.passes += n
		if sc != nil {
			injected := int64(w.google.Injected() + w.google.Throttled() - before)
			if sc.name == "google-state-missing" {
				injected = int64(fig.Incomplete - incBefore) // records answered without a state
			}
			fig.FaultsInjected += injected
		}
		if phase == 0 {
			res.phase1 = snapshotJira(w.jira)
		} else {
			res.phase2 = snapshotJira(w.jira)
		}
	}
	if d := w.jira.DuplicateEmails(); len(d) > 0 {
		t.Errorf("duplicate accounts: %v", d)
		fig.Duplicates += len(d)
	}
	return res
}

var (
	googleBaselineOnce sync.Once
	googleBaseline     googleResult
	googleBaselineErr  string
)

func googleFaultBaseline(t *testing.T) googleResult {
	googleBaselineOnce.Do(func() {
		var fig faultFigure
		googleBaseline = runGoogleScenario(t, nil, &fig)
		if t.Failed() {
			googleBaselineErr = "the fault-free Google run failed"
		}
	})
	if googleBaselineErr != "" {
		t.Fatal(googleBaselineErr)
	}
	return googleBaseline
}

// TestGoogleFaultMatrix runs every Google fault scenario against the same org and churn, and
// compares each with the fault-free run.
func TestGoogleFaultMatrix(t *testing.T) {
	t.Parallel()
	timed(t)
	t.Run("baseline", func(t *testing.T) {
		b := googleFaultBaseline(t)
		if len(b.phase2.Accounts) == 0 {
			t.Fatal("the fault-free run created nothing")
		}
	})
	var wg sync.WaitGroup
	for _, sc := range googleScenarios() {
		wg.Go(func() {
			t.Run(sc.name, func(t *testing.T) {
				base := googleFaultBaseline(t)
				start := time.Now()
				fig := faultFigure{Name: sc.name, Target: "google", BaselinePasses: base.passes}
				res := runGoogleScenario(t, &sc, &fig)
				fig.PassesToConverge = res.passes
				for i, pair := range [][2]endState{{base.phase1, res.phase1}, {base.phase2, res.phase2}} {
					if d := pair[0].diff(pair[1], 20); len(d) > 0 {
						fig.Lost += len(d)
						t.Errorf("phase %d: end state differs from the fault-free run:\n  %s", i+1, joinLines(d))
					}
				}
				if fig.FaultsInjected == 0 {
					t.Error("no fault was injected: the scenario proves nothing")
				}
				fig.Seconds = time.Since(start).Round(time.Millisecond).Seconds()
				t.Logf("%s: %d faults over %d passes, %d incomplete reads, converged after %d passes (fault-free %d)",
					sc.name, fig.FaultsInjected, fig.PassesWithFaults, fig.Incomplete, fig.PassesToConverge, fig.BaselinePasses)
				figures.update(func(r *report) { r.Faults = append(r.Faults, fig) })
			})
		})
	}
	wg.Wait()
}
