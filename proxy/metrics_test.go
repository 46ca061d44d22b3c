package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// trapModule is a WASI command whose _start is `unreachable`: the smallest
// guest that traps (a Go guest's panic is an exit, not a trap).
var trapModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
	0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
	0x05, 0x03, 0x01, 0x00, 0x01, // memory section: one memory, 1 page
	0x07, 0x13, 0x02, // export section: two exports
	0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // _start: function 0
	0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00, // memory: memory 0
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: no locals, unreachable, end
}

// buildTestGuest compiles proxy/wasm's test guest, which fails on demand
// (/exit, /panic, /hang, /oom, /badheader, /big).
func buildTestGuest(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", filepath.Join(dir, "guest.wasm"), "./wasm/testdata/guest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test guest: %v\n%s", err, out)
	}
}

const failingCandidates = `
services:
  guest:
    legacy: {{legacy}}
    candidate: {wasm: guest.wasm, timeout: {{timeout}}, maxMemory: 16MiB, maxResponse: 64KiB}
    routes: ["GET /exit", "GET /hang", "GET /oom", "GET /badheader", "GET /big", "GET /panic", "GET /counter"]
  trapper:
    legacy: {{legacy}}
    candidate: {wasm: trap.wasm}
    routes: ["GET /trap"]
  remote:
    legacy: {{legacy}}
    candidate: {url: "{{remote}}"}
    routes: ["GET /unavailable"]
  gone:
    legacy: {{legacy}}
    candidate: {url: "{{gone}}"}
    routes: ["GET /gone"]
`

// TestCandidateErrorMetrics scrapes /metrics from the real admin handler
// after each way a candidate can fail, served (canary, cutover, retired) or
// mirrored (shadow): every failure is one series with its own kind label.
// The in-process candidates' usage then flows to the state store.
func TestCandidateErrorMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Wasm module")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	buildTestGuest(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "trap.wasm"), trapModule, 0o600); err != nil {
		t.Fatal(err)
	}
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "legacy")
	}))
	defer legacy.Close()
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer remote.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing listens there any more

	writeConfig := func(timeout string) *strangler.Config {
		t.Helper()
		yaml := failingCandidates
		for k, v := range map[string]string{"legacy": legacy.URL, "remote": remote.URL, "gone": gone.URL, "timeout": timeout} {
			yaml = strings.ReplaceAll(yaml, "{{"+k+"}}", v)
		}
		path := filepath.Join(dir, "strangler.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := strangler.LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := writeConfig("300ms")
	store, err := strangler.OpenStore(cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	mirror := shadow.NewMirror(shadow.MirrorConfig{Logger: logger}, nil)
	defer mirror.Close(context.Background())
	ctrl := strangler.NewController(store, nil, logger)
	ctrl.Shadow = mirror
	factory, closeWasm, err := NewWasmFactory(ctx, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeWasm(context.Background())
	px := New(Options{Controller: ctrl, Logger: logger, Mirror: mirror, Wasm: factory})
	defer px.Close(context.Background())
	ctrl.Usage = px.WasmUsage
	if err := px.Load(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	h := &harness{px: px, ctrl: ctrl}
	front := httptest.NewServer(px)
	defer front.Close()
	admin := httptest.NewServer(strangler.NewAdmin(ctrl, strangler.AdminOptions{}))
	defer admin.Close()

	modes := map[string]strangler.Mode{"GET /hang": strangler.ModeCanary, "GET /oom": strangler.ModeRetired,
		"GET /panic": strangler.ModeShadow}
	for _, route := range cfg.RouteNames() {
		mode, ok := modes[route]
		if !ok {
			mode = strangler.ModeCutover
		}
		h.set(t, route, mode, 100)
	}
	for _, target := range []string{"/exit", "/hang", "/oom", "/badheader", "/big?1000", "/trap", "/unavailable", "/gone", "/counter"} {
		status, _, body := get(t, front.URL+target, nil)
		if wantOK := target == "/counter"; (status == http.StatusOK) != wantOK {
			t.Errorf("GET %s: %d %s", target, status, body)
		}
	}
	for range 2 {
		if status, _, body := get(t, front.URL+"/panic", nil); status != http.StatusOK || body != "legacy" {
			t.Errorf("shadowed GET /panic: %d %q, want legacy's answer", status, body)
		}
	}

	want := []string{
		`migrate_candidate_errors_total{kind="exit",route="GET /exit"} 1`,
		`migrate_candidate_errors_total{kind="deadline",route="GET /hang"} 1`,
		`migrate_candidate_errors_total{kind="memory",route="GET /oom"} 1`,
		`migrate_candidate_errors_total{kind="headers",route="GET /badheader"} 1`,
		`migrate_candidate_errors_total{kind="too-large",route="GET /big"} 1`,
		`migrate_candidate_errors_total{kind="trap",route="GET /trap"} 1`,
		`migrate_candidate_errors_total{kind="status-5xx",route="GET /unavailable"} 1`,
		`migrate_candidate_errors_total{kind="connect",route="GET /gone"} 1`,
		`migrate_errors_total{route="GET /exit",side="candidate"} 1`,
		`migrate_shadow_candidate_errors_total{kind="exit",route="GET /panic"} 2`,
	}
	var metrics string
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The shadow copies are compared in the background.
		_, _, metrics = get(t, admin.URL+"/metrics", nil)
		if strings.Contains(metrics, want[len(want)-1]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(metrics, w+"\n") {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "migrate_candidate_errors_total") && strings.Contains(line, `route="GET /counter"`) ||
			strings.HasPrefix(line, "migrate_candidate_errors_total") && strings.Contains(line, `route="GET /panic"`) {
			t.Errorf("a failure counted where none was served: %s", line)
		}
	}

	// What the modules used (the guest: 6 served and 2 shadowed requests)
	// reaches the state store, and survives a reload that replaces the
	// module's backend.
	before := px.WasmUsage()["guest"]
	if before.Requests != 8 || before.PeakInstanceBytes == 0 || before.PeakInstances < 1 ||
		before.PeakMemoryBytes < before.PeakInstanceBytes {
		t.Fatalf("guest usage %+v: want its requests, memory and instances", before)
	}
	if err := px.Load(ctx, writeConfig("2s")); err != nil {
		t.Fatal(err)
	}
	status, _, _ := get(t, front.URL+"/counter", nil)
	if status != http.StatusOK {
		t.Fatalf("after the reload GET /counter: %d", status)
	}
	if err := ctrl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := store.LoadCandidateUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := stored["guest"]
	if got.Requests != before.Requests+1 || got.PeakMemoryBytes < before.PeakMemoryBytes || !strings.HasSuffix(got.Module, "guest.wasm") {
		t.Errorf("stored guest usage %+v, want the %d requests before the reload and 1 after", got, before.Requests)
	}
	if stored["trapper"].Requests != 1 {
		t.Errorf("stored trapper usage %+v, want 1 request", stored["trapper"])
	}
	if _, ok := stored["remote"]; ok {
		t.Errorf("usage stored for an HTTP candidate: %+v", stored["remote"])
	}
}
