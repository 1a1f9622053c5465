package scim

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/idsync/idsync/configs"
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
