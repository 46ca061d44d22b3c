package shadow

import (
	"encoding/json"
	"testing"
	"time"
)

// Two replicas' evidence merged is the evidence one process would have
// gathered from both replicas' samples.
func TestEvidenceMergeEqualsOneProcess(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	samples := []Sample{
		{Route: "r", At: at, Result: Result{Outcome: OutcomeMatch}, Legacy: Response{Latency: time.Millisecond}, Candidate: Response{Latency: 2 * time.Millisecond}},
		{Route: "r", At: at.Add(time.Second), Result: Result{Outcome: OutcomeMismatch, Differences: []Difference{{Path: "/price", Type: DiffValue}}}},
		{Route: "r", At: at.Add(61 * time.Second), Result: Result{Outcome: OutcomeCandidateError, Error: "timeout"}},
		{Route: "r", At: at.Add(62 * time.Second), Result: Result{Outcome: OutcomeMismatch, Differences: []Difference{{Path: "/price", Type: DiffValue}}}},
		{Route: "r", At: at.Add(63 * time.Second), Result: Result{Outcome: OutcomeMismatch, Differences: []Difference{{Path: "/id", Type: DiffValue}}}},
		{Route: "r", At: at.Add(64 * time.Second), Result: Result{Outcome: OutcomeSkippedWrite}},
	}
	whole := NewEvidence("r", "s")
	a, b := NewEvidence("r", "s"), NewEvidence("r", "s")
	for i, s := range samples {
		whole.Add(s)
		if i%2 == 0 {
			a.Add(s)
		} else {
			b.Add(s)
		}
	}
	a.Merge(b)
	for _, check := range []struct {
		name      string
		got, want any
	}{
		{"samples", a.Samples, whole.Samples},
		{"matches", a.Matches, whole.Matches},
		{"mismatches", a.Mismatches, whole.Mismatches},
		{"skipped writes", a.SkippedWrites, whole.SkippedWrites},
		{"candidate errors", a.CandidateErrors["timeout"], whole.CandidateErrors["timeout"]},
		{"signatures", a.Signatures["/price value"], whole.Signatures["/price value"]},
		{"classes", len(a.Classes), len(whole.Classes)},
		{"legacy latency count", a.Legacy.Count, whole.Legacy.Count},
		{"timeline minutes", len(a.Timeline), len(whole.Timeline)},
		{"window", len(a.Recent.Codes), len(whole.Recent.Codes)},
		{"first", a.First, whole.First},
		{"last", a.Last, whole.Last},
	} {
		if check.got != check.want {
			t.Errorf("%s: merged %v, one process %v", check.name, check.got, check.want)
		}
	}
	ws, ms := whole.Summary(nil), a.Summary(nil)
	wj, _ := json.Marshal(ws)
	mj, _ := json.Marshal(ms)
	if ms.Samples != ws.Samples || ms.Matches != ws.Matches || ms.Mismatches != ws.Mismatches || ms.CandidateErrors != ws.CandidateErrors {
		t.Errorf("summary of the merge\n%s\nwant\n%s", mj, wj)
	}
	// The merged window names the merged classes.
	a.Recent.Each(func(code int32) {
		if code > int32(len(a.Classes)) {
			t.Errorf("window code %d names no class (%d classes)", code, len(a.Classes))
		}
	})
}
