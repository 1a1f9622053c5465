package state

import (
	"fmt"
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
