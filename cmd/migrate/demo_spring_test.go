//go:build spring

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
)

// TestSpringDemoJourney runs `migrate demo --fleet spring`: the real Spring
// Boot services built with Maven and started as JVMs, analyzed live,
// shadowed against the Go Wasm ports, gated and reported. The faithful port
// must clear its gate; the ports with documented slips must be refused with
// the slip named. It is part of the spring tier (go test -tags spring) and
// fails, never skips, without java and mvn.
func TestSpringDemoJourney(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &errOut}
	o := &demoOptions{dir: dir, requests: 4000, concurrency: 4, rate: 400, fleet: demoFleetSpring}
	if err := runDemoFleet(ctx, o, &globalOptions{output: "table", logFormat: "text"}, s); err != nil {
		t.Fatalf("demo --fleet spring: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	got := out.String()
	t.Log(got)
	for _, want := range []string{
		"Spring Boot 3.5.7 fleet",
		"jib    17    3.5.7",                 // the Jib image: build tool, bytecode level, Boot version
		"no unexplained difference in",       // GET /api/product is faithful
		"GET /api/product cut over",          // ... and clears its gate
		"array has extra items at (root)",    // duplicate SKUs not collapsed
		"noise learned: Order Number <uuid>", // learned from the A/A baseline
		"GET /api/inventory stays in shadow",
		"POST /api/order stays in shadow",
		"match ratio",
		"Journey complete",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	inv, err := analyze.ReadInventory(filepath.Join(dir, "inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	var order *analyze.API
	for _, svc := range inv.Services {
		if svc.Name != "order-service" {
			continue
		}
		order = svc.API
		deps := map[string]bool{}
		if svc.Image != nil {
			for _, d := range svc.Image.Dependencies {
				deps[d.Artifact] = true
			}
		}
		for _, want := range []string{"spring-webmvc", "hibernate-core", "h2", "spring-boot-actuator",
			"springdoc-openapi-starter-webmvc-api", "resilience4j-circuitbreaker"} {
			if !deps[want] {
				t.Errorf("order-service image dependencies lack %s", want)
			}
		}
	}
	if order == nil || order.Format != "openapi-3.1" || len(order.Operations) != 2 || len(order.Problems) != 0 {
		t.Errorf("order-service API from its live /v3/api-docs = %+v, want springdoc's OpenAPI 3.1 with GET and POST /api/order, no problems", order)
	}
	report, err := os.ReadFile(filepath.Join(dir, "migrate-report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GET /api/product", "Decision summary"} {
		if !bytes.Contains(report, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
}
