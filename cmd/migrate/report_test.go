package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/reports"
	"github.com/strangler-fig/migrate/strangler"
)

const reportConfig = `
services:
  order-service:
    legacy: http://127.0.0.1:1
    candidate: {wasm: components/order.wasm}
    routes: ["GET /api/order"]
  product-service:
    legacy: http://127.0.0.1:2
    candidate: {wasm: components/product.wasm}
    routes: ["GET /api/product"]
`

// TestReportShowsMeasuredWasmMemory flushes a proxy's measurements of its
// in-process candidates through a real controller and store, and checks
// `migrate report` puts the memory they used in the footprint next to the
// module files' sizes.
func TestReportShowsMeasuredWasmMemory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "components"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int{"order.wasm": 3000, "product.wasm": 2000} {
		if err := os.WriteFile(filepath.Join(dir, "components", name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(config, []byte(reportConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := strangler.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	store, err := strangler.OpenStore(cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	ctrl := strangler.NewController(store, nil, nil)
	if _, err := ctrl.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	ctrl.Usage = func() map[string]strangler.CandidateUsage {
		return map[string]strangler.CandidateUsage{"order-service": {Module: "order.wasm", Requests: 500,
			PeakInstanceBytes: 6 << 20, PeakInstances: 3, PeakMemoryBytes: 15 << 20}}
	}
	if err := ctrl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	store.Close()

	var out bytes.Buffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &bytes.Buffer{}}
	o := &reportOptions{config: config, inventory: filepath.Join(dir, "inventory.json"), format: "json", out: "-",
		legacyRSS: []string{"order-service=252Mi"}}
	if err := runReport(ctx, o, s); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Footprint struct {
			Services []struct {
				Service            string          `json:"service"`
				WasmBytes          *int64          `json:"wasmBytes"`
				WasmMemoryBytes    *int64          `json:"wasmMemoryBytes"`
				LegacyRSS          *reports.Figure `json:"legacyRSS"`
				WasmInstanceMemory *reports.Figure `json:"wasmInstanceMemory"`
			} `json:"services"`
		} `json:"footprint"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out.String())
	}
	got := map[string][2]int64{}
	for _, sf := range rep.Footprint.Services {
		// The one instance's peak and the RSS given with --legacy-rss are
		// measured figures.
		if sf.Service == "order-service" {
			if sf.WasmInstanceMemory == nil || *sf.WasmInstanceMemory != (reports.Figure{Bytes: 6 << 20, Basis: reports.BasisMeasured,
				Method: "the most linear memory one instance used, measured by the proxy"}) {
				t.Errorf("order-service wasmInstanceMemory = %+v, want 6 MiB measured by the proxy", sf.WasmInstanceMemory)
			}
			if sf.LegacyRSS == nil || *sf.LegacyRSS != (reports.Figure{Bytes: 252 << 20, Basis: reports.BasisMeasured, Method: "given with --legacy-rss"}) {
				t.Errorf("order-service legacyRSS = %+v, want 252 MiB measured, given with --legacy-rss", sf.LegacyRSS)
			}
		}
		var v [2]int64
		if sf.WasmBytes != nil {
			v[0] = *sf.WasmBytes
		}
		if sf.WasmMemoryBytes != nil {
			v[1] = *sf.WasmMemoryBytes
		}
		got[sf.Service] = v
	}
	// product-service's module never ran: its memory stays unknown.
	want := map[string][2]int64{"order-service": {3000, 15 << 20}, "product-service": {2000, 0}}
	for svc, w := range want {
		if got[svc] != w {
			t.Errorf("%s footprint (module bytes, memory bytes) = %v, want %v", svc, got[svc], w)
		}
	}
}

// TestReportNamedFilesMustExist: a --config or --inventory named on the
// command line that does not exist is a usage error, not an empty report.
func TestReportNamedFilesMustExist(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.html")
	for _, args := range [][]string{
		{"report", "--config", filepath.Join(dir, "strangler.yml"), "--out", out},
		{"report", "--inventory", filepath.Join(dir, "inventry.json"), "--out", out},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, args[2]+": no such file") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming the file", args[1:3], code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: a report was written", args[1:3])
		}
	}
}

// TestReportLegacyRSSRefusesBadValues: --legacy-rss takes SERVICE=QUANTITY
// once per service; anything else is a usage error naming the value.
func TestReportLegacyRSSRefusesBadValues(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--legacy-rss", "order-service"}, "want SERVICE=QUANTITY"},
		{[]string{"--legacy-rss", "order-service=lots"}, `"lots" is not a memory quantity`},
		{[]string{"--legacy-rss", "order-service=0"}, `"0" is not a memory quantity`},
		{[]string{"--legacy-rss", "a=1Mi", "--legacy-rss", "a=2Mi"}, "names a twice"},
	} {
		_, stderr, code := runCLI(t, append([]string{"report", "--out", filepath.Join(dir, "r.html")}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
