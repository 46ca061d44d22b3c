package reports

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// TestChartsPeopleExpect: the HTML report draws route states, readiness
// per service and the largest difference classes, and every latency
// chart's axis has a few short labels, never exponents.
func TestChartsPeopleExpect(t *testing.T) {
	rep := sampleReport()
	var b strings.Builder
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, want := range []string{`aria-label="Route states"`, `>cut over</text>`, `>1 route</text>`,
		`aria-label="Readiness per service"`, `>82 · ready-with-conditions</text>`,
		`aria-label="Difference classes"`, `POST /api/order: body differs`} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	charts := regexp.MustCompile(`(?s)aria-label="Latency distribution, legacy and Wasm">.*?</svg>`).FindAllString(h, -1)
	if len(charts) == 0 {
		t.Fatal("no latency chart")
	}
	label := regexp.MustCompile(`<text x="[^"]*" y="[^"]*">(≤[^<]*)</text>`)
	for _, c := range charts {
		labels := label.FindAllStringSubmatch(c, -1)
		if len(labels) == 0 || len(labels) > 6 {
			t.Errorf("latency axis has %d bucket labels, want 1 to 6", len(labels))
		}
		for _, l := range labels {
			if strings.Contains(l[1], "e+") || len([]rune(l[1])) > 7 {
				t.Errorf("latency axis label %q is not short and plain", l[1])
			}
		}
	}
	for ms, want := range map[float64]string{0.256: "≤0.26", 1.024: "≤1", 16.384: "≤16", 2048: "≤2 s", 10485.76: "≤10.5 s"} {
		if got := bucketLabel(ms); got != want {
			t.Errorf("bucketLabel(%v) = %q, want %q", ms, got, want)
		}
	}
}

// TestMatchSeriesFromAShortRun: evidence of a route's first 30 seconds is
// one minute of the timeline, but the report still charts ten points or
// more, from the per-second series the store keeps.
func TestMatchSeriesFromAShortRun(t *testing.T) {
	ev := shadow.NewEvidence("GET /a", "svc")
	t0 := time.Date(2026, 12, 7, 9, 0, 10, 0, time.UTC)
	for i := range 300 {
		out := shadow.OutcomeMatch
		if i%10 == 0 {
			out = shadow.OutcomeMismatch
		}
		ev.Add(shadow.Sample{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Route: "GET /a", Result: shadow.Result{Outcome: out}})
	}
	e := reportEvidence(ev, nil)
	if len(e.MatchSeries) < 10 {
		t.Fatalf("match series has %d points, want at least 10", len(e.MatchSeries))
	}
	rep := Build(nil, []Route{{Route: "GET /a", Service: "svc", Mode: "shadow", Evidence: e}}, Options{Now: fixedNow})
	var b strings.Builder
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "30 intervals") || !strings.Contains(b.String(), "09:00:10") {
		t.Error("the match chart does not show the per-second series")
	}
}
