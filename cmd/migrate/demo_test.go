package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
	var out, errOut lockedBuffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &errOut}
	// --keep: the journey, then everything stays up until the context ends.
	o := &demoOptions{dir: dir, requests: 2000, concurrency: 4, rate: 400, keep: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, o, &globalOptions{output: "table", logFormat: "text"}, s) }()
	deadline := time.After(5 * time.Minute)
	for !strings.Contains(out.String(), "Still running") {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("demo ended before it said what still runs: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		case <-deadline:
			cancel()
			t.Fatalf("demo did not finish its journey\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The printed status command runs as is against the kept proxy: the
	// config the demo wrote names the admin address it really serves on.
	m := regexp.MustCompile(`(?m)^\s+migrate status --config (\S+)$`).FindStringSubmatch(out.String())
	if m == nil {
		cancel()
		t.Fatalf("demo --keep prints no status command:\n%s", out.String())
	}
	admin := regexp.MustCompile(`(?m)^  admin   (http://\S+)`).FindStringSubmatch(out.String())
	if admin == nil {
		cancel()
		t.Fatalf("demo --keep prints no admin address:\n%s", out.String())
	}
	cfg, err := strangler.LoadConfig(m[1])
	if err != nil || "http://"+cfg.Admin != admin[1] {
		t.Errorf("config %s names admin %v (err %v); the demo serves it on %s", m[1], cfg.Admin, err, admin[1])
	}
	stdout, stderr, code := runCLI(t, "status", "--config", m[1], "-o", "json")
	if code != exitOK || !strings.Contains(stdout, `"GET /api/product"`) || !strings.Contains(stdout, `"samples"`) {
		t.Errorf("migrate status --config %s against the kept proxy: exit %d\n%s%s", m[1], code, stdout, stderr)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"no unexplained difference in",       // GET /api/product is faithful
		"array has extra items at (root)",    // duplicate SKUs not collapsed
		"header Content-Type differs",        // the order port answers JSON, not text
		"noise learned: Order Number <uuid>", // learned from the A/A baseline
		"GET /api/inventory stays in shadow", // slip (b) refused
		"POST /api/order stays in shadow",    // slip (c) refused
		"match ratio",                        // ... and why
		"POST /api/inventory/reserve",        // slip (d): the port reserves stock legacy never does
		"side effects",                       // ... which fails the gate
		"Journey complete",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q\n%s", want, got)
		}
	}
	// The sample counts of the difference classes form one column, however
	// long a class's name (a side effect names its method and path), and no
	// line ends in blanks.
	column := -1
	for _, m := range regexp.MustCompile(`(?m)^    ✗ .* (\d+) samples$`).FindAllStringSubmatchIndex(got, -1) {
		line, at := got[m[0]:m[1]], displayWidth(got[m[0]:m[2]])
		if column == -1 {
			column = at
		} else if at != column {
			t.Errorf("difference counts are not in one column: %q counts at %d, the first at %d", line, at, column)
		}
	}
	if column == -1 {
		t.Errorf("demo output lists no difference class with its count:\n%s", got)
	}
	// What a step's command reports on stderr is nested under the step.
	if m := regexp.MustCompile(`(?m)^(wrote|✓ report written).*`).FindString(errOut.String()); m != "" {
		t.Errorf("a step's message is not indented under its step: %q", m)
	}
	if m := regexp.MustCompile(`(?m)^.*[ \t]$`).FindString(got); m != "" {
		t.Errorf("demo output has a line ending in blanks: %q", m)
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
		t.Errorf("GET /api/product audit = %v (%+v)\n%s", moves, audit, got)
	}
	// Plain words everywhere: no Go identifiers or fmt artefacts, and
	// percentages to 0.1 pp.
	goish := regexp.MustCompile(`\b[A-Z][A-Za-z]+\.[A-Z][A-Za-z]+\b|%!|<nil>|map\[|&\{|\[\]string`)
	if m := goish.FindString(got + errOut.String()); m != "" {
		t.Errorf("demo output shows %q, which is Go, not words", m)
	}
	if m := regexp.MustCompile(`\d+\.\d{2,}(%| pp)`).FindString(got); m != "" {
		t.Errorf("demo output shows %q: percentages are to 0.1 pp", m)
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
	// The fixture images are a few kilobytes: no size comparison is drawn
	// from them.
	if bytes.Contains(report, []byte("× larger")) || bytes.Contains(report, []byte("× smaller")) {
		t.Error("the report compares the fixture images' size with the Wasm modules")
	}
	if m := goish.Find(report); m != nil {
		t.Errorf("report shows %q, which is Go, not words", m)
	}
	if bytes.Contains(report, []byte(`src="http`)) || bytes.Contains(report, []byte(`@import`)) {
		t.Error("report loads something from the network; it must be self-contained")
	}
}
