package wasm

import (
	"bytes"
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
	"sync"
	"sync/atomic"
	"testing"
)

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// buildProbe compiles the outbound probe guest, which uses the fixtures'
// client package (fixtures/wasm/internal/outbound) exactly as the ports do.
func buildProbe(tb testing.TB) string {
	tb.Helper()
	probeOnce.Do(func() {
		probePath = filepath.Join(sharedDir, "probe.wasm")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", probePath, "../../fixtures/wasm/internal/outbound/probe")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("build probe: %v\n%s", err, out)
		}
	})
	if probeErr != nil {
		tb.Fatal(probeErr)
	}
	return probePath
}

// TestOutboundCalls: a listed destination is called for real and its
// answer reaches the guest; an unlisted one is refused with
// destination_not_allowed in the guest and a warning in the log; the
// per-request count and body limits hold.
func TestOutboundCalls(t *testing.T) {
	var writes atomic.Int64
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			writes.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"method":%q,"path":%q}`, r.Method, r.URL.Path)
	}))
	defer inventory.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a refused destination was called: %s %s", r.Method, r.URL)
	}))
	defer other.Close()

	var logs bytes.Buffer
	var logMu sync.Mutex
	b := newTestBackend(t, Options{Path: buildProbe(t), Outbound: []string{inventory.URL}, MaxOutboundCalls: 3, MaxOutboundBody: 64})
	b.logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) }), nil))

	call := func(method, target string, calls int, body string) (int, string) {
		q := url.Values{"method": {method}, "url": {target}, "calls": {fmt.Sprint(calls)}}
		resp, got := do(t, b, "POST", "/?"+q.Encode(), body, nil)
		return resp.StatusCode, got
	}
	if status, got := call("POST", inventory.URL+"/api/inventory/reserve", 1, `{}`); status != 200 || !strings.Contains(got, `200 application/json {"method":"POST","path":"/api/inventory/reserve"}`) {
		t.Errorf("allowed call: %d %q", status, got)
	}
	if status, got := call("GET", other.URL+"/api/x", 1, ""); status != 502 || !strings.Contains(got, "destination not allowed") {
		t.Errorf("refused call: %d %q", status, got)
	}
	logMu.Lock()
	if !strings.Contains(logs.String(), "outbound call refused") || !strings.Contains(logs.String(), other.URL+"/api/x") {
		t.Errorf("log has no refusal naming the destination: %s", logs.String())
	}
	logMu.Unlock()
	if status, got := call("POST", inventory.URL+"/api/inventory/reserve", 4, `{}`); status != 502 || !strings.Contains(got, "too many sessions") {
		t.Errorf("fourth call of a request: %d %q", status, got)
	}
	if status, got := call("POST", inventory.URL+"/api/inventory/reserve", 1, strings.Repeat("x", 65)); status != 502 || !strings.Contains(got, "request error") {
		t.Errorf("oversized body: %d %q", status, got)
	}
	// 1 + 3 (the fourth refused) writes; the oversized one never left.
	if n := writes.Load(); n != 4 {
		t.Errorf("inventory received %d writes, want 4", n)
	}
}

func TestOutboundListValidated(t *testing.T) {
	if _, err := (Options{Path: "a.wasm", Outbound: []string{"ftp://x"}}).withDefaults(); err == nil || !strings.Contains(err.Error(), `"ftp://x"`) {
		t.Errorf("err = %v, want one naming the bad entry", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// BenchmarkOutboundCall measures what one outbound call adds to a guest
// request: guest/no-call and guest/one-call differ by the call through the
// host module; direct is the same call made by Go's http.Client.
func BenchmarkOutboundCall(b *testing.B) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"inStock":true}`)
	}))
	defer target.Close()
	be := newTestBackend(b, Options{Path: buildProbe(b), Outbound: []string{target.URL}})
	for _, bc := range []struct {
		name  string
		calls int
	}{{"guest/no-call", 0}, {"guest/one-call", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			q := url.Values{"method": {"GET"}, "url": {target.URL + "/api/inventory"}, "calls": {fmt.Sprint(bc.calls)}}
			for b.Loop() {
				req := httptest.NewRequest("GET", "/?"+q.Encode(), nil)
				resp, err := be.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(resp, err)
				}
			}
		})
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			resp, err := outboundTransport.RoundTrip(httptest.NewRequest("GET", target.URL+"/api/inventory", nil).WithContext(b.Context()))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
}
