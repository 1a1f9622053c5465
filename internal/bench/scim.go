package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/sources/scim"
	"github.com/idsync/idsync/sources/scim/scimload"
	"github.com/idsync/idsync/state"
)

// scimSource is the push source the scim scenario writes to.
const scimSource = "bench"

// runSCIM measures the SCIM listener on loopback with the real bbolt store: --concurrency
// clients (16 by default) run --users creates, then as many filtered lookups, then as many
// group-member PATCHes (scimload). The listener runs without the per-source rate limit
// (sources[].push.rate_limit, 500/s by default) so that the figures show its capacity, and
// without a Runner: pushes are stored and debounced, no pass is triggered.
func runSCIM(ctx context.Context, o Options) (res *Result, err error) {
	st, err := state.Open(filepath.Join(o.StateDir, "idsync.db"), state.Options{Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("opening the state file: %w", err)
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	token := randomToken()
	h, err := scim.NewHandler(scim.HandlerOptions{
		Store:   st,
		Sources: []scim.SourceOptions{{Name: scimSource, Token: configs.Secret(token)}},
		Logger:  o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("building the SCIM listener: %w", err)
	}
	defer func() { err = errors.Join(err, h.Close()) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			_ = srv.Close()
		}
		<-done
	}()

	start := time.Now()
	rep, err := scimload.LoadTest(ctx, "http://"+ln.Addr().String()+scim.Prefix+scimSource, token, o.Concurrency, o.Users)
	if err != nil {
		return nil, err
	}
	res = o.newResult("in-process", "none")
	res.LatencyMS, res.Rate = 0, 0
	res.Users, res.Groups, res.Memberships = o.Users, o.Concurrency, o.Users
	res.WallSeconds = time.Since(start).Seconds()
	res.CreateRPS, res.CreateP50ms, res.CreateP99ms = rep.CreateRPS, rep.CreateP50ms, rep.CreateP99ms
	res.FilterRPS, res.FilterP50ms, res.FilterP99ms = rep.FilterRPS, rep.FilterP50ms, rep.FilterP99ms
	res.PatchRPS, res.PatchP50ms, res.PatchP99ms = rep.PatchRPS, rep.PatchP50ms, rep.PatchP99ms
	return res, nil
}
