package miniorangetest

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/idsync/idsync/internal/simkit"
)

// throttle answers 429 when the rate limit is exceeded.
func (s *Sim) throttle(w http.ResponseWriter) bool {
	lim := s.knobs.Limiter()
	if lim == nil {
		return false
	}
	res := lim.Reserve()
	if res.OK() && res.Delay() == 0 {
		return false
	}
	wait := res.Delay()
	res.Cancel()
	s.knobs.AddThrottled()
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
	if !simkit.ResetConn(w) {
		writeJSON(w, http.StatusBadGateway, errorBody{"ERROR", "connection reset"})
	}
}

// truncate sends a response whose body stops half way, then closes the connection.
func truncate(w http.ResponseWriter, body []byte) {
	if !simkit.Truncate(w, contentType, body) {
		writeJSON(w, http.StatusBadGateway, errorBody{"ERROR", "truncated"})
	}
}
