package strangler

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus series the admin API serves on /metrics. Each
// controller has its own registry, so tests and several proxies in one
// process do not collide.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	drops    *prometheus.CounterVec
	mode     *prometheus.GaugeVec
	reloads  *prometheus.CounterVec
}

// NewMetrics registers migrate's series (and the Go runtime's) on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "migrate_requests_total", Help: "Requests answered or mirrored, by route and side.",
		}, []string{"route", "side"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "migrate_errors_total", Help: "Requests that failed (transport error, timeout or 5xx), by route and side.",
		}, []string{"route", "side"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "migrate_request_duration_seconds", Help: "Upstream latency by route and side.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "side"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "migrate_mirror_dropped_total", Help: "Copies not mirrored, by route and reason (queue, too-large).",
		}, []string{"route", "reason"}),
		mode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "migrate_route_mode", Help: "1 for the route's current mode (legacy, shadow, canary, cutover, retired).",
		}, []string{"route", "service", "mode"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "migrate_config_reloads_total", Help: "Config reloads by result (ok, rejected).",
		}, []string{"result"}),
	}
	m.registry.MustRegister(m.requests, m.errors, m.latency, m.drops, m.mode, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry is where other packages (shadow, proxy/wasm) may register series.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Reloaded counts a config reload.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
	} else {
		m.reloads.WithLabelValues("rejected").Inc()
	}
}

// bind resolves the route's labelled series once, so the hot path does not
// hash label values per request.
func (m *Metrics) bind(r *Route) {
	for _, side := range []struct {
		s    *SideStats
		name Side
	}{{r.Legacy, SideLegacy}, {r.Candidate, SideCandidate}} {
		side.s.promRequests = m.requests.WithLabelValues(r.Name, string(side.name))
		side.s.promErrors = m.errors.WithLabelValues(r.Name, string(side.name))
		side.s.promLatency = m.latency.WithLabelValues(r.Name, string(side.name))
	}
	r.Mirror.promDropped = m.drops.WithLabelValues(r.Name, "queue")
	r.Mirror.promTooLarge = m.drops.WithLabelValues(r.Name, "too-large")
}

// setMode makes the gauge show route's current mode.
func (m *Metrics) setMode(route, service string, mode Mode) {
	for _, md := range Modes {
		v := 0.0
		if md == mode {
			v = 1
		}
		m.mode.WithLabelValues(route, service, string(md)).Set(v)
	}
}

// forget removes a route that left the config.
func (m *Metrics) forget(route string) {
	for _, v := range []*prometheus.MetricVec{m.requests.MetricVec, m.errors.MetricVec, m.latency.MetricVec, m.drops.MetricVec, m.mode.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"route": route})
	}
}
