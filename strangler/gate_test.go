package strangler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// gateConfigYAML is a two-route service in shadow mode with a full gate.
const gateConfigYAML = `
services:
  orders:
    legacy: http://127.0.0.1:1
    candidate: {url: "http://127.0.0.1:2"}
    mode: shadow
    routes: ["GET /api/order", "POST /api/order"]
    shadow: {writes: marked}
    gate:
      minSamples: 1000
      minMatch: 99%
      maxErrorRate: 1%
      maxP99Ratio: 1.5
      cleanWindow: 100
      minDuration: 1h
      requireWrites: true
      minCutoverTime: 1h
      canaryMinRequests: 5
      canaryMaxExtensions: 2
      routes:
        "POST /api/order": {minSamples: 10, minDuration: 1m}
`

var gateT0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// sampleSpec describes samples to fold into evidence.
type sampleSpec struct {
	matches, mismatches, errors, skippedWrites int
	legacy, candidate                          time.Duration
	span                                       time.Duration
	mismatchSig                                string
}

func buildEvidence(route string, s sampleSpec) *shadow.Evidence {
	ev := shadow.NewEvidence(route, "orders")
	total := s.matches + s.mismatches + s.errors
	at := func(i int) time.Time {
		if total <= 1 {
			return gateT0
		}
		return gateT0.Add(time.Duration(int64(s.span) * int64(i) / int64(total-1)))
	}
	i := 0
	sig := s.mismatchSig
	if sig == "" {
		sig = "/price value"
	}
	// Mismatches first, so a clean window of the last K can miss them.
	for n := 0; n < s.mismatches; n++ {
		path, typ, _ := strings.Cut(sig, " ")
		ev.Add(shadow.Sample{At: at(i), Route: route, Service: "orders",
			Legacy: shadow.Response{Latency: s.legacy}, Candidate: shadow.Response{Latency: s.candidate},
			Result: shadow.Result{Outcome: shadow.OutcomeMismatch, Differences: []shadow.Difference{{Path: path, Type: typ, Signature: sig}}}})
		i++
	}
	for n := 0; n < s.errors; n++ {
		ev.Add(shadow.Sample{At: at(i), Route: route, Service: "orders",
			Result: shadow.Result{Outcome: shadow.OutcomeCandidateError, Error: "deadline"}})
		i++
	}
	for n := 0; n < s.matches; n++ {
		ev.Add(shadow.Sample{At: at(i), Route: route, Service: "orders",
			Legacy: shadow.Response{Latency: s.legacy}, Candidate: shadow.Response{Latency: s.candidate},
			Result: shadow.Result{Outcome: shadow.OutcomeMatch}})
		i++
	}
	for n := 0; n < s.skippedWrites; n++ {
		ev.AddSkipped(shadow.OutcomeSkippedWrite)
	}
	return ev
}

func mustGate(t testing.TB) *GateConfig {
	t.Helper()
	cfg, err := ParseConfig([]byte(gateConfigYAML), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Services["orders"].Gate
}

func criterion(t *testing.T, res GateResult, name string) Criterion {
	t.Helper()
	for _, c := range res.Criteria {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no criterion %q in %+v", name, res.Criteria)
	return Criterion{}
}

func TestEvaluateGateCutover(t *testing.T) {
	g := mustGate(t)
	tests := []struct {
		name    string
		route   string
		spec    sampleSpec
		verdict string
		check   string // criterion to inspect
		pass    bool
		got     string // substring of Got
		delta   string
	}{
		{"too few samples is inconclusive", "GET /api/order",
			sampleSpec{matches: 412, legacy: 10 * time.Millisecond, candidate: 11 * time.Millisecond, span: 2 * time.Hour},
			VerdictInconclusive, "samples", false, "412", "−588"},
		{"all clear", "GET /api/order",
			sampleSpec{matches: 2000, legacy: 10 * time.Millisecond, candidate: 12 * time.Millisecond, span: 2 * time.Hour},
			VerdictPass, "match ratio", true, "100%", ""},
		{"match ratio below minimum fails", "GET /api/order",
			sampleSpec{matches: 1900, mismatches: 100, legacy: 10 * time.Millisecond, candidate: 10 * time.Millisecond, span: 2 * time.Hour},
			VerdictFail, "match ratio", false, "95%", "−4 pp"},
		{"slow candidate fails p99", "GET /api/order",
			sampleSpec{matches: 2000, legacy: 10 * time.Millisecond, candidate: 30 * time.Millisecond, span: 2 * time.Hour},
			VerdictFail, "p99 ratio", false, "×", "+1."},
		{"error rate over ceiling fails", "GET /api/order",
			sampleSpec{matches: 1900, errors: 100, legacy: 10 * time.Millisecond, candidate: 10 * time.Millisecond, span: 2 * time.Hour},
			VerdictFail, "candidate errors", false, "5%", "+4 pp"},
		{"short span is inconclusive", "GET /api/order",
			sampleSpec{matches: 2000, legacy: 10 * time.Millisecond, candidate: 10 * time.Millisecond, span: 10 * time.Minute},
			VerdictInconclusive, "shadow duration", false, "10m (", "−50m"},
		{"per-route override lowers minSamples", "POST /api/order",
			sampleSpec{matches: 500, legacy: 10 * time.Millisecond, candidate: 10 * time.Millisecond, span: 5 * time.Minute},
			VerdictPass, "samples", true, "500", ""},
		{"writes only skipped fail", "POST /api/order",
			sampleSpec{skippedWrites: 37},
			VerdictFail, "write coverage", false, "0 writes compared, 37 skipped", "−37 writes"},
		{"read route needs no writes", "GET /api/order",
			sampleSpec{matches: 2000, legacy: 10 * time.Millisecond, candidate: 10 * time.Millisecond, span: 2 * time.Hour},
			VerdictPass, "write coverage", true, "read route", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := buildEvidence(tt.route, tt.spec)
			res := EvaluateGate(g.For(tt.route), GateFacts{Route: tt.route, To: ModeCutover, Now: gateT0.Add(3 * time.Hour), Evidence: ev})
			if res.Verdict != tt.verdict || res.Pass != (tt.verdict == VerdictPass) {
				t.Fatalf("verdict = %s pass=%v, want %s; criteria %+v", res.Verdict, res.Pass, tt.verdict, res.Criteria)
			}
			c := criterion(t, res, tt.check)
			if c.Pass != tt.pass || !strings.Contains(c.Got, tt.got) || !strings.HasPrefix(c.Delta, tt.delta) {
				t.Fatalf("%s = %+v, want pass=%v got~%q delta~%q", tt.check, c, tt.pass, tt.got, tt.delta)
			}
			// A criterion that is not met says what would meet it.
			if !c.Pass && c.Hint == "" {
				t.Errorf("%s is not met and gives no hint: %+v", tt.check, c)
			}
			var snap GateSnapshot
			if err := json.Unmarshal(res.Evidence, &snap); err != nil || snap.Verdict != tt.verdict || snap.Shadow == nil {
				t.Fatalf("evidence snapshot = %s (%v)", res.Evidence, err)
			}
		})
	}
}

func TestEvaluateGateCleanWindow(t *testing.T) {
	g := &GateConfig{CleanWindow: 100}
	// 50 mismatches, then 200 matches: the last 100 are clean.
	ev := buildEvidence("GET /api/order", sampleSpec{mismatches: 50, matches: 200, legacy: time.Millisecond, candidate: time.Millisecond})
	res := EvaluateGate(g, GateFacts{Route: "GET /api/order", To: ModeCutover, Evidence: ev})
	if !res.Pass {
		t.Fatalf("clean last 100 should pass: %+v", res.Criteria)
	}
	// A window reaching back into the mismatches fails, naming the class
	// in words, not as its signature.
	g.CleanWindow = 300
	res = EvaluateGate(g, GateFacts{Route: "GET /api/order", To: ModeCutover, Evidence: ev})
	c := criterion(t, res, "recent differences")
	if res.Verdict != VerdictFail || c.Inconclusive || !strings.HasSuffix(c.Got, ": value differs at /price") || strings.Contains(c.Got, "/price value") {
		t.Fatalf("window of 300: %s %+v", res.Verdict, c)
	}
	// Learned noise explains the class: clean again.
	noise := shadow.NewNoise()
	for i := 0; i < 3; i++ {
		noise.Learn(shadow.Result{Outcome: shadow.OutcomeMismatch, Differences: []shadow.Difference{{Path: "/price", Type: "value", Signature: "/price value"}}}, gateT0)
	}
	if !noise.Has("/price value") {
		t.Skip("noise does not learn this signature from A/A results; class explanation covered by shadow tests")
	}
	res = EvaluateGate(g, GateFacts{Route: "GET /api/order", To: ModeCutover, Evidence: ev, Noise: noise})
	if !res.Pass {
		t.Fatalf("explained class should pass: %+v", res.Criteria)
	}
}

func TestEvaluateGateRetire(t *testing.T) {
	g := mustGate(t)
	cand := SideSnapshot{Requests: 1000, Errors: 50}
	at := &SideTotals{Requests: 500, Errors: 50}
	tests := []struct {
		name    string
		now     time.Time
		cand    SideSnapshot
		verdict string
	}{
		{"too soon is inconclusive", gateT0.Add(10 * time.Minute), cand, VerdictInconclusive},
		{"clean record after an hour passes", gateT0.Add(2 * time.Hour), cand, VerdictPass},
		{"errors since cutover fail", gateT0.Add(2 * time.Hour), SideSnapshot{Requests: 1000, Errors: 90}, VerdictFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := EvaluateGate(g.For("GET /api/order"), GateFacts{Route: "GET /api/order", To: ModeRetired, Now: tt.now,
				Candidate: tt.cand, CutoverAt: gateT0, CandidateAtCutover: at})
			if res.Verdict != tt.verdict {
				t.Fatalf("verdict %s, want %s: %+v", res.Verdict, tt.verdict, res.Criteria)
			}
		})
	}
}

func TestGateConfigRejectedAtLoad(t *testing.T) {
	base := `
services:
  orders:
    legacy: http://127.0.0.1:1
    routes: ["GET /api/order"]
    gate: `
	tests := []struct {
		gate, want string
	}{
		{`{minMatch: 101%}`, "services.orders.gate: minMatch: 101% is more than 100%"},
		{`{maxErrorRate: "-1%"}`, "services.orders.gate: maxErrorRate: -1% is negative"},
		{`{minSamples: -5}`, "minSamples: -5 is negative"},
		{`{maxP99Ratio: -0.5}`, "maxP99Ratio: -0.5 is negative"},
		{`{cleanWindow: 5000}`, "cleanWindow: 5000 is more than the 1000 recent samples"},
		{`{minDuration: "-1h"}`, "minDuration: -1h0m0s is negative"},
		{`{minMatch: lots}`, `minMatch: "lots" is not a percentage`},
		{`{minSampels: 3}`, `minSampels: unknown key; did you mean "minSamples"?`},
		{`{routes: {"GET /api/other": {minSamples: 1}}}`, `routes["GET /api/other"]: the service does not list this route`},
		{`{routes: {"GET /api/order": {minMatch: 120%}}}`, `routes["GET /api/order"].minMatch: 120% is more than 100%`},
	}
	for _, tt := range tests {
		_, err := ParseConfig([]byte(base+tt.gate+"\n"), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("gate %s: err = %v, want %q", tt.gate, err, tt.want)
		}
	}
	// Below 1 is a demand for a faster candidate, not a mistake.
	if _, err := ParseConfig([]byte(base+"{maxP99Ratio: 0.8, minMatch: 100%}\n"), t.TempDir()); err != nil {
		t.Fatalf("maxP99Ratio 0.8: %v", err)
	}
}

// gateRig is a real controller over a real store file, with a real
// shadow engine holding restored evidence.
type gateRig struct {
	ctrl   *Controller
	mirror *shadow.Mirror
	store  *Store
	path   string
	now    time.Time
	mu     sync.Mutex
}

func newGateRig(t *testing.T, yaml, path string, evidence map[string]*shadow.Evidence) *gateRig {
	t.Helper()
	store, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for route, ev := range evidence {
		data, _ := json.Marshal(ev)
		if err := store.SaveEvidence(context.Background(), route, "orders", data, gateT0); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := ParseConfig([]byte(yaml), filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	rig := &gateRig{store: store, path: path, now: gateT0.Add(3 * time.Hour)}
	rig.mirror = shadow.NewMirror(shadow.MirrorConfig{}, nil)
	rig.ctrl = NewController(store, nil, discardLogger())
	rig.ctrl.Shadow = rig.mirror
	rig.ctrl.Now = rig.clock
	if _, err := rig.ctrl.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rig.close)
	return rig
}

func (r *gateRig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *gateRig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

func (r *gateRig) close() {
	if r.store == nil {
		return
	}
	_ = r.mirror.Close(context.Background())
	_ = r.store.Close()
	r.store = nil
}

func goodEvidence() map[string]*shadow.Evidence {
	return map[string]*shadow.Evidence{
		"GET /api/order":  buildEvidence("GET /api/order", sampleSpec{matches: 1500, legacy: 10 * time.Millisecond, candidate: 11 * time.Millisecond, span: 2 * time.Hour}),
		"POST /api/order": buildEvidence("POST /api/order", sampleSpec{matches: 500, legacy: 10 * time.Millisecond, candidate: 11 * time.Millisecond, span: 2 * time.Hour}),
	}
}

func TestCutoverGatedThroughController(t *testing.T) {
	ctx := context.Background()
	ev := goodEvidence()
	ev["POST /api/order"] = buildEvidence("POST /api/order", sampleSpec{skippedWrites: 12})
	rig := newGateRig(t, gateConfigYAML, filepath.Join(t.TempDir(), "migrate.db"), ev)
	c := rig.ctrl
	// Straight from shadow, on the shadow evidence. The write route was
	// never compared: the whole service is refused.
	_, err := c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeCutover, Actor: "ann"})
	var gateErr *GateError
	if !errors.As(err, &gateErr) || gateErr.Results["POST /api/order"].Verdict != VerdictFail || !gateErr.Results["GET /api/order"].Pass {
		t.Fatalf("cutover: %v", err)
	}
	if !strings.Contains(err.Error(), "write coverage") {
		t.Fatalf("refusal does not say which criterion: %v", err)
	}
	// Force needs a reason; with one the override and the numbers are audited.
	var bad *RequestError
	if _, err := c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeCutover, Force: true}); !errors.As(err, &bad) {
		t.Fatalf("force without reason: %v", err)
	}
	ts, err := c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeCutover, Force: true, Actor: "ann", Reason: "CAB-1234"})
	if err != nil || len(ts) != 2 {
		t.Fatalf("forced cutover: %v %v", ts, err)
	}
	audit, err := c.Audit(ctx, AuditQuery{Route: "POST /api/order"})
	if err != nil {
		t.Fatal(err)
	}
	last := audit[len(audit)-1]
	var snap GateSnapshot
	if err := json.Unmarshal(last.Evidence, &snap); err != nil {
		t.Fatalf("audit evidence %s: %v", last.Evidence, err)
	}
	if !last.Forced || last.Reason != "CAB-1234" || last.Actor != "ann" || snap.Verdict != VerdictFail || len(snap.Criteria) == 0 {
		t.Fatalf("audited cutover = %+v, snapshot %+v", last, snap)
	}

	// Retire waits for minCutoverTime, then checks the record since cutover.
	c.Route("GET /api/order").Observe(SideCandidate, time.Millisecond, false)
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeRetired}); !errors.As(err, &gateErr) ||
		gateErr.Results["GET /api/order"].Verdict != VerdictInconclusive {
		t.Fatalf("early retire: %v", err)
	}
	rig.advance(2 * time.Hour)
	for i := 0; i < 10; i++ {
		c.Route("GET /api/order").Observe(SideCandidate, time.Millisecond, i == 0)
	}
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeRetired}); !errors.As(err, &gateErr) ||
		gateErr.Results["GET /api/order"].Verdict != VerdictFail {
		t.Fatalf("retire with 1 error in 11 requests (9%%) over the 1%% ceiling: %v", err)
	}
	for i := 0; i < 200; i++ {
		c.Route("GET /api/order").Observe(SideCandidate, time.Millisecond, false)
	}
	if ts, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeRetired}); err != nil || len(ts) != 1 {
		t.Fatalf("retire with a clean record: %v %v", ts, err)
	}
	// Rollback is instant and never gated, from any mode.
	for _, target := range []string{"GET /api/order", "POST /api/order"} {
		if ts, err := c.Transition(ctx, TransitionRequest{Target: target, To: ModeLegacy, Reason: "drill"}); err != nil || len(ts) != 1 {
			t.Fatalf("rollback %s: %v %v", target, ts, err)
		}
	}
}

func TestCheckGateReport(t *testing.T) {
	rig := newGateRig(t, gateConfigYAML, filepath.Join(t.TempDir(), "migrate.db"), goodEvidence())
	rep, err := rig.ctrl.CheckGate(context.Background(), "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || rep.Verdict != VerdictPass || len(rep.Routes) != 2 || rep.Routes[0].To != ModeCutover {
		t.Fatalf("report = %+v", rep)
	}
	// Evaluating changes nothing.
	if st := rig.ctrl.Route("GET /api/order").State(); st.Mode != ModeShadow {
		t.Fatalf("gate check moved the route: %+v", st)
	}
	var unknown *UnknownTargetError
	if _, err := rig.ctrl.CheckGate(context.Background(), "nope", ""); !errors.As(err, &unknown) {
		t.Fatalf("unknown target: %v", err)
	}
}

func TestConcurrentTransitionsConflict(t *testing.T) {
	ctx := context.Background()
	rig := newGateRig(t, gateConfigYAML, filepath.Join(t.TempDir(), "migrate.db"), goodEvidence())
	c := rig.ctrl
	// Two operators see the route in shadow; one promotes to canary, the
	// other rolls back. Exactly one wins; the other is told it lost.
	for round := 0; round < 20; round++ {
		if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeShadow}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		reqs := []TransitionRequest{
			{Target: "GET /api/order", To: ModeCanary, Weight: 5, ExpectMode: ModeShadow, Actor: "ann"},
			{Target: "GET /api/order", To: ModeLegacy, ExpectMode: ModeShadow, Actor: "bob"},
		}
		for i := range reqs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, errs[i] = c.Transition(ctx, reqs[i])
			}(i)
		}
		wg.Wait()
		var conflict *ConflictError
		wins, losses := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.As(err, &conflict):
				losses++
				if !strings.Contains(err.Error(), "expected shadow") {
					t.Fatalf("conflict message: %v", err)
				}
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if wins != 1 || losses != 1 {
			t.Fatalf("round %d: %d wins, %d conflicts: %v", round, wins, losses, errs)
		}
		if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeLegacy}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAdminGateEndpoints(t *testing.T) {
	rig := newGateRig(t, gateConfigYAML, filepath.Join(t.TempDir(), "migrate.db"), goodEvidence())
	srv := httptest.NewServer(NewAdmin(rig.ctrl, AdminOptions{Token: "s3cret"}))
	defer srv.Close()
	call := func(method, path, body string, token bool) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json") // as Flagger's webhooks send
		if token {
			req.Header.Set("Authorization", "Bearer s3cret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// Behind the admin token like everything else.
	for _, p := range []string{"/v1/gate?target=orders", "/v1/integrations/argo?target=orders", "/v1/canary"} {
		if code, _ := call(http.MethodGet, p, "", false); code != http.StatusUnauthorized {
			t.Fatalf("%s without token: %d", p, code)
		}
	}
	if code, _ := call(http.MethodPost, "/v1/integrations/flagger", `{"name":"orders"}`, false); code != http.StatusUnauthorized {
		t.Fatalf("flagger without token: %d", code)
	}

	client := &AdminClient{BaseURL: srv.URL, Token: "s3cret"}
	rep, err := client.Gate(context.Background(), "GET /api/order", "")
	if err != nil || !rep.Pass || rep.Routes[0].Route != "GET /api/order" {
		t.Fatalf("gate via client: %+v %v", rep, err)
	}

	// Argo web metric: a stable object with the figures at the top level.
	code, body := call(http.MethodGet, "/v1/integrations/argo?target=orders", "", true)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || code != http.StatusOK {
		t.Fatalf("argo: %d %s", code, body)
	}
	for _, k := range []string{"matchRatio", "errorRate", "p99Ratio", "pass", "samples", "verdict"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("argo metric lacks %q: %s", k, body)
		}
	}
	if m["pass"] != true || m["matchRatio"].(float64) != 1 || m["samples"].(float64) != 500 {
		t.Fatalf("argo metric = %s", body)
	}

	// Flagger confirm-promotion: 2xx promotes, 4xx holds.
	payload := `{"name":"orders-canary","namespace":"shop","phase":"Progressing","checksum":"abc","metadata":{"route":"GET /api/order"}}`
	if code, body := call(http.MethodPost, "/v1/integrations/flagger", payload, true); code != http.StatusOK {
		t.Fatalf("flagger pass: %d %s", code, body)
	}
	if code, _ := call(http.MethodPost, "/v1/integrations/flagger", `{"name":"nope","namespace":"shop","phase":"Progressing"}`, true); code != http.StatusNotFound {
		t.Fatalf("flagger unknown target: %d", code)
	}
	if code, _ := call(http.MethodPost, "/v1/integrations/flagger", `not json`, true); code != http.StatusBadRequest {
		t.Fatalf("flagger bad payload: %d", code)
	}
	rig.advance(0)
	// A failing route: more mismatches arrive through the engine's restore.
	rig.mirror.Restore("POST /api/order", "orders",
		buildEvidence("POST /api/order", sampleSpec{matches: 50, mismatches: 50, legacy: time.Millisecond, candidate: time.Millisecond, span: time.Hour}), nil)
	code, body = call(http.MethodPost, "/v1/integrations/flagger", `{"name":"x","metadata":{"service":"orders"}}`, true)
	if code != http.StatusForbidden || !strings.Contains(string(body), `"verdict": "fail"`) {
		t.Fatalf("flagger failing gate: %d %s", code, body)
	}

	// Optimistic transitions: a stale expectation is a 409.
	code, body = call(http.MethodPost, "/v1/transitions", `{"target":"GET /api/order","mode":"canary","weight":5,"expectMode":"canary"}`, true)
	if code != http.StatusConflict || !strings.Contains(string(body), `"code": "conflict"`) {
		t.Fatalf("stale expectMode: %d %s", code, body)
	}

	// Prometheus: match ratio and mode per route.
	code, body = call(http.MethodGet, "/metrics", "", true)
	text := string(body)
	for _, want := range []string{
		`migrate_route_match_ratio{route="GET /api/order",service="orders"} 1`,
		`migrate_route_match_ratio{route="POST /api/order",service="orders"} 0.5`,
		`migrate_route_mode{mode="shadow",route="GET /api/order",service="orders"} 1`,
		`migrate_route_gate_pass{route="GET /api/order",service="orders"} 1`,
		`migrate_route_gate_pass{route="POST /api/order",service="orders"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
}

func TestFlaggerPayloadTarget(t *testing.T) {
	tests := []struct {
		p    FlaggerPayload
		want string
	}{
		{FlaggerPayload{Name: "orders", Metadata: map[string]string{"route": "GET /api/order", "service": "x"}}, "GET /api/order"},
		{FlaggerPayload{Name: "orders", Metadata: map[string]string{"service": "orders"}}, "orders"},
		{FlaggerPayload{Name: "orders"}, "orders"},
	}
	for _, tt := range tests {
		if got := tt.p.Target(); got != tt.want {
			t.Errorf("%+v → %q, want %q", tt.p, got, tt.want)
		}
	}
}

// BenchmarkGateEvaluate1M evaluates the full cutover gate of a route with
// 1,000,000 recorded samples: through the controller (shadow engine
// snapshot + gate, as `migrate gate` and the admin API do) and on the
// evidence alone. The samples are added before the timer starts.
func BenchmarkGateEvaluate1M(b *testing.B) {
	const n = 1_000_000
	ev := shadow.NewEvidence("GET /api/order", "orders")
	for i := 0; i < n; i++ {
		res := shadow.Result{Outcome: shadow.OutcomeMatch}
		if i%1000 == 7 {
			sig := fmt.Sprintf("/items/%d value", i%13)
			res = shadow.Result{Outcome: shadow.OutcomeMismatch, Differences: []shadow.Difference{{Path: "/x", Type: "value", Signature: sig}}}
		}
		ev.Add(shadow.Sample{At: gateT0.Add(time.Duration(i) * 50 * time.Millisecond), Route: "GET /api/order", Service: "orders",
			Legacy:    shadow.Response{Latency: time.Duration(5000+i%3000) * time.Microsecond},
			Candidate: shadow.Response{Latency: time.Duration(4000+i%4000) * time.Microsecond}, Result: res})
	}
	g := mustGate(b)
	b.Run("controller", func(b *testing.B) {
		dir := b.TempDir()
		store, err := OpenStore(filepath.Join(dir, "migrate.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		cfg, err := ParseConfig([]byte(gateConfigYAML), dir)
		if err != nil {
			b.Fatal(err)
		}
		mirror := shadow.NewMirror(shadow.MirrorConfig{}, nil)
		defer mirror.Close(context.Background())
		c := NewController(store, nil, discardLogger())
		c.Shadow = mirror
		if _, err := c.Apply(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		mirror.Restore("GET /api/order", "orders", ev.Clone(), nil)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rep, err := c.CheckGate(context.Background(), "GET /api/order", ModeCutover)
			if err != nil || rep.Routes[0].Shadow.Samples != n {
				b.Fatalf("%v %+v", err, rep)
			}
		}
	})
	// The alternative without incremental aggregates: keep every sample's
	// outcome and latencies and rescan them per evaluation.
	b.Run("rescan-baseline", func(b *testing.B) {
		type row struct {
			match             bool
			legacy, candidate time.Duration
		}
		rows := make([]row, n)
		for i := range rows {
			rows[i] = row{match: i%1000 != 7, legacy: time.Duration(5000+i%3000) * time.Microsecond,
				candidate: time.Duration(4000+i%4000) * time.Microsecond}
		}
		leg, cand := make([]time.Duration, n), make([]time.Duration, n)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			matches := 0
			for j, r := range rows {
				if r.match {
					matches++
				}
				leg[j], cand[j] = r.legacy, r.candidate
			}
			slices.Sort(leg)
			slices.Sort(cand)
			if ratio := float64(cand[n*99/100]) / float64(leg[n*99/100]); matches == 0 || ratio == 0 {
				b.Fatal("empty")
			}
		}
	})
	b.Run("evidence", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			res := EvaluateGate(g.For("GET /api/order"), GateFacts{Route: "GET /api/order", To: ModeCutover, Now: gateT0, Evidence: ev})
			if len(res.Criteria) == 0 {
				b.Fatal("no criteria")
			}
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// FuzzGateConfig feeds arbitrary gate blocks to the parser and validator:
// neither may panic, and a block that validates must evaluate.
func FuzzGateConfig(f *testing.F) {
	for _, seed := range []string{
		`{"minSamples":1000,"minMatch":"99.9%","maxP99Ratio":1.5,"maxErrorRate":"0.1%"}`,
		`{"minMatch":101,"cleanWindow":5000}`,
		`{"routes":{"GET /a":{"minSamples":3,"routes":{"GET /a":{}}}}}`,
		`{"minDuration":"24h","minCutoverTime":"-1s","requireWrites":true}`,
		`{"maxErrorRate":"NaN%"}`, `null`, `[]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var g GateConfig
		if json.Unmarshal([]byte(doc), &g) != nil {
			return
		}
		if g.check([]string{"GET /a"}, true) != nil {
			return
		}
		ev := buildEvidence("GET /a", sampleSpec{matches: 3, mismatches: 1, errors: 1, legacy: time.Millisecond, candidate: 2 * time.Millisecond, span: time.Minute})
		for _, to := range []Mode{ModeCutover, ModeRetired} {
			res := EvaluateGate(g.For("GET /a"), GateFacts{Route: "GET /a", To: to, Now: gateT0, Evidence: ev})
			if res.Pass != (res.Verdict == VerdictPass) {
				t.Fatalf("pass %v but verdict %s", res.Pass, res.Verdict)
			}
		}
	})
}

func TestGateConfigRoundTrip(t *testing.T) {
	g := mustGate(t)
	data, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	var back GateConfig
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("re-read %s: %v", data, err)
	}
	again, _ := json.Marshal(&back)
	if string(again) != string(data) || *back.MinMatch != 0.99 || back.Routes["POST /api/order"].MinSamples != 10 {
		t.Fatalf("round trip changed the gate:\n%s\n%s", data, again)
	}
}

func TestPercentagesToATenthOfAPoint(t *testing.T) {
	for f, want := range map[float64]string{
		0.841014: "84.1%", 0.999: "99.9%", 0.9995: "99.95%", 0.99996: "99.9%", 0.00004: "0.1%",
		1: "100%", 0: "0%", 0.0025: "0.25%", 365.0 / 434: "84.1%",
	} {
		if got := FormatPercent(f); got != want {
			t.Errorf("FormatPercent(%v) = %q, want %q", f, got, want)
		}
	}
	for d, want := range map[float64]string{-0.157986: "−15.8 pp", 0.04: "+4 pp", -0.0001: "−<0.1 pp", 0: "+0 pp"} {
		if got := points(d); got != want {
			t.Errorf("points(%v) = %q, want %q", d, got, want)
		}
	}
}
