package reports

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

const verdictConfig = `
services:
  orders:
    legacy: http://127.0.0.1:1
    candidate: {url: "http://127.0.0.1:2"}
    routes: ["GET /api/order", "GET /api/order/{id}", "POST /api/order"]
    gate: {minSamples: 1000, minMatch: 99%, maxErrorRate: 1%}
`

// TestReportTimelineAndStepsTellTheTruth records, through a real
// controller on a real SQLite file, a route cut over by force on thin
// evidence, a route matching 0.25% of hundreds of samples, and a write
// route whose writes are not shadowed, then reads the report: the
// timeline shows the forced cutover as inconclusive (and shadow as
// ungated, not passed), the 0.25% route is blocked on a failed match
// ratio, and the write route's next step is to shadow its writes, not to
// collect samples.
func TestReportTimelineAndStepsTellTheTruth(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg, err := strangler.ParseConfig([]byte(verdictConfig), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := strangler.OpenStore(filepath.Join(dir, "migrate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, nil)
	defer mirror.Close(ctx)
	ctrl := strangler.NewController(st, nil, nil)
	ctrl.Shadow = mirror
	if _, err := ctrl.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	add := func(route string, matches, mismatches, skipped int) {
		ev := shadow.NewEvidence(route, "orders")
		for i := 0; i < matches+mismatches; i++ {
			res := shadow.Result{Outcome: shadow.OutcomeMatch}
			if i < mismatches {
				res = shadow.Result{Outcome: shadow.OutcomeMismatch, Differences: []shadow.Difference{{Path: "/total", Type: "value", Signature: "/total value"}}}
			}
			ev.Add(shadow.Sample{At: t0.Add(time.Duration(i) * time.Second), Route: route, Service: "orders",
				Legacy: shadow.Response{Latency: time.Millisecond}, Candidate: shadow.Response{Latency: time.Millisecond}, Result: res})
		}
		for i := 0; i < skipped; i++ {
			ev.AddSkipped(shadow.OutcomeSkippedWrite)
		}
		mirror.Restore(route, "orders", ev, nil)
	}
	if _, err := ctrl.Transition(ctx, strangler.TransitionRequest{Target: "orders", To: strangler.ModeShadow, Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	add("GET /api/order", 120, 0, 0)
	add("GET /api/order/{id}", 1, 399, 0)
	add("POST /api/order", 0, 0, 37)
	if _, err := ctrl.Transition(ctx, strangler.TransitionRequest{Target: "GET /api/order", To: strangler.ModeCutover,
		Force: true, Reason: "CAB-7", Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	routes, err := FromStore(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(sampleInventory(), routes, Options{Now: fixedNow})
	by := map[string]RouteReport{}
	for _, svc := range rep.Services {
		for _, rr := range svc.Routes {
			by[rr.Route] = rr
		}
	}
	tl := by["GET /api/order"].Timeline
	if len(tl) != 2 || tl[0].To != "shadow" || tl[0].Verdict != "" || tl[1].To != "cutover" || !tl[1].Forced || tl[1].Verdict != "inconclusive" {
		t.Fatalf("timeline = %+v", tl)
	}
	if rr := by["GET /api/order/{id}"]; rr.Status != StatusBlocked {
		t.Fatalf("0.25%% route status %s, checks %+v", rr.Status, rr.Checks)
	}
	var html, md bytes.Buffer
	if err := rep.Render(&html, "html"); err != nil {
		t.Fatal(err)
	}
	if err := rep.Render(&md, "md"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), `<span class="pill t-warn">gate inconclusive</span>`) ||
		strings.Contains(html.String(), "gate pass") {
		t.Error("HTML timeline does not show the forced cutover as inconclusive")
	}
	if !strings.Contains(md.String(), "shadow → cutover (gate inconclusive) (forced)") {
		t.Error("Markdown timeline does not show the forced cutover as inconclusive")
	}
	var shadowWrites, collectWrites bool
	for _, st := range rep.Summary.NextSteps {
		if st.Route != "POST /api/order" {
			continue
		}
		switch st.Action {
		case "shadow-writes":
			shadowWrites = strings.Contains(st.Text, "shadow.writes: allow (or marked)") && strings.Contains(st.Text, "37 skipped")
		case "collect-samples":
			collectWrites = true
		}
	}
	if !shadowWrites || collectWrites {
		t.Fatalf("next steps for the write route = %+v", rep.Summary.NextSteps)
	}
}

// TestNextStepsNameAllowedMoves: a ready route's next step is a move its
// mode allows — from shadow a canary or a cutover, from legacy (rolled
// back) shadowing again, never "promote to canary" straight from legacy.
func TestNextStepsNameAllowedMoves(t *testing.T) {
	ms := time.Millisecond
	ev := &Evidence{Samples: 2000, Matches: 2000, Legacy: Latency{P50: 2 * ms, P95: 4 * ms, P99: 5 * ms},
		Candidate: Latency{P50: 2 * ms, P95: 4 * ms, P99: 5 * ms}}
	routes := []Route{
		{Route: "GET /api/order", Service: "order-service", Mode: "legacy", Evidence: ev},
		{Route: "GET /api/inventory", Service: "inventory-service", Mode: "shadow", Evidence: ev},
	}
	rep := Build(sampleInventory(), routes, Options{Now: fixedNow})
	steps := map[string]Step{}
	for _, st := range rep.Summary.NextSteps {
		if st.Route != "" {
			steps[st.Route] = st
		}
	}
	if st := steps["GET /api/order"]; st.Action != "start-shadow" || strings.Contains(st.Text, "to canary") {
		t.Errorf("rolled-back route's step = %+v", st)
	}
	if st := steps["GET /api/inventory"]; st.Action != "promote" || !strings.Contains(st.Text, "cut it over") {
		t.Errorf("shadowed route's step = %+v", st)
	}
	for route, st := range steps {
		mode := map[string]strangler.Mode{"GET /api/order": strangler.ModeLegacy, "GET /api/inventory": strangler.ModeShadow}[route]
		for _, m := range []strangler.Mode{strangler.ModeCanary, strangler.ModeCutover} {
			if strings.Contains(st.Text, "to "+string(m)) && strangler.CheckTransition(mode, m) != nil {
				t.Errorf("%s (%s): step %q names %s, not allowed from %s", route, mode, st.Text, m, mode)
			}
		}
	}
}

// TestUnshadowedWritesFromPlainInput: report input without the gate's own
// checks still tells a write route whose writes were all skipped to
// shadow them, not to collect samples.
func TestUnshadowedWritesFromPlainInput(t *testing.T) {
	routes := []Route{{Route: "POST /api/order", Service: "order-service", Mode: "shadow",
		Evidence: &Evidence{SkippedWrites: 37}}}
	rep := Build(sampleInventory(), routes, Options{Now: fixedNow})
	var actions []string
	for _, st := range rep.Summary.NextSteps {
		if st.Route == "POST /api/order" {
			actions = append(actions, st.Action)
		}
	}
	if strings.Join(actions, ",") != "shadow-writes" {
		t.Fatalf("next steps for an unshadowed write route: %v (%+v)", actions, rep.Summary.NextSteps)
	}
}
