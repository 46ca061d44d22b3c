package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/fixtures"
	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/strangler"
)

// productFixture builds the fixture modules into a directory of their own
// and starts the real legacy product service; ctx bounds the test.
func productFixture(t *testing.T) (ctx context.Context, dir string, mods map[string]string, legacy *httptest.Server) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Wasm module")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	dir = t.TempDir()
	mods, err := fixtures.BuildWasm(ctx, filepath.Join(dir, "components"))
	if err != nil {
		t.Fatal(err)
	}
	legacy = httptest.NewServer(fixtures.NewProductService())
	t.Cleanup(legacy.Close)
	return ctx, dir, mods, legacy
}

// TestWasmCandidate serves a route from a real in-process WAGI module (the
// fixture product component) in cutover mode, next to the real legacy
// product service.
func TestWasmCandidate(t *testing.T) {
	ctx, dir, mods, legacy := productFixture(t)
	rel, err := filepath.Rel(dir, mods["product"])
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "strangler.yaml")
	yaml := "services:\n  product-service:\n    legacy: " + legacy.URL + "\n    candidate: {wasm: " + rel +
		", timeout: 5s, maxMemory: 64MiB}\n    routes: [\"GET /api/product\", \"POST /api/product\"]\n"
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := strangler.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	store, err := strangler.OpenStore(cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctrl := strangler.NewController(store, nil, logger)
	factory, closeWasm, err := NewWasmFactory(ctx, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeWasm(context.Background())
	px := New(Options{Controller: ctrl, Logger: logger, Wasm: factory})
	defer px.Close(context.Background())
	if err := px.Load(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(px)
	defer front.Close()
	for _, m := range []strangler.Mode{strangler.ModeShadow, strangler.ModeCanary, strangler.ModeCutover} {
		req := strangler.TransitionRequest{Target: "GET /api/product", To: m, Weight: 100}
		if m != strangler.ModeCanary {
			req.Weight = 0
		}
		if _, err := ctrl.Transition(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(front.URL + "/api/product")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "skuCode") {
		t.Fatalf("wasm candidate answered %d %s", resp.StatusCode, body)
	}
	st := ctrl.Status()[0]
	if st.Requests[strangler.SideCandidate] != 1 || st.Requests[strangler.SideLegacy] != 0 {
		t.Fatalf("counters = %+v", st.Requests)
	}
	// A module block with an unknown key is rejected with the reason.
	bad, err := strangler.ParseConfig([]byte(strings.Replace(yaml, "timeout: 5s", "timeout: 5s, threads: 4", 1)), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Load(ctx, bad); err == nil || !strings.Contains(err.Error(), "threads") {
		t.Fatalf("unknown wasm option: %v", err)
	}
}

// TestWasmCandidateOverBudget: a route whose instances cannot fit in the
// proxy's guest-memory budget answers 503, not 502, and the failure is
// counted as kind "budget".
func TestWasmCandidateOverBudget(t *testing.T) {
	ctx, _, mods, legacy := productFixture(t)
	yaml := "services:\n  product-service:\n    legacy: " + legacy.URL + "\n    candidate: {wasm: " + mods["product"] +
		", maxMemory: 64MiB}\n    mode: cutover\n    routes: [\"GET /api/product\"]\n"
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	budget, err := wasm.NewMemoryBudget(32<<20, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	factory, closeWasm, err := NewLimitedWasmFactory(ctx, "", budget, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWasm(context.Background()) })
	h := startHarness(t, yaml, Options{Logger: logger, Wasm: factory})
	ctrl, front := h.ctrl, h.front
	resp, err := http.Get(front.URL + "/api/product")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "wasmMemory") {
		t.Fatalf("over budget: %d %s, want a 503 naming wasmMemory", resp.StatusCode, body)
	}
	if st := budget.Stats(); st.Refused != 1 || st.Reserved != 0 {
		t.Errorf("budget %+v, want one refusal and nothing reserved", st)
	}
	rec := httptest.NewRecorder()
	ctrl.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := `migrate_candidate_errors_total{kind="budget",route="GET /api/product"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics lack %s", want)
	}
}
