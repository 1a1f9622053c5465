// Package metrics defines idsync's Prometheus metrics. The names are a contract (see docs/reference.md):
// dashboards and alerts depend on them.
//
// Every method is safe on a nil *Metrics, so components built without metrics (tests, one-shot
// CLI runs) need no special case.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/idsync/idsync/internal/version"
)

// Metrics holds every idsync metric on its own registry (not the global one), so tests and
// the simulators can run several instances in one process.
type Metrics struct {
	Registry *prometheus.Registry

	Passes           *prometheus.CounterVec   // idsync_passes_total{trigger,result}
	PassDuration     prometheus.Histogram     // idsync_pass_duration_seconds
	LastSuccess      prometheus.Gauge         // idsync_last_success_timestamp_seconds
	Changes          *prometheus.CounterVec   // idsync_changes_total{kind,result}
	Held             prometheus.Gauge         // idsync_held_changes
	SourceComplete   *prometheus.GaugeVec     // idsync_source_read_complete{source}
	SourceObjects    *prometheus.GaugeVec     // idsync_source_objects{source,kind}
	SinkObjects      *prometheus.GaugeVec     // idsync_sink_objects{kind}
	APIRequests      *prometheus.CounterVec   // idsync_api_requests_total{target,endpoint,method,code}
	APIDuration      *prometheus.HistogramVec // idsync_api_request_duration_seconds{target}
	RateLimitWait    *prometheus.CounterVec   // idsync_ratelimit_wait_seconds_total{target}
	Throttled        *prometheus.CounterVec   // idsync_ratelimit_throttled_total{target}
	SCIMRequests     *prometheus.CounterVec   // idsync_scim_requests_total{source,method,code}
	ConfigReloads    *prometheus.CounterVec   // idsync_config_reloads_total{result}
	ScheduledSkipped prometheus.Counter       // idsync_scheduled_passes_skipped_total
	FullReads        prometheus.Counter       // idsync_full_reads_total

	// lastOutbound is when an outbound request last finished (unix ns): /readyz tells a long
	// pass that still talks to its APIs from one that hangs.
	lastOutbound atomic.Int64
}

// New builds the metrics on a fresh registry that also carries the Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idsync_passes_total", Help: "Reconcile passes by trigger and result.",
		}, []string{"trigger", "result"}),
		PassDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "idsync_pass_duration_seconds", Help: "Duration of reconcile passes.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idsync_last_success_timestamp_seconds", Help: "Unix time of the last pass that ended ok.",
		}),
		Changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idsync_changes_total", Help: "Plan items by kind and result (ok, failed, skipped, held, unsupported).",
		}, []string{"kind", "result"}),
		Held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idsync_held_changes", Help: "Changes held back by the circuit breaker, waiting for approval.",
		}),
		SourceComplete: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "idsync_source_read_complete", Help: "1 when the last read of the source was complete, 0 when it failed.",
		}, []string{"source"}),
		SourceObjects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "idsync_source_objects", Help: "Objects in the last read of a source, by kind (users, groups).",
		}, []string{"source", "kind"}),
		SinkObjects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "idsync_sink_objects", Help: "Objects read from the sink in the last full pass, by kind.",
		}, []string{"kind"}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idsync_api_requests_total", Help: "Outbound API requests by target, endpoint template, method and status code.",
		}, []string{"target", "endpoint", "method", "code"}),
		APIDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "idsync_api_request_duration_seconds", Help: "Outbound API request latency by target.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"target"}),
		RateLimitWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idsync_ratelimit_wait_seconds_total", Help: "Time spent waiting for rate limiters and Retry-After, by target.",
		}, []string{"target"}),
		Throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idsync_ratelimit_throttled_total", Help: "429 and 503 answers received, by target.",
		}, []string{"target"}),
		SCIMRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idsync_scim_requests_total", Help: "SCIM listener requests by source, method and status code.",
		}, []string{"source", "method", "code"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idsync_config_reloads_total", Help: "Config reloads (SIGHUP) by result (ok, invalid).",
		}, []string{"result"}),
		ScheduledSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idsync_scheduled_passes_skipped_total", Help: "Scheduled passes skipped because one was still running.",
		}),
		FullReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idsync_full_reads_total", Help: "Passes that read Jira in full (the others read incrementally or targeted).",
		}),
	}
	build := version.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "idsync_build_info", Help: "Always 1; the labels say which build runs (version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion},
	})
	buildInfo.Set(1)
	m.Registry.MustRegister(
		buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Passes, m.PassDuration, m.LastSuccess, m.Changes, m.Held, m.SourceComplete,
		m.SourceObjects, m.SinkObjects, m.APIRequests, m.APIDuration, m.RateLimitWait,
		m.Throttled, m.SCIMRequests, m.ConfigReloads, m.ScheduledSkipped, m.FullReads,
	)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// APIRequest counts one outbound request.
func (m *Metrics) APIRequest(target, endpoint, method string, code int, took time.Duration) {
	if m == nil {
		return
	}
	m.lastOutbound.Store(time.Now().UnixNano())
	m.APIRequests.WithLabelValues(target, endpoint, method, strconv.Itoa(code)).Inc()
	m.APIDuration.WithLabelValues(target).Observe(took.Seconds())
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		m.Throttled.WithLabelValues(target).Inc()
	}
}

// LastOutbound is when an outbound API request last finished (zero: none yet).
func (m *Metrics) LastOutbound() time.Time {
	if m == nil {
		return time.Time{}
	}
	ns := m.lastOutbound.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// RateLimitWaited adds time spent waiting before sending to target.
func (m *Metrics) RateLimitWaited(target string, d time.Duration) {
	if m == nil || d <= 0 {
		return
	}
	m.RateLimitWait.WithLabelValues(target).Add(d.Seconds())
}

// SCIMRequest counts one request to the SCIM listener.
func (m *Metrics) SCIMRequest(source, method string, code int) {
	if m == nil {
		return
	}
	m.SCIMRequests.WithLabelValues(source, method, strconv.Itoa(code)).Inc()
}

// Change counts plan items by kind and result.
func (m *Metrics) Change(kind, result string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.Changes.WithLabelValues(kind, result).Add(float64(n))
}

// Pass records one finished pass.
func (m *Metrics) Pass(trigger, result string, took time.Duration, finished time.Time) {
	if m == nil {
		return
	}
	m.Passes.WithLabelValues(trigger, result).Inc()
	m.PassDuration.Observe(took.Seconds())
	if result == "ok" {
		m.LastSuccess.Set(float64(finished.Unix()))
	}
}

// FullRead counts a pass that read Jira in full.
func (m *Metrics) FullRead() {
	if m != nil {
		m.FullReads.Inc()
	}
}

// HeldChanges sets the number of held changes.
func (m *Metrics) HeldChanges(n int) {
	if m == nil {
		return
	}
	m.Held.Set(float64(n))
}

// SourceRead records how the last read of a source went.
func (m *Metrics) SourceRead(source string, complete bool, users, groups int) {
	if m == nil {
		return
	}
	v := 0.0
	if complete {
		v = 1
		m.SourceObjects.WithLabelValues(source, "users").Set(float64(users))
		m.SourceObjects.WithLabelValues(source, "groups").Set(float64(groups))
	}
	m.SourceComplete.WithLabelValues(source).Set(v)
}

// SinkRead records object counts of the last full sink read.
func (m *Metrics) SinkRead(kind string, n int) {
	if m == nil {
		return
	}
	m.SinkObjects.WithLabelValues(kind).Set(float64(n))
}

// Value reads a counter's or gauge's current value (tests and status pages).
func Value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return 0
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// Sum parses Prometheus text exposition (a /metrics body) and sums the samples of the named
// counter or gauge whose labels include every given pair; ok is false when no sample matched
// or the text does not parse.
func Sum(text, name string, labels map[string]string) (sum float64, ok bool) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return 0, false
	}
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		default:
			continue
		}
		ok = true
	}
	return sum, ok
}
