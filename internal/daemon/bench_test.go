package daemon

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// BenchmarkSyncUser measures the login-time sync end to end on the simulators:
// POST /api/v1/sync/users/{userName} for a user just hired at the IdP, answered once the
// account exists in Jira. One op is one new user. With 100ms added to every simulator
// answer it shows how many round trips a sync costs on a distant site.
func BenchmarkSyncUser(b *testing.B) {
	b.Run("latency=0", func(b *testing.B) { benchSyncUser(b, 0) })
	b.Run("latency=100ms", func(b *testing.B) { benchSyncUser(b, 100*time.Millisecond) })
}

func benchSyncUser(b *testing.B, latency time.Duration) {
	p := startInProcess(b, "")
	if code, body := p.call("POST", "/api/v1/reconcile?wait=true"); code != http.StatusOK {
		b.Fatalf("first pass: %d %s", code, body)
	}
	names := make([]string, b.N)
	for i := range names {
		names[i] = fmt.Sprintf("bench.user%d@example.com", i)
		if _, err := p.sims.MiniOrange.Hire(miniorangetest.User{UserName: names[i], Email: names[i], FirstName: "Bench", LastName: "User"}); err != nil {
			b.Fatal(err)
		}
	}
	p.sims.Jira.SetLatency(latency, 0)
	p.sims.MiniOrange.SetLatency(latency, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code, body := p.call("POST", "/api/v1/sync/users/"+names[i]); code != http.StatusOK {
			b.Fatalf("sync: %d %s", code, body)
		}
	}
}
