package strangler

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// promotionYAML gates a service without minCutoverTime, so retire falls
// back on the default; its writes are not shadowed (the default policy).
const promotionYAML = `
services:
  orders:
    legacy: http://127.0.0.1:1
    candidate: {url: "http://127.0.0.1:2"}
    mode: shadow
    routes: ["GET /api/order", "POST /api/order"]
    gate: {minSamples: 1000, minMatch: 99%, maxErrorRate: 1%, canaryMinRequests: 5}
`

func serve(r *Route, side Side, n int, failures int) {
	for i := 0; i < n; i++ {
		r.Observe(side, 10*time.Millisecond, i < failures)
	}
}

func snapshotOf(t *testing.T, tr Transition) GateSnapshot {
	t.Helper()
	var snap GateSnapshot
	if err := json.Unmarshal(tr.Evidence, &snap); err != nil {
		t.Fatalf("audit evidence %s: %v", tr.Evidence, err)
	}
	return snap
}

// TestCutoverStraightFromShadow cuts a route over from shadow on its
// shadow evidence, as Argo's promote --full would, and refuses a route
// whose evidence does not clear the gate, saying what to do.
func TestCutoverStraightFromShadow(t *testing.T) {
	ctx := context.Background()
	ev := map[string]*shadow.Evidence{
		"GET /api/order": buildEvidence("GET /api/order", sampleSpec{matches: 1500, legacy: 10 * time.Millisecond, candidate: 11 * time.Millisecond, span: time.Hour}),
	}
	rig := newGateRig(t, promotionYAML, filepath.Join(t.TempDir(), "migrate.db"), ev)
	c := rig.ctrl
	ts, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCutover, Actor: "ann"})
	if err != nil || len(ts) != 1 || ts[0].From != ModeShadow || ts[0].Forced {
		t.Fatalf("shadow → cutover on good evidence: %+v %v", ts, err)
	}
	if snap := snapshotOf(t, ts[0]); snap.Verdict != VerdictPass || snap.Shadow == nil || snap.Shadow.Samples != 1500 {
		t.Fatalf("cutover audited on %+v", snap)
	}
	// The write route has nothing compared: refused, and the refusal says
	// to fix what failed rather than to wait.
	_, err = c.Transition(ctx, TransitionRequest{Target: "POST /api/order", To: ModeCutover})
	var gateErr *GateError
	if !errors.As(err, &gateErr) || gateErr.Results["POST /api/order"].Verdict != VerdictFail ||
		!strings.Contains(err.Error(), "fix what failed") || strings.Contains(err.Error(), "collect more evidence") {
		t.Fatalf("write route cutover: %v", err)
	}
	if st := c.Route("POST /api/order").State(); st.Mode != ModeShadow {
		t.Fatalf("refused cutover moved the route: %+v", st)
	}
}

// TestEveryPromotionNeedsEvidence: entering canary is judged on the
// shadow evidence, a higher canary weight on what the step served, cutover
// from canary on both; only --force with a reason overrides, and the
// override is audited.
func TestEveryPromotionNeedsEvidence(t *testing.T) {
	ctx := context.Background()
	thin := map[string]*shadow.Evidence{
		"GET /api/order": buildEvidence("GET /api/order", sampleSpec{matches: 40, legacy: 10 * time.Millisecond, candidate: 10 * time.Millisecond, span: time.Hour}),
	}
	rig := newGateRig(t, promotionYAML, filepath.Join(t.TempDir(), "migrate.db"), thin)
	c := rig.ctrl
	r := c.Route("GET /api/order")
	var gateErr *GateError
	// 40 samples of the 1000 the gate wants: canary is refused as
	// inconclusive, and told to collect more, not to fix anything.
	_, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 5})
	if !errors.As(err, &gateErr) || gateErr.Results["GET /api/order"].Verdict != VerdictInconclusive ||
		!strings.Contains(err.Error(), "collect more evidence") || strings.Contains(err.Error(), "fix what failed") {
		t.Fatalf("canary on thin shadow evidence: %v", err)
	}
	ts, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 5, Force: true, Reason: "CAB-9", Actor: "ann"})
	if err != nil || !ts[0].Forced || snapshotOf(t, ts[0]).Verdict != VerdictInconclusive {
		t.Fatalf("forced canary: %+v %v", ts, err)
	}
	// The step has served nothing yet: a higher weight is refused.
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 50}); !errors.As(err, &gateErr) ||
		!strings.Contains(err.Error(), "step traffic") {
		t.Fatalf("canary 5%% → 50%% with no traffic: %v", err)
	}
	// A failing step: errors far over the ceiling.
	serve(r, SideLegacy, 50, 0)
	serve(r, SideCandidate, 20, 5)
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 50}); !errors.As(err, &gateErr) ||
		gateErr.Results["GET /api/order"].Verdict != VerdictFail || !strings.Contains(err.Error(), "step errors") {
		t.Fatalf("canary step with 25%% errors: %v", err)
	}
	// Lowering the weight needs nothing; the new step starts a new window.
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 2}); err != nil {
		t.Fatalf("canary 5%% → 2%%: %v", err)
	}
	serve(r, SideLegacy, 50, 0)
	serve(r, SideCandidate, 20, 0)
	ts, err = c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 50})
	if err != nil || ts[0].Forced || snapshotOf(t, ts[0]).Verdict != VerdictPass {
		t.Fatalf("canary 2%% → 50%% on a clean step: %+v %v", ts, err)
	}
	// Cutover from canary needs the step and the shadow gate; the shadow
	// evidence is still 40 samples.
	serve(r, SideCandidate, 20, 0)
	_, err = c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCutover})
	if !errors.As(err, &gateErr) {
		t.Fatalf("cutover from canary on thin shadow evidence: %v", err)
	}
	names := map[string]Criterion{}
	for _, cr := range gateErr.Results["GET /api/order"].Criteria {
		names[cr.Name] = cr
	}
	if !names["step traffic"].Pass || names["samples"].Pass || !names["samples"].Inconclusive {
		t.Fatalf("cutover criteria = %+v", gateErr.Results["GET /api/order"].Criteria)
	}
	// Shadow itself is ungated, and its audit snapshot claims no verdict.
	ts, err = c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeLegacy, Reason: "drill"})
	if err != nil {
		t.Fatal(err)
	}
	if ts, err = c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeShadow}); err != nil || snapshotOf(t, ts[0]).Verdict != "" {
		t.Fatalf("shadow: %+v %v", ts, err)
	}
}

// TestRetireNeedsACleanCutover: a forced cutover retired in the same
// second is refused; retire waits for the default minCutoverTime and for
// traffic served within the error ceiling, unless forced with a reason.
func TestRetireNeedsACleanCutover(t *testing.T) {
	ctx := context.Background()
	rig := newGateRig(t, promotionYAML, filepath.Join(t.TempDir(), "migrate.db"), nil)
	c := rig.ctrl
	r := c.Route("GET /api/order")
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCutover, Force: true, Reason: "CAB-1"}); err != nil {
		t.Fatal(err)
	}
	var gateErr *GateError
	_, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeRetired})
	if !errors.As(err, &gateErr) || !strings.Contains(err.Error(), "time in cutover: want ≥ 24h in cutover") {
		t.Fatalf("retire in the same second as cutover: %v", err)
	}
	// A day later, but nothing served since cutover: still no evidence.
	rig.advance(25 * time.Hour)
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeRetired}); !errors.As(err, &gateErr) ||
		gateErr.Results["GET /api/order"].Verdict != VerdictInconclusive || !strings.Contains(err.Error(), "0 candidate requests") {
		t.Fatalf("retire with no traffic since cutover: %v", err)
	}
	serve(r, SideCandidate, 100, 3)
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeRetired}); !errors.As(err, &gateErr) ||
		gateErr.Results["GET /api/order"].Verdict != VerdictFail {
		t.Fatalf("retire with 3%% errors since cutover: %v", err)
	}
	serve(r, SideCandidate, 400, 0)
	ts, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeRetired})
	if err != nil || len(ts) != 1 || ts[0].Forced {
		t.Fatalf("retire after a clean day: %+v %v", ts, err)
	}
	// Forcing is possible, with a reason, and audited.
	if _, err := c.Transition(ctx, TransitionRequest{Target: "POST /api/order", To: ModeCutover, Force: true, Reason: "CAB-2"}); err != nil {
		t.Fatal(err)
	}
	ts, err = c.Transition(ctx, TransitionRequest{Target: "POST /api/order", To: ModeRetired, Force: true, Reason: "legacy host decommissioned", Actor: "bob"})
	if err != nil || !ts[0].Forced || ts[0].Reason != "legacy host decommissioned" {
		t.Fatalf("forced retire: %+v %v", ts, err)
	}
}

// TestMatchRatioConfidence judges the match ratio by its Wilson bounds:
// 0.25% matching over 400 samples fails although minSamples is not
// reached; a ratio whose interval straddles the minimum is inconclusive;
// one confidently above it passes.
func TestMatchRatioConfidence(t *testing.T) {
	g := &GateConfig{MinSamples: 1000}
	min := Percent(0.99)
	g.MinMatch = &min
	tests := []struct {
		name                string
		matches, mismatches int
		verdict             string
	}{
		{"0.25% over 400 fails", 1, 399, VerdictFail},
		{"95% over 200 fails", 190, 10, VerdictFail},
		{"99.5% over 200 straddles", 199, 1, VerdictInconclusive},
		{"100% over 3000 passes", 3000, 0, VerdictPass},
		{"98.9% over 100000 fails", 98900, 1100, VerdictFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := buildEvidence("GET /api/order", sampleSpec{matches: tt.matches, mismatches: tt.mismatches})
			res := EvaluateGate(g, GateFacts{Route: "GET /api/order", To: ModeCutover, Evidence: ev})
			c := criterion(t, res, "match ratio")
			got := VerdictPass
			switch {
			case c.Inconclusive:
				got = VerdictInconclusive
			case !c.Pass:
				got = VerdictFail
			}
			if got != tt.verdict || !strings.Contains(c.Got, "at 95% confidence") {
				t.Fatalf("match ratio = %+v, want %s", c, tt.verdict)
			}
			if tt.verdict == VerdictFail && res.Verdict != VerdictFail {
				t.Fatalf("gate verdict %s with a failed match ratio", res.Verdict)
			}
		})
	}
	if lo, hi := wilson(0, 0); lo != 0 || hi != 1 {
		t.Fatalf("wilson(0, 0) = %v, %v", lo, hi)
	}
}

// TestTransitionHintsNameAllowedSteps: every refusal names only moves the
// state machine allows from where the route is.
func TestTransitionHintsNameAllowedSteps(t *testing.T) {
	words := regexp.MustCompile(`legacy|shadow|canary|cutover|retired`)
	for _, from := range Modes {
		for _, to := range Modes {
			err := CheckTransition(from, to)
			if err == nil || strings.HasPrefix(err.Error(), "already in") {
				continue
			}
			_, hint, ok := strings.Cut(err.Error(), "the next step is ")
			if !ok {
				t.Fatalf("%s → %s: no hint in %q", from, to, err)
			}
			for _, m := range words.FindAllString(hint, -1) {
				if strings.Contains(hint, "another canary weight") && m == "canary" {
					m = string(from)
				}
				if m == string(from) && from != ModeCanary {
					t.Errorf("%s → %s: hint %q names the mode the route is in", from, to, hint)
					continue
				}
				if m != string(from) && CheckTransition(from, Mode(m)) != nil {
					t.Errorf("%s → %s: hint %q names %s, which is not allowed from %s", from, to, hint, m, from)
				}
			}
		}
	}
	if err := CheckTransition(ModeShadow, ModeCutover); err != nil {
		t.Fatalf("shadow → cutover: %v", err)
	}
}

// TestWriteRouteNotShadowed: under the default writes: deny a write route
// fails its gate saying how to compare writes, instead of asking for
// samples it can never get.
func TestWriteRouteNotShadowed(t *testing.T) {
	rig := newGateRig(t, promotionYAML, filepath.Join(t.TempDir(), "migrate.db"),
		map[string]*shadow.Evidence{"POST /api/order": buildEvidence("POST /api/order", sampleSpec{skippedWrites: 37})})
	rep, err := rig.ctrl.CheckGate(context.Background(), "POST /api/order", "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != VerdictFail || len(rep.Routes) != 1 {
		t.Fatalf("report = %+v", rep)
	}
	var cov *Criterion
	for i, c := range rep.Routes[0].Criteria {
		if c.Name == "write coverage" {
			cov = &rep.Routes[0].Criteria[i]
		}
		if c.Name == "samples" && c.Hint != "" {
			t.Errorf("samples hint tells a write route to wait for traffic: %+v", c)
		}
	}
	if cov == nil || cov.Pass || cov.Inconclusive || !strings.Contains(cov.Got, "writes are not shadowed") ||
		!strings.Contains(cov.Got, "37 skipped") || !strings.Contains(cov.Hint, "shadow.writes: allow") {
		t.Fatalf("write coverage = %+v", cov)
	}
	// A read route of the same service is not affected.
	if WritesDenied("GET /api/order", nil) || !WritesDenied("POST /api/order", &shadow.Options{}) ||
		WritesDenied("POST /api/order", &shadow.Options{Writes: shadow.WritesMarked}) {
		t.Fatal("WritesDenied misreads the policy")
	}
}
