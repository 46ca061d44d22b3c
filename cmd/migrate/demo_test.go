package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/strangler"
)

// TestDemoJourney runs the whole journey as `migrate demo` does, with less
// traffic, and checks what a newcomer is promised: the faithful port shows
// no difference, the ports with documented slips are refused at the gate
// with the difference named, and the inventory, config and report exist.
func TestDemoJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo journey builds Wasm components and drives traffic")
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &errOut}
	o := &demoOptions{dir: dir, requests: 2000, concurrency: 4, rate: 400}
	if err := runDemo(context.Background(), o, &globalOptions{output: "table", logFormat: "text"}, s); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"no unexplained difference in",            // GET /api/product is faithful
		"size at /",                               // duplicate SKUs not collapsed
		"noise learned: Order Number <uuid>",      // learned from the A/A baseline
		"GET /api/inventory stays in shadow",      // slip (b) refused
		"POST /api/order stays in shadow",         // slip (c) refused
		"match ratio",                             // ... and why
		"side-effect POST /api/inventory/reserve", // slip (d): the port reserves stock legacy never does
		"side effects",                            // ... which fails the gate
		"Journey complete",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q\n%s", want, got)
		}
	}
	// The cutover is `migrate cutover` from shadow, decided by the gate on
	// the shadow evidence: the audit log shows that one move, not a
	// canary skipped through at 100%.
	st, err := strangler.OpenStore(filepath.Join(dir, "migrate.db"))
	if err != nil {
		t.Fatal(err)
	}
	audit, err := st.Audit(context.Background(), strangler.AuditQuery{Route: "GET /api/product"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var moves []string
	for _, a := range audit {
		moves = append(moves, string(a.From)+">"+string(a.To))
	}
	if strings.Join(moves, ",") != "legacy>shadow,shadow>cutover" || audit[1].Forced || !strings.Contains(string(audit[1].Evidence), `"verdict":"pass"`) {
		t.Errorf("GET /api/product audit = %v (%+v)", moves, audit)
	}
	inv, err := analyze.ReadInventory(filepath.Join(dir, "inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Order) == 0 || inv.Order[0] != "product-service" {
		t.Errorf("migration order = %v, want product-service first", inv.Order)
	}
	report, err := os.ReadFile(filepath.Join(dir, "migrate-report.html"))
	if err != nil {
		t.Fatal(err)
	}
	// The footprint compares legacy reservations with the memory the
	// proxy measured the in-process candidates using.
	for _, want := range []string{"GET /api/inventory", "<svg", "Decision summary", "the Wasm routes used at most"} {
		if !bytes.Contains(report, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	if bytes.Contains(report, []byte(`src="http`)) || bytes.Contains(report, []byte(`@import`)) {
		t.Error("report loads something from the network; it must be self-contained")
	}
}
