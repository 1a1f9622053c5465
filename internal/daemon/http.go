package daemon

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	stdlog "log"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/sources/scim"
)

// Server timeouts. WriteTimeout leaves room for a one-user sync answered synchronously.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	maxAdminBody      = 64 << 10
)

// newServer builds the one listener's http.Server: health, metrics, SCIM and the admin API.
func (d *Daemon) newServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", d.readyz)
	mux.Handle("GET /metrics", d.app.Metrics.Handler())
	if d.app.SCIM != nil {
		mux.Handle(scim.Prefix, d.app.SCIM)
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/status", d.apiStatus)
	api.HandleFunc("GET /api/v1/runs", d.apiRuns)
	api.HandleFunc("GET /api/v1/runs/{id}", d.apiRun)
	api.HandleFunc("POST /api/v1/reconcile", d.apiReconcile)
	api.HandleFunc("POST /api/v1/sync/users/{userName}", d.apiSyncUser)
	api.HandleFunc("GET /api/v1/held", d.apiHeld)
	api.HandleFunc("POST /api/v1/held/{runId}/approve", d.apiApprove)
	api.HandleFunc("GET /api/v1/state/backup", d.apiStateBackup)
	api.HandleFunc("GET /api/v1/plan", d.apiPlan)
	api.HandleFunc("GET /api/v1/audit", d.apiAudit)
	mux.Handle("/api/", requireToken(&d.adminToken, d.log, limitBody(api)))

	srv := &http.Server{
		Handler:           recoverer(d.log, mux),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// net/http's own complaints (TLS handshakes of scanners, bad requests) go to the
		// structured log at debug level instead of unstructured lines on stderr.
		ErrorLog: stdlog.New(serverErrorLog{d.log.With().Str(logging.FieldComponent, "http").Logger()}, "", 0),
	}
	if d.cert != nil {
		srv.TLSConfig = d.cert.tlsConfig()
	}
	return srv
}

type serverErrorLog struct{ l zerolog.Logger }

func (s serverErrorLog) Write(p []byte) (int, error) {
	s.l.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// requireToken guards the admin API with the admin bearer token, compared in constant time.
// A failure answers 401 and says nothing about why. Refusals are logged, at most a burst per
// minute, so a scanner cannot flood the log.
func requireToken(token *atomic.Pointer[configs.Secret], log zerolog.Logger, next http.Handler) http.Handler {
	log = log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := token.Load()
		got, ok := bearer(r)
		if want == nil || want.Value() == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want.Value())) != 1 {
			log.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("admin API: unauthorized request")
			w.Header().Set("WWW-Authenticate", `Bearer realm="idsync"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "unauthorized"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a handler panic into a 500 and a log line instead of a dropped connection.
func recoverer(log zerolog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error().Interface("panic", v).Str("path", r.URL.Path).Msg("handler panic")
				writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type apiError struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// readyz: state open, config loaded, passes not failing for longer than two intervals, and
// the pass in flight (if any) not stalled.
func (d *Daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	type src struct {
		Name     string `json:"name"`
		Complete bool   `json:"complete"`
		Error    string `json:"error,omitempty"`
	}
	body := struct {
		Ready        bool      `json:"ready"`
		Reason       string    `json:"reason,omitempty"`
		FailingSince time.Time `json:"failingSince,omitzero"`
		StalledRun   string    `json:"stalledRun,omitempty"`
		LastActivity time.Time `json:"lastActivity,omitzero"`
		Sources      []src     `json:"sources"`
	}{Ready: true, Sources: []src{}}
	now := time.Now()
	interval := d.sched.interval()
	limit := 2 * interval
	ok, since, sources := d.health.readiness(now, limit)
	stallID, stallStart, lastSign, stalled := d.health.stalled(now, d.app.Metrics.LastOutbound(), stallLimit(interval))
	for _, s := range sources {
		body.Sources = append(body.Sources, src{Name: s.Name, Complete: s.Complete, Error: s.Error})
	}
	switch {
	case d.app.Store == nil || d.isClosing():
		body.Ready, body.Reason = false, "state is closed (shutting down)"
	case !ok:
		body.Ready, body.Reason, body.FailingSince = false, "passes have been failing for more than two schedule intervals", since
	case stalled:
		body.Ready, body.StalledRun, body.LastActivity = false, stallID, lastSign
		body.Reason = fmt.Sprintf("the pass started at %s has shown no progress and made no API request since %s (limit %s)",
			stallStart.UTC().Format(time.RFC3339), lastSign.UTC().Format(time.RFC3339), stallLimit(interval))
	}
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}
