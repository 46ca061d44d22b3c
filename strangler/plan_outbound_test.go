package strangler

import (
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/analyze"
)

// TestPlanOutboundFromDependencies: an in-process candidate may call, by
// name, the services its legacy deployment depends on that the inventory
// has; a dependency the inventory lacks (a backing service) or one the
// plan gives no routes (no HTTP operations known, or each of its routes
// already planned for another service) is left out, so the planned config
// loads.
func TestPlanOutboundFromDependencies(t *testing.T) {
	inv := planInventory()
	// stock-mirror offers only a route inventory-service is planned for.
	inv.Services = append(inv.Services, analyze.Service{Name: "stock-mirror",
		API: &analyze.API{Operations: []analyze.Operation{{Method: "GET", Path: "/api/inventory"}}}})
	for i := range inv.Services {
		if inv.Services[i].Name == "order-service" {
			inv.Services[i].Deployment.DependsOn = []string{"inventory-service", "postgres", "notification-service", "stock-mirror"}
		}
	}
	res, err := Plan(inv, PlanOptions{Candidates: map[string]string{"order-service": "components/order.wasm"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(res.YAML, "/srv")
	if err != nil {
		t.Fatal(err)
	}
	raw := string(cfg.Services["order-service"].Candidate.Raw)
	if !strings.Contains(raw, `"outbound":["inventory-service"]`) {
		t.Errorf("order-service candidate = %s, want outbound [inventory-service]", raw)
	}
	if !strings.Contains(string(res.YAML), "in shadow its writes are stubbed") {
		t.Errorf("the plan does not say what outbound does:\n%s", res.YAML)
	}
}
