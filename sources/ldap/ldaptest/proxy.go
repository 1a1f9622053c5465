package ldaptest

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a server. Armed with Cut, it drops each
// connection once that many bytes have gone from the server to the client: a connection cut
// in the middle of an answer. Armed with Stall, it stops forwarding the server's bytes at that
// point and holds the connection open: an answer that never completes. Refuse closes every
// new connection at once: a server that is down.
type Proxy struct {
	Addr string

	target  string
	l       net.Listener
	cut     atomic.Int64 // bytes server -> client before the cut; 0: never
	stall   atomic.Bool  // hold the connection open at the cut instead of dropping it
	refuse  atomic.Bool
	cuts    atomic.Int64
	refused atomic.Int64
	wg      sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// NewProxy listens on a free loopback port and forwards every connection to target.
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Cut arms the proxy: connections opened from now on are dropped after n bytes from the
// server (0 disarms it).
func (p *Proxy) Cut(n int64) { p.stall.Store(false); p.cut.Store(n) }

// Stall arms the proxy: connections opened from now on stop receiving after n bytes from the
// server and stay open until the client gives up (0 disarms it).
func (p *Proxy) Stall(n int64) { p.stall.Store(n > 0); p.cut.Store(n) }

// Refuse makes the proxy close new connections at once (false: forward them again).
func (p *Proxy) Refuse(on bool) { p.refuse.Store(on) }

// Cuts counts the connections the proxy cut or stalled.
func (p *Proxy) Cuts() int64 { return p.cuts.Load() }

// Refused counts the connections the proxy refused.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			p.refused.Add(1)
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && p.closed:
		_ = c.Close()
	case on:
		p.conns[c] = true
	default:
		delete(p.conns, c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.track(client, true)
	p.track(server, true)
	defer func() {
		_ = client.Close()
		_ = server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	limit, stall := p.cut.Load(), p.stall.Load()
	up, down := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(up)
		_, _ = io.Copy(server, client)
	}()
	go func() {
		defer close(down)
		if limit <= 0 {
			_, _ = io.Copy(client, server)
			return
		}
		if n, _ := io.CopyN(client, server, limit); n == limit {
			p.cuts.Add(1)
			if stall {
				<-up // until the client gives up (or Close drops it)
			}
		}
	}()
	select {
	case <-up:
	case <-down:
	}
	_ = client.Close()
	_ = server.Close()
	<-up
	<-down
}

// Close stops accepting, drops every open connection and waits for the copies to end.
func (p *Proxy) Close() error {
	err := p.l.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
