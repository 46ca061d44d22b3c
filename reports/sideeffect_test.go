package reports

import (
	"bytes"
	"strings"
	"testing"
)

// TestReportShowsSideEffects: a route whose candidate wrote to other
// services differently from legacy says so in the HTML and the Markdown
// report, beside the side-effect difference class.
func TestReportShowsSideEffects(t *testing.T) {
	routes := sampleRoutes()
	var route string
	for i := range routes {
		if e := routes[i].Evidence; e != nil && e.Mismatches > 0 {
			e.SideEffects = 7
			e.Differences = append(e.Differences, Difference{Path: "@call/POST /api/inventory/reserve", Type: "side-effect", Count: 7})
			route = routes[i].Route
			break
		}
	}
	if route == "" {
		t.Fatal("the sample routes have no mismatching route")
	}
	r := Build(sampleInventory(), routes, Options{Now: fixedNow})
	for format, want := range map[string][]string{
		"html": {"Side-effect differences <b>7</b>", "@call/POST /api/inventory/reserve"},
		"md":   {"**Side effects:** 7 samples wrote to other services differently from legacy", "@call/POST /api/inventory/reserve"},
	} {
		var buf bytes.Buffer
		if err := r.Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s report of %s lacks %q", format, route, w)
			}
		}
	}
	// Routes without side effects say nothing about them.
	var plain bytes.Buffer
	if err := sampleReport().Render(&plain, "md"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "Side effects") {
		t.Error("a report without side-effect differences mentions them")
	}
}

// A blocked route's failed criterion is named once: the gate's own detail
// ("side effects: got …") starts with the name the table already shows.
func TestBlockedCriterionNamedOnce(t *testing.T) {
	routes := sampleRoutes()
	var route string
	for i := range routes {
		if routes[i].Evidence != nil && routes[i].Mode == "shadow" {
			routes[i].Checks = append(routes[i].Checks, GateCheck{Name: "side effects",
				Detail: "side effects: got 7 of 40 samples wrote differently: POST /api/inventory/reserve, want outbound writes as legacy's, in every sample"})
			route = routes[i].Route
			break
		}
	}
	if route == "" {
		t.Fatal("the sample routes have no shadowed route")
	}
	for _, format := range []string{"html", "md"} {
		var buf bytes.Buffer
		if err := Build(sampleInventory(), routes, Options{Now: fixedNow}).Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "got 7 of 40 samples wrote differently") {
			t.Errorf("%s report does not show %s blocked by its side effects", format, route)
		}
		// The gate's side-effect criterion has no number of the report's own.
		for _, made := range []string{"| side effects | 0 | ≤ 0 |", "<td>side effects</td><td>0</td><td>≤ 0</td>"} {
			if strings.Contains(buf.String(), made) {
				t.Errorf("%s report shows numbers the criterion does not have: %q", format, made)
			}
		}
		for _, twice := range []string{"**side effects**: side effects:", "side effects</span> side effects:"} {
			if strings.Contains(buf.String(), twice) {
				t.Errorf("%s report names the criterion twice: %q", format, twice)
			}
		}
	}
}
