package analyze_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/fixtures"
)

// TestProbeServiceFixtureFleet probes the four legacy services of the
// fixture fleet and checks what each reveals about its backing services.
func TestProbeServiceFixtureFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	fleet, err := fixtures.StartFleet(ctx)
	if err != nil {
		t.Fatalf("StartFleet: %v", err)
	}
	defer fleet.Close()

	tests := []struct {
		service  string
		ops      []string // "METHOD path" of the springdoc document
		findings []string // rule ids that must be among the findings
	}{
		{fixtures.ProductService, []string{"GET /api/product", "POST /api/product"}, []string{"http-rest", "keyvalue-redis"}},
		{fixtures.InventoryService, []string{"GET /api/inventory"}, []string{"http-rest", "relational-jpa"}},
		{fixtures.OrderService, []string{"GET /api/order", "POST /api/order"}, []string{"http-rest", "relational-jpa"}},
		{fixtures.NotificationService, nil, []string{"no-http-surface"}},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			s, err := analyze.ProbeService(ctx, fleet.URL(tt.service))
			if err != nil {
				t.Fatalf("ProbeService: %v", err)
			}
			if s.Name != tt.service {
				t.Errorf("name = %q, want %q", s.Name, tt.service)
			}
			if s.Runtime == nil || s.Runtime.Status != "UP" || !slices.Contains(s.Runtime.Health, "ping") {
				t.Fatalf("runtime = %+v", s.Runtime)
			}
			var ops []string
			if s.API != nil {
				for _, op := range s.API.Operations {
					ops = append(ops, op.Method+" "+op.Path)
				}
			}
			if !slices.Equal(ops, tt.ops) {
				t.Errorf("operations = %v, want %v", ops, tt.ops)
			}
			analyze.Assess(s)
			var ids []string
			for _, f := range s.Findings {
				ids = append(ids, f.ID)
			}
			for _, want := range tt.findings {
				if !slices.Contains(ids, want) {
					t.Errorf("findings %v lack %s", ids, want)
				}
			}
			if s.Readiness.Level == analyze.LevelUnknown {
				t.Errorf("readiness unknown for a live service: %+v", s.Readiness)
			}
		})
	}
}
