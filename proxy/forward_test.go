package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/strangler"
)

// exchangeSeen is what the upstream received, or what the client was sent.
type exchangeSeen struct {
	method, uri, host string
	header            http.Header
	status            int
	body              string
	trailer           http.Header
}

// TestForwardMatchesReverseProxy sends the same requests through
// httputil.ReverseProxy and through forward, to the same upstream, and
// wants the upstream and the client to see the same thing from both:
// hop-by-hop fields dropped both ways (the fixed set and those Connection
// names), X-Forwarded-* and Forwarded appended to, Te: trailers kept,
// trailers announced and not, a query with a semicolon, a 204.
func TestForwardMatchesReverseProxy(t *testing.T) {
	got := make(chan exchangeSeen, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- exchangeSeen{method: r.Method, uri: r.RequestURI, host: r.Host, header: r.Header.Clone()}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		h.Set("Connection", "X-Upstream-Hop")
		h.Set("X-Upstream-Hop", "drop me")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/trailers":
			h.Set("Trailer", "X-Sum")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
			h.Set("X-Sum", "42")
			h.Set(http.TrailerPrefix+"X-Late", "unannounced")
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	up := newUpstream("svc", strangler.SideLegacy, target, newHTTPTransport(target, 4, 5*time.Second), slog.Default())
	if _, ok := up.rt.(*keepAliveTransport); !ok {
		t.Fatal("an http:// upstream is not forwarded without ReverseProxy")
	}
	viaRP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { up.rp.ServeHTTP(w, r) }))
	defer viaRP.Close()
	viaForward := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.forward(w, r) {
			t.Errorf("%s %s was not forwarded", r.Method, r.URL)
		}
	}))
	defer viaForward.Close()

	send := func(front, method, path string, hdr http.Header) (upstream, client exchangeSeen) {
		t.Helper()
		req, err := http.NewRequest(method, front+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, vv := range hdr {
			req.Header[k] = vv
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Header.Del("Date")
		select {
		case upstream = <-got:
		default:
			t.Fatalf("%s %s did not reach the upstream", method, path)
		}
		// The front's own address differs between the two fronts.
		upstream.header.Del("X-Forwarded-Host")
		upstream.header.Set("Forwarded", strings.Split(upstream.header.Get("Forwarded"), ";host=")[0])
		return upstream, exchangeSeen{status: resp.StatusCode, header: resp.Header, body: string(b), trailer: resp.Trailer}
	}
	cases := []struct {
		method, path string
		hdr          http.Header
	}{
		{"GET", "/api/order/42?x=1;y=2&z=%zz", http.Header{
			"Connection": {"X-Client-Hop, keep-alive"}, "X-Client-Hop": {"drop me"}, "Proxy-Authorization": {"Basic x"},
			"Te": {"trailers, deflate"}, "X-Forwarded-For": {"10.1.1.1, 10.2.2.2"}, "Forwarded": {"for=10.1.1.1"},
			"X-Forwarded-Proto": {"https"}, "Accept": {"a", "b"}, "User-Agent": {"client/1"}}},
		{"GET", "/trailers", http.Header{"Te": {"trailers"}}},
		{"DELETE", "/api/items/9", nil},
		{"HEAD", "/api/items/9", nil},
		{"GET", "/empty", http.Header{"User-Agent": {""}}},
	}
	for _, c := range cases {
		wantUp, wantClient := send(viaRP.URL, c.method, c.path, c.hdr)
		gotUp, gotClient := send(viaForward.URL, c.method, c.path, c.hdr)
		if !reflect.DeepEqual(gotUp, wantUp) {
			t.Errorf("%s %s: the upstream saw\n%+v\nthrough ReverseProxy\n%+v", c.method, c.path, gotUp, wantUp)
		}
		if !reflect.DeepEqual(gotClient, wantClient) {
			t.Errorf("%s %s: the client got\n%+v\nthrough ReverseProxy\n%+v", c.method, c.path, gotClient, wantClient)
		}
		if c.path == "/trailers" && (gotClient.trailer.Get("X-Sum") != "42" || gotClient.trailer.Get("X-Late") != "unannounced") {
			t.Errorf("trailers lost: %v", gotClient.trailer)
		}
	}
	// A request with a body or an upgrade is left to ReverseProxy.
	{
		body := httptest.NewRequest("POST", "/api", strings.NewReader("{}"))
		upgrade := httptest.NewRequest("GET", "/ws", nil)
		upgrade.Header.Set("Connection", "Upgrade")
		upgrade.Header.Set("Upgrade", "websocket")
		for _, r := range []*http.Request{body, upgrade} {
			if up.forward(httptest.NewRecorder(), r) {
				t.Errorf("forward served %s %s", r.Method, r.URL)
			}
		}
	}
}

// TestForwardAbortsACutOffBody: an upstream that dies in the middle of a
// chunked body leaves the client with a broken response, never one that
// looks complete (a handler that just returned would end the chunked body
// cleanly).
func TestForwardAbortsACutOffBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			if _, err := http.ReadRequest(br); err == nil {
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nf\r\nonly part of it\r\n")
			}
			c.Close()
		}
	}()
	target, _ := url.Parse("http://" + ln.Addr().String())
	up := newUpstream("svc", strangler.SideLegacy, target, newHTTPTransport(target, 4, 5*time.Second), slog.Default())
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { up.forward(w, r) }))
	defer front.Close()
	resp, err := http.Get(front.URL + "/x")
	if err != nil {
		return // the connection was cut before the head: broken, as it should be
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a body cut off by the upstream reached the client as a whole one")
	}
}

// TestForwardFlushesEventStreams: an event stream's headers and each
// event reach the client at once.
func TestForwardFlushesEventStreams(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "Text/Event-Stream; charset=utf-8")
		w.Header().Set("Content-Length", "1000") // known length: only the media type says stream
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
	}))
	defer backend.Close()
	defer close(release)
	target, _ := url.Parse(backend.URL)
	up := newUpstream("svc", strangler.SideLegacy, target, newHTTPTransport(target, 4, 5*time.Second), slog.Default())
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { up.forward(w, r) }))
	defer front.Close()
	resp, err := http.Get(front.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if l := firstLine(t, resp.Body); l != "data: first\n" {
		t.Fatalf("first line %q", l)
	}
}

// firstLine reads body's first line, failing t when it is not there within
// 3s: the proxy held an event stream back.
func firstLine(t *testing.T, body io.Reader) string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(body).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		return l
	case <-time.After(3 * time.Second):
		t.Fatal("the first event was held back")
		return ""
	}
}
