package shadow

import (
	"encoding/json"
	"testing"
	"time"
)

func mismatch(sig ...string) Result {
	r := Result{Outcome: OutcomeMismatch}
	for _, s := range sig {
		path, typ := SplitSignature(s)
		r.Differences = append(r.Differences, Difference{Path: path, Type: typ, Signature: s})
	}
	return r
}

func TestEvidenceAggregates(t *testing.T) {
	e := NewEvidence("GET /api/order", "order-service")
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 100; i++ {
		s := Sample{At: t0.Add(time.Duration(i) * time.Second),
			Legacy: Response{Latency: 10 * time.Millisecond}, Candidate: Response{Latency: 20 * time.Millisecond}}
		switch {
		case i%10 == 0:
			s.Result = mismatch("/*/price value")
		case i%25 == 1:
			s.Result = Result{Outcome: OutcomeCandidateError, Error: ErrTimeout}
		default:
			s.Result = Result{Outcome: OutcomeMatch}
		}
		e.Add(s)
	}
	e.AddSkipped(OutcomeSkippedWrite)
	e.AddSkipped(OutcomeDropped)
	e.Add(Sample{Baseline: true})

	sum := e.Summary(nil)
	if sum.Samples != 100 || sum.Mismatches != 10 || sum.CandidateErrors != 4 || sum.Matches != 86 {
		t.Fatalf("summary %+v", sum)
	}
	if e.SkippedWrites != 1 || e.Drops != 1 || e.Baselines != 1 {
		t.Fatalf("skips %+v", e)
	}
	if r := sum.P50Ratio; r < 1.9 || r > 2.1 {
		t.Fatalf("p50 ratio %v, want ≈2", r)
	}
	if p := sum.Legacy.P99; p < 9500*time.Microsecond || p > 10500*time.Microsecond {
		t.Fatalf("legacy p99 %v, want ≈10ms", p)
	}
	if len(sum.RecentUnexplained) != 1 || sum.RecentUnexplained[0] != "/*/price value" || sum.RecentErrors != 4 {
		t.Fatalf("recent %+v", sum)
	}
	if len(e.Timeline) != 2 || e.Timeline[0].Samples != 60 {
		t.Fatalf("timeline %+v", e.Timeline)
	}

	// Learning the price as noise later re-explains the recorded class.
	n := NewNoise()
	n.Learn(mismatch("/*/price value"), t0)
	sum = e.Summary(n)
	if sum.Explained != 10 || sum.MatchRatio != 1 || len(sum.RecentUnexplained) != 0 {
		t.Fatalf("explained summary %+v", sum)
	}

	// A clone is independent and equal.
	cl := e.Clone()
	cl.Add(Sample{At: t0, Result: mismatch("/*/price value")})
	if e.Classes[0].Count != 10 || cl.Classes[0].Count != 11 || cl.Summary(nil).Legacy != e.Summary(nil).Legacy {
		t.Fatalf("clone shares state: %d/%d", e.Classes[0].Count, cl.Classes[0].Count)
	}
	// JSON round trip keeps everything, and adding continues where it was.
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back Evidence
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Add(Sample{At: t0.Add(time.Hour), Result: mismatch("/*/price value")})
	if back.Classes[0].Count != 11 || len(back.Classes) != 1 || back.Legacy.Count != e.Legacy.Count+1 {
		t.Fatalf("restored evidence did not continue: %+v", back.Classes)
	}
	if got, want := back.Summary(nil).Legacy.P99, e.Summary(nil).Legacy.P99; got != want && got > 11*time.Millisecond {
		t.Fatalf("restored histogram p99 %v, was %v", got, want)
	}
}

func TestWindowForgets(t *testing.T) {
	e := NewEvidence("r", "")
	e.Recent = NewWindow(10)
	e.Add(Sample{At: time.Now(), Result: mismatch("/a value")})
	for i := 0; i < 10; i++ {
		e.Add(Sample{At: time.Now(), Result: Result{Outcome: OutcomeMatch}})
	}
	if s := e.Summary(nil); s.Recent != 10 || len(s.RecentUnexplained) != 0 || s.Mismatches != 1 {
		t.Fatalf("window should have forgotten the old mismatch: %+v", s)
	}
}

func TestClassesBounded(t *testing.T) {
	e := NewEvidence("r", "")
	for i := 0; i < 5000; i++ {
		e.Add(Sample{At: time.Now(), Result: mismatch("/f" + indexName(i%2000) + " value")})
	}
	if len(e.Classes) > maxClasses+1 || len(e.Signatures) > maxSignatures+1 {
		t.Fatalf("classes %d signatures %d: unbounded", len(e.Classes), len(e.Signatures))
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Observe(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.95, 950 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.Quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.05 || d > 0.05 {
			t.Errorf("q%.2f = %v, want %v ±5%%", c.q, got, c.want)
		}
	}
}
