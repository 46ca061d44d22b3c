package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// buildOutboundProbe compiles the guest that makes the outbound calls its
// query names, with the fixtures' client package.
func buildOutboundProbe(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "probe.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, "../fixtures/wasm/internal/outbound/probe")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, b)
	}
	return out
}

// sideEffectRig is a real proxy in front of a legacy order service that
// reserves stock through the proxy, an inventory service counting the
// writes it receives, and the outbound probe as order's in-process
// candidate, allowed to call inventory-service by name.
type sideEffectRig struct {
	front          *testFront
	inventoryURL   string
	ctrl           *strangler.Controller
	mirror         *shadow.Mirror
	writes, reads  atomic.Int64
	candidateReads atomic.Int64
}

func newSideEffectRig(t testing.TB) *sideEffectRig {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Wasm module")
	}
	rig := &sideEffectRig{}
	probe := buildOutboundProbe(t)
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			rig.reads.Add(1)
		} else {
			rig.writes.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(inventory.Close)
	inventoryCandidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.candidateReads.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"candidate":true}`)
	}))
	t.Cleanup(inventoryCandidate.Close)
	var proxyURL atomic.Value
	// Legacy order reserves once per order, through the proxy, passing on
	// the request id as a traced Spring client does; it answers what the
	// probe guest answers for the same exchange.
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reserve := "/api/inventory/reserve"
		if sku := r.URL.Query().Get("legacySku"); sku != "" {
			reserve += "/" + sku
		}
		req, _ := http.NewRequestWithContext(r.Context(), "POST", proxyURL.Load().(string)+reserve, strings.NewReader(`{}`))
		req.Header.Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}))
	t.Cleanup(legacy.Close)

	yaml := fmt.Sprintf(`services:
  inventory-service:
    legacy: %s
    candidate: {url: %s}
    routes: ["GET /api/inventory", "POST /api/inventory/reserve", "POST /api/inventory/reserve/{sku}"]
  order-service:
    legacy: %s
    candidate: {wasm: %s, outbound: [inventory-service, %q]}
    routes: ["POST /api/order"]
    shadow: {writes: allow}
`, inventory.URL, inventoryCandidate.URL, legacy.URL, probe, inventory.URL)
	rig.inventoryURL = inventory.URL
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rig.mirror = shadow.NewMirror(shadow.MirrorConfig{Logger: logger}, nil)
	factory, closeWasm, err := NewWasmFactory(context.Background(), "", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWasm(context.Background()) })
	h := startHarness(t, yaml, Options{Logger: logger, Wasm: factory, Mirror: rig.mirror})
	rig.ctrl, rig.front = h.ctrl, h.front
	proxyURL.Store(rig.front.URL)
	return rig
}

func (rig *sideEffectRig) to(t testing.TB, route string, modes ...strangler.Mode) {
	t.Helper()
	for _, m := range modes {
		req := strangler.TransitionRequest{Target: route, To: m}
		if m == strangler.ModeCanary {
			req.Weight = 100
		}
		if _, err := rig.ctrl.Transition(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
}

// order places one order; the probe candidate makes the call its query
// names, calls times.
func (rig *sideEffectRig) order(t testing.TB, method, target string, calls int, legacySku ...string) string {
	t.Helper()
	q := url.Values{"method": {method}, "url": {target}, "calls": {fmt.Sprint(calls)}, "legacySku": legacySku}
	resp, err := http.Post(rig.front.URL+"/api/order?"+q.Encode(), "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}

// TestShadowNeverDoubleWrites: in shadow, legacy's reservation reaches
// inventory (through the proxy's egress, recorded by request id) and the
// candidate's is stubbed, so inventory receives exactly legacy's writes;
// the faithful candidate has no side-effect difference, the slipped one
// (a second reservation) has one in every sample and is refused by the
// gate.
func TestShadowNeverDoubleWrites(t *testing.T) {
	rig := newSideEffectRig(t)
	rig.to(t, "POST /api/order", strangler.ModeShadow)
	const orders = 8
	for i := 0; i < orders; i++ {
		calls := 1
		if i >= orders/2 {
			calls = 2 // the slipped port reserves twice
		}
		if got := rig.order(t, "POST", "http://inventory-service/api/inventory/reserve", calls); got != "200 200 application/json {}" {
			t.Fatalf("order %d answered %q", i, got)
		}
	}
	// The client has its answer before the copy is queued: wait for the
	// comparisons rather than close the mirror under the last one.
	deadline := time.Now().Add(30 * time.Second)
	for ev := rig.mirror.Evidence("POST /api/order"); ev == nil || ev.Samples < orders; ev = rig.mirror.Evidence("POST /api/order") {
		if time.Now().After(deadline) {
			t.Fatalf("evidence after 30 s: %+v", ev)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := rig.writes.Load(); n != orders {
		t.Errorf("inventory received %d writes, want exactly legacy's %d", n, orders)
	}
	ev := rig.mirror.Evidence("POST /api/order")
	if ev == nil || ev.Samples != orders || ev.CallsCompared != orders || ev.SideEffects != orders/2 {
		t.Fatalf("evidence: %+v", ev)
	}
	if n := ev.Signatures["@call/POST /api/inventory/reserve side-effect"]; n != orders/2 {
		t.Errorf("side-effect signature counted %d times, want %d: %v", n, orders/2, ev.Signatures)
	}
	match := strangler.Percent(0.4)
	res := strangler.EvaluateGate(&strangler.GateConfig{MinMatch: &match}, strangler.GateFacts{Route: "POST /api/order", To: strangler.ModeCutover, Evidence: ev})
	if res.Pass {
		t.Errorf("gate passed a candidate that reserved twice: %+v", res.Criteria)
	}
}

// TestSideEffectsGroupedByRouteTemplate: legacy reserves one SKU through
// the egress and the candidate, by name, another; both calls match
// inventory's route POST /api/inventory/reserve/{sku}, so they are the
// same write, and a second reservation is one difference class whatever
// the SKUs.
func TestSideEffectsGroupedByRouteTemplate(t *testing.T) {
	rig := newSideEffectRig(t)
	rig.to(t, "POST /api/order", strangler.ModeShadow)
	const orders = 6
	for i := 0; i < orders; i++ {
		calls := 1
		if i >= orders/2 {
			calls = 2
		}
		target := fmt.Sprintf("http://inventory-service/api/inventory/reserve/CAND-%d", i)
		if got := rig.order(t, "POST", target, calls, fmt.Sprintf("LEG-%d", i)); got != "200 200 application/json {}" {
			t.Fatalf("order %d answered %q", i, got)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for ev := rig.mirror.Evidence("POST /api/order"); ev == nil || ev.Samples < orders; ev = rig.mirror.Evidence("POST /api/order") {
		if time.Now().After(deadline) {
			t.Fatalf("evidence after 30 s: %+v", ev)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ev := rig.mirror.Evidence("POST /api/order")
	if ev.CallsCompared != orders || ev.SideEffects != orders/2 {
		t.Fatalf("calls compared %d, side effects %d; want %d and %d: %v", ev.CallsCompared, ev.SideEffects, orders, orders/2, ev.Signatures)
	}
	var classes []string
	for sig := range ev.Signatures {
		if _, typ := shadow.SplitSignature(sig); typ == shadow.DiffSideEffect {
			classes = append(classes, sig)
		}
	}
	if want := "@call/POST /api/inventory/reserve/{sku} side-effect"; len(classes) != 1 || classes[0] != want || ev.Signatures[want] != orders/2 {
		t.Errorf("side-effect classes %q (counts %v), want only %q, %d times", classes, ev.Signatures, want, orders/2)
	}
}

// TestNamedServiceFollowsRouteMode: a candidate's call to
// http://inventory-service/… is served by the route table — by legacy
// inventory while its route is on legacy, by inventory's candidate once it
// is cut over — and a path of no inventory route is a 404, a service not
// on the list refused.
func TestNamedServiceFollowsRouteMode(t *testing.T) {
	rig := newSideEffectRig(t)
	rig.to(t, "POST /api/order", strangler.ModeShadow, strangler.ModeCanary, strangler.ModeCutover)
	read := "http://inventory-service/api/inventory?skuCode=a"
	if got := rig.order(t, "GET", read, 1); got != "200 200 application/json {}" || rig.reads.Load() != 1 {
		t.Errorf("inventory on legacy: %q, legacy reads %d", got, rig.reads.Load())
	}
	rig.to(t, "GET /api/inventory", strangler.ModeShadow, strangler.ModeCanary, strangler.ModeCutover)
	if got := rig.order(t, "GET", read, 1); got != `200 200 application/json {"candidate":true}` || rig.candidateReads.Load() != 1 {
		t.Errorf("inventory cut over: %q, candidate reads %d", got, rig.candidateReads.Load())
	}
	if got := rig.order(t, "GET", "http://inventory-service/api/elsewhere", 1); !strings.HasPrefix(got, "200 404 ") {
		t.Errorf("no such inventory route: %q", got)
	}
	if got := rig.order(t, "GET", "http://product-service/api/product", 1); !strings.Contains(got, "destination not allowed") {
		t.Errorf("service not on the list: %q", got)
	}
	// A cut-over candidate's write is real: inventory receives it.
	if got := rig.order(t, "POST", "http://inventory-service/api/inventory/reserve", 1); got != "200 200 application/json {}" || rig.writes.Load() != 1 {
		t.Errorf("cut-over write: %q, inventory writes %d", got, rig.writes.Load())
	}
}

// TestStubsFromYAML: a candidate block's stubs, written in YAML, answer a
// shadow copy's write.
func TestStubsFromYAML(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Wasm module")
	}
	probe := buildOutboundProbe(t)
	cfg, err := strangler.ParseConfig([]byte(`services:
  order-service:
    legacy: http://127.0.0.1:1
    candidate:
      wasm: `+probe+`
      outbound: ["http://127.0.0.1:1"]
      stubs:
        "POST /api/inventory/*": {status: 202, body: {reserved: [a, b]}}
    routes: ["POST /api/order"]
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	factory, closeWasm, err := NewWasmFactory(context.Background(), "", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeWasm(context.Background())
	b, closeFn, err := factory(context.Background(), cfg.Services["order-service"].Candidate.Raw, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn(context.Background())
	q := url.Values{"method": {"POST"}, "url": {"http://127.0.0.1:1/api/inventory/reserve"}}
	req := httptest.NewRequest("POST", "/api/order?"+q.Encode(), strings.NewReader(`{}`))
	calls := &shadow.Calls{}
	resp, err := b.RoundTrip(req.WithContext(shadow.WithCalls(req.Context(), calls)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := string(body); got != `202 application/json {"reserved":["a","b"]}` || len(calls.List()) != 1 || !calls.List()[0].Stubbed {
		t.Errorf("answer %q, calls %+v", got, calls.List())
	}
}

// BenchmarkNamedServiceCall compares a candidate's call to a named service
// (through the proxy's route table, in process) with the same call to the
// service's origin, each inside a client request to the cut-over order
// candidate.
func BenchmarkNamedServiceCall(b *testing.B) {
	rig := newSideEffectRig(b)
	rig.to(b, "POST /api/order", strangler.ModeShadow, strangler.ModeCanary, strangler.ModeCutover)
	for _, bc := range []struct{ name, url string }{
		{"origin", rig.inventoryURL + "/api/inventory?skuCode=a"},
		{"named", "http://inventory-service/api/inventory?skuCode=a"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if got := rig.order(b, "GET", bc.url, 1); got != "200 200 application/json {}" {
					b.Fatal(got)
				}
			}
		})
	}
}
