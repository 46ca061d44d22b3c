package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// samples is a shadow.Recorder that keeps what the mirror recorded.
type samples struct {
	mu  sync.Mutex
	got []shadow.Sample
}

func (s *samples) Record(x shadow.Sample) {
	s.mu.Lock()
	s.got = append(s.got, x)
	s.mu.Unlock()
}

func (s *samples) all() []shadow.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]shadow.Sample(nil), s.got...)
}

// reverseConfig is twoSided with reverse shadow on and the default write
// policy (deny).
const reverseConfig = `
maxBufferedBody: 1KiB
services:
  orders:
    legacy: {{legacy}}
    candidate: {url: "{{candidate}}"}
    routes: ["GET /api/order", "POST /api/order", "GET /api/order/{id}"]
    reverseShadow: true
`

// jsonBackend answers path-specific JSON bodies, the same for the paths
// both sides agree on.
func jsonBackend(t *testing.T, name string, bodies map[string]string) *backend {
	return newBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body, ok := bodies[r.URL.Path]
		if !ok {
			body = `{"id":0}`
		}
		io.WriteString(w, body)
	})
}

// waitEvidence polls the mirror until the route's evidence satisfies ok.
func waitEvidence(t *testing.T, m *shadow.Mirror, route string, ok func(*shadow.Evidence) bool) *shadow.Evidence {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev := m.Evidence(route)
		if ev != nil && ok(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("evidence for %s never arrived: %+v", route, ev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReverseShadowCompares(t *testing.T) {
	tests := []struct {
		name   string
		mode   strangler.Mode
		weight int
	}{
		{"cutover", strangler.ModeCutover, 0},
		{"canary answered by the candidate", strangler.ModeCanary, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			legacy := jsonBackend(t, "legacy", map[string]string{
				"/api/order/1": `{"id":1,"sku":"A"}`,
				"/api/order/2": `{"id":2,"sku":"B","legacyOnly":true}`,
			})
			answers := map[string]string{
				"/api/order/1": `{"id":1,"sku":"A"}`,
				"/api/order/2": `{"id":2,"sku":"B"}`,
			}
			candidate := jsonBackend(t, "candidate", answers)
			rec := &samples{}
			mirror := shadow.NewMirror(shadow.MirrorConfig{}, rec)
			h := newHarness(t, reverseConfig, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
			route := "GET /api/order/{id}"
			h.set(t, route, tt.mode, tt.weight)
			for _, id := range []string{"1", "2"} {
				if _, _, body := get(t, h.front.URL+"/api/order/"+id, nil); body != answers["/api/order/"+id] {
					t.Fatalf("client got %s, want the candidate's answer", body)
				}
			}
			ev := waitEvidence(t, mirror, route, func(ev *shadow.Evidence) bool { return ev.Samples >= 2 })
			if ev.Matches != 1 || ev.Mismatches != 1 || ev.Baselines != 0 {
				t.Fatalf("evidence %+v, want one match and one mismatch", ev)
			}
			// Legacy is on the legacy side: its extra field is what the
			// candidate is missing, as it would be in shadow mode.
			if ev.Signatures["/legacyOnly "+shadow.DiffMissing] != 1 {
				t.Fatalf("signatures %v", ev.Signatures)
			}
			var mismatch *shadow.Sample
			for _, s := range rec.all() {
				if s.Result.Outcome == shadow.OutcomeMismatch {
					mismatch = &s
				}
			}
			if mismatch == nil || !strings.Contains(string(mismatch.Legacy.Body), "legacyOnly") ||
				strings.Contains(string(mismatch.Candidate.Body), "legacyOnly") {
				t.Fatalf("recorded mismatch %+v", mismatch)
			}
			// The route's status and the gate read the same evidence.
			for _, st := range h.ctrl.Status() {
				if st.Route == route && (st.Samples != 2 || st.Mismatches != 1) {
					t.Fatalf("status %+v", st)
				}
			}
			r := h.ctrl.Route(route)
			if n := r.Mirror.Submitted.Load(); n != 2 {
				t.Fatalf("submitted %d copies", n)
			}
			// In cutover the copies stand in for legacy's live figures; in
			// canary those stay the real legacy traffic of the step.
			legacyRequests := r.Legacy.Snapshot().Requests
			if want := map[strangler.Mode]int64{strangler.ModeCutover: 2, strangler.ModeCanary: 0}[tt.mode]; legacyRequests != want {
				t.Fatalf("legacy live requests %d, want %d", legacyRequests, want)
			}
		})
	}
}

func TestReverseShadowWritesStayOffLegacy(t *testing.T) {
	for _, policy := range []string{"", "writes: allow"} {
		t.Run("policy "+policy, func(t *testing.T) {
			legacy := newBackend(t, "legacy", nil)
			candidate := newBackend(t, "candidate", nil)
			cfg := reverseConfig
			if policy != "" {
				cfg += "    shadow: {" + policy + "}\n"
			}
			mirror := shadow.NewMirror(shadow.MirrorConfig{}, nil)
			h := newHarness(t, cfg, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
			h.set(t, "POST /api/order", strangler.ModeCutover, 0)
			resp, err := http.Post(h.front.URL+"/api/order", "application/json", strings.NewReader(`{"sku":"A"}`))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if s := candidate.wait(t); s.Method != http.MethodPost || s.BodyLen != len(`{"sku":"A"}`) {
				t.Fatalf("candidate got %+v", s)
			}
			if policy == "" {
				ev := waitEvidence(t, mirror, "POST /api/order", func(ev *shadow.Evidence) bool { return ev.SkippedWrites > 0 })
				time.Sleep(100 * time.Millisecond) // a copy, if one were sent, would have arrived
				if legacy.count() != 0 || ev.SkippedWrites != 1 || ev.Samples != 0 {
					t.Fatalf("legacy got %d requests; evidence %+v", legacy.count(), ev)
				}
				// status tells a copy the policy skipped from one queued or dropped.
				r := h.ctrl.Route("POST /api/order")
				if r.Mirror.Skipped.Load() != 1 || r.Mirror.Submitted.Load() != 0 || r.Mirror.Dropped.Load() != 0 {
					t.Fatalf("mirror counters: submitted %d, skipped %d, dropped %d", r.Mirror.Submitted.Load(), r.Mirror.Skipped.Load(), r.Mirror.Dropped.Load())
				}
				return
			}
			// writes: allow sends the copy to legacy, marked but not as a dry run.
			s := legacy.wait(t)
			if s.Header.Get(shadow.HeaderShadow) != "1" || s.Header.Get(shadow.HeaderShadowWrite) != "" || s.BodyLen != len(`{"sku":"A"}`) {
				t.Fatalf("legacy copy %+v", s)
			}
			waitEvidence(t, mirror, "POST /api/order", func(ev *shadow.Evidence) bool { return ev.Samples == 1 && ev.SkippedWrites == 0 })
		})
	}
}

func TestReverseShadowSlowLegacyNeverDelaysClient(t *testing.T) {
	release := make(chan struct{})
	legacy := newBackend(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		fmt.Fprint(w, `{"side":"legacy"}`)
	})
	defer close(release) // before the servers close: they wait for handlers
	candidate := newBackend(t, "candidate", nil)
	// One worker and a queue of one: most copies cannot even be queued.
	mirror := shadow.NewMirror(shadow.MirrorConfig{Workers: 1, QueueSize: 1}, nil)
	h := newHarness(t, reverseConfig, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
	h.set(t, "GET /api/order", strangler.ModeCutover, 0)
	const n = 10
	for i := 0; i < n; i++ {
		start := time.Now()
		status, _, body := get(t, h.front.URL+"/api/order", nil)
		if d := time.Since(start); d > time.Second || status != 200 || !strings.Contains(body, `"side":"candidate"`) {
			t.Fatalf("request %d: %d %s after %s", i, status, body, d)
		}
	}
	r := h.ctrl.Route("GET /api/order")
	// The client has its answer before the copy is handed to the mirror:
	// give the last handler a moment to finish.
	for deadline := time.Now().Add(5 * time.Second); r.Mirror.Submitted.Load()+r.Mirror.Dropped.Load() < n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	ev := mirror.Evidence("GET /api/order")
	// One copy is with the worker, one queued; the rest were dropped and
	// counted on the route and in the evidence.
	if dropped := r.Mirror.Dropped.Load(); dropped < n-3 || int64(ev.Drops) != dropped || r.Mirror.Submitted.Load()+dropped != n {
		t.Fatalf("dropped %d, submitted %d, evidence drops %d", dropped, r.Mirror.Submitted.Load(), ev.Drops)
	}
}

func TestCanaryWalkRollsBackOnReverseShadowMismatch(t *testing.T) {
	legacy := jsonBackend(t, "legacy", map[string]string{"/api/order": `{"total":200}`})
	candidate := jsonBackend(t, "candidate", map[string]string{"/api/order": `{"total":300}`})
	cfg := reverseConfig + `    gate:
      minMatch: 99%
      maxP99Ratio: 1000
      canaryMinRequests: 5
      canaryMaxExtensions: 3
`
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, nil)
	h := newHarness(t, cfg, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
	route := "GET /api/order"
	h.set(t, route, strangler.ModeShadow, 0)
	// There is no shadow evidence to enter canary on: the first weight is
	// forced, and the walk starts from it.
	if _, err := h.ctrl.Transition(context.Background(), strangler.TransitionRequest{Target: route, To: strangler.ModeCanary,
		Weight: 50, Force: true, Reason: "judged by reverse shadow only", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	walkerDone := make(chan struct{})
	go func() { h.ctrl.RunCanaryWalker(ctx); close(walkerDone) }()
	defer func() { cancel(); <-walkerDone }()
	w, err := h.ctrl.StartCanary(ctx, strangler.CanaryRequest{Target: route, Steps: []int{50, 100},
		Interval: strangler.Duration(300 * time.Millisecond), Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(8 * time.Second)
	var got strangler.CanaryWalk
	for {
		get(t, h.front.URL+"/api/order", nil)
		walks, err := h.ctrl.CanaryWalks(ctx, route)
		if err != nil {
			t.Fatal(err)
		}
		if len(walks) > 0 && walks[0].ID == w.ID && walks[0].State != strangler.WalkRunning {
			got = walks[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("walk never ended: %+v", walks)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got.State != strangler.WalkRolledBack || !strings.Contains(got.Detail, "match ratio") {
		t.Fatalf("walk %s: %s; history %+v", got.State, got.Detail, got.History)
	}
	last := got.History[len(got.History)-1]
	if last.Weight != 50 || last.Compared < 5 || last.Matched != 0 {
		t.Fatalf("failing step %+v", last)
	}
	for _, c := range last.Criteria {
		if c.Name != "match ratio" && !c.Pass {
			t.Fatalf("step failed on %s too: %+v", c.Name, last.Criteria)
		}
	}
	if st := h.ctrl.Route(route).State(); st.Mode != strangler.ModeLegacy {
		t.Fatalf("route %+v after the rollback", st)
	}
}
