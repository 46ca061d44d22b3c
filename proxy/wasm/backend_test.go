package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// do sends one request through a loopback server that proxies to b, the
// way the proxy package uses a Backend.
func do(t *testing.T, b *Backend, method, target, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	srv := serve(t, b)
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b2, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b2)
}

// serve puts b behind httputil.ReverseProxy on a loopback server; guest
// errors become 502 responses whose body names the kind.
func serve(tb testing.TB, b *Backend) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(proxyTo(b))
	tb.Cleanup(srv.Close)
	return srv
}

// proxyTo is the way the proxy package fronts a Backend.
func proxyTo(b *Backend) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", pr.In.Host
			pr.Out.Host = pr.In.Host
			pr.Out = pr.Out.WithContext(WithMatchedRoute(pr.Out.Context(), pr.In.Method+" "+pr.In.URL.Path))
		},
		Transport: b,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, ErrorKind(err))
		},
	}
}

func TestCGIEnvironment(t *testing.T) {
	t.Setenv("MIGRATE_HOST_SECRET", "must-not-leak")
	b := newGuestBackend(t, Options{})
	req := httptest.NewRequest(http.MethodPost, "http://shop.example:8080/env?skuCode=A&skuCode=B", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "r-1")
	req.Header.Add("Accept", "text/plain")
	req.Header.Add("Accept", "application/json")
	req.Header.Set("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	req.Header.Set("Proxy", "http://evil:3128")
	req.RemoteAddr = "192.0.2.7:51234"
	req = req.WithContext(WithMatchedRoute(req.Context(), "GET /env"))
	resp, err := b.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CONTENT_LENGTH=7",
		"CONTENT_TYPE=application/json",
		"GATEWAY_INTERFACE=CGI/1.1",
		"HTTP_ACCEPT=text/plain, application/json",
		"HTTP_COOKIE=a=1; b=2",
		"HTTP_HOST=shop.example:8080",
		"HTTP_X_REQUEST_ID=r-1",
		"PATH_INFO=/env",
		"PATH_TRANSLATED=/env",
		"QUERY_STRING=skuCode=A&skuCode=B",
		"REMOTE_ADDR=192.0.2.7",
		"REMOTE_HOST=192.0.2.7",
		"REQUEST_METHOD=POST",
		"SCRIPT_NAME=",
		"SERVER_NAME=shop.example",
		"SERVER_PORT=8080",
		"SERVER_PROTOCOL=HTTP/1.1",
		"SERVER_SOFTWARE=migrate",
		"X_FULL_URL=http://shop.example:8080/env?skuCode=A&skuCode=B",
		"X_MATCHED_ROUTE=/env",
		"X_RAW_PATH_INFO=/env",
	}
	if strings.Join(env, "\n") != strings.Join(want, "\n") {
		t.Errorf("guest environment:\n%s\nwant:\n%s", strings.Join(env, "\n"), strings.Join(want, "\n"))
	}
}

func TestResponses(t *testing.T) {
	b := newGuestBackend(t, Options{})
	tests := []struct {
		name, method, target, body string
		header                     http.Header
		status                     int
		wantHeader                 http.Header
		wantBody                   string
	}{
		{
			name: "status with reason, CRLF, repeated header", method: "GET", target: "/status",
			status:     418,
			wantHeader: http.Header{"Content-Type": {"text/plain"}, "X-Multi": {"a", "b"}},
			wantBody:   "short and stout",
		},
		{
			name: "location without status is a redirect", method: "GET", target: "/redirect",
			status: 302, wantHeader: http.Header{"Location": {"/elsewhere"}},
		},
		{
			name: "header-only response", method: "POST", target: "/nobody",
			status: 204,
		},
		{
			name: "body arrives on stdin", method: "PUT", target: "/echo", body: `{"skuCode":"ENG-V8-500"}`,
			header: http.Header{"Content-Type": {"application/json"}},
			status: 200, wantHeader: http.Header{"Content-Type": {"application/json"}, "X-Echo-Length": {"24"}},
			wantBody: `{"skuCode":"ENG-V8-500"}`,
		},
		{
			name: "order component", method: "POST", target: "/order",
			body:   `{"orderLineItemsDtoList":[{"skuCode":"ENG-V8-500","price":1000,"quantity":1}]}`,
			header: http.Header{"Content-Type": {"application/json"}},
			status: 201, wantHeader: http.Header{"Content-Type": {"text/plain"}},
		},
		{
			name: "no filesystem", method: "GET", target: "/fs",
			status: 200, wantBody: "true",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, b, tt.method, tt.target, tt.body, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Values(k); strings.Join(got, ",") != strings.Join(v, ",") {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			if tt.target == "/order" && !strings.HasPrefix(body, "Order Number ") {
				t.Errorf("order body %q", body)
			}
		})
	}
}

func TestFreshInstancePerRequest(t *testing.T) {
	b := newGuestBackend(t, Options{})
	srv := serve(t, b)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				resp, err := srv.Client().Get(srv.URL + "/counter")
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "1" {
					t.Errorf("global counter is %q: state leaked from an earlier request", body)
				}
			}
		}()
	}
	wg.Wait()
	// A failed request must not leave state behind for the next either.
	if _, err := b.RoundTrip(httptest.NewRequest("GET", "/panic", nil)); err == nil {
		t.Fatal("panic route succeeded")
	}
	resp, err := b.RoundTrip(httptest.NewRequest("GET", "/counter", nil))
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "1" {
		t.Errorf("counter after a failed request is %q", body)
	}
}

func TestGuestErrors(t *testing.T) {
	dir := t.TempDir()
	trap := writeModule(t, dir, "trap.wasm", wasmModule{start: []byte{0x00}, memPages: 1}.bytes()) // unreachable
	tests := []struct {
		name    string
		opts    Options
		path    string // module; "" = test guest
		target  string
		kind    string
		message string
	}{
		{name: "trap", path: trap, target: "/", kind: KindTrap, message: "unreachable"},
		{name: "non-zero exit", target: "/exit", kind: KindExit, message: "exit code 3"},
		{name: "go panic", target: "/panic", kind: KindExit, message: "panic: guest panic"},
		{name: "deadline", opts: Options{Timeout: Duration(300 * time.Millisecond)}, target: "/hang", kind: KindDeadline},
		{name: "out of memory", opts: Options{MaxMemory: 16 << 20}, target: "/oom", kind: KindMemory, message: "maxMemory 16MiB"},
		{name: "malformed header block", target: "/badheader", kind: KindHeaders, message: "no blank line"},
		{name: "too large", opts: Options{MaxResponse: 64 << 10}, target: "/big?1000", kind: KindTooLarge, message: "64KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b *Backend
			if tt.path == "" {
				b = newGuestBackend(t, tt.opts)
			} else {
				tt.opts.Path = tt.path
				var err error
				if b, err = New(context.Background(), tt.opts, testRuntime(t)); err != nil {
					t.Fatal(err)
				}
				defer b.Close(context.Background())
			}
			start := time.Now()
			resp, err := b.RoundTrip(httptest.NewRequest("GET", tt.target, nil))
			if err == nil {
				t.Fatalf("got %d, want a %s error", resp.StatusCode, tt.kind)
			}
			var ge *GuestError
			if !errors.As(err, &ge) || ge.Kind != tt.kind {
				t.Fatalf("error %v (%T), want kind %s", err, err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not mention %q", err, tt.message)
			}
			if tt.kind == KindDeadline && time.Since(start) > 2*time.Second {
				t.Errorf("deadline of 300ms took %s to interrupt the guest", time.Since(start))
			}
			st := b.Stats()
			if st.Errors[tt.kind] != 1 || st.Requests != 1 {
				t.Errorf("stats %+v, want one request and one %s error", st, tt.kind)
			}
			// The backend keeps serving after a failure.
			if tt.path == "" {
				if _, err := b.RoundTrip(httptest.NewRequest("GET", "/counter", nil)); err != nil {
					t.Errorf("request after %s failed: %v", tt.kind, err)
				}
			}
		})
	}
}

func TestRequestContextDeadlineWins(t *testing.T) {
	b := newGuestBackend(t, Options{Timeout: Duration(time.Minute)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.RoundTrip(httptest.NewRequest("GET", "/hang", nil).WithContext(ctx))
	if ErrorKind(err) != KindDeadline {
		t.Fatalf("error %v, want deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestFrozenClockAndSeed(t *testing.T) {
	get := func(b *Backend) string {
		resp, err := b.RoundTrip(httptest.NewRequest("GET", "/time", nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	det := newGuestBackend(t, Options{FrozenClock: true, Seed: 42})
	a, b := get(det), get(det)
	if a != b {
		t.Errorf("frozen clock and seed: %q then %q, want equal", a, b)
	}
	if !strings.HasPrefix(a, "1704067200000") {
		t.Errorf("frozen wall clock reads %q, want 2024-01-01T00:00:00Z", a)
	}
	real := newGuestBackend(t, Options{})
	if x, y := get(real), get(real); x == y {
		t.Errorf("real clock and randomness repeated %q", x)
	}
}

// syncBuffer is a log sink safe for the backend's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStderrIsLoggedBoundedWithRoute(t *testing.T) {
	newGuestBackend(t, Options{}) // compiled into the shared on-disk cache
	var logs syncBuffer
	rt, err := NewRuntime(context.Background(), filepath.Join(sharedDir, "cache"), slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	b, err := New(context.Background(), Options{Path: buildGuest(t)}, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	req := httptest.NewRequest("GET", "/stderr", nil)
	req = req.WithContext(WithMatchedRoute(req.Context(), "GET /stderr"))
	if _, err := b.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Msg         string
		Route       string
		Stderr      string
		StderrBytes int
	}
	if err := json.Unmarshal([]byte(logs.String()), &rec); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if rec.Route != "GET /stderr" || len(rec.Stderr) != maxStderr || rec.StderrBytes != 100001 {
		t.Errorf("log record route=%q stderr=%d bytes (of %d), want route GET /stderr and %d bytes of 100001", rec.Route, len(rec.Stderr), rec.StderrBytes, maxStderr)
	}
}

func TestReloadWithoutDroppingRequests(t *testing.T) {
	dir := t.TempDir()
	path := writeModule(t, dir, "app.wasm", printingModule("Content-Type: text/plain\n\nv1"))
	b, err := New(context.Background(), Options{Path: path}, testRuntime(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	b.checkEvery = 0 // stat on every request

	body := func() (string, error) {
		resp, err := b.RoundTrip(httptest.NewRequest("GET", "/", nil))
		if err != nil {
			return "", err
		}
		got, _ := io.ReadAll(resp.Body)
		return string(got), nil
	}
	// Load keeps running across the swaps; every request must succeed.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got, err := body(); err != nil || (got != "v1" && got != "v2") {
					t.Errorf("request during reload: %q, %v", got, err)
					return
				}
			}
		}()
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if got, err := body(); err == nil && got == want {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("module never answered %q", want)
	}
	waitFor("v1")
	writeModule(t, dir, "app.wasm", printingModule("Content-Type: text/plain\n\nv2"))
	waitFor("v2")
	// A broken file is logged and counted; the last good module keeps serving.
	writeModule(t, dir, "app.wasm", []byte("\x00asm\x01\x00\x00\x00garbage"))
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().ReloadErrors == 0 && time.Now().Before(deadline) {
		body()
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if got, err := body(); err != nil || got != "v2" {
		t.Errorf("after a broken reload: %q, %v; want v2", got, err)
	}
	if st := b.Stats(); st.Reloads != 1 || st.ReloadErrors != 1 {
		t.Errorf("stats %+v, want 1 reload and 1 reload error", st)
	}
}

func TestNewRejectsNonWAGIModules(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		bin  []byte
		opts Options
		want string
	}{
		{"no _start", wasmModule{memPages: 1}.bytes(), Options{}, "no _start export"},
		{"foreign import", wasmModule{imports: [][2]string{{"env", "socket"}}, start: []byte{}, memPages: 1}.bytes(), Options{}, "imports env.socket"},
		{"memory above cap", wasmModule{start: []byte{}, memPages: 40}.bytes(), Options{MaxMemory: 1 << 20}, "raise maxMemory"},
		{"not wasm", []byte("#!/bin/sh\n"), Options{}, "not a Wasm module: it does not start with the \\0asm magic number"},
		{"truncated", wasmModule{start: []byte{}, memPages: 1}.bytes()[:20], Options{}, "runs past the end of the file"},
		// wazero's validator panics on this one (found by FuzzModuleReaders).
		{"compiler panic", []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01`\x00\x00\x03\x04\x03\x0000\n\x10\x03\x04\x00\x10\x02\v\x04\x0000\v\x04\x0000\v"),
			Options{}, "the compiler failed on it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Path = writeModule(t, dir, strings.ReplaceAll(tt.name, " ", "-")+".wasm", tt.bin)
			_, err := New(context.Background(), tt.opts, testRuntime(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := New(context.Background(), Options{Path: dir + "/missing.wasm"}, testRuntime(t)); err == nil || !strings.Contains(err.Error(), "GOOS=wasip1") {
		t.Errorf("missing file: %v", err)
	}
}

func TestCompilationCacheSurvivesRestart(t *testing.T) {
	// The shared runtime compiled the guest into its on-disk cache; a new
	// runtime on the same directory is a restart.
	newGuestBackend(t, Options{})
	cacheDir := filepath.Join(sharedDir, "cache")
	stamps := func() map[string]time.Time {
		m := map[string]time.Time{}
		filepath.WalkDir(cacheDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					m[p] = fi.ModTime()
				}
			}
			return nil
		})
		return m
	}
	before := stamps()
	if len(before) == 0 {
		t.Fatal("compilation cache directory is empty after compiling")
	}
	start := time.Now()
	rt, err := NewRuntime(context.Background(), cacheDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	b, err := New(context.Background(), Options{Path: buildGuest(t)}, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	if _, err := b.RoundTrip(httptest.NewRequest("GET", "/counter", nil)); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted runtime served its first request after %s", time.Since(start))
	after := stamps()
	for p, mt := range after {
		if b, ok := before[p]; !ok || !b.Equal(mt) {
			t.Errorf("cache entry %s was written again: the restart recompiled instead of loading", p)
		}
	}
}

func TestPoolBoundsConcurrencyAndKeepsMemory(t *testing.T) {
	b := newGuestBackend(t, Options{Pool: 1, Timeout: Duration(400 * time.Millisecond)})
	// One slot: while /hang holds it, a second request times out waiting.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.RoundTrip(httptest.NewRequest("GET", "/hang", nil))
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := b.RoundTrip(httptest.NewRequest("GET", "/counter", nil).WithContext(ctx))
	if ErrorKind(err) != KindDeadline || !strings.Contains(err.Error(), "pool slots") {
		t.Errorf("second request with pool 1: %v, want a deadline waiting for a slot", err)
	}
	wg.Wait()
	if _, err := b.RoundTrip(httptest.NewRequest("GET", "/counter", nil)); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.mem.held(); n != 1 {
		t.Errorf("pool 1 holds %d buffers, want 1", n)
	}
}

func TestIdleRouteReleasesMemory(t *testing.T) {
	b := newGuestBackend(t, Options{})
	if _, err := b.RoundTrip(httptest.NewRequest("GET", "/counter", nil)); err != nil {
		t.Fatal(err)
	}
	if n, size := b.mem.held(); n != 1 || size == 0 {
		t.Fatalf("after a request the pool holds %d buffers (%d bytes), want 1 for the next request", n, size)
	}
	if peak := b.Stats().PeakMemory; peak == 0 || peak%wasmPageSize != 0 {
		t.Errorf("peak linear memory %d bytes, want a positive number of whole pages", peak)
	}
	time.Sleep(idleRelease*2 + 200*time.Millisecond)
	if n, _ := b.mem.held(); n != 0 {
		t.Errorf("idle route still holds %d linear-memory buffers", n)
	}
}

func TestClosedBackendRefusesRequests(t *testing.T) {
	b := newGuestBackend(t, Options{})
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RoundTrip(httptest.NewRequest("GET", "/counter", nil)); err == nil || ErrorKind(err) != "" {
		t.Errorf("RoundTrip after Close: %v, want a non-guest error", err)
	}
}

func TestRequestFromClientURL(t *testing.T) {
	// A request built for a client (absolute URL, no RemoteAddr) works too,
	// which is how shadow mode replays a copy.
	b := newGuestBackend(t, Options{})
	u, _ := url.Parse("https://api.example/env")
	resp, err := b.RoundTrip(&http.Request{Method: "GET", URL: u, Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	json.NewDecoder(resp.Body).Decode(&env)
	joined := strings.Join(env, "\n")
	for _, want := range []string{"X_FULL_URL=https://api.example/env", "SERVER_PORT=443", "CONTENT_LENGTH=0", "X_MATCHED_ROUTE=/..."} {
		if !strings.Contains(joined, want) {
			t.Errorf("environment lacks %s:\n%s", want, joined)
		}
	}
}
