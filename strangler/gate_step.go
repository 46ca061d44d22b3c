package strangler

import (
	"fmt"
	"time"
)

// StepWindow is what a route served since it entered its current mode and
// weight: the evidence a promotion out of a canary step is judged on.
type StepWindow struct {
	// Since is when the step began (or when this process first saw it).
	Since time.Time
	// Legacy and Candidate are each side's counters since then, and
	// LegacyAll legacy's whole record (the reference when the step left
	// legacy too little traffic, as at 100%).
	Legacy, Candidate SideSnapshot
	LegacyAll         SideSnapshot
}

// stepBaseline is a route's counters when it entered the state it is in.
type stepBaseline struct {
	State             RouteState
	At                time.Time
	Legacy, Candidate SideSnapshot
}

// markStep records r's counters as the start of the state it is now in.
// The controller calls it on every committed transition and when a route
// is first served by this process (a restarted proxy's step window starts
// afresh, as a resumed canary walk's does).
func markStep(r *Route, now time.Time) {
	r.step.Store(&stepBaseline{State: r.State(), At: now, Legacy: r.Legacy.Snapshot(), Candidate: r.Candidate.Snapshot()})
}

// stepWindow is what r served since its current state began. A state
// changed by another replica (the baseline belongs to an older state)
// starts its window now.
func stepWindow(r *Route, now time.Time) *StepWindow {
	b := r.step.Load()
	if b == nil || b.State != r.State() {
		markStep(r, now)
		b = r.step.Load()
	}
	leg, cand := r.Legacy.Snapshot(), r.Candidate.Snapshot()
	return &StepWindow{Since: b.At, Legacy: subSnap(leg, b.Legacy), Candidate: subSnap(cand, b.Candidate), LegacyAll: leg}
}

// stepCriteria judges a canary step on what it served: enough candidate
// requests, an error rate within the ceiling over legacy's, and, when the
// gate bounds it, latency against legacy's. They are the checks a
// progressive canary walk makes at each step, so a manual promotion asks
// for the same evidence as an automatic one.
func stepCriteria(g *GateConfig, w *StepWindow) []Criterion {
	minReq := g.canaryMinRequests()
	want := fmt.Sprintf("≥ %d candidate requests this step", minReq)
	if w == nil {
		return []Criterion{miss("step traffic", want, "step start unknown", "", true)}
	}
	cand := w.Candidate
	var out []Criterion
	thin := cand.Requests < minReq
	got := fmt.Sprintf("%d since %s", cand.Requests, w.Since.UTC().Format(time.RFC3339))
	if thin {
		c := miss("step traffic", want, got, signed(cand.Requests-minReq), true)
		c.Hint = "let the step serve more traffic, then promote again"
		out = append(out, c)
	} else {
		out = append(out, pass("step traffic", want, got))
	}
	legRef, legWhat := legacyReference(w.Legacy, w.LegacyAll, minReq)
	errs := errorCriterion("step errors", cand, legRef, legWhat, g.canaryMaxErrorRate(), minReq)
	if !errs.Pass && cand.Requests > 0 {
		errs.Hint = "the candidate fails more often than legacy here; roll back and fix it"
	}
	out = append(out, errs)
	if g.MaxP99Ratio > 0 {
		out = append(out, latencyCriterion("step latency", "step latency", cand, legRef, legWhat, g.MaxP99Ratio, thin))
	}
	return out
}

// legacyReference is what a step's candidate figures are judged against:
// legacy's over the same window, or over its whole record when the step
// left legacy too little traffic (at 100%, none).
func legacyReference(step, all SideSnapshot, minReq int64) (SideSnapshot, string) {
	if step.Requests < minReq {
		return all, "legacy overall"
	}
	return step, "legacy this step"
}

// errorCriterion judges a step's candidate error rate: it may exceed the
// ceiling only as far as legacy's (legRef, described by legWhat) does — an
// upstream outage fails both sides; it is not the candidate's.
func errorCriterion(name string, cand, legRef SideSnapshot, legWhat string, ceiling float64, minReq int64) Criterion {
	legRate := legRef.ErrorRate()
	allowed := ceiling + legRate
	want := "≤ " + FormatPercent(ceiling)
	if legRate > 0 {
		want = fmt.Sprintf("≤ %s (%s over %s %s)", FormatPercent(allowed), FormatPercent(ceiling), legWhat, FormatPercent(legRate))
	}
	if cand.Requests == 0 {
		return miss(name, want, "no candidate requests", "", true)
	}
	rate := cand.ErrorRate()
	got := fmt.Sprintf("%s (%d of %d)", FormatPercent(rate), cand.Errors, cand.Requests)
	if rate <= allowed {
		return pass(name, want, got)
	}
	// With thin traffic a miss is inconclusive, unless the errors already
	// exceed what the minimum traffic could absorb.
	thin := cand.Requests < minReq
	certain := float64(cand.Errors) > allowed*float64(minReq)
	return miss(name, want, got, points(rate-allowed), thin && !certain)
}

// latencyCriterion judges a step's candidate latency against legacy's
// (legRef): at most maxRatio times it. A p99 of a few requests is their
// slowest one, so one outlier would fail a healthy candidate; below
// canaryP99MinRequests the median is compared instead, against the same
// ceiling. noneName names the criterion when either side has no latency.
func latencyCriterion(name, noneName string, cand, legRef SideSnapshot, legWhat string, maxRatio float64, thin bool) Criterion {
	q, qName := 0.99, "p99"
	if cand.Requests < canaryP99MinRequests {
		q, qName = 0.5, "p50"
	}
	want := fmt.Sprintf("≤ %.2f× legacy %s", maxRatio, qName)
	cq, lq := cand.Quantile(q), legRef.Quantile(q)
	if cand.Requests == 0 || lq <= 0 {
		return miss(noneName, want, "no latency on both sides", "", true)
	}
	ratio := float64(cq) / float64(lq)
	got := fmt.Sprintf("%.2f× (candidate %s, %s %s)", ratio, fmtLatency(cq), legWhat, fmtLatency(lq))
	if ratio <= maxRatio {
		return pass(name, want, got)
	}
	return miss(name, want, got, fmt.Sprintf("+%.2f×", ratio-maxRatio), thin)
}
