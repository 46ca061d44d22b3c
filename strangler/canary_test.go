package strangler

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

func TestParseSteps(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  string
	}{
		{"1,5,25,50,100", []int{1, 5, 25, 50, 100}, ""},
		{" 10%, 100% ", []int{10, 100}, ""},
		{"5,5", nil, "steps must increase"},
		{"0,50", nil, "between 1 and 100"},
		{"50,101", nil, "between 1 and 100"},
		{"1,x", nil, "not a whole percentage"},
		{"", nil, "not a whole percentage"},
	}
	for _, tt := range tests {
		got, err := ParseSteps(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("%q = %v, %v", tt.in, got, err)
		}
	}
}

// liveRig is a gate rig on the real clock with the canary walker running.
type liveRig struct {
	*gateRig
	cancel context.CancelFunc
	done   chan struct{}
}

func startLive(t *testing.T, path string, seed bool) *liveRig {
	t.Helper()
	var ev = goodEvidence()
	if !seed {
		ev = nil
	}
	rig := newGateRig(t, gateConfigYAML, path, ev)
	rig.ctrl.Now = time.Now
	ctx, cancel := context.WithCancel(context.Background())
	l := &liveRig{gateRig: rig, cancel: cancel, done: make(chan struct{})}
	go func() { rig.ctrl.RunCanaryWalker(ctx); close(l.done) }()
	t.Cleanup(l.kill)
	return l
}

// kill stops the walker and closes the store without flushing counters,
// as a killed process would.
func (l *liveRig) kill() {
	l.cancel()
	<-l.done
	l.close()
}

// traffic sends requests through the routes' live state as the proxy
// would: the canary weight picks the side; candErr is the candidate's
// failure share.
type traffic struct {
	stop func()
}

func drive(c *Controller, candErr float64, candLatency time.Duration) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, r := range c.Routes() {
				st := r.State()
				cand := st.Mode == ModeCutover || st.Mode == ModeRetired || (st.Mode == ModeCanary && rand.IntN(100) < st.Weight)
				if cand {
					r.Observe(SideCandidate, candLatency, rand.Float64() < candErr)
				} else {
					r.Observe(SideLegacy, 10*time.Millisecond, false)
				}
			}
			time.Sleep(300 * time.Microsecond)
		}
	}()
	return &traffic{stop: func() { cancel(); wg.Wait() }}
}

func waitWalk(t *testing.T, c *Controller, id int64, until func(CanaryWalk) bool) CanaryWalk {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for {
		walks, err := c.CanaryWalks(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range walks {
			if w.ID == id && until(w) {
				return w
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("walk #%d never reached the expected state: %+v", id, walks)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ended(w CanaryWalk) bool { return w.State != WalkRunning }

func TestCanaryWalkPromotesToCutover(t *testing.T) {
	ctx := context.Background()
	l := startLive(t, filepath.Join(t.TempDir(), "migrate.db"), true)
	tr := drive(l.ctrl, 0, 11*time.Millisecond)
	defer tr.stop()
	w, err := l.ctrl.StartCanary(ctx, CanaryRequest{Target: "orders", Steps: []int{20, 50, 100},
		Interval: Duration(40 * time.Millisecond), Actor: "ann", Reason: "v2 candidate"})
	if err != nil {
		t.Fatal(err)
	}
	if st := l.ctrl.Route("GET /api/order").State(); st != (RouteState{Mode: ModeCanary, Weight: 20}) {
		t.Fatalf("first step not applied at once: %+v", st)
	}
	// A second walk over the same routes is a conflict while this one runs.
	var conflict *ConflictError
	if _, err := l.ctrl.StartCanary(ctx, CanaryRequest{Target: "GET /api/order", Steps: []int{50}, Interval: Duration(time.Second)}); !errors.As(err, &conflict) {
		t.Fatalf("second walk: %v", err)
	}
	got := waitWalk(t, l.ctrl, w.ID, ended)
	if got.State != WalkCompleted {
		t.Fatalf("walk ended %s: %s; history %+v", got.State, got.Detail, got.History)
	}
	for _, name := range []string{"GET /api/order", "POST /api/order"} {
		if st := l.ctrl.Route(name).State(); st.Mode != ModeCutover {
			t.Fatalf("%s = %+v after the walk", name, st)
		}
	}
	audit, err := l.ctrl.Audit(ctx, AuditQuery{Route: "GET /api/order"})
	if err != nil {
		t.Fatal(err)
	}
	var weights []int
	for _, tr := range audit {
		if tr.To == ModeCanary {
			weights = append(weights, tr.ToWeight)
		}
	}
	last := audit[len(audit)-1]
	if len(weights) != 3 || weights[2] != 100 || last.To != ModeCutover || last.Actor != CanaryActor || last.Forced {
		t.Fatalf("audit: weights %v, last %+v", weights, last)
	}
	var snap GateSnapshot
	if err := json.Unmarshal(last.Evidence, &snap); err != nil || snap.Verdict != VerdictPass || snap.To != ModeCutover {
		t.Fatalf("cutover evidence: %s %v", last.Evidence, err)
	}
	// The 50% step's transition carries that step's analysis.
	var step GateSnapshot
	for _, tr := range audit {
		if tr.To == ModeCanary && tr.ToWeight == 100 {
			_ = json.Unmarshal(tr.Evidence, &step)
		}
	}
	if step.Canary == nil || step.Canary.Weight != 50 || step.Canary.CandidateRequests < 5 {
		t.Fatalf("step evidence: %+v", step.Canary)
	}
}

func TestCanaryWalkRollsBackOnErrors(t *testing.T) {
	ctx := context.Background()
	l := startLive(t, filepath.Join(t.TempDir(), "migrate.db"), true)
	tr := drive(l.ctrl, 0.3, 11*time.Millisecond)
	defer tr.stop()
	w, err := l.ctrl.StartCanary(ctx, CanaryRequest{Target: "orders", Steps: []int{50, 100}, Interval: Duration(40 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	got := waitWalk(t, l.ctrl, w.ID, ended)
	if got.State != WalkRolledBack || !strings.Contains(got.Detail, "candidate errors") {
		t.Fatalf("walk = %s: %s", got.State, got.Detail)
	}
	if st := l.ctrl.Route("POST /api/order").State(); st.Mode != ModeLegacy {
		t.Fatalf("not rolled back: %+v", st)
	}
	audit, _ := l.ctrl.Audit(ctx, AuditQuery{Service: "orders"})
	last := audit[len(audit)-1]
	if last.To != ModeLegacy || last.Actor != CanaryActor || !strings.Contains(last.Reason, "step 50% failed: candidate errors") {
		t.Fatalf("rollback audit = %+v", last)
	}
}

func TestCanaryWalkRollsBackOnLatency(t *testing.T) {
	l := startLive(t, filepath.Join(t.TempDir(), "migrate.db"), true)
	tr := drive(l.ctrl, 0, 40*time.Millisecond)
	defer tr.stop()
	w, err := l.ctrl.StartCanary(context.Background(), CanaryRequest{Target: "GET /api/order", Steps: []int{50, 100}, Interval: Duration(40 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	got := waitWalk(t, l.ctrl, w.ID, ended)
	if got.State != WalkRolledBack || !strings.Contains(got.Detail, " ratio 4.00×") {
		t.Fatalf("walk = %s: %s", got.State, got.Detail)
	}
}

func TestCanaryWalkInconclusivePauses(t *testing.T) {
	l := startLive(t, filepath.Join(t.TempDir(), "migrate.db"), true)
	// No traffic at all: every step is inconclusive, never promoted.
	w, err := l.ctrl.StartCanary(context.Background(), CanaryRequest{Target: "orders", Steps: []int{10, 100}, Interval: Duration(15 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	got := waitWalk(t, l.ctrl, w.ID, ended)
	if got.State != WalkPaused || got.Weight != 10 || len(got.History) != 3 || !strings.Contains(got.History[0].Note, "extended (1 of 2)") {
		t.Fatalf("walk = %s at %d%%: %s; history %+v", got.State, got.Weight, got.Detail, got.History)
	}
	if st := l.ctrl.Route("GET /api/order").State(); st != (RouteState{Mode: ModeCanary, Weight: 10}) {
		t.Fatalf("paused walk moved the route: %+v", st)
	}
	// A paused walk is superseded by a new one (starting at the weight
	// held: a higher one would need the evidence this step never got).
	w2, err := l.ctrl.StartCanary(context.Background(), CanaryRequest{Target: "orders", Steps: []int{10, 20}, Interval: Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	walks, _ := l.ctrl.CanaryWalks(context.Background(), "GET /api/order")
	if len(walks) != 2 || walks[0].ID != w2.ID || walks[1].State != WalkAborted || !strings.Contains(walks[1].Detail, "superseded") {
		t.Fatalf("walks = %+v", walks)
	}
}

func TestCanaryWalkAbortsWhenOperatorMovesRoute(t *testing.T) {
	ctx := context.Background()
	l := startLive(t, filepath.Join(t.TempDir(), "migrate.db"), true)
	w, err := l.ctrl.StartCanary(ctx, CanaryRequest{Target: "orders", Steps: []int{10, 100}, Interval: Duration(30 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ctrl.Transition(ctx, TransitionRequest{Target: "orders", To: ModeLegacy, Actor: "bob", Reason: "incident"}); err != nil {
		t.Fatal(err)
	}
	got := waitWalk(t, l.ctrl, w.ID, ended)
	if got.State != WalkAborted || !strings.Contains(got.Detail, "operator") {
		t.Fatalf("walk = %s: %s", got.State, got.Detail)
	}
}

func TestCanaryWalkResumesAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "migrate.db")
	l := startLive(t, path, true)
	tr := drive(l.ctrl, 0, 11*time.Millisecond)
	w, err := l.ctrl.StartCanary(ctx, CanaryRequest{Target: "orders", Steps: []int{20, 50, 100}, Interval: Duration(60 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	waitWalk(t, l.ctrl, w.ID, func(w CanaryWalk) bool { return w.Weight == 50 })
	// Kill mid-walk: no flush, store closed under a held step.
	tr.stop()
	l.kill()

	l2 := startLive(t, path, false)
	tr2 := drive(l2.ctrl, 0, 11*time.Millisecond)
	defer tr2.stop()
	if st := l2.ctrl.Route("GET /api/order").State(); st.Mode != ModeCanary && st.Mode != ModeCutover {
		t.Fatalf("restart lost the canary: %+v", st)
	}
	got := waitWalk(t, l2.ctrl, w.ID, ended)
	if got.State != WalkCompleted {
		t.Fatalf("resumed walk ended %s: %s; %+v", got.State, got.Detail, got.History)
	}
	resumed := false
	for _, h := range got.History {
		if h.Verdict == "resumed" && strings.Contains(h.Note, "fresh observation window") {
			resumed = true
		}
	}
	if !resumed {
		t.Fatalf("history does not record the resume: %+v", got.History)
	}
	if st := l2.ctrl.Route("POST /api/order").State(); st.Mode != ModeCutover {
		t.Fatalf("after resumed walk: %+v", st)
	}
}

func TestCanaryWalkRestartReconciles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "migrate.db")
	// No walker: the walk's steps are driven by hand to stop at exact points.
	rig := newGateRig(t, gateConfigYAML, path, goodEvidence())
	rig.ctrl.Now = time.Now
	w, err := rig.ctrl.StartCanary(ctx, CanaryRequest{Target: "orders", Steps: []int{10, 50, 100}, Interval: Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// Crash after the next step's transition committed, before the walk
	// recorded it. The step passed on the traffic it served.
	for _, r := range rig.ctrl.Routes() {
		for i := 0; i < 5; i++ {
			r.Observe(SideCandidate, 10*time.Millisecond, false)
			r.Observe(SideLegacy, 10*time.Millisecond, false)
		}
	}
	if _, err := rig.ctrl.Transition(ctx, TransitionRequest{Target: "orders", To: ModeCanary, Weight: 50,
		ExpectMode: ModeCanary, ExpectWeight: 10, Actor: CanaryActor, Reason: "step 10% passed"}); err != nil {
		t.Fatal(err)
	}
	// And a second walk recorded but whose first step was never applied.
	svcless := &CanaryWalk{Target: "GET /api/order", Routes: []string{"GET /api/order"}, Steps: []int{20, 100},
		Interval: Duration(time.Hour), Weight: 20, State: WalkRunning, StartModes: map[string]RouteState{"GET /api/order": {Mode: ModeShadow}},
		Created: time.Now(), Updated: time.Now()}
	if err := rig.store.InsertCanaryWalk(ctx, svcless); err != nil {
		t.Fatal(err)
	}
	rig.close()

	l := startLive(t, path, false)
	got := waitWalk(t, l.ctrl, w.ID, func(w CanaryWalk) bool { return len(w.History) > 0 })
	if got.State != WalkRunning || got.Step != 1 || got.Weight != 50 || !strings.Contains(got.History[0].Note, "adopted") {
		t.Fatalf("walk = %+v", got)
	}
	audit, _ := l.ctrl.Audit(ctx, AuditQuery{Route: "GET /api/order"})
	n := 0
	for _, tr := range audit {
		if tr.To == ModeCanary && tr.ToWeight == 50 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("step 50%% applied %d times: %+v", n, audit)
	}
	// The unapplied walk's routes were no longer where it started (the
	// first walk moved them): it is aborted, not applied blindly.
	other := waitWalk(t, l.ctrl, svcless.ID, ended)
	if other.State != WalkAborted {
		t.Fatalf("unapplied walk = %s: %s", other.State, other.Detail)
	}
}

func TestCanaryWalkAppliedOnRestartWhenNeverApplied(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "migrate.db")
	rig := newGateRig(t, gateConfigYAML, path, goodEvidence())
	// Recorded, then killed before the first transition.
	w := &CanaryWalk{Target: "GET /api/order", Routes: []string{"GET /api/order"}, Steps: []int{20, 100},
		Interval: Duration(time.Hour), Weight: 20, State: WalkRunning, Actor: "ann",
		StartModes: map[string]RouteState{"GET /api/order": {Mode: ModeShadow}}, Created: time.Now(), Updated: time.Now()}
	if err := rig.store.InsertCanaryWalk(ctx, w); err != nil {
		t.Fatal(err)
	}
	rig.close()
	l := startLive(t, path, false)
	got := waitWalk(t, l.ctrl, w.ID, func(w CanaryWalk) bool { return w.Applied })
	if got.State != WalkRunning || !strings.Contains(got.History[0].Note, "before the first step") {
		t.Fatalf("walk = %+v", got)
	}
	if st := l.ctrl.Route("GET /api/order").State(); st != (RouteState{Mode: ModeCanary, Weight: 20}) {
		t.Fatalf("route = %+v", st)
	}
}

func TestCanaryStepLatencyOutlier(t *testing.T) {
	ctx := context.Background()
	rig := newGateRig(t, gateConfigYAML, filepath.Join(t.TempDir(), "migrate.db"), goodEvidence())
	w, err := rig.ctrl.StartCanary(ctx, CanaryRequest{Target: "GET /api/order", Steps: []int{10, 100}, Interval: Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r := rig.ctrl.Route("GET /api/order")
	observe := func(side Side, n int, d time.Duration) {
		for i := 0; i < n; i++ {
			r.Observe(side, d, false)
		}
	}
	observe(SideLegacy, 200, 10*time.Millisecond)
	observe(SideCandidate, 10, 10*time.Millisecond)
	observe(SideCandidate, 1, 300*time.Millisecond) // one cold start
	res := rig.ctrl.analyseStep(w)
	if res.Verdict != VerdictPass {
		t.Fatalf("one outlier in 11 requests rolled back: %+v", res.Criteria)
	}
	// With enough traffic for a p99, a slow tail fails the step.
	observe(SideCandidate, 100, 10*time.Millisecond)
	observe(SideCandidate, 5, 300*time.Millisecond)
	res = rig.ctrl.analyseStep(w)
	if res.Verdict != VerdictFail || !strings.Contains(failedText(res.Criteria), "p99 ratio") {
		t.Fatalf("slow tail: %s %+v", res.Verdict, res.Criteria)
	}
}

func TestCanaryStepErrorsJudgedAgainstLegacy(t *testing.T) {
	tests := []struct {
		name               string
		legacyErr, candErr int // failures per 100 requests
		verdict            string
	}{
		{"upstream outage fails both sides", 100, 100, VerdictPass},
		{"candidate worse than legacy", 0, 10, VerdictFail},
		{"candidate as flaky as legacy", 5, 5, VerdictPass},
		{"candidate slightly worse within the ceiling", 5, 6, VerdictPass},
		{"candidate worse beyond the ceiling", 5, 8, VerdictFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newGateRig(t, gateConfigYAML, filepath.Join(t.TempDir(), "migrate.db"), goodEvidence())
			w, err := rig.ctrl.StartCanary(context.Background(), CanaryRequest{Target: "GET /api/order", Steps: []int{50}, Interval: Duration(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			r := rig.ctrl.Route("GET /api/order")
			for i := 0; i < 100; i++ {
				r.Observe(SideLegacy, 10*time.Millisecond, i < tt.legacyErr)
				r.Observe(SideCandidate, 10*time.Millisecond, i < tt.candErr)
			}
			if res := rig.ctrl.analyseStep(w); res.Verdict != tt.verdict {
				t.Fatalf("verdict %s, want %s: %+v", res.Verdict, tt.verdict, res.Criteria)
			}
		})
	}
}

// comparedEngine is a comparison engine whose match counters the test
// sets, as reverse shadow would grow them while a step runs.
type comparedEngine struct {
	*shadow.Mirror
	mu                  sync.Mutex
	matches, mismatches uint64
}

func (e *comparedEngine) Summary(route string) (shadow.Summary, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return shadow.Summary{Route: route, Matches: e.matches, Mismatches: e.mismatches}, true
}

func (e *comparedEngine) add(matches, mismatches uint64) {
	e.mu.Lock()
	e.matches += matches
	e.mismatches += mismatches
	e.mu.Unlock()
}

func TestCanaryStepMatchRatio(t *testing.T) {
	reverseYAML := strings.Replace(gateConfigYAML, "    mode: shadow\n", "    mode: shadow\n    reverseShadow: true\n", 1)
	tests := []struct {
		name                string
		yaml                string
		matches, mismatches uint64 // compared during the step
		verdict             string
		criterion           string // "" = no match ratio criterion
	}{
		{"nothing compared is inconclusive", reverseYAML, 0, 0, VerdictInconclusive, "inconclusive"},
		{"too few compared is inconclusive", reverseYAML, 3, 1, VerdictInconclusive, "inconclusive"},
		{"matching step passes", reverseYAML, 200, 1, VerdictPass, "pass"},
		{"differing step fails", reverseYAML, 90, 10, VerdictFail, "fail"},
		{"without reverse shadow the ratio is not judged", gateConfigYAML, 90, 10, VerdictPass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newGateRig(t, tt.yaml, filepath.Join(t.TempDir(), "migrate.db"), goodEvidence())
			// Before the step: a poor record, which the step must not inherit.
			eng := &comparedEngine{Mirror: rig.mirror, matches: 500, mismatches: 500}
			rig.ctrl.Shadow = eng
			w, err := rig.ctrl.StartCanary(context.Background(), CanaryRequest{Target: "GET /api/order", Steps: []int{50}, Interval: Duration(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			r := rig.ctrl.Route("GET /api/order")
			for i := 0; i < 100; i++ {
				r.Observe(SideLegacy, 10*time.Millisecond, false)
				r.Observe(SideCandidate, 10*time.Millisecond, false)
			}
			eng.add(tt.matches, tt.mismatches)
			res := rig.ctrl.analyseStep(w)
			if res.Verdict != tt.verdict {
				t.Fatalf("verdict %s, want %s: %+v", res.Verdict, tt.verdict, res.Criteria)
			}
			var got string
			for _, c := range res.Criteria {
				if c.Name != "match ratio" {
					continue
				}
				switch {
				case c.Pass:
					got = "pass"
				case c.Inconclusive:
					got = "inconclusive"
				default:
					got = "fail"
				}
			}
			if got != tt.criterion {
				t.Fatalf("match ratio criterion %q, want %q: %+v", got, tt.criterion, res.Criteria)
			}
			if res.Compared != tt.matches+tt.mismatches || res.Matched != tt.matches {
				t.Fatalf("step compared %d matched %d, want the step's own %d and %d", res.Compared, res.Matched, tt.matches+tt.mismatches, tt.matches)
			}
		})
	}
}

// TestCanaryWatchRollsBackManualCanary: a route put in canary by hand, on
// a candidate failing every request, is rolled back by the same analysis
// as a walk step, without a walk; a healthy one is left alone.
func TestCanaryWatchRollsBackManualCanary(t *testing.T) {
	ctx := context.Background()
	l := startLive(t, filepath.Join(t.TempDir(), "migrate.db"), true)
	l.ctrl.canary.mu.Lock()
	l.ctrl.canary.window = 300 * time.Millisecond
	l.ctrl.canary.mu.Unlock()
	for _, req := range []TransitionRequest{
		{Target: "GET /api/order", To: ModeCanary, Weight: 100, Actor: "ann"},
		{Target: "POST /api/order", To: ModeCanary, Weight: 50, Actor: "ann"},
	} {
		if _, err := l.ctrl.Transition(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	// GET fails every request, POST none.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, r := range l.ctrl.Routes() {
				st := r.State()
				if st.Mode == ModeCanary && rand.IntN(100) < st.Weight {
					r.Observe(SideCandidate, 10*time.Millisecond, r.Name == "GET /api/order")
				} else {
					r.Observe(SideLegacy, 10*time.Millisecond, false)
				}
			}
			time.Sleep(300 * time.Microsecond)
		}
	}()
	defer func() { close(stop); <-done }()
	start := time.Now()
	for l.ctrl.Route("GET /api/order").State().Mode != ModeLegacy {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("a manual canary failing every request is still %+v after 5 s", l.ctrl.Route("GET /api/order").State())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("rolled back after %s", time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second) // several windows of the healthy route
	if st := l.ctrl.Route("POST /api/order").State(); st != (RouteState{Mode: ModeCanary, Weight: 50}) {
		t.Errorf("the healthy manual canary moved to %+v", st)
	}
	audit, err := l.ctrl.Audit(ctx, AuditQuery{Route: "GET /api/order"})
	if err != nil {
		t.Fatal(err)
	}
	last := audit[len(audit)-1]
	var snap GateSnapshot
	if last.To != ModeLegacy || last.Actor != CanaryWatchActor || !strings.Contains(last.Reason, "candidate errors") ||
		json.Unmarshal(last.Evidence, &snap) != nil || snap.Canary == nil || snap.Canary.CandidateErrors < DefaultCanaryMinRequests {
		t.Fatalf("rollback audit = %+v (evidence %s)", last, last.Evidence)
	}
}
