package miniorangetest

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *Sim) serverNow() time.Time {
	s.kmu.Lock()
	skew := s.skew
	s.kmu.Unlock()
	return s.now().Add(skew)
}

// Signature is the Authorization value miniOrange expects: lowercase hex SHA-512 of
// customerKey + timestamp + apiKey.
func Signature(customerKey, timestamp, apiKey string) string {
	sum := sha512.Sum512([]byte(customerKey + timestamp + apiKey))
	return hex.EncodeToString(sum[:])
}

func (s *Sim) authenticate(r *http.Request) (int, string, bool) {
	ck := r.Header.Get("Customer-Key")
	if ck == "" {
		return http.StatusUnauthorized, "Authentication failed: Customer-Key header is missing", false
	}
	if subtle.ConstantTimeCompare([]byte(ck), []byte(s.customerKey)) != 1 {
		return http.StatusUnauthorized, "Authentication failed: invalid customer key", false
	}
	tsHeader := r.Header.Get("Timestamp")
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return http.StatusUnauthorized, "Authentication failed: Timestamp header is missing or not epoch milliseconds", false
	}
	s.kmu.Lock()
	window, apiKey := s.window, s.apiKey
	s.kmu.Unlock()
	if d := s.serverNow().Sub(time.UnixMilli(ts)); d > window || d < -window {
		return http.StatusUnauthorized, "Authentication failed: request timestamp is outside the allowed window", false
	}
	want := Signature(ck, tsHeader, apiKey)
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		return http.StatusUnauthorized, "Authentication failed: invalid authorization hash", false
	}
	key, sent := r.Header["Api-Key"]
	if sent && subtle.ConstantTimeCompare([]byte(strings.Join(key, "")), []byte(apiKey)) != 1 {
		return http.StatusUnauthorized, "Authentication failed: invalid Api-Key header", false
	}
	if !sent && s.requireKey {
		return http.StatusUnauthorized, "Authentication failed: Api-Key header is missing", false
	}
	return 0, "", true
}
