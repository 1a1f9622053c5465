package jira_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/rs/zerolog"
)

// BenchmarkAddMembersRate measures how close the client gets to a write limit: the simulator
// allows R group-member adds per second (real time), the client is configured at R, and N
// adds are applied by 16 workers. ratio = wall time / (N/R); 1.0 is the limit itself.
//
//	go test -run '^$' -bench AddMembersRate -benchtime 1x -count 5 ./sinks/jira/
func BenchmarkAddMembersRate(b *testing.B) {
	const (
		R       = 500.0
		N       = 2000
		workers = 16
	)
	for b.Loop() {
		b.StopTimer()
		sim, srv := jiratest.NewServer(b, jiratest.Options{Seed: 1, Limits: map[string]jiratest.Limit{
			"POST /rest/api/3/group/user": {RPS: R, Burst: 50},
		}})
		gid, _ := sim.AddGroup("bench", "")
		ids := make([]string, N)
		for i := range ids {
			ids[i], _ = sim.AddUser(jiratest.User{Email: fmt.Sprintf("b%d@example.com", i)})
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = workers
		s, err := jira.New(configs.JiraConfig{BaseURL: srv.URL, Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
			RateLimit: configs.RateLimit{RequestsPerSecond: R, Burst: 10, Concurrency: 8}},
			jira.Options{Logger: zerolog.Nop(), HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			b.Fatal(err)
		}
		work := make(chan string, N)
		for _, id := range ids {
			work <- id
		}
		close(work)
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, N)
		b.StartTimer()
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					if _, err := s.Apply(ctx, reconcile.Change{Kind: reconcile.KindAddMember, AccountID: id, Group: &reconcile.GroupRef{ID: gid}}); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		wall := time.Since(start)
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		if g, _ := sim.Group("bench"); len(g.Members) != N {
			b.Fatalf("members = %d, want %d", len(g.Members), N)
		}
		b.ReportMetric(wall.Seconds()/(N/R), "ratio")
		b.ReportMetric(float64(sim.Throttled()), "throttled")
		tr.CloseIdleConnections()
		srv.Close()
		b.StartTimer()
	}
}
