package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/internal/logs"
)

// lockedBuffer is a log destination safe for the proxy's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *lockedBuffer) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.b.Bytes())
}

// buildTestGuest compiles proxy/wasm's test guest into dir.
func buildTestGuest(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, "../../proxy/wasm/testdata/guest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the test guest: %v\n%s", err, b)
	}
	return out
}

// TestProxyLogsCannotFlood runs `migrate proxy` with candidates that fail
// every request — one answering clients (cutover), one shadowed — and
// reads the JSON log: each route's failure is written a few times per
// window, the rest are counted in a summary line, and every line about a
// request names its route.
func TestProxyLogsCannotFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Wasm module")
	}
	defer func(w time.Duration, l *slog.Logger) { logWindow = w; slog.SetDefault(l) }(logWindow, slog.Default())
	logWindow = 2 * time.Second
	var out lockedBuffer
	logger, err := newLogger(&out, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	slog.SetDefault(logger)

	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "legacy") }))
	defer legacy.Close()
	dir := t.TempDir()
	guest := buildTestGuest(t, dir)
	config := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`accessLogSample: 0%%
services:
  cut:
    legacy: %[1]s
    candidate: {wasm: %[2]q}
    mode: cutover
    routes: ["GET /panic"]
  shadowed:
    legacy: %[1]s
    candidate: {wasm: %[2]q}
    mode: shadow
    shadow: {sample: 100%%}
    routes: ["GET /exit"]
`, legacy.URL, guest)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	front, _, stop := startProxy(t, config)
	const requests = 120
	for i := range requests {
		fetch(t, front+"/panic")
		if i%3 == 0 {
			fetch(t, front+"/exit")
		}
	}
	time.Sleep(logWindow + 500*time.Millisecond) // the window ends: the summary is written
	stop()

	written := map[string]int{}
	suppressed := map[string]int{}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		route, _ := rec["route"].(string)
		if _, onRequest := rec["path"]; onRequest && route == "" {
			t.Errorf("a line about a request has no route: %s", sc.Text())
		}
		switch rec["msg"] {
		case "wasm guest failed":
			if route == "" {
				t.Errorf("guest failure without a route: %s", sc.Text())
			}
			written[route]++
		case logs.SuppressedMessage:
			if rec["message"] == "wasm guest failed" {
				suppressed[route] += int(rec["suppressed"].(float64))
			}
		}
	}
	t.Logf("%d log lines; written %v, suppressed %v", lines, written, suppressed)
	// Every client request to GET /panic failed; the shadow copies of
	// GET /exit stop when their breaker opens, but they name their route.
	if written["GET /panic"] == 0 || written["GET /panic"] > 2*logs.DefaultBurst {
		t.Errorf("GET /panic: %d failure lines written, want 1..%d (a run may straddle two windows)", written["GET /panic"], 2*logs.DefaultBurst)
	}
	if got := written["GET /panic"] + suppressed["GET /panic"]; got != requests {
		t.Errorf("GET /panic: %d written + %d suppressed, want the %d failures", written["GET /panic"], suppressed["GET /panic"], requests)
	}
	if written["GET /exit"] == 0 {
		t.Error("no failure line names the shadowed route GET /exit")
	}
	if lines > 60 {
		t.Errorf("%d log lines for %d failing requests", lines, requests+requests/3)
	}
}
