package miniorangetest

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"
)

// delay applies latency; it reports false when the client went away meanwhile.
func (s *Sim) delay(ctx context.Context) bool {
	s.kmu.Lock()
	d := s.latency
	if s.jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(s.jitter)))
	}
	s.kmu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// throttle answers 429 when the rate limit is exceeded.
func (s *Sim) throttle(w http.ResponseWriter) bool {
	s.kmu.Lock()
	lim := s.limiter
	s.kmu.Unlock()
	if lim == nil {
		return false
	}
	res := lim.Reserve()
	if res.OK() && res.Delay() == 0 {
		return false
	}
	wait := res.Delay()
	res.Cancel()
	s.kmu.Lock()
	s.throttled++
	s.kmu.Unlock()
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(int(lim.Limit())))
	w.Header().Set("X-RateLimit-Remaining", "0")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(wait).Unix(), 10))
	writeJSON(w, http.StatusTooManyRequests, errorBody{"ERROR", "Too many requests"})
	return true
}

// resetConn drops the connection without an answer; the client sees a reset or EOF.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeJSON(w, http.StatusBadGateway, errorBody{"ERROR", "connection reset"})
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
}

// truncate sends a response whose body stops half way, then closes the connection.
func truncate(w http.ResponseWriter, body []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeJSON(w, http.StatusBadGateway, errorBody{"ERROR", "truncated"})
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	_, _ = fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	_, _ = buf.Write(body[:len(body)/2])
	_ = buf.Flush()
	_ = conn.Close()
}
