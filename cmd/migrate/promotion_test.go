package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// promotionCLIConfig leaves shadow.writes at its default (deny) and
// minCutoverTime unset (24h).
const promotionCLIConfig = `
services:
  orders:
    legacy: http://127.0.0.1:1
    candidate: {url: "http://127.0.0.1:2"}
    mode: shadow
    routes: ["GET /api/order", "POST /api/order", "GET /api/order/{id}"]
    gate: {minSamples: 1000, minMatch: 99%, maxErrorRate: 1%, canaryMinRequests: 5}
`

// evidenceOf builds evidence of matches and mismatches, one a second, and
// skipped writes.
func evidenceOf(route string, matches, mismatches, skippedWrites int) *shadow.Evidence {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	ev := shadow.NewEvidence(route, "orders")
	for i := 0; i < matches+mismatches; i++ {
		res := shadow.Result{Outcome: shadow.OutcomeMatch}
		if i < mismatches {
			res = shadow.Result{Outcome: shadow.OutcomeMismatch,
				Differences: []shadow.Difference{{Path: "/total", Type: "value", Signature: "/total value"}}}
		}
		ev.Add(shadow.Sample{At: t0.Add(time.Duration(i) * time.Second), Route: route, Service: "orders",
			Legacy: shadow.Response{Latency: 10 * time.Millisecond}, Candidate: shadow.Response{Latency: 10 * time.Millisecond},
			Result: res})
	}
	for i := 0; i < skippedWrites; i++ {
		ev.AddSkipped(shadow.OutcomeSkippedWrite)
	}
	return ev
}

// startPromotionAdmin runs a real controller on promotionCLIConfig behind
// a real admin API on loopback (startTestAdmin), without the canary walker.
func startPromotionAdmin(t *testing.T, evidence map[string]*shadow.Evidence) (string, *strangler.Controller, *shadow.Mirror) {
	t.Helper()
	return startTestAdmin(t, promotionCLIConfig, evidence, false)
}

// TestWaitForGateThenCutover runs the documented pipeline
// `until migrate gate X; do sleep 60; done && migrate cutover X` on a
// route in shadow: the gate waits while the evidence is thin, then the
// cutover from shadow goes through on it.
func TestWaitForGateThenCutover(t *testing.T) {
	route := "GET /api/order"
	admin, ctrl, mirror := startPromotionAdmin(t, map[string]*shadow.Evidence{route: evidenceOf(route, 300, 0, 0)})
	code, out, errOut := gateCLI("gate", route, "--admin", admin)
	if code != 3 || !strings.Contains(out, "gate for GET /api/order: inconclusive") || !strings.Contains(errOut, "collect more evidence") {
		t.Fatalf("gate on 300 samples: exit %d\n%s\n%s", code, out, errOut)
	}
	// More traffic arrives while the pipeline sleeps.
	mirror.Restore(route, "orders", evidenceOf(route, 2000, 0, 0), nil)
	if code, out, errOut := gateCLI("gate", route, "--admin", admin); code != 0 {
		t.Fatalf("gate on 2000 samples: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = gateCLI("cutover", route, "--admin", admin)
	if code != 0 || !strings.Contains(out, "shadow") || !strings.Contains(out, "cutover") || strings.Contains(out, "forced") {
		t.Fatalf("cutover from shadow: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := ctrl.Route(route).State(); st.Mode != strangler.ModeCutover {
		t.Fatalf("route = %+v", st)
	}
	audit, err := ctrl.Audit(context.Background(), strangler.AuditQuery{Route: route})
	if err != nil || len(audit) != 1 || audit[0].From != strangler.ModeShadow || audit[0].Forced {
		t.Fatalf("audit = %+v %v", audit, err)
	}
}

// TestCutoverFromShadowRefusedWhenEvidenceFails: 0.25% matching over
// 400 samples is a failure (the ratio is confidently below the minimum),
// not a wait; the refusal says to fix what failed.
func TestCutoverFromShadowRefusedWhenEvidenceFails(t *testing.T) {
	route := "GET /api/order"
	admin, ctrl, _ := startPromotionAdmin(t, map[string]*shadow.Evidence{route: evidenceOf(route, 1, 399, 0)})
	code, out, errOut := gateCLI("gate", route, "--admin", admin)
	if code != 3 || !strings.Contains(out, "gate for GET /api/order: fail") || !strings.Contains(errOut, "fix what failed") ||
		strings.Contains(errOut, "collect more evidence") {
		t.Fatalf("gate: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = gateCLI("cutover", route, "--admin", admin)
	if code != 3 || !strings.Contains(out, "refused, gate verdict fail") || !strings.Contains(out, "match ratio") ||
		!strings.Contains(errOut, "fix what failed") || !strings.Contains(errOut, "--force --reason") {
		t.Fatalf("cutover: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := ctrl.Route(route).State(); st.Mode != strangler.ModeShadow {
		t.Fatalf("refused cutover moved the route: %+v", st)
	}
}

// TestCanaryStepNeedsEvidence: a higher canary weight needs the current
// step to have served; --force --reason overrides and is audited.
func TestCanaryStepNeedsEvidence(t *testing.T) {
	route := "GET /api/order"
	admin, ctrl, _ := startPromotionAdmin(t, map[string]*shadow.Evidence{route: evidenceOf(route, 2000, 0, 0)})
	if code, out, errOut := gateCLI("canary", route, "--weight", "10", "--admin", admin); code != 0 {
		t.Fatalf("canary 10%%: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := gateCLI("canary", route, "--weight", "50", "--admin", admin)
	if code != 3 || !strings.Contains(out, "step traffic") {
		t.Fatalf("canary 50%% with no step traffic: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := gateCLI("canary", route, "--steps", "50,100", "--force", "--reason", "x", "--admin", admin); code != 2 || !strings.Contains(errOut, "never forced") {
		t.Fatalf("forced walk: exit %d %s", code, errOut)
	}
	if code, out, errOut := gateCLI("canary", route, "--weight", "50", "--force", "--reason", "load test window", "--admin", admin); code != 0 || !strings.Contains(out, "forced") {
		t.Fatalf("forced canary 50%%: exit %d\n%s\n%s", code, out, errOut)
	}
	r := ctrl.Route(route)
	for i := 0; i < 10; i++ {
		r.Observe(strangler.SideCandidate, 10*time.Millisecond, false)
		r.Observe(strangler.SideLegacy, 10*time.Millisecond, false)
	}
	if code, out, errOut := gateCLI("canary", route, "--weight", "80", "--admin", admin); code != 0 || strings.Contains(out, "forced") {
		t.Fatalf("canary 80%% after a clean step: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestRetireRightAfterForcedCutoverRefused: `cutover --force` then
// `retire` in the same second is refused (time in cutover, no traffic
// since); `retire --force --reason` overrides and is audited.
func TestRetireRightAfterForcedCutoverRefused(t *testing.T) {
	route := "GET /api/order"
	admin, ctrl, _ := startPromotionAdmin(t, nil)
	if code, out, errOut := gateCLI("cutover", route, "--force", "--reason", "CAB-1", "--admin", admin); code != 0 {
		t.Fatalf("forced cutover: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := gateCLI("retire", route, "--admin", admin)
	if code != 3 || !strings.Contains(out, "time in cutover") || !strings.Contains(out, "≥ 24h in cutover") ||
		!strings.Contains(out, "record since cutover") || !strings.Contains(out, "the gate's minCutoverTime") {
		t.Fatalf("retire at once: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := gateCLI("retire", route, "--force", "--admin", admin); code != 2 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("retire --force without reason: exit %d %s", code, errOut)
	}
	if code, out, errOut := gateCLI("retire", route, "--force", "--reason", "legacy host gone", "--admin", admin); code != 0 || !strings.Contains(out, "forced") {
		t.Fatalf("forced retire: exit %d\n%s\n%s", code, out, errOut)
	}
	audit, err := ctrl.Audit(context.Background(), strangler.AuditQuery{Route: route})
	if err != nil || len(audit) != 2 || audit[1].To != strangler.ModeRetired || !audit[1].Forced || audit[1].Reason != "legacy host gone" {
		t.Fatalf("audit = %+v %v", audit, err)
	}
}

// TestWriteRouteNotShadowedSaysHowToEnable: under writes: deny the gate
// of a write route says its writes are not shadowed and how to change
// that, never to keep shadowing; status counts the skipped writes.
func TestWriteRouteNotShadowedSaysHowToEnable(t *testing.T) {
	route := "POST /api/order"
	admin, _, _ := startPromotionAdmin(t, map[string]*shadow.Evidence{route: evidenceOf(route, 0, 0, 37)})
	code, out, errOut := gateCLI("gate", route, "--admin", admin)
	if code != 3 || !strings.Contains(out, "writes are not shadowed (shadow.writes: deny); 37 skipped") ||
		!strings.Contains(out, "set shadow.writes: allow (or marked") || strings.Contains(out, "keep shadowing") ||
		!strings.Contains(errOut, "fix what failed") {
		t.Fatalf("gate of a write route: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = gateCLI("status", "--admin", admin)
	if code != 0 || !strings.Contains(out, "POST /api/order: 37 writes skipped, not shadowed; set shadow.writes: allow or marked for orders") {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}
}
