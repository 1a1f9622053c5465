// Package sim serves the Jira Cloud (+ JSM + admin API) and miniOrange simulators on
// loopback listeners: `idsync sim` standalone, and in-process for `idsync demo` and
// `idsync bench`.
package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// Default addresses, matching configs/demo.yaml.
const (
	DefaultJiraAddr       = "127.0.0.1:18081"
	DefaultMiniOrangeAddr = "127.0.0.1:18082"
)

// Options size the generated org and set the simulators' knobs.
type Options struct {
	JiraAddr       string // "127.0.0.1:0" picks a free port
	MiniOrangeAddr string

	Org miniorangetest.OrgSpec // zero: miniOrange's default org (200 users, 15 groups, 5 disabled)

	Latency   time.Duration // both simulators
	Jitter    time.Duration
	JiraRate  float64 // Jira requests/s across all endpoints (0: unlimited)
	JiraBurst int
	// FaultRate injects random Jira faults (5xx, 503 + Retry-After, resets, slow answers).
	FaultRate float64
	// SourceErrorRate makes that fraction of miniOrange calls answer 500.
	SourceErrorRate float64
	IndexLag        time.Duration
	MOBatchCap      int
	Seats           int
	Seed            int64
}

// Sims are the running simulators.
type Sims struct {
	Jira          *jiratest.Sim
	MiniOrange    *miniorangetest.Sim
	JiraURL       string
	MiniOrangeURL string

	servers []*http.Server
}

// Start builds both simulators and serves them on loopback.
func Start(o Options) (*Sims, error) {
	if o.JiraAddr == "" {
		o.JiraAddr = DefaultJiraAddr
	}
	if o.MiniOrangeAddr == "" {
		o.MiniOrangeAddr = DefaultMiniOrangeAddr
	}
	if err := loopbackOnly(o.JiraAddr); err != nil {
		return nil, fmt.Errorf("--jira-addr: %w", err)
	}
	if err := loopbackOnly(o.MiniOrangeAddr); err != nil {
		return nil, fmt.Errorf("--miniorange-addr: %w", err)
	}
	var org *miniorangetest.Org
	if o.Org.Users > 0 {
		spec := o.Org
		if spec.Seed == 0 {
			spec.Seed = o.Seed
		}
		g := miniorangetest.GenerateOrg(spec)
		org = &g
	}
	mo := miniorangetest.New(miniorangetest.Options{Org: org, BatchCap: o.MOBatchCap, Seed: o.Seed, Latency: o.Latency, Jitter: o.Jitter})
	if o.SourceErrorRate > 0 {
		mo.SetErrorRate(o.SourceErrorRate, http.StatusInternalServerError)
	}
	jo := jiratest.Options{
		Seed: uint64(o.Seed), Latency: o.Latency, Jitter: o.Jitter, IndexLag: o.IndexLag, Seats: o.Seats,
		Rate: jiratest.Limit{RPS: o.JiraRate, Burst: o.JiraBurst},
	}
	if o.FaultRate > 0 {
		jo.Faults = jiratest.Faults{Rate: o.FaultRate}
	}
	js := jiratest.New(jo)

	s := &Sims{Jira: js, MiniOrange: mo}
	var err error
	if s.JiraURL, err = s.serve(o.JiraAddr, js.Handler()); err != nil {
		return nil, err
	}
	if s.MiniOrangeURL, err = s.serve(o.MiniOrangeAddr, mo.Handler()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sims) serve(addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the listeners.
func (s *Sims) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
}

// loopbackOnly refuses addresses that would expose a simulator beyond this machine.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return errors.New("simulators listen on loopback only (127.0.0.1 or ::1)")
	}
	return nil
}
