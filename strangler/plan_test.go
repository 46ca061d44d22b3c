package strangler

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/analyze"
)

var update = flag.Bool("update", false, "rewrite golden files")

func planInventory() *analyze.Inventory {
	return &analyze.Inventory{
		APIVersion: analyze.APIVersion, Kind: "Inventory",
		Order: []string{"inventory-service", "order-service"},
		Services: []analyze.Service{
			{Name: "order-service", Namespace: "shop",
				API: &analyze.API{Source: "order-service.json", Format: "openapi-3.0", Operations: []analyze.Operation{
					{Method: "post", Path: "/api/order", OperationID: "placeOrder", Tags: []string{"order"}},
					{Method: "get", Path: "/api/order", OperationID: "listOrders"},
					{Method: "get", Path: "/api/order/{id}"},
					{Method: "get", Path: "/api/order/{orderId}"}, // same shape as /{id}: skipped
				}},
				Deployment: &analyze.Deployment{Kind: "Deployment", Upstream: "http://order-service.shop:8080"},
				Readiness:  analyze.Readiness{Score: 72, Level: "ready-with-conditions"}},
			{Name: "inventory-service",
				API: &analyze.API{Source: "inventory.yaml", Format: "openapi-3.1", Operations: []analyze.Operation{
					{Method: "GET", Path: "/api/inventory"},
					{Method: "GET", Path: "/api/order"}, // already planned for order-service... planned first here
				}},
				Deployment: &analyze.Deployment{Kind: "Deployment", Ports: []analyze.Port{{Port: 9090}}, Routes: []string{"/"}}},
			{Name: "notification-service"}, // no HTTP operations: skipped
			{Name: "redis", Findings: []analyze.Finding{{ID: analyze.BackingServiceRule}}}, // not migrated: skipped as such
			{Name: "product-service", Runtime: &analyze.Runtime{Source: "http://127.0.0.1:8081",
				Routes: []string{"GET /api/product", "POST /api/product"}}},
		},
	}
}

func TestPlanGolden(t *testing.T) {
	res, err := Plan(planInventory(), PlanOptions{Source: "inventory.json",
		Upstreams: map[string]string{"product-service": "http://products.internal:8080/"}})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "plan.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, res.YAML, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(res.YAML) {
		t.Errorf("plan differs from %s (go test -update to accept):\n%s", golden, res.YAML)
	}
	cfg, err := ParseConfig(res.YAML, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Services != 3 || res.Routes != 6 || len(res.Skipped) != 4 {
		t.Errorf("services %d routes %d skipped %q", res.Services, res.Routes, res.Skipped)
	}
	for _, s := range res.Skipped {
		if strings.HasPrefix(s, "service redis:") && !strings.Contains(s, "backing service") {
			t.Errorf("redis skipped as %q; it is a backing service, not one lacking an OpenAPI document", s)
		}
	}
	checks := map[string]string{
		"order-service":     "http://order-service.shop:8080",
		"inventory-service": "http://inventory-service:9090",
		"product-service":   "http://products.internal:8080",
	}
	for svc, want := range checks {
		if got := cfg.Services[svc].Legacy; got != want {
			t.Errorf("%s legacy = %s, want %s", svc, got, want)
		}
		if cfg.Services[svc].Mode != ModeLegacy {
			t.Errorf("%s starts in %s", svc, cfg.Services[svc].Mode)
		}
	}
	if cfg.Default != "http://inventory-service:9090" {
		t.Errorf("default = %q", cfg.Default)
	}
	if got := cfg.ServiceOf("GET /api/order"); got != "inventory-service" {
		t.Errorf("GET /api/order planned for %q (migration order first)", got)
	}
}

func TestPlanErrors(t *testing.T) {
	inv := planInventory()
	if _, err := Plan(inv, PlanOptions{Upstreams: map[string]string{"nope": "http://x"}}); err == nil || !strings.Contains(err.Error(), "order-service") {
		t.Errorf("unknown --upstream service: %v", err)
	}
	if _, err := Plan(inv, PlanOptions{Upstreams: map[string]string{"order-service": "x:1"}}); err == nil {
		t.Error("bad --upstream URL accepted")
	}
	if _, err := Plan(&analyze.Inventory{Services: []analyze.Service{{Name: "a"}}}, PlanOptions{}); err == nil {
		t.Error("an inventory without operations planned a config")
	}
}

func TestPlanCandidatesAndGate(t *testing.T) {
	res, err := Plan(planInventory(), PlanOptions{
		Candidates: map[string]string{"order-service": "components/order.wasm", "product-service": "http://products.spin.local:3000"},
		Reusable:   map[string]bool{"order-service": true},
		Gate:       &GateConfig{MinSamples: 300}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(res.YAML, "/srv")
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Services["order-service"].Candidate; c == nil || c.Wasm != "components/order.wasm" || !strings.Contains(string(c.Raw), `"reuse":10000`) {
		t.Errorf("order-service candidate = %+v", c)
	}
	if !strings.Contains(string(res.YAML), "preinit: true to start each fresh instance") {
		t.Error("the plan does not say how a reusable guest keeps fresh instances cheaply (preinit)")
	}
	if c := cfg.Services["product-service"].Candidate; c == nil || c.URL != "http://products.spin.local:3000" {
		t.Errorf("product-service candidate = %+v", c)
	}
	if cfg.Services["inventory-service"].Candidate != nil {
		t.Error("a service without --candidate got one")
	}
	if g := cfg.Services["order-service"].Gate; g == nil || g.MinSamples != 300 || g.MinMatch != nil {
		t.Errorf("gate = %+v", g)
	}
	if _, err := Plan(planInventory(), PlanOptions{Candidates: map[string]string{"nope": "a.wasm"}}); err == nil {
		t.Error("--candidate for an unknown service accepted")
	}
}
