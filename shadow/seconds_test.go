package shadow

import (
	"testing"
	"time"
)

// TestEvidenceSecondsChartsAShortRun: a route's first minute of evidence
// has one point in the minute timeline, but a point per second in Seconds,
// which keeps the newest two minutes and merges across replicas.
func TestEvidenceSecondsChartsAShortRun(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	e := NewEvidence("GET /x", "x")
	for i := range 30 {
		out := OutcomeMatch
		if i%3 == 0 {
			out = OutcomeMismatch
		}
		e.Add(Sample{At: t0.Add(time.Duration(i) * 500 * time.Millisecond), Result: Result{Outcome: out}})
	}
	if len(e.Timeline) != 1 || len(e.Seconds) != 15 {
		t.Fatalf("timeline %d minutes, seconds %d; want 1 and 15", len(e.Timeline), len(e.Seconds))
	}
	var samples, matches uint64
	for _, s := range e.Seconds {
		samples += s.Samples
		matches += s.Matches
	}
	if samples != 30 || matches != 20 {
		t.Fatalf("seconds hold %d samples, %d matches; want 30, 20", samples, matches)
	}
	other := NewEvidence("GET /x", "x")
	other.Add(Sample{At: t0, Result: Result{Outcome: OutcomeMatch}})
	e.Merge(other)
	if e.Seconds[0].Samples != 3 {
		t.Fatalf("merged first second has %d samples, want 3", e.Seconds[0].Samples)
	}
	for i := range 300 {
		e.Add(Sample{At: t0.Add(time.Minute + time.Duration(i)*time.Second), Result: Result{Outcome: OutcomeMatch}})
	}
	if len(e.Seconds) != maxSeconds || !e.Seconds[len(e.Seconds)-1].Start.Equal(t0.Add(time.Minute+299*time.Second)) {
		t.Fatalf("seconds kept %d, last %v", len(e.Seconds), e.Seconds[len(e.Seconds)-1].Start)
	}
	if c := e.Clone(); &c.Seconds[0] == &e.Seconds[0] {
		t.Fatal("Clone shares the seconds")
	}
}
