package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/fixtures"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// TestDiffsReplayStubsWrites: replaying a stored order against the order
// port runs it as a shadow copy again — it reads the real inventory
// service, its reservation is stubbed (inventory receives no write) and
// compared with legacy's stored calls: the side-effect difference is
// still there.
func TestDiffsReplayStubsWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mods, err := fixtures.BuildWasm(ctx, filepath.Join(dir, "components"))
	if err != nil {
		t.Skipf("fixture components do not build here: %v", err)
	}
	var reads, writes atomic.Int64
	realInventory := fixtures.NewInventoryService()
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			reads.Add(1)
		} else {
			writes.Add(1)
		}
		realInventory.ServeHTTP(w, r)
	}))
	defer inventory.Close()
	yaml := "store: migrate.db\nservices:\n  inventory-service:\n    legacy: " + inventory.URL +
		"\n    routes: [\"GET /api/inventory\"]\n  order-service:\n    legacy: http://127.0.0.1:1\n    candidate: {wasm: " +
		filepath.Join("components", filepath.Base(mods["order"])) + ", outbound: [inventory-service]}\n    routes: [\"POST /api/order\"]\n    mode: shadow\n    shadow: {writes: allow}\n"
	config := filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := strangler.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	// What the proxy stored: legacy asked inventory and placed the order;
	// the port's answer differed in its order number only.
	body := []byte(`{"orderLineItemsDtoList":[{"skuCode":"BRK-PD-HP","price":1.50,"quantity":2}]}`)
	text := http.Header{"Content-Type": {"text/plain;charset=UTF-8"}}
	legacy := shadow.Response{Status: 201, Header: text, Body: []byte("Order Number 1b4e28ba-2fa1-11d2-883f-0016d3cca427 Placed Successfully"),
		Calls: []shadow.Call{{Method: "GET", To: "inventory-service", URL: "/api/inventory?skuCode=BRK-PD-HP", Status: 200}}, CallsRecorded: true}
	cand := legacy
	cand.Body = []byte("Order Number 6fa459ea-ee8a-3ca4-894e-db77e160355e Placed Successfully")
	cand.Calls = nil
	s := shadow.Sample{At: time.Now(), Route: "POST /api/order", Service: "order-service",
		Request: shadow.RecordedRequest{Method: "POST", URL: "/api/order", Header: http.Header{"Content-Type": {"application/json"}}, Body: body},
		Legacy:  legacy, Candidate: cand}
	s.Result = shadow.Compare(legacy, cand, nil, nil)
	admin := serveStoredSamples(t, cfg, s)

	var out, errb bytes.Buffer
	code := run([]string{"diffs", "POST /api/order", "--admin", admin, "--replay", "--all", "--config", config, "-o", "json"},
		&streams{in: strings.NewReader(""), out: &out, err: &errb})
	if code != exitGateOrDiff || !strings.Contains(out.String(), "@call/POST /api/inventory/reserve side-effect") {
		t.Fatalf("exit %d; stderr %s; out %s", code, errb.String(), out.String())
	}
	if reads.Load() != 1 || writes.Load() != 0 {
		t.Errorf("inventory received %d reads and %d writes from the replay, want 1 and 0", reads.Load(), writes.Load())
	}
}
