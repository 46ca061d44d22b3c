package shadow_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/fixtures"
	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/shadow"
)

// legacyBackend sends a request to a legacy service's base URL.
type legacyBackend struct{ base *url.URL }

func (b legacyBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	r.URL.Scheme, r.URL.Host, r.Host = b.base.Scheme, b.base.Host, b.base.Host
	return http.DefaultTransport.RoundTrip(r)
}

// TestFixtureFleetDifferential is the shadow run the project exists for, on
// real parts: the legacy fleet on loopback, the Wasm ports in-process, A/A
// noise learning against legacy. Faithful routes must match (order numbers
// learned as noise), and every documented slip must be found with the
// right difference type. (shadow itself imports neither fixtures nor
// proxy/wasm; only this external test does.)
func TestFixtureFleetDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the fleet and runs Wasm guests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fleet, err := fixtures.StartFleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	mods, err := fixtures.BuildWasm(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := wasm.NewRuntime(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	candidates := map[string]shadow.Backend{}
	for svc, mod := range map[string]string{fixtures.ProductService: "product", fixtures.InventoryService: "inventory", fixtures.OrderService: "order"} {
		b, err := wasm.New(ctx, wasm.Options{Path: mods[mod]}, rt)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		candidates[svc] = b
	}

	rec := shadow.RecorderFunc(func(shadow.Sample) {})
	m := shadow.NewMirror(shadow.MirrorConfig{Workers: 2, QueueSize: 256, StableAfter: 5,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, rec)
	opts := &shadow.Options{Writes: shadow.WritesAllow, BaselineWrites: true, Timeout: shadow.Duration(10 * time.Second)}
	type call struct{ svc, route, method, path, ctype, body string }
	var calls []call
	for i := 0; i < 12; i++ {
		calls = append(calls,
			call{fixtures.ProductService, "GET /api/product", "GET", "/api/product", "", ""},
			call{fixtures.InventoryService, "GET /api/inventory", "GET", "/api/inventory?skuCode=ENG-V8-500&skuCode=FL-PMP-ELEC", "", ""},
			call{fixtures.OrderService, "POST /api/order", "POST", "/api/order", "application/json",
				`{"orderLineItemsDtoList":[{"skuCode":"BRK-PD-HP","price":1.50,"quantity":1}]}`},
		)
	}
	calls = append(calls,
		call{fixtures.InventoryService, "GET /api/inventory", "GET", "/api/inventory?skuCode=BRK-PD-HP&skuCode=BRK-PD-HP", "", ""},
		call{fixtures.OrderService, "POST /api/order", "POST", "/api/order", "application/json", `{"orderLineItemsDtoList":[]}`},
		call{fixtures.OrderService, "POST /api/order", "POST", "/api/order", "application/json", `{"orderLineItemsDtoList":[`},
	)
	for _, c := range calls {
		base, _ := url.Parse(fleet.URL(c.svc))
		req, _ := http.NewRequestWithContext(ctx, c.method, base.String()+c.path, strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		in, _ := http.NewRequest(c.method, c.path, nil)
		in.Header = req.Header.Clone()
		if m.Submit(shadow.Exchange{Route: c.route, Service: c.svc, Options: opts, Request: in, Body: []byte(c.body),
			Legacy:    shadow.Response{Status: resp.StatusCode, Header: resp.Header, Body: body, Latency: time.Since(start)},
			Candidate: candidates[c.svc], Baseline: legacyBackend{base}}) != shadow.OutcomeQueued {
			t.Fatalf("copy of %s dropped", c.route)
		}
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}

	sum := func(route string) shadow.Summary {
		s, ok := m.Summary(route)
		if !ok {
			t.Fatalf("no evidence for %s", route)
		}
		return s
	}
	if s := sum("GET /api/product"); s.Samples != 12 || s.MatchRatio != 1 || s.CandidateErrors != 0 {
		t.Errorf("faithful GET /api/product: %+v", s)
	}
	inv := sum("GET /api/inventory")
	if inv.Samples != 13 || inv.Mismatches != 1 || !slices.Contains(inv.RecentUnexplained, " size, /* extra") {
		t.Errorf("duplicate-SKU slip not found as a size difference: %+v", inv)
	}
	ord := sum("POST /api/order")
	if ord.Samples != 14 || ord.Mismatches != 2 || ord.Matches != 12 {
		t.Errorf("POST /api/order: %+v (suggestions %v)", ord, m.Noise("POST /api/order").Suggestions())
	}
	wantClasses := []string{"@body body, @header/content-type content-type", "@text line"}
	for _, w := range wantClasses {
		if !slices.Contains(ord.RecentUnexplained, w) {
			t.Errorf("POST /api/order: class %q not found in %q", w, ord.RecentUnexplained)
		}
	}
	var lines []string
	for _, s := range m.Noise("POST /api/order").Suggestions() {
		lines = append(lines, s.Key)
	}
	if !slices.Contains(lines, "ignoreLines") {
		t.Errorf("order number noise not learned from the A/A baseline: %v", lines)
	}
}
