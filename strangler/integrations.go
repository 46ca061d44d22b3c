package strangler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func stateText(st RouteState) string {
	if st.Mode == ModeCanary && st.Weight > 0 {
		return fmt.Sprintf("canary %d%%", st.Weight)
	}
	if st.Mode == "" {
		return "any mode"
	}
	return string(st.Mode)
}

// mountGate adds the gate, canary and integration endpoints to the admin
// API (behind its bearer token like every other endpoint):
//
//	GET  /v1/gate?target=T[&to=cutover|retired]   evaluate only; GateReport
//	POST /v1/canary                               start a walk; CanaryRequest
//	GET  /v1/canary[?target=T]                    walks, newest first
//	POST /v1/integrations/flagger                 Flagger confirm-promotion webhook
//	GET  /v1/integrations/argo?target=T           Argo Rollouts web metric
func mountGate(mux *http.ServeMux, ctrl *Controller) {
	mux.HandleFunc("GET /v1/gate", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		target := q.Get("target")
		if target == "" {
			badRequest(w, "target is required: ?target=ROUTE or ?target=SERVICE")
			return
		}
		rep, err := ctrl.CheckGate(r.Context(), target, Mode(q.Get("to")))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("POST /v1/canary", func(w http.ResponseWriter, r *http.Request) {
		var req CanaryRequest
		if !decodeRequest(w, r, &req, "canary request") {
			return
		}
		if req.Target == "" {
			badRequest(w, "target is required: a route name or a service name")
			return
		}
		walk, err := ctrl.StartCanary(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, CanaryWalksDocument{APIVersion: APIVersion, Walks: []CanaryWalk{*walk}})
	})
	mux.HandleFunc("GET /v1/canary", func(w http.ResponseWriter, r *http.Request) {
		walks, err := ctrl.CanaryWalks(r.Context(), r.URL.Query().Get("target"))
		writeDocument(w, CanaryWalksDocument{APIVersion: APIVersion, Walks: nonNil(walks)}, err)
	})
	mux.HandleFunc("POST /v1/integrations/flagger", func(w http.ResponseWriter, r *http.Request) {
		var p FlaggerPayload
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&p); err != nil {
			badRequest(w, "decode Flagger webhook payload: "+err.Error())
			return
		}
		target := p.Target()
		if target == "" {
			badRequest(w, "the webhook names no target: set metadata.route or metadata.service in the Canary's webhook")
			return
		}
		rep, err := ctrl.CheckGate(r.Context(), target, ModeCutover)
		if err != nil {
			writeError(w, err)
			return
		}
		// Flagger promotes on 2xx and retries on anything else.
		status := http.StatusOK
		if !rep.Pass {
			status = http.StatusForbidden
		}
		writeJSON(w, status, rep)
	})
	mux.HandleFunc("GET /v1/integrations/argo", func(w http.ResponseWriter, r *http.Request) {
		target := r.URL.Query().Get("target")
		if target == "" {
			badRequest(w, "target is required: ?target=ROUTE or ?target=SERVICE")
			return
		}
		rep, err := ctrl.CheckGate(r.Context(), target, ModeCutover)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ArgoMetricFrom(rep))
	})
}

// FlaggerPayload is what Flagger POSTs to a webhook (confirm-promotion
// among others).
type FlaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Target is the route or service the webhook asks about: metadata.route,
// else metadata.service, else the Canary's name (commonly the service's).
func (p FlaggerPayload) Target() string {
	for _, k := range []string{"route", "service", "target"} {
		if v := p.Metadata[k]; v != "" {
			return v
		}
	}
	return p.Name
}

// ArgoMetric is the stable JSON object for Argo Rollouts' web metric
// provider. For a service, each figure is its worst route's.
type ArgoMetric struct {
	APIVersion string `json:"apiVersion"`
	Target     string `json:"target"`
	// Pass is true when the cutover gate passes; Verdict is pass, fail or
	// inconclusive.
	Pass    bool   `json:"pass"`
	Verdict string `json:"verdict"`
	// MatchRatio (after noise) and ErrorRate are fractions (0.999 = 99.9%).
	MatchRatio float64 `json:"matchRatio"`
	ErrorRate  float64 `json:"errorRate"`
	// P99Ratio is candidate p99 / legacy p99 (0 without latency data).
	P99Ratio float64 `json:"p99Ratio"`
	Samples  uint64  `json:"samples"`
	// Failed names the criteria not met.
	Failed []string `json:"failed"`
}

// ArgoMetricFrom condenses a gate report.
func ArgoMetricFrom(rep *GateReport) ArgoMetric {
	m := ArgoMetric{APIVersion: APIVersion, Target: rep.Target, Pass: rep.Pass, Verdict: rep.Verdict, Failed: []string{}}
	first := true
	for _, r := range rep.Routes {
		for _, c := range r.Criteria {
			if !c.Pass {
				m.Failed = append(m.Failed, r.Route+": "+c.Name)
			}
		}
		s := r.Shadow
		if s == nil {
			m.MatchRatio, m.Samples, first = 0, 0, false
			continue
		}
		if first || s.MatchRatio < m.MatchRatio {
			m.MatchRatio = s.MatchRatio
		}
		if first || s.Samples < m.Samples {
			m.Samples = s.Samples
		}
		m.ErrorRate = max(m.ErrorRate, s.ErrorRate)
		m.P99Ratio = max(m.P99Ratio, s.P99Ratio)
		first = false
	}
	return m
}

// gateCollector exports, at scrape time, each route's match ratio, sample
// count, canary weight and whether its next gate passes.
type gateCollector struct {
	ctrl                             *Controller
	match, samples, weight, gatePass *prometheus.Desc
}

func (m *Metrics) registerGateGauges(c *Controller) {
	labels := []string{"route", "service"}
	g := &gateCollector{ctrl: c,
		match: prometheus.NewDesc("migrate_route_match_ratio",
			"Share of compared answers that matched after noise (0-1), by route.", labels, nil),
		samples: prometheus.NewDesc("migrate_route_samples",
			"Compared shadow samples, by route.", labels, nil),
		weight: prometheus.NewDesc("migrate_route_canary_weight",
			"Canary weight in percent (0 outside canary), by route.", labels, nil),
		gatePass: prometheus.NewDesc("migrate_route_gate_pass",
			"1 when the route's next gate (cutover, or retire once cut over) passes, else 0.", labels, nil),
	}
	// A registry shared by two controllers keeps the first one's series.
	_ = m.registry.Register(g)
}

// Describe implements prometheus.Collector.
func (g *gateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.match
	ch <- g.samples
	ch <- g.weight
	ch <- g.gatePass
}

// Collect implements prometheus.Collector: figures are read at scrape time.
func (g *gateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, r := range g.ctrl.Routes() {
		svc := r.Service()
		st := r.State()
		weight := 0.0
		if st.Mode == ModeCanary {
			weight = float64(st.Weight)
		}
		ch <- prometheus.MustNewConstMetric(g.weight, prometheus.GaugeValue, weight, r.Name, svc)
		if g.ctrl.Shadow != nil {
			if s, ok := g.ctrl.Shadow.Summary(r.Name); ok {
				ch <- prometheus.MustNewConstMetric(g.match, prometheus.GaugeValue, s.MatchRatio, r.Name, svc)
				ch <- prometheus.MustNewConstMetric(g.samples, prometheus.GaugeValue, float64(s.Samples), r.Name, svc)
			}
		}
		if g.ctrl.Config() == nil {
			continue
		}
		rep, err := g.ctrl.CheckGate(ctx, r.Name, "")
		if err != nil {
			continue
		}
		v := 0.0
		if rep.Pass {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(g.gatePass, prometheus.GaugeValue, v, r.Name, svc)
	}
}
