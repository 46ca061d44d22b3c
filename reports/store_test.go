package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// TestWasmUsageReachesFootprint stores what the proxy measured of two
// in-process candidates, reads it back as report input and checks the
// measured memory is what the footprint section compares with the legacy
// reservation.
func TestWasmUsageReachesFootprint(t *testing.T) {
	ctx := context.Background()
	st, err := strangler.OpenStore(filepath.Join(t.TempDir(), "migrate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	usage := map[string]strangler.CandidateUsage{
		"product-service":   {Module: "product.wasm", Requests: 1200, PeakInstanceBytes: 8 << 20, PeakInstances: 4, PeakMemoryBytes: 24 << 20},
		"inventory-service": {Module: "inventory.wasm"}, // loaded, never ran: unknown, not zero
	}
	var rows []strangler.CounterRow
	for svc, u := range usage {
		data, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, strangler.CounterRow{Route: svc, Kind: strangler.CounterKindUsage, Data: data})
	}
	if err := st.SaveCounters(ctx, rows, time.Now()); err != nil {
		t.Fatal(err)
	}

	mods, err := WasmUsageFromStore(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 1 || mods["product-service"].MemoryBytes != 24<<20 {
		t.Fatalf("usage from store = %+v, want product-service at 24MiB only", mods)
	}
	rep := Build(sampleInventory(), nil, Options{Now: fixedNow, Modules: []WasmModule{
		{Service: "product-service", Component: "product", SizeBytes: 3 << 20, MemoryBytes: mods["product-service"].MemoryBytes},
		{Service: "inventory-service", Component: "inventory", SizeBytes: 3 << 20, MemoryBytes: mods["inventory-service"].MemoryBytes},
	}})
	by := map[string]ServiceFootprint{}
	for _, s := range rep.Footprint.Services {
		by[s.Service] = s
	}
	if p := by["product-service"].WasmMemoryBytes; p == nil || *p != 24<<20 {
		t.Errorf("product-service Wasm memory = %v, want 24MiB", p)
	}
	if p := by["inventory-service"].WasmMemoryBytes; p != nil {
		t.Errorf("inventory-service Wasm memory = %d, want unknown", *p)
	}
	headline := strings.Join(rep.Footprint.Headline, " ")
	want := "the Wasm routes used at most " + fmtBytes(24<<20) + " (measured by the proxy; 1 service compared)"
	if !strings.Contains(headline, want) {
		t.Errorf("footprint headline %q lacks %q", headline, want)
	}
	var md bytes.Buffer
	if err := rep.Render(&md, "md"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), want) {
		t.Errorf("markdown report lacks %q", want)
	}
}

// TestReportUsesTheGatesVerdict: a route whose numbers clear the four
// criteria the report can measure itself, but whose gate also asks for a
// clean recent window, is reported blocked — as `migrate gate` would say.
func TestReportUsesTheGatesVerdict(t *testing.T) {
	match := strangler.Percent(0.5)
	g := &strangler.GateConfig{MinSamples: 10, MinMatch: &match, CleanWindow: 50}
	ev := shadow.NewEvidence("GET /a", "svc")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		res := shadow.Result{Outcome: shadow.OutcomeMatch}
		if i%4 == 0 { // 25% mismatches: above minMatch's 50%, but unexplained and recent
			res = shadow.Result{Outcome: shadow.OutcomeMismatch, Differences: []shadow.Difference{
				{Path: "/id", Type: "value", Signature: "/id value"}}}
		}
		ev.Add(shadow.Sample{At: at.Add(time.Duration(i) * time.Second), Route: "GET /a", Result: res})
	}
	checks := gateVerdict(g, "GET /a", ev, nil, false)
	rep := Build(nil, []Route{{Route: "GET /a", Service: "svc", Mode: "shadow", Gate: reportGate(g),
		Evidence: reportEvidence(ev, nil), Checks: checks}}, Options{Now: fixedNow})
	rr := rep.Services[0].Routes[0]
	if rr.Status != StatusBlocked {
		t.Fatalf("status = %s, want %s; checks %+v", rr.Status, StatusBlocked, rr.Checks)
	}
	var recent *GateCheck
	for i, c := range rr.Checks {
		if c.Name == "recent differences" {
			recent = &rr.Checks[i]
		}
		if c.Name == "match" && (!c.Passed || c.Threshold != 0.5) {
			t.Errorf("match check = %+v, want passed against 0.5", c)
		}
	}
	if recent == nil || recent.Passed || !strings.Contains(recent.Detail, "value differs at /id") || strings.Contains(recent.Detail, "/id value") {
		t.Fatalf("recent-differences check = %+v, want a failure naming the class in words", recent)
	}
}
