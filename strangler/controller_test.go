package strangler

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckTransition(t *testing.T) {
	tests := []struct {
		from, to Mode
		ok       bool
	}{
		{ModeLegacy, ModeShadow, true},
		{ModeShadow, ModeCanary, true},
		{ModeCanary, ModeCanary, true},
		{ModeCanary, ModeCutover, true},
		{ModeCutover, ModeRetired, true},
		{ModeRetired, ModeLegacy, true},
		{ModeCanary, ModeLegacy, true},
		{ModeLegacy, ModeCanary, false},
		{ModeLegacy, ModeCutover, false},
		{ModeShadow, ModeRetired, false},
		{ModeCanary, ModeRetired, false},
		{ModeShadow, ModeShadow, false},
		{ModeCutover, ModeShadow, false},
		{ModeLegacy, "live", false},
	}
	for _, tt := range tests {
		if err := CheckTransition(tt.from, tt.to); (err == nil) != tt.ok {
			t.Errorf("%s → %s: err = %v, want ok=%v", tt.from, tt.to, err, tt.ok)
		}
	}
}

func TestControllerTransitions(t *testing.T) {
	ctx := context.Background()
	c := newTestController(t, filepath.Join(t.TempDir(), "migrate.db"))

	// Unknown names list the valid ones.
	_, err := c.Transition(ctx, TransitionRequest{Target: "GET /nope", To: ModeShadow})
	var unknown *UnknownTargetError
	if !errors.As(err, &unknown) || len(unknown.Routes) != 3 || strings.Join(unknown.Services, ",") != "orders,products" {
		t.Fatalf("unknown target: %v", err)
	}
	// No candidate: cannot leave legacy.
	var invalid *InvalidTransitionError
	if _, err := c.Transition(ctx, TransitionRequest{Target: "products", To: ModeShadow}); !errors.As(err, &invalid) {
		t.Fatalf("products without candidate: %v", err)
	}
	// Skipping a step is refused, for the whole service.
	if _, err := c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeCanary, Weight: 5}); !errors.As(err, &invalid) {
		t.Fatalf("legacy → canary: %v", err)
	}
	ts, err := c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeShadow})
	if err != nil || len(ts) != 2 {
		t.Fatalf("orders → shadow: %v %v", ts, err)
	}
	// Already there: nothing to do, no audit noise.
	if ts, err := c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeShadow}); err != nil || len(ts) != 0 {
		t.Fatalf("orders → shadow again: %v %v", ts, err)
	}
	// Canary uses the service weight unless given; a second canary changes it.
	ts, err = c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary})
	if err != nil || ts[0].ToWeight != DefaultCanaryWeight {
		t.Fatalf("canary default weight: %+v %v", ts, err)
	}
	ts, err = c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 50})
	if err != nil || ts[0].FromWeight != DefaultCanaryWeight || ts[0].ToWeight != 50 {
		t.Fatalf("canary reweight: %+v %v", ts, err)
	}
	var bad *RequestError
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 101}); !errors.As(err, &bad) {
		t.Fatalf("weight 101: %v", err)
	}
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeRetired}); !errors.As(err, &invalid) {
		t.Fatalf("canary → retired: %v", err)
	}
	// Rollback goes straight to legacy.
	ts, err = c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeLegacy, Reason: "p99"})
	if err != nil || len(ts) != 2 || c.Route("GET /api/order").State() != (RouteState{Mode: ModeLegacy}) {
		t.Fatalf("rollback: %+v %v", ts, err)
	}
}

func TestControllerGateHook(t *testing.T) {
	ctx := context.Background()
	c := newTestController(t, filepath.Join(t.TempDir(), "migrate.db"))
	var seen []GateInput
	c.Gate = func(_ context.Context, in GateInput) (GateResult, error) {
		seen = append(seen, in)
		if in.To.Mode == ModeCutover {
			return GateResult{Pass: false, Criteria: []Criterion{{Name: "samples", Want: ">= 1000", Got: "12"}},
				Evidence: []byte(`{"samples":12}`)}, nil
		}
		return GateResult{Pass: true}, nil
	}
	for _, to := range []Mode{ModeShadow, ModeCanary} {
		if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCutover})
	var gate *GateError
	if !errors.As(err, &gate) || !strings.Contains(err.Error(), "samples: want >= 1000, got 12") {
		t.Fatalf("gate not met: %v", err)
	}
	if c.Route("GET /api/order").State().Mode != ModeCanary {
		t.Fatal("a refused cutover changed the mode")
	}
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCutover, Force: true}); err == nil {
		t.Fatal("--force without a reason was accepted")
	}
	ts, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCutover, Force: true, Reason: "CAB-1", Actor: "carol"})
	if err != nil || !ts[0].Forced || string(ts[0].Evidence) != `{"samples":12}` {
		t.Fatalf("forced cutover: %+v %v", ts, err)
	}
	// Rollback is never gated.
	n := len(seen)
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeLegacy}); err != nil || len(seen) != n {
		t.Fatalf("rollback consulted the gate or failed: %v", err)
	}
	if seen[0].From.Mode != ModeLegacy || seen[0].To.Mode != ModeShadow || seen[0].Service != "orders" {
		t.Fatalf("gate input = %+v", seen[0])
	}
}

func TestApplyKeepsStateAcrossReload(t *testing.T) {
	ctx := context.Background()
	c := newTestController(t, filepath.Join(t.TempDir(), "migrate.db"))
	if _, err := c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeShadow}); err != nil {
		t.Fatal(err)
	}
	before := c.Route("GET /api/order")
	cfg, err := ParseConfig([]byte(strings.Replace(storeConfig, `"POST /api/order"`, `"POST /api/order", "GET /api/order/{id}"`, 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := c.Apply(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if routes["GET /api/order"] != before || before.State().Mode != ModeShadow {
		t.Fatal("reload replaced a live route or its state")
	}
	if routes["GET /api/order/{id}"].State().Mode != ModeLegacy {
		t.Fatal("a new route did not start on its service's mode")
	}
}
