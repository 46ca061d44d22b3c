package reports

import (
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
)

// TestFootprintComparesOnlyRealImages: a "Java image" of a few kilobytes
// (what test fixtures push) is measured, shown and flagged, but never
// turned into a size headline; a real-sized image is compared, and the
// headline says the figures are measured.
func TestFootprintComparesOnlyRealImages(t *testing.T) {
	inv := func(size int64) *analyze.Inventory {
		return &analyze.Inventory{APIVersion: analyze.APIVersion, Kind: "Inventory", Generated: time.Now(),
			Services: []analyze.Service{{Name: "order-service", Sources: []string{"x"},
				Image:      &analyze.Image{Ref: "shop/order:1", SizeBytes: size, Java: &analyze.Java{Version: "17.0.13"}},
				Deployment: &analyze.Deployment{Kind: "Deployment", Replicas: 2, Resources: analyze.Resources{Requests: map[string]string{"memory": "512Mi", "cpu": "500m"}}}}}}
	}
	mods := []WasmModule{{Service: "order-service", Component: "order.wasm", SizeBytes: 3_700_000, MemoryBytes: 12 << 20}}

	fixture := Build(inv(16_706), nil, Options{Now: fixedNow, Modules: mods})
	sf := fixture.Footprint.Services[0]
	head := strings.Join(fixture.Footprint.Headline, " ")
	if sf.SizeRatio != nil || strings.Contains(head, "larger") || strings.Contains(head, "smaller") {
		t.Errorf("a 16 KB Java image was compared: ratio %v, headline %q", sf.SizeRatio, head)
	}
	if sf.ImageBytes == nil || *sf.ImageBytes != 16_706 || sf.ImageImplausible == "" || !strings.Contains(head, "Artifacts: not compared for 1 service") {
		t.Errorf("the fixture image is not shown and flagged: %+v; headline %q", sf, head)
	}
	if !strings.Contains(head, "the Wasm routes used at most 12.0 MiB") {
		t.Errorf("the memory comparison went with the image: headline %q", head)
	}
	if fixture.Footprint.Totals.ImageBytes != 0 {
		t.Errorf("total image bytes %d include the fixture", fixture.Footprint.Totals.ImageBytes)
	}
	var md strings.Builder
	if err := fixture.Render(&md, "md"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "(not compared)") {
		t.Error("the Markdown table does not flag the fixture image")
	}

	real := Build(inv(187<<20), nil, Options{Now: fixedNow, Modules: mods})
	head = strings.Join(real.Footprint.Headline, " ")
	if real.Footprint.Services[0].SizeRatio == nil || !strings.Contains(head, "Artifacts (measured)") || !strings.Contains(head, "smaller") {
		t.Errorf("a real image was not compared: headline %q", head)
	}
}
