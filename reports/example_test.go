package reports_test

import (
	"fmt"
	"os"
	"time"

	"github.com/strangler-fig/migrate/reports"
)

// A route whose Wasm candidate disagrees with legacy is blocked, and the
// report says what to do about it.
func ExampleBuild() {
	routes := []reports.Route{{
		Route: "POST /api/order", Service: "order-service", Mode: "shadow",
		Evidence: &reports.Evidence{
			Samples: 1200, Matches: 1170, Mismatches: 30,
			Differences: []reports.Difference{{Path: "/orderNumber", Type: "missing", Count: 30}},
			Legacy:      reports.Latency{P99: 40 * time.Millisecond},
			Candidate:   reports.Latency{P99: 30 * time.Millisecond},
		},
	}}
	r := reports.Build(nil, routes, reports.Options{Now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)})
	fmt.Println(r.Summary.Counts[reports.StatusBlocked], "blocked")
	for _, s := range r.Summary.NextSteps {
		fmt.Println(s.Text)
	}
	// Output:
	// 1 blocked
	// Fix the 1 difference class on POST /api/order (match 97.5% < 99.9%, 2.4 pp short); the largest, field missing at /orderNumber, shows in 30 samples.
}

// Render picks the format by name: html, md or json.
func ExampleReport_Render() {
	r := reports.Build(nil, nil, reports.Options{Now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)})
	if err := r.Render(os.Stdout, "pdf"); err != nil {
		fmt.Println(err)
	}
	// Output:
	// render report: unknown format "pdf"; use html, md or json
}
