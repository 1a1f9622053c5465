package miniorange

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// BenchmarkSnapshot100k reads a 100,000-user / 5,000-group / 1,000,000-membership org from
// the simulator at 5 ms per call (server batch cap 200, page_size 500).
//
// Every page after a listing's first is independent (startIndex is an offset), so the whole
// read is one pool of `conc` workers over all pages, with a dependency chain of only four
// round trips (groups page 0 -> groups pages -> members page 0 -> members pages). The bound
// is therefore
//
//	bound = latency * pages / conc
//
// with pages = every call the simulator served (users, groups and member pages together).
// ratio = wall / bound; 1.0 means reading is limited by latency, not CPU. cpu-s/op is the
// process's CPU time per read, simulator included: while it stays well under
// bound x cores, the read is latency-bound on an idle machine (wall time on a loaded machine
// also counts other processes' work).
//
// IDSYNC_BENCH_LATENCY (a Go duration) overrides the 5 ms, e.g. to check the bound on a
// machine too busy for the default to mean much.
func BenchmarkSnapshot100k(b *testing.B) {
	latency := 5 * time.Millisecond
	if v := os.Getenv("IDSYNC_BENCH_LATENCY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("IDSYNC_BENCH_LATENCY: %v", err)
		}
		latency = d
	}
	org := miniorangetest.GenerateOrg(miniorangetest.OrgSpec{
		Users: 100_000, Groups: 5_000, MembershipsPerUser: 10, DisabledFraction: 0.02,
		CustomAttributes: true, Seed: 1,
	})
	srv := miniorangetest.NewServer(b, miniorangetest.Options{Org: &org, Latency: latency})
	for _, conc := range []int{4, 16} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			cfg := testConfig(srv.URL)
			cfg.PageSize = 500
			src, err := New("bench", cfg, Options{Concurrency: conc})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = src.Close() }()
			pages := 0
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				srv.Reset()
				dir, err := src.Snapshot(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if len(dir.Users) != 100_000 || len(dir.Groups) != 5_001 {
					b.Fatalf("read %d users, %d groups", len(dir.Users), len(dir.Groups))
				}
				pages = srv.TotalCalls()
			}
			cpu := (processCPU() - cpu0) / time.Duration(b.N)
			wall := b.Elapsed() / time.Duration(b.N)
			bound := latency * time.Duration(pages) / time.Duration(conc)
			b.ReportMetric(float64(pages), "pages/op")
			b.ReportMetric(bound.Seconds(), "bound-s/op")
			b.ReportMetric(wall.Seconds()/bound.Seconds(), "ratio")
			b.ReportMetric(cpu.Seconds(), "cpu-s/op")
		})
	}
}

// BenchmarkSnapshotNoLatency measures the CPU cost alone (client and simulator on the same
// two cores): what remains when the network is free.
func BenchmarkSnapshotNoLatency(b *testing.B) {
	org := miniorangetest.GenerateOrg(miniorangetest.OrgSpec{
		Users: 20_000, Groups: 1_000, MembershipsPerUser: 10, CustomAttributes: true, Seed: 1,
	})
	srv := miniorangetest.NewServer(b, miniorangetest.Options{Org: &org})
	cfg := testConfig(srv.URL)
	cfg.PageSize = 500
	src, err := New("bench", cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := src.Snapshot(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(((processCPU() - cpu0) / time.Duration(b.N)).Seconds(), "cpu-s/op")
}
