package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startServer serves h on a loopback port with this package's Server (as
// the proxy command configures it, then configure), or with net/http's
// when std is set, and returns the address.
func startServer(t testing.TB, h http.Handler, std bool, configure func(*Server)) string {
	t.Helper()
	if !std {
		return strings.TrimPrefix(newTestFront(t, h, configure).URL, "http://")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// answer is what a client can tell of a response.
type answer struct {
	Status           string
	Header, Trailer  http.Header
	Body             string
	BodyErr          string
	ContentLength    int64
	TransferEncoding []string
	Close            bool
}

// exchange writes raw requests on one connection and reads one response
// for each (methods tells ReadResponse which were HEAD).
func exchange(t *testing.T, addr string, raw string, methods ...string) []answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []answer
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			out = append(out, answer{Status: "error: " + err.Error()})
			break
		}
		body, err := io.ReadAll(resp.Body)
		a := answer{Status: resp.Status, Header: resp.Header, Trailer: resp.Trailer, Body: string(body),
			ContentLength: resp.ContentLength, TransferEncoding: resp.TransferEncoding, Close: resp.Close}
		if err != nil {
			a.BodyErr = err.Error()
		}
		a.Header.Del("Date")
		out = append(out, a)
	}
	return out
}

func TestServerAnswersAsNetHTTP(t *testing.T) {
	big := strings.Repeat("0123456789", 1000)
	handlers := map[string]http.HandlerFunc{
		"small body, no length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		},
		"nothing written":  func(w http.ResponseWriter, r *http.Request) {},
		"204":              func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		"304 with a write": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(304); io.WriteString(w, "x") },
		"declared length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		},
		"large, no length": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) },
		"large, in pieces": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>"); io.WriteString(w, big) },
		"flushed": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		},
		"flush first":  func(w http.ResponseWriter, r *http.Request) { w.(http.Flusher).Flush() },
		"sniffed html": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<!DOCTYPE html><p>hi") },
		"sniffing declined": func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "<html>")
		},
		"declared trailer": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		},
		"prefixed trailer": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "body")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		},
		"value with newline": func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Evil", "a\r\nSet-Cookie: x=1") },
		"invalid field name": func(w http.ResponseWriter, r *http.Request) { w.Header()["Bad Name"] = []string{"x"} },
		"handler closes": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		},
		"early hints": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(103)
			w.WriteHeader(201)
			io.WriteString(w, "made")
		},
		"writes past its length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "abc")
			if _, err := io.WriteString(w, "d"); err != http.ErrContentLength {
				panic(fmt.Sprintf("write past Content-Length: %v", err))
			}
		},
		"writes short of its length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "abc")
		},
		"unknown status": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(599) },
		"echo": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s host=%s len=%d body=%q ua=%q cc=%q", r.Method, r.RequestURI, r.Host,
				r.ContentLength, b, r.Header.Get("User-Agent"), r.Header.Get("Cache-Control"))
		},
		"body left unread": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ignored") },
	}
	requests := []struct {
		raw     string
		methods []string
	}{
		{"GET /x?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n", []string{"GET", "GET"}},
		{"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HEAD", "GET"}},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", []string{"GET"}},
		{"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nPragma: no-cache\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\n\r\n", []string{"POST", "GET"}},
		{"DELETE /d HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\n\r\n", []string{"DELETE"}},
	}
	for name, h := range handlers {
		std := startServer(t, h, true, nil)
		ours := startServer(t, h, false, nil)
		for _, rq := range requests {
			want := exchange(t, std, rq.raw, rq.methods...)
			got := exchange(t, ours, rq.raw, rq.methods...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %q:\n got %+v\nwant %+v", name, rq.raw, got, want)
			}
		}
	}
}

// servedBy records which server answered: this package's, or net/http's
// after a hand-off.
func servedBy(w http.ResponseWriter) string {
	if _, ok := w.(*response); ok {
		return "ours"
	}
	return "net/http"
}

func TestServerHandsTheRestToNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/upgrade" {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			io.WriteString(c, "echo: "+line)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s body=%q", servedBy(w), r.Proto, r.URL.Path, b)
	})
	addr := startServer(t, h, false, nil)
	long := "X-Long: " + strings.Repeat("a", readBufferSize) + "\r\n"
	cases := []struct {
		name, raw string
		methods   []string
		want      []string
	}{
		{"chunked body after a plain GET, then a GET",
			"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"GET", "POST", "GET"},
			[]string{`ours HTTP/1.1 /1 body=""`, `net/http HTTP/1.1 /2 body="abc"`, `net/http HTTP/1.1 /3 body=""`}},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\n\r\n", []string{"GET"}, []string{`net/http HTTP/1.0 /old body=""`}},
		{"bare LF", "GET /lf HTTP/1.1\nHost: h\n\n", []string{"GET"}, []string{`net/http HTTP/1.1 /lf body=""`}},
		{"head longer than the buffer", "GET /long HTTP/1.1\r\nHost: h\r\n" + long + "\r\n", []string{"GET"}, []string{`net/http HTTP/1.1 /long body=""`}},
		{"Expect", "PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok", []string{"PUT", "PUT"},
			[]string{"100 Continue", `net/http HTTP/1.1 /e body="ok"`}},
		{"absolute form", "GET http://h/abs HTTP/1.1\r\nHost: h\r\n\r\n", []string{"GET"}, []string{`net/http HTTP/1.1 /abs body=""`}},
		{"no Host", "GET /nohost HTTP/1.1\r\n\r\n", []string{"GET"}, []string{"400 Bad Request"}},
		{"two lengths", "POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", []string{"POST"}, []string{"400 Bad Request"}},
		{"folded field", "GET /fold HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", []string{"GET"}, []string{`net/http HTTP/1.1 /fold body=""`}},
	}
	for _, tc := range cases {
		got := exchange(t, addr, tc.raw, tc.methods...)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d answers %+v, want %d", tc.name, len(got), got, len(tc.want))
			continue
		}
		for i, a := range got {
			if a.Body != tc.want[i] && !(strings.HasPrefix(a.Status, tc.want[i])) {
				t.Errorf("%s, answer %d: %s %q, want %q", tc.name, i, a.Status, a.Body, tc.want[i])
			}
		}
	}

	// An upgrade is net/http's too, and its hijacked connection works.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(c, "ping\n")
	if line, _ := br.ReadString('\n'); line != "echo: ping\n" {
		t.Fatalf("through the upgraded connection: %q", line)
	}
}

func TestServerSurvivesPanics(t *testing.T) {
	var logged logBuffer
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/panic":
			panic("boom")
		}
		io.WriteString(w, "fine")
	})
	addr := startServer(t, h, false, func(s *Server) { s.ErrorLog = log.New(&logged, "", 0) })
	for _, path := range []string{"/abort", "/panic"} {
		got := exchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "GET")
		if len(got) != 1 || !strings.HasPrefix(got[0].Status, "error:") {
			t.Errorf("%s: the connection was not closed: %+v", path, got)
		}
	}
	if n := strings.Count(logged.String(), "panic serving"); n != 1 || !strings.Contains(logged.String(), "boom") {
		t.Errorf("want one logged panic (boom), not ErrAbortHandler; log:\n%s", logged.String())
	}
	if got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET"); got[0].Body != "fine" {
		t.Errorf("after the panics: %+v", got)
	}
}

func TestServerShutdownFinishesRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started.Add(1)
			<-release
		}
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: h, IdleTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy := make(chan []answer, 1)
	go func() { busy <- exchange(t, addr, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n", "GET") }()
	for started.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()

	idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("an idle connection was not closed by Shutdown: %v", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if got := <-busy; got[0].Body != "done" || !got[0].Close {
		t.Errorf("the request in flight: %+v, want its answer with Connection: close", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the listener still accepts after Shutdown")
	}
}

func TestServerTimeouts(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	addr := startServer(t, h, false, func(s *Server) {
		s.IdleTimeout = 200 * time.Millisecond
		s.ReadHeaderTimeout = 200 * time.Millisecond
	})
	closedWithin := func(c net.Conn) time.Duration {
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
		return time.Since(start)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if d := closedWithin(c); d > 2*time.Second {
		t.Errorf("an idle connection was kept %v, IdleTimeout 200ms", d)
	}
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHo")
	if d := closedWithin(slow); d > 2*time.Second {
		t.Errorf("a head that never ends was waited for %v, ReadHeaderTimeout 200ms", d)
	}
}

// FuzzServerRequest holds the request this server reads itself to the one
// net/http makes of the same bytes: wherever it does not hand a head to
// net/http, both must agree on every field a handler sees.
func FuzzServerRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n",
		"POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\nX-A: 1\r\nx-a: 2\r\n\r\nabc",
		"DELETE /d HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\nPragma: no-cache\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 00\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		head, done := scanHead(raw)
		if !done {
			return
		}
		c := &serverConn{tmpl: &http.Request{}, br: bufio.NewReader(bytes.NewReader(raw[head.n:]))}
		got := head.request(c)
		if got == nil {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("read %q, which net/http refuses: %v", raw, err)
		}
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.URL.String() != want.URL.String() ||
			got.Host != want.Host || got.ContentLength != want.ContentLength || got.Close != want.Close ||
			got.Proto != want.Proto || !reflect.DeepEqual(got.Header, want.Header) {
			t.Fatalf("%q:\n got %s %s %q host=%q len=%d close=%v %v\nwant %s %s %q host=%q len=%d close=%v %v", raw,
				got.Method, got.RequestURI, got.URL, got.Host, got.ContentLength, got.Close, got.Header,
				want.Method, want.RequestURI, want.URL, want.Host, want.ContentLength, want.Close, want.Header)
		}
	})
}
