package scim

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/logging"
)

// tokenSums are the SHA-256 sums of a source's accepted tokens: comparing fixed-size sums in
// constant time leaks neither the token nor its length.
type tokenSums struct {
	current, previous [32]byte
	hasPrevious       bool
}

// newTokenSums sums a source's tokens; the current one must be set.
func newTokenSums(source string, cur, prev configs.Secret) (*tokenSums, error) {
	if strings.TrimSpace(cur.Value()) == "" {
		return nil, fmt.Errorf("scim listener: source %q has no bearer token", source)
	}
	t := &tokenSums{current: sha256.Sum256([]byte(cur.Value()))}
	if strings.TrimSpace(prev.Value()) != "" {
		t.previous, t.hasPrevious = sha256.Sum256([]byte(prev.Value())), true
	}
	return t, nil
}

// SetTokens replaces a source's accepted tokens (a config reload): requests already
// authenticated finish, every later one is checked against the new tokens.
func (h *Handler) SetTokens(source string, token, previous configs.Secret) error {
	s := h.sources[source]
	if s == nil {
		return fmt.Errorf("scim listener: no push source %q", source)
	}
	sums, err := newTokenSums(source, token, previous)
	if err != nil {
		return err
	}
	s.tokens.Store(sums)
	return nil
}

// notePrevious says whether a request with the previous token should be logged now.
func (s *source) notePrevious(now time.Time) bool {
	last := s.prevNoted.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < time.Minute {
		return false
	}
	return s.prevNoted.CompareAndSwap(last, now.UnixNano())
}

// authorized checks the bearer token; usedPrevious says the retiring token matched.
func (s *source) authorized(r *http.Request) (ok, usedPrevious bool) {
	auth := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(auth, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	t := s.tokens.Load()
	cur := subtle.ConstantTimeCompare(sum[:], t.current[:]) == 1
	prev := subtle.ConstantTimeCompare(sum[:], t.previous[:]) == 1 && t.hasPrevious
	return cur || prev, prev && !cur
}

// admit takes a token from the source's limiter, or says how many seconds to wait.
func (s *source) admit(now time.Time) (int, bool) {
	if s.limiter == nil {
		return 0, true
	}
	res := s.limiter.ReserveN(now, 1)
	if !res.OK() {
		return 1, false
	}
	d := res.DelayFrom(now)
	if d <= 0 {
		return 0, true
	}
	res.CancelAt(now)
	return int(math.Ceil(d.Seconds())), false
}

// authenticate checks a request's bearer token against source s (nil when the path names
// no source) and answers 401 when it does not match. An unknown source answers like a
// wrong token, so source names cannot be probed. label names the source in the log.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, s *source, label string) bool {
	var ok, usedPrevious bool
	if s != nil {
		ok, usedPrevious = s.authorized(r)
	}
	if !ok {
		h.log.Warn().Str(logging.FieldSource, label).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).
			Bool("known_source", s != nil).Msg("SCIM request refused: bad or missing bearer token")
		w.Header().Set("WWW-Authenticate", `Bearer realm="idsync SCIM"`)
		writeError(w, &Error{Status: http.StatusUnauthorized, Detail: "authentication required: send the source's bearer token"})
		return false
	}
	if usedPrevious && s.notePrevious(h.now()) {
		h.log.Warn().Str(logging.FieldSource, s.name).Str("remote", r.RemoteAddr).
			Msg("SCIM request authenticated with push.previous_token: move the IdP to the new token, then remove previous_token")
	}
	return true
}

// throttle admits a request of source s under its rate limit and concurrency bound, or
// answers 429 with Retry-After. When ok, the caller calls release once the request is done.
func (h *Handler) throttle(w http.ResponseWriter, s *source) (release func(), ok bool) {
	if retry, ok := s.admit(h.now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeError(w, &Error{Status: http.StatusTooManyRequests, Detail: "too many requests for this source; retry after " + strconv.Itoa(retry) + "s"})
		return nil, false
	}
	if s.sem == nil {
		return func() {}, true
	}
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem }, true
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, &Error{Status: http.StatusTooManyRequests, Detail: "too many concurrent requests for this source; retry after 1s"})
		return nil, false
	}
}
