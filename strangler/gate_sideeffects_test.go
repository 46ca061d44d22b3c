package strangler

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// TestGateRefusesSideEffects: a candidate that wrote to the fleet
// differently from legacy fails its gate even with a passing match ratio;
// one whose writes matched passes the criterion; a route whose calls were
// never compared, or on which neither side wrote, has no such criterion.
func TestGateRefusesSideEffects(t *testing.T) {
	match := Percent(0.9)
	g := &GateConfig{MinSamples: 10, MinMatch: &match}
	resp := func(calls ...shadow.Call) shadow.Response {
		return shadow.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{}`),
			Calls: calls, CallsRecorded: true}
	}
	reserve := shadow.Call{Method: "POST", URL: "/api/inventory/reserve", Status: 200, Stubbed: true}
	read := shadow.Call{Method: "GET", URL: "/api/inventory?skuCode=a", Status: 200}
	evidence := func(slipped int, watched bool, both ...shadow.Call) *shadow.Evidence {
		ev := shadow.NewEvidence("POST /api/order", "order-service")
		for i := 0; i < 100; i++ {
			l, c := resp(both...), resp(both...)
			if i < slipped {
				c = resp(append(both, reserve)...)
			}
			if !watched {
				l.CallsRecorded, c.CallsRecorded = false, false
			}
			ev.Add(shadow.Sample{At: time.Now(), Route: ev.Route, Legacy: l, Candidate: c, Result: shadow.Compare(l, c, nil, nil)})
		}
		return ev
	}
	find := func(r GateResult) *Criterion {
		for i := range r.Criteria {
			if r.Criteria[i].Name == "side effects" {
				return &r.Criteria[i]
			}
		}
		return nil
	}

	bad := EvaluateGate(g, GateFacts{Route: "POST /api/order", To: ModeCutover, Evidence: evidence(1, true)})
	c := find(bad)
	if bad.Pass || c == nil || c.Pass || c.Inconclusive || !strings.Contains(c.Got, "1 of 100") || !strings.Contains(c.Got, "POST /api/inventory/reserve") ||
		!strings.Contains(c.Hint, "migrate diffs 'POST /api/order'") {
		t.Errorf("one slipped write of 100: pass=%v criterion=%+v", bad.Pass, c)
	}
	good := EvaluateGate(g, GateFacts{Route: "POST /api/order", To: ModeCutover, Evidence: evidence(0, true, read, reserve)})
	if c := find(good); !good.Pass || c == nil || !c.Pass || c.Got != "as legacy's in 100 samples, 100 of them with writes" {
		t.Errorf("no slip: pass=%v criterion=%+v", good.Pass, c)
	}
	readsOnly := EvaluateGate(g, GateFacts{Route: "POST /api/order", To: ModeCutover, Evidence: evidence(0, true, read)})
	if c := find(readsOnly); !readsOnly.Pass || c != nil {
		t.Errorf("neither side wrote: pass=%v criterion=%+v", readsOnly.Pass, c)
	}
	unwatched := EvaluateGate(g, GateFacts{Route: "POST /api/order", To: ModeCutover, Evidence: evidence(0, false)})
	if c := find(unwatched); !unwatched.Pass || c != nil {
		t.Errorf("calls never compared: pass=%v criterion=%+v", unwatched.Pass, c)
	}
}
