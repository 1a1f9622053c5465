package jiratest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"
)

// userSearchTemplates share the tenant-wide user-search bucket.
var userSearchTemplates = map[string]bool{"/rest/api/3/user/search": true}

// maxRequestBody caps request bodies the simulator reads.
const maxRequestBody = 1 << 20

func (s *Sim) wrap(pattern string, fam family, fn handlerFunc) http.Handler {
	method, template, _ := strings.Cut(pattern, " ")
	if template == "" {
		template = "unknown"
	}
	routeKey := method + " " + template
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ctr.start()
		key := routeKey
		if method == "" {
			key = r.Method + " unknown"
		}
		now := s.clock.Now()
		realNow := time.Now()
		var reqBody []byte
		if r.Body != nil {
			b, err := readAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
			if err != nil {
				writeFamily(w, fam, http.StatusBadRequest, "Request body could not be read: "+err.Error())
				return
			}
			reqBody = b
			r.Body = readCloser(b)
		}
		k := s.knobs()
		rec := httptest.NewRecorder()
		fault := Fault("")

		cred, ok := s.authenticate(r, fam)
		switch {
		case !ok:
			writeUnauthorized(rec, fam)
		default:
			if d := s.lim.check(k, cred, r.Method, template, key, requestIdentity(cred, r, reqBody), now, realNow); d != nil {
				writeThrottled(rec, fam, d, now)
				break
			}
			fault = s.pickFault(key, k)
			s.latency(r.Context(), k)
			switch fault {
			case Fault500:
				writeFamily(rec, fam, http.StatusInternalServerError, "Internal server error.")
			case Fault502:
				rec.Header().Set("Content-Type", "text/html")
				rec.WriteHeader(http.StatusBadGateway)
				_, _ = rec.WriteString("<html><body>502 Bad Gateway</body></html>")
			case Fault503:
				ra := k.Faults.RetryAfter
				if ra <= 0 {
					ra = k.RetryAfter
				}
				rec.Header().Set("Retry-After", fmt.Sprint(ceilSeconds(ra)))
				writeFamily(rec, fam, http.StatusServiceUnavailable, "Service temporarily unavailable.")
			case FaultReset:
			default:
				if fault == FaultSlow {
					d := k.Faults.SlowDelay
					if d <= 0 {
						d = 2 * time.Second
					}
					_ = s.clock.Sleep(r.Context(), d)
				}
				if k.Rate.RPS > 0 || k.EndpointLimit.RPS > 0 || len(k.Limits) > 0 || k.UserSearchLimit.RPS > 0 {
					s.lim.headers(rec.Header(), k, cred, r.Method, template, key, now)
				}
				fn(rec, r)
			}
		}

		status := rec.Code
		if fault == FaultReset {
			status = 0
		}
		s.ctr.count(r.Method, template, status)
		if k.OnExchange != nil && fault != FaultReset {
			k.OnExchange(Exchange{Method: r.Method, Template: template, Request: r, ReqBody: reqBody,
				Status: rec.Code, Header: rec.Header().Clone(), Body: rec.Body.Bytes()})
		}
		switch fault {
		case FaultReset, FaultResetAfter:
			resetConn(w, false)
			return
		case FaultTruncate:
			body := rec.Body.Bytes()
			copyHeader(w.Header(), rec.Header())
			w.Header().Set("Content-Length", fmt.Sprint(len(body)+16))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:len(body)/2])
			resetConn(w, true)
			return
		}
		copyHeader(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

func (s *Sim) latency(ctx context.Context, k Options) {
	d := k.Latency
	if k.Jitter > 0 {
		s.knob.Lock()
		d += time.Duration(s.rng.Int64N(int64(k.Jitter)))
		s.knob.Unlock()
	}
	if d > 0 {
		_ = s.clock.Sleep(ctx, d)
	}
}

// authenticate checks basic auth (Jira, JSM) or the org API key (admin routes) and returns the
// credential that rate limits are kept for.
func (s *Sim) authenticate(r *http.Request, fam family) (string, bool) {
	h := r.Header.Get("Authorization")
	s.knob.Lock()
	tokens, orgKeys := s.tokens, s.orgKeys
	s.knob.Unlock()
	if fam == famAdmin || fam == famOrg {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !oneOf(tok, orgKeys) {
			return "", false
		}
		return "org-key", true
	}
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || !strings.EqualFold(user, s.email) || !oneOf(pass, tokens) {
		return "", false
	}
	return "basic:" + strings.ToLower(user), true
}

// oneOf compares secret with each accepted value in constant time.
func oneOf(secret string, accepted []string) bool {
	match := 0
	for _, a := range accepted {
		match |= subtle.ConstantTimeCompare([]byte(secret), []byte(a))
	}
	return match == 1
}

func writeUnauthorized(w http.ResponseWriter, fam family) {
	switch fam {
	case famAdmin:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"key": "unauthorized"})
	case famOrg:
		writeOrgError(w, http.StatusUnauthorized, "UNAUTHORIZED", "The organization API key is missing or not valid.")
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
		writeFamily(w, fam, http.StatusUnauthorized, "Client must be authenticated to access this resource.")
	}
}

func writeThrottled(w http.ResponseWriter, fam family, d *denial, now time.Time) {
	h := w.Header()
	secs := ceilSeconds(d.retryAfter)
	h.Set("Retry-After", fmt.Sprint(secs))
	h.Set("X-RateLimit-Limit", fmt.Sprint(d.limit))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", now.Add(time.Duration(secs)*time.Second).UTC().Format("2006-01-02T15:04Z"))
	h.Set("RateLimit-Reason", d.reason)
	switch fam {
	case famAdmin:
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"key": "tooManyRequests"})
	case famOrg:
		writeOrgError(w, http.StatusTooManyRequests, "RATE_LIMITED", "Too many API requests.")
	default:
		writeFamily(w, fam, http.StatusTooManyRequests, "Rate limit exceeded.")
	}
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

func readCloser(b []byte) *nopCloser { return &nopCloser{bytes.NewReader(b)} }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
