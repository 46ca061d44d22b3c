package strangler

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strangler-fig/migrate/shadow"
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
	// candErrors counts candidate failures on requests the candidate
	// answered, by kind; shadow copies are counted by shadowErrors.
	candErrors *prometheus.CounterVec
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
		candErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "migrate_candidate_errors_total",
			Help: "Failed requests the candidate answered (canary, cutover, retired), by route and kind: " +
				"trap, exit, deadline, memory, headers, too-large, budget for in-process modules; timeout, connect, reset, error for URLs; " +
				"status-5xx for an answer with a 5xx status. Shadow copies are in migrate_shadow_candidate_errors_total.",
		}, []string{"route", "kind"}),
	}
	m.registry.MustRegister(m.requests, m.errors, m.latency, m.drops, m.mode, m.reloads, m.candErrors,
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
	r.promCandErrors = m.candErrors.MustCurryWith(prometheus.Labels{"route": r.Name})
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
	for _, v := range []*prometheus.MetricVec{m.requests.MetricVec, m.errors.MetricVec, m.latency.MetricVec, m.drops.MetricVec, m.mode.MetricVec,
		m.candErrors.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"route": route})
	}
}

// shadowErrorCollector exports, at scrape time, the candidate failures the
// shadow comparison recorded, by route and kind. They are read from the
// engine's evidence, so the series count every comparison since the route's
// evidence began (restored from the store on restart). A failed answer the
// candidate served (a 5xx) is counted by migrate_candidate_errors_total
// only: in reverse shadow it compares as a status mismatch, not as a
// candidate error, so the two families add up without double counting.
type shadowErrorCollector struct {
	ctrl       *Controller
	desc       *prometheus.Desc
	mismatches *prometheus.Desc
}

func (m *Metrics) registerShadowErrors(c *Controller) {
	// A registry shared by two controllers keeps the first one's series.
	_ = m.registry.Register(&shadowErrorCollector{ctrl: c,
		desc: prometheus.NewDesc("migrate_shadow_candidate_errors_total",
			"Candidate failures found by the shadow comparison (mirrored copies), by route and kind (as migrate_candidate_errors_total), from the route's evidence.",
			[]string{"route", "kind"}, nil),
		mismatches: prometheus.NewDesc("migrate_shadow_mismatches_total",
			"Mismatching shadow samples by route and difference type (value, type, missing, extra, size, order, status, header, line, body); a sample with differences of two types counts under both.",
			[]string{"route", "type"}, nil)})
}

// Describe implements prometheus.Collector.
func (s *shadowErrorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.desc
	ch <- s.mismatches
}

// Collect implements prometheus.Collector.
func (s *shadowErrorCollector) Collect(ch chan<- prometheus.Metric) {
	engine := s.ctrl.Shadow
	if engine == nil {
		return
	}
	for _, r := range s.ctrl.Routes() {
		ev := engine.Evidence(r.Name)
		if ev == nil {
			continue
		}
		for kind, n := range ev.CandidateErrors {
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(n), r.Name, kind)
		}
		byType := map[string]uint64{}
		for sig, n := range ev.Signatures {
			_, typ := shadow.SplitSignature(sig)
			byType[typ] += n
		}
		for typ, n := range byType {
			ch <- prometheus.MustNewConstMetric(s.mismatches, prometheus.CounterValue, float64(n), r.Name, typ)
		}
	}
}
