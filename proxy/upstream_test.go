package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logBuffer collects log lines written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLoggedProxy serves config (one service "files" with legacy at
// legacyURL) through the real proxy and keeps its log as JSON lines.
func newLoggedProxy(t *testing.T, legacyURL string) (front string, logs *logBuffer) {
	t.Helper()
	config := fmt.Sprintf("services:\n  files:\n    legacy: %s\n    timeout: 2s\n    routes: [\"POST /api/upload\", \"GET /api/upload\"]\n", legacyURL)
	logs = &logBuffer{}
	h := startHarness(t, config, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	return h.front.URL, logs
}

// postLarge sends a size-byte POST on a raw connection, writing the body
// while it reads the answer, as a client that handles early answers does,
// and returns the answer and how long it took.
func postLarge(t *testing.T, front string, size int) (*http.Response, []byte, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(front, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	go func() {
		fmt.Fprintf(conn, "POST /api/upload HTTP/1.1\r\nHost: files\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := conn.Write(chunk[:min(len(chunk), size-sent)]); err != nil {
				return // the proxy closed after answering: expected
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the %d-byte POST: %v", size, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, body, time.Since(start)
}

// keepOpenUpstream is a raw HTTP/1.1 server that answers a POST with 413
// after reading 64 KiB of its body and then neither reads nor closes, and
// answers a GET with 200. A proxy that reused the connection of the 413
// would hang its next request there.
func keepOpenUpstream(t *testing.T) (url string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int32{}
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			go func() {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.Method == http.MethodPost {
						io.ReadFull(req.Body, make([]byte, 64<<10))
						io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\ntoo large\n")
						select {} // keep the connection, read nothing more
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

// TestLargeBodyEarlyAnswer sends 20 MB to upstreams that refuse it after
// 64 KiB: the client gets the upstream's 413, not a 502, and the
// connection the upstream answered early on carries no further request.
func TestLargeBodyEarlyAnswer(t *testing.T) {
	const size = 20 << 20
	closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			io.ReadFull(r.Body, make([]byte, 64<<10))
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, "ok\n")
	}))
	defer closing.Close()
	keepOpen, conns := keepOpenUpstream(t)

	for _, tt := range []struct{ name, url string }{
		{"net/http upstream, closes after answering", closing.URL},
		{"upstream keeps the connection and stops reading", keepOpen},
	} {
		t.Run(tt.name, func(t *testing.T) {
			front, logs := newLoggedProxy(t, tt.url)
			resp, body, took := postLarge(t, front, size)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || strings.TrimSpace(string(body)) != "too large" {
				t.Fatalf("20 MB POST: %d %q, want the upstream's 413; log:\n%s", resp.StatusCode, body, logs.String())
			}
			t.Logf("20 MB POST to a 413 upstream: 413 forwarded in %v", took.Round(10*time.Microsecond))
			// The next request gets its answer: it did not go down the
			// connection the upstream stopped reading.
			client := &http.Client{Timeout: 5 * time.Second}
			for range 3 {
				r, err := client.Get(front + "/api/upload")
				if err != nil {
					t.Fatalf("request after the early answer: %v", err)
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				if r.StatusCode != http.StatusOK || string(b) != "ok\n" {
					t.Fatalf("request after the early answer: %d %q", r.StatusCode, b)
				}
			}
			if n := conns.Load(); tt.url == keepOpen && n != 2 {
				t.Errorf("the keep-open upstream saw %d connections, want 2: one answered early, one reused by the GETs", n)
			}
		})
	}
}

// TestLargeBodyFullyRead checks the other side of writing beside the read:
// an upstream that reads the whole body and then answers gets every byte,
// and its connection is reused.
func TestLargeBodyFullyRead(t *testing.T) {
	var news atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			news.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	front, _ := newLoggedProxy(t, up.URL)
	for _, size := range []int{inlineBodyMax, inlineBodyMax + 1, 5 << 20, 5 << 20} {
		resp, err := http.Post(front+"/api/upload", "application/octet-stream", bytes.NewReader(make([]byte, size)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != fmt.Sprint(size) {
			t.Fatalf("%d-byte POST: %d %q", size, resp.StatusCode, b)
		}
	}
	// A chunked body of unknown length, written beside the read too.
	pr, pw := io.Pipe()
	go func() {
		for range 40 {
			pw.Write(make([]byte, 32<<10))
		}
		pw.Close()
	}()
	resp, err := http.Post(front+"/api/upload", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != fmt.Sprint(40*32<<10) {
		t.Fatalf("chunked POST: %d %q", resp.StatusCode, b)
	}
	if n := news.Load(); n != 1 {
		t.Errorf("upstream saw %d connections for five sequential requests, want 1 (kept alive)", n)
	}
}

// TestUpstreamErrorBody checks that a 502 or 504 names neither the
// upstream's address nor the dial or read error, and that its id leads
// to the log line that does.
func TestUpstreamErrorBody(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	for _, tt := range []struct {
		name, url string
		body      int // bytes POSTed; 0: a GET
		status    int
		cause     string
	}{
		{"dead upstream", deadURL, 0, http.StatusBadGateway, "connection refused"},
		{"slow upstream", slow.URL, 0, http.StatusGatewayTimeout, "timeout"},
		{"dead upstream, 1 MB POST", deadURL, 1 << 20, http.StatusBadGateway, "connection refused"},
		{"slow upstream, 1 MB POST", slow.URL, 1 << 20, http.StatusGatewayTimeout, "timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			front, logs := newLoggedProxy(t, tt.url)
			req, _ := http.NewRequest(http.MethodGet, front+"/api/upload?x=1", nil)
			route := "GET /api/upload"
			if tt.body > 0 {
				req, _ = http.NewRequest(http.MethodPost, front+"/api/upload?x=1", bytes.NewReader(make([]byte, tt.body)))
				route = "POST /api/upload"
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tt.status)
			}
			addr := strings.TrimPrefix(tt.url, "http://")
			host, port, _ := net.SplitHostPort(addr)
			for _, leak := range []string{addr, host, ":" + port, "dial", "tcp", "refused", "read", tt.cause} {
				if strings.Contains(string(body), leak) {
					t.Errorf("the %d body leaks %q: %s", resp.StatusCode, leak, body)
				}
			}
			var doc struct {
				Error, ID string
				Status    int
			}
			if err := json.Unmarshal(body, &doc); err != nil || doc.ID == "" || doc.Status != tt.status {
				t.Fatalf("body %s: %v", body, err)
			}
			if got := resp.Header.Get(HeaderErrorID); got != doc.ID {
				t.Fatalf("%s = %q, body id %q", HeaderErrorID, got, doc.ID)
			}
			var line map[string]any
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, doc.ID) {
					if err := json.Unmarshal([]byte(l), &line); err != nil {
						t.Fatal(err)
					}
				}
			}
			cause, _ := line["cause"].(string)
			if line["level"] != "WARN" || line["route"] != route || line["path"] != "/api/upload" ||
				!strings.Contains(cause, tt.cause) || line["status"] != float64(tt.status) {
				t.Fatalf("log line for id %s: %v\nlog:\n%s", doc.ID, line, logs.String())
			}
		})
	}
}

// TestSlowUploadOutlastsHeaderTimeout: the upstream's timeout (2 s here)
// counts from the end of the request body, as it does for bodies written
// inline, so a client uploading for longer is not cut off.
func TestSlowUploadOutlastsHeaderTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	}))
	defer up.Close()
	front, logs := newLoggedProxy(t, up.URL)
	pr, pw := io.Pipe()
	go func() {
		for range 10 {
			pw.Write(make([]byte, 16<<10))
			time.Sleep(250 * time.Millisecond)
		}
		pw.Close()
	}()
	start := time.Now()
	resp, err := http.Post(front+"/api/upload", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != fmt.Sprint(10*16<<10) {
		t.Fatalf("upload of %v: %d %q; log:\n%s", time.Since(start).Round(time.Millisecond), resp.StatusCode, b, logs.String())
	}
}
