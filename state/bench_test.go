package state

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// writers is the number of concurrent writers the SCIM listener must sustain.
const writers = 16

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "idsync.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// setWriters makes RunParallel use `writers` goroutines whatever GOMAXPROCS is.
func setWriters(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((writers + procs - 1) / procs)
}

// BenchmarkPutSCIMParallel: durable puts (each returns after fsync) from 16 goroutines.
func BenchmarkPutSCIMParallel(b *testing.B) {
	s := openBench(b)
	body := []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"user@example.com",` +
		`"name":{"givenName":"Given","familyName":"Family"},"emails":[{"value":"user@example.com","primary":true}],"active":true}`)
	var n atomic.Int64
	setWriters(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("u%08d", n.Add(1))
			if err := s.PutSCIM(SCIMResource{Source: "corp", Type: SCIMUser, ID: id, Data: body}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// BenchmarkJournalParallel: one applied item (link + membership + audit) per call, 16
// goroutines, as an executor with high concurrency journals.
func BenchmarkJournalParallel(b *testing.B) {
	s := openBench(b)
	var n atomic.Int64
	setWriters(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Journal(benchEntry(n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkJournalSerial: the latency of one lone journal entry (batch delay + fsync).
func BenchmarkJournalSerial(b *testing.B) {
	s := openBench(b)
	for i := range b.N {
		if err := s.Journal(benchEntry(int64(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEntry(i int64) reconcile.JournalEntry {
	key := fmt.Sprintf("u%08d", i)
	acc := "712020:" + key
	return reconcile.JournalEntry{
		Links: []reconcile.Link{{Source: "corp", Key: key, UserName: key, Email: key + "@example.com", AccountID: acc, Created: true}},
		Own:   []reconcile.Owned{{Kind: reconcile.OwnedMembership, Container: "grp-1", ContainerName: "engineering", AccountID: acc}},
		Audit: []reconcile.AuditRecord{{RunID: "20261127T040515Z-0001", Actor: "schedule", Action: "create_user", Source: "corp",
			UserKey: key, UserName: key, AccountID: acc, Reason: "new in source corp", Result: "ok", Time: time.Unix(1_800_000_000+i, 0)}},
	}
}

// BenchmarkAuditByUser: the user filter on a log of 100k records uses the index.
func BenchmarkAuditByUser(b *testing.B) {
	s := openBench(b)
	const records, perTx = 100_000, 5_000
	for start := 0; start < records; start += perTx {
		entry := reconcile.JournalEntry{}
		for i := start; i < start+perTx; i++ {
			entry.Audit = append(entry.Audit, benchEntry(int64(i)).Audit...)
		}
		if err := s.Journal(entry); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		recs, err := s.Audit(time.Time{}, fmt.Sprintf("U%08d", i%records))
		if err != nil || len(recs) != 1 {
			b.Fatalf("Audit = %d records, %v", len(recs), err)
		}
	}
}

// BenchmarkJournalLargeAudit journals one entry of many audit records, as a first pass that
// links an existing site does (index keys are then written in order).
func BenchmarkJournalLargeAudit(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		st := openBench(b)
		recs := make([]reconcile.AuditRecord, 20000)
		for i := range recs {
			recs[i] = reconcile.AuditRecord{Action: "link", UserName: fmt.Sprintf("user%06d@example.com", (i*7919)%len(recs)),
				AccountID: fmt.Sprintf("acc-%d", (i*104729)%len(recs)), Result: "ok"}
		}
		b.StartTimer()
		if err := st.Journal(reconcile.JournalEntry{Audit: recs}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStateYear writes a year of 15-minute passes of a 5,000-person org into a state
// file, as the daemon does: a first pass that creates everyone (a started and an outcome
// audit record per person), then 35,039 passes, each with its run record and, on average, two
// changes (four audit records), with ApplyRetention after every pass. It then compacts the
// file. Reported: the file's size before and after compaction, what stays, and the time
// ApplyRetention takes per pass (mean and worst). Run it with -benchtime=1x; writes skip
// fsync, so the time is the prune's own.
//
//	go test ./state -run '^$' -bench StateYear -benchtime=1x
func BenchmarkStateYear(b *testing.B) {
	for _, c := range []struct {
		name string
		r    Retention
	}{
		{"retention=90d,400d", Retention{Runs: 90 * 24 * time.Hour, Audit: 400 * 24 * time.Hour}},
		{"retention=90d,30d", Retention{Runs: 90 * 24 * time.Hour, Audit: 30 * 24 * time.Hour}},
		{"retention=none", Retention{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				stateYear(b, c.r)
			}
		})
	}
}

func stateYear(b *testing.B, r Retention) {
	b.StopTimer()
	dir := b.TempDir()
	path := filepath.Join(dir, "idsync.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.db.NoSync, s.db.MaxBatchDelay = true, 0
	s.SetRetention(r)
	const (
		people = 5000
		passes = 365 * 24 * 4
		step   = 15 * time.Minute
	)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	audit := func(at time.Time, runID string, i int, result string) reconcile.AuditRecord {
		user := fmt.Sprintf("user%05d@example.com", i%people)
		return reconcile.AuditRecord{Time: at, RunID: runID, Actor: "schedule", Action: "add_member", Source: "corp",
			UserKey: fmt.Sprintf("%08x", i%people), UserName: user, AccountID: fmt.Sprintf("712020:%08x-0000-0000-0000-%012x", i%people, i),
			Target: "engineering", Reason: "member of Engineering in source corp", Result: result, Intent: fmt.Sprintf("%s/%d", runID, i)}
	}
	var pruneTotal, pruneMax time.Duration
	changes := 0
	for p := range passes {
		at := start.Add(time.Duration(p) * step)
		id := NewRunID(at)
		run := reconcile.Run{ID: id, Trigger: reconcile.TriggerSchedule, Started: at, Finished: at.Add(3 * time.Second),
			Complete: true, Result: reconcile.ResultOK,
			Sources: []reconcile.SourceRun{{Name: "corp", Complete: true, Users: people, Groups: 40, Hash: "3f9a0c6d2e71b845"}}}
		var entry reconcile.JournalEntry
		n := 2 // two changes a pass on average: 0 to 4
		if p == 0 {
			n = people
		} else {
			n = (p * 7919) % 5
		}
		for i := range n {
			entry.Audit = append(entry.Audit, audit(at, id, changes+i, reconcile.ItemStarted), audit(at, id, changes+i, reconcile.ItemOK))
		}
		changes += n
		if n > 0 {
			run.Counts = map[reconcile.Kind]map[string]int{reconcile.KindAddMember: {reconcile.ItemOK: n}}
		}
		if err := s.PutRun(run); err != nil {
			b.Fatal(err)
		}
		if err := s.Journal(entry); err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		if _, err := s.ApplyRetention(run.Finished); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t)
		pruneTotal += d
		pruneMax = max(pruneMax, d)
	}
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	c, err := WriteCompactFile(s, filepath.Join(dir, "compact.db"), false)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(info.Size()), "bytes")
	b.ReportMetric(float64(c.Size), "compacted-bytes")
	b.ReportMetric(float64(c.Records["runs"]), "runs")
	b.ReportMetric(float64(c.Records["audit"]), "audit-records")
	b.ReportMetric(float64(pruneTotal.Microseconds())/passes, "prune-us/pass")
	b.ReportMetric(float64(pruneMax.Microseconds())/1000, "prune-max-ms")
	b.StartTimer()
}
