package reports

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
)

// TestFootprintMeasuredPerProcess: a legacy process's measured RSS and one
// Wasm instance's measured memory are carried as measured figures, compared
// in the headline, and shown in every format; a service measured on the
// legacy side only is named, not compared.
func TestFootprintMeasuredPerProcess(t *testing.T) {
	inv := &analyze.Inventory{APIVersion: analyze.APIVersion, Kind: "Inventory", Generated: time.Now(),
		Services: []analyze.Service{{Name: "order-service", Sources: []string{"x"}}, {Name: "notification-service", Sources: []string{"x"}}}}
	opts := Options{Now: fixedNow,
		Modules: []WasmModule{{Service: "order-service", Component: "order.wasm", SizeBytes: 3_700_000,
			MemoryBytes: 12 << 20, InstanceMemoryBytes: 4 << 20}},
		LegacyMemory: []LegacyMemory{
			{Service: "order-service", ResidentBytes: 252 << 20, Method: "VmRSS of the JVM, idle"},
			{Service: "notification-service", ResidentBytes: 160 << 20},
			{Service: "order-service", ResidentBytes: 1}, // a second value for one service is ignored
		}}
	r := Build(inv, nil, opts)
	var js strings.Builder
	if err := r.Render(&js, "json"); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Footprint struct {
			Headline []string `json:"headline"`
			Services []struct {
				Service            string  `json:"service"`
				LegacyRSS          *Figure `json:"legacyRSS"`
				WasmInstanceMemory *Figure `json:"wasmInstanceMemory"`
			} `json:"services"`
		} `json:"footprint"`
	}
	if err := json.Unmarshal([]byte(js.String()), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for i, s := range doc.Footprint.Services {
		got[s.Service] = i
	}
	order, ok := got["order-service"]
	if !ok {
		t.Fatalf("no order-service footprint: %s", js.String())
	}
	o := doc.Footprint.Services[order]
	if o.LegacyRSS == nil || *o.LegacyRSS != (Figure{Bytes: 252 << 20, Basis: BasisMeasured, Method: "VmRSS of the JVM, idle"}) {
		t.Errorf("order-service legacyRSS = %+v, want 252 MiB measured", o.LegacyRSS)
	}
	if o.WasmInstanceMemory == nil || o.WasmInstanceMemory.Bytes != 4<<20 || o.WasmInstanceMemory.Basis != BasisMeasured {
		t.Errorf("order-service wasmInstanceMemory = %+v, want 4 MiB measured", o.WasmInstanceMemory)
	}
	n, ok := got["notification-service"]
	if !ok || doc.Footprint.Services[n].LegacyRSS == nil || doc.Footprint.Services[n].WasmInstanceMemory != nil {
		t.Errorf("notification-service, measured on the legacy side only: %+v", doc.Footprint.Services)
	}
	head := strings.Join(doc.Footprint.Headline, " ")
	for _, want := range []string{
		"Memory per process (measured on the running services): one legacy process holds 252 MiB resident (RSS) against 4.0 MiB of linear memory for one Wasm instance, 63.00× less (1 service measured on both sides, summed).",
		"Memory (measured): 160 MiB resident in the legacy process of notification-service, which has no measured Wasm instance.",
	} {
		if !strings.Contains(head, want) {
			t.Errorf("headline lacks %q:\n%s", want, head)
		}
	}
	if a := r.Footprint.Assumptions; !strings.Contains(a[len(a)-1], "shown beside the estimate, not used in it") {
		t.Errorf("the assumptions do not say the measured memory is outside the estimate: %q", a)
	}
	for _, format := range []string{"md", "html"} {
		var b strings.Builder
		if err := r.Render(&b, format); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Memory per process (measured)", "252 MiB", "measured: VmRSS of the JVM, idle"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s report lacks %q", format, want)
			}
		}
	}

	// Without measurements nothing per process is claimed.
	plain := Build(inv, nil, Options{Now: fixedNow})
	if plain.Footprint.PerProcessMeasured() || strings.Contains(strings.Join(plain.Footprint.Headline, " "), "per process") {
		t.Errorf("a report without measurements claims per-process figures: %q", plain.Footprint.Headline)
	}
}
