package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/strangler"
)

// startProxy runs `migrate proxy` in-process on free ports and returns the
// proxy and admin base URLs and a stop function that waits for shutdown.
func startProxy(t *testing.T, config string) (front, admin string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	o := &proxyOptions{config: config, listen: "127.0.0.1:0", admin: "127.0.0.1:0", poll: 50 * time.Millisecond,
		flush: time.Hour, shutdownGrace: 5 * time.Second,
		onReady: func(l, a string) { ready <- [2]string{l, a} }}
	go func() {
		done <- runProxy(ctx, o, &streams{in: strings.NewReader(""), out: io.Discard, err: io.Discard})
	}()
	select {
	case addrs := <-ready:
		return "http://" + addrs[0], "http://" + addrs[1], func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("proxy exited with %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("proxy did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("proxy did not start in time")
	}
	return "", "", nil
}

func TestProxyCommandServesAndResumes(t *testing.T) {
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "legacy %s", r.URL.Path)
	}))
	defer legacy.Close()
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "candidate %s", r.URL.Path)
	}))
	defer candidate.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf("services:\n  orders:\n    legacy: %s\n    candidate: {url: %q}\n    routes: [\"GET /api/order\"]\n", legacy.URL, candidate.URL)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	front, admin, stop := startProxy(t, config)
	if body := fetch(t, front+"/api/order"); body != "legacy /api/order" {
		t.Fatalf("legacy mode answered %q", body)
	}
	for _, args := range [][]string{{"shadow", "orders"}, {"canary", "orders", "--weight", "100"}} {
		if _, stderr, code := runCLI(t, append(args, "--admin", admin)...); code != exitOK {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	if body := fetch(t, front+"/api/order"); body != "candidate /api/order" {
		t.Fatalf("canary 100%% answered %q", body)
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, "migrate.db")); err != nil {
		t.Fatalf("state store not next to the config: %v", err)
	}

	// A restart resumes exactly: mode, weight and counters.
	front, admin, stop = startProxy(t, config)
	defer stop()
	if body := fetch(t, front+"/api/order"); body != "candidate /api/order" {
		t.Fatalf("after restart answered %q", body)
	}
	stdout, stderr, code := runCLI(t, "status", "-o", "json", "--admin", admin)
	if code != exitOK || !strings.Contains(stdout, `"mode": "canary"`) || !strings.Contains(stdout, `"weight": 100`) {
		t.Fatalf("status after restart: %s %s", stdout, stderr)
	}
	if !strings.Contains(stdout, `"candidate": 2`) { // one request before the restart, one after
		t.Fatalf("counters not restored: %s", stdout)
	}
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestProxyRefusesOpenAdminWithoutToken(t *testing.T) {
	config := filepath.Join(t.TempDir(), "strangler.yaml")
	if err := os.WriteFile(config, []byte("services:\n  a:\n    legacy: http://127.0.0.1:1\n    routes: [\"GET /\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(strangler.AdminTokenEnv, "")
	_, stderr, code := runCLI(t, "proxy", "--config", config, "--admin", "0.0.0.0:0", "--listen", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(stderr, strangler.AdminTokenEnv) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "proxy"); code != exitUsage || !strings.Contains(stderr, "--config is required") {
		t.Fatalf("without --config: exit %d %s", code, stderr)
	}
}

func TestPlanCommand(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.json")
	err := analyze.WriteInventory(inv, &analyze.Inventory{APIVersion: analyze.APIVersion, Kind: "Inventory",
		Generated: time.Now(), Services: []analyze.Service{{Name: "order-service", Sources: []string{"x"},
			API: &analyze.API{Source: "o.json", Format: "openapi-3.0", Operations: []analyze.Operation{
				{Method: "GET", Path: "/api/order"}, {Method: "POST", Path: "/api/order"}}},
			Deployment: &analyze.Deployment{Kind: "Deployment", Upstream: "http://order-service:8080"}}}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "strangler.yaml")
	stdout, stderr, code := runCLI(t, "plan", "--inventory", inv, "--out", out)
	if code != exitOK || !strings.Contains(stdout, "routes") {
		t.Fatalf("plan --out FILE: exit %d %s %s", code, stdout, stderr)
	}
	cfg, err := strangler.LoadConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services["order-service"].Legacy != "http://order-service:8080" || len(cfg.RouteNames()) != 2 {
		t.Fatalf("planned %+v", cfg.Services["order-service"])
	}
	if _, stderr, code := runCLI(t, "plan", "--inventory", inv, "--out", out); code != exitUsage || !strings.Contains(stderr, "--force") {
		t.Fatalf("overwrite without --force: exit %d %s", code, stderr)
	}
	stdout, _, code = runCLI(t, "plan", "--inventory", inv, "--upstream", "order-service=http://10.0.0.7:8080")
	if code != exitOK || !strings.Contains(stdout, `legacy: "http://10.0.0.7:8080"`) || !strings.Contains(stdout, "# ") {
		t.Fatalf("plan to stdout: exit %d\n%s", code, stdout)
	}
	if _, stderr, code := runCLI(t, "plan", "--inventory", inv, "--upstream", "nope"); code != exitUsage {
		t.Fatalf("bad --upstream: exit %d %s", code, stderr)
	}
	// A reusable guest (it exports migrate_serve) is planned with reuse; the
	// path is read relative to the config, as the proxy will read it.
	if err := os.MkdirAll(filepath.Join(dir, "components"), 0o755); err != nil {
		t.Fatal(err)
	}
	reusable := "\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00" +
		"\x07\x11\x01\x0dmigrate_serve\x00\x00\x0a\x04\x01\x02\x00\x0b"
	if err := os.WriteFile(filepath.Join(dir, "components", "order.wasm"), []byte(reusable), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runCLI(t, "plan", "--inventory", inv, "--candidate", "order-service=components/order.wasm", "--out", out, "--force")
	if code != exitOK {
		t.Fatalf("plan --candidate: exit %d %s", code, stderr)
	}
	if yaml, _ := os.ReadFile(out); !strings.Contains(string(yaml), "reuse: 10000") {
		t.Errorf("--candidate components/order.wasm: not planned with reuse\n%s%s", stdout, yaml)
	}
	// A candidate that does not exist, is not Wasm, or does not answer is
	// refused before a config names it.
	if err := os.WriteFile(filepath.Join(dir, "components", "order.jar"), []byte("PK\x03\x04 not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead := httptest.NewServer(nil)
	dead.Close()
	live := httptest.NewServer(http.NotFoundHandler()) // any answer shows the platform is there
	defer live.Close()
	for _, tt := range []struct{ candidate, want string }{
		{"components/missing.wasm", "components/missing.wasm does not exist"},
		{"components/order.jar", "is not a WebAssembly module"},
		{dead.URL, "nothing answers at " + dead.URL},
	} {
		before, _ := os.ReadFile(out)
		_, stderr, code := runCLI(t, "plan", "--inventory", inv, "--candidate", "order-service="+tt.candidate, "--out", out, "--force")
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("--candidate %s: exit %d %s; want exit 2 and %q", tt.candidate, code, stderr, tt.want)
		}
		if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
			t.Errorf("--candidate %s: the config was rewritten", tt.candidate)
		}
	}
	if _, stderr, code := runCLI(t, "plan", "--inventory", inv, "--candidate", "order-service="+live.URL); code != exitOK {
		t.Errorf("--candidate %s (answers 404): exit %d %s", live.URL, code, stderr)
	}
	// Without a cluster description the upstream comes from the probed
	// endpoint, else the document's servers, before any guess.
	err = analyze.WriteInventory(inv, &analyze.Inventory{APIVersion: analyze.APIVersion, Kind: "Inventory", Generated: time.Now(),
		Services: []analyze.Service{
			{Name: "order-service", Sources: []string{"x"}, API: &analyze.API{Source: "o.json", Format: "openapi-3.0",
				Servers:    []string{"https://{env}.example.com", "/relative", "https://orders.internal:8443/api"},
				Operations: []analyze.Operation{{Method: "GET", Path: "/api/order"}}}},
			{Name: "product-service", Sources: []string{"x"}, API: &analyze.API{Source: "p.json", Format: "openapi-3.0",
				Servers: []string{"https://products.example.com"}, Operations: []analyze.Operation{{Method: "GET", Path: "/api/product"}}},
				Runtime: &analyze.Runtime{Source: "http://10.1.2.3:8081"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runCLI(t, "plan", "--inventory", inv)
	if code != exitOK || !strings.Contains(stdout, `legacy: "https://orders.internal:8443"`) || !strings.Contains(stdout, `legacy: "http://10.1.2.3:8081"`) {
		t.Errorf("upstreams from servers and probes: exit %d %s\n%s", code, stderr, stdout)
	}
	if _, _, code := runCLI(t, "version", "-o", "strangler.yaml"); code != exitUsage {
		t.Fatal("-o FILE leaked into other commands")
	}
}
