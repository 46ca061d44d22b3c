package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestTransport(t *testing.T, rawURL string, headerTimeout time.Duration) (*keepAliveTransport, *url.URL) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := newKeepAliveTransport(u.Host, 8, headerTimeout)
	t.Cleanup(tr.CloseIdleConnections)
	return tr, u
}

func roundTrip(t *testing.T, tr *keepAliveTransport, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestTransportReusesConnections(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/chunked":
			w.Write([]byte("part1"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
		default:
			fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.RequestURI(), len(body))
		}
	}))
	defer srv.Close()
	tr, _ := newTestTransport(t, srv.URL, time.Second)
	for i := 0; i < 5; i++ {
		if code, body := roundTrip(t, tr, "GET", srv.URL+"/a?x=1", nil); code != 200 || body != "GET /a?x=1 0" {
			t.Fatalf("GET: %d %q", code, body)
		}
		if code, body := roundTrip(t, tr, "POST", srv.URL+"/b", strings.NewReader("hello")); code != 200 || body != "POST /b 5" {
			t.Fatalf("POST: %d %q", code, body)
		}
		if code, _ := roundTrip(t, tr, "HEAD", srv.URL+"/c", nil); code != 200 {
			t.Fatalf("HEAD: %d", code)
		}
		if code, _ := roundTrip(t, tr, "GET", srv.URL+"/empty", nil); code != 204 {
			t.Fatalf("204: %d", code)
		}
		if code, body := roundTrip(t, tr, "GET", srv.URL+"/chunked", nil); code != 200 || body != "part1part2" {
			t.Fatalf("chunked: %d %q", code, body)
		}
	}
	if len(conns) != 1 {
		t.Fatalf("25 sequential requests used %d connections, want 1", len(conns))
	}
}

// oneShotServer answers each connection's first request, keep-alive
// style, then closes the connection: every pooled connection goes stale.
func oneShotServer(t *testing.T) (string, *int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := new(int)
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			*accepted++
			mu.Unlock()
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	return "http://" + ln.Addr().String(), accepted
}

func TestTransportSkipsConnectionsClosedByTheUpstream(t *testing.T) {
	url, accepted := oneShotServer(t)
	tr, _ := newTestTransport(t, url, time.Second)
	for i := 0; i < 4; i++ {
		method := "GET"
		var body io.Reader
		if i%2 == 1 {
			method, body = "POST", strings.NewReader("not replayable")
		}
		time.Sleep(20 * time.Millisecond) // let the server's FIN arrive
		if code, got := roundTrip(t, tr, method, url+"/", body); code != 200 || got != "ok" {
			t.Fatalf("request %d (%s): %d %q", i, method, code, got)
		}
	}
	if *accepted != 4 {
		t.Fatalf("accepted %d connections, want 4 (one per request)", *accepted)
	}
}

// racyServer keeps connections open while idle, but drops a connection's
// second request without answering — an upstream whose keep-alive timeout
// fires just as the request arrives.
func racyServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil || i > 0 {
						return
					}
					io.Copy(io.Discard, req.Body)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestTransportRetriesIdempotentRequestOnStaleConnection(t *testing.T) {
	url := racyServer(t)
	tr, _ := newTestTransport(t, url, time.Second)
	roundTrip(t, tr, "GET", url+"/", nil)
	if code, body := roundTrip(t, tr, "GET", url+"/", nil); code != 200 || body != "ok" {
		t.Fatalf("GET on a connection dropped mid-request was not retried: %d %q", code, body)
	}
	// A POST is not replayed: the upstream may have acted on it.
	req, _ := http.NewRequest("POST", url+"/", strings.NewReader("x"))
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("a POST on a connection dropped mid-request was silently replayed")
	} else if !connGone(err) {
		t.Fatalf("POST error %v", err)
	}
}

func TestTransportTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	tr, _ := newTestTransport(t, srv.URL, 100*time.Millisecond)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	if err == nil || !isTimeout(err) || time.Since(start) > time.Second {
		t.Fatalf("header timeout: %v after %v", err, time.Since(start))
	}
	tr2, _ := newTestTransport(t, srv.URL, 0)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	if _, err := tr2.RoundTrip(req); err != context.Canceled {
		t.Fatalf("cancelled request: %v", err)
	}
	if n := len(tr2.idle); n != 0 {
		t.Fatalf("a cancelled connection went back to the pool (%d idle)", n)
	}
}

func TestTransportUpgrade(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", 400)
			return
		}
		conn, buf, _ := http.NewResponseController(w).Hijack()
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		buf.Flush()
		line, _ := buf.ReadString('\n')
		buf.WriteString("echo: " + line)
		buf.Flush()
	}))
	defer srv.Close()
	legacy := srv.URL
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy, "candidate": legacy}, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(h.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /api/order HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade response: %v %v", resp, err)
	}
	fmt.Fprint(c, "ping\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if line, _ := br.ReadString('\n'); line != "echo: ping\n" {
		t.Fatalf("through the upgraded connection: %q", line)
	}
}

// TestTransportProbeDoesNotAllocate: the liveness probe runs before every
// reuse of a pooled connection, so it is on every proxied request; it
// must not allocate, and must still tell a live connection from one the
// upstream closed.
func TestTransportProbeDoesNotAllocate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	tr, _ := newTestTransport(t, "http://"+ln.Addr().String(), time.Second)
	kc, _, err := tr.conn(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.conn.Close()
	server := <-accepted
	if !alive(kc) {
		t.Fatal("a fresh connection to a live server was probed dead")
	}
	// Many runs: AllocsPerRun counts the whole process, and goroutines
	// other tests left behind may allocate meanwhile.
	if n := testing.AllocsPerRun(2000, func() { alive(kc) }); n != 0 {
		t.Fatalf("the probe allocates %.0f times per call, want 0", n)
	}
	server.Close()
	deadline := time.Now().Add(2 * time.Second)
	for alive(kc) {
		if time.Now().After(deadline) {
			t.Fatal("a connection the server closed still probes alive")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
