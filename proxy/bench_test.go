package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkServeLegacy measures the data plane's own cost per request in
// legacy mode: match, dispatch, ReverseProxy, keep-alive round trip to a
// loopback backend, counters.
func BenchmarkServeLegacy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"id":"1","name":"Car Engine","price":8500}]`)
	}))
	defer backend.Close()
	h := newHarness(b, twoSided, map[string]string{"legacy": backend.URL, "candidate": backend.URL}, nil)
	defer h.front.Close()
	serveEach(b, h, nil)
	if st := h.ctrl.Route("GET /api/order/{id}").State(); st.Mode != strangler.ModeLegacy {
		b.Fatal(st)
	}
}

// BenchmarkServeShadow measures what one request costs in shadow mode, the
// copy included: the client's round trip to legacy, the copy's to the
// candidate, the comparison and the evidence. Each iteration waits until
// its copy has been compared, so the time per op includes the copy's wait
// for the proxy to settle; the allocations are the figure to watch.
func BenchmarkServeShadow(b *testing.B) {
	answer := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"id":"1","name":"Car Engine","description":"V8","price":8500,"skuCode":"ENG-V8-500"},{"id":"2","name":"Brake Pads","description":"High performance","price":150,"skuCode":"BRK-PD-HP"}]`)
	}
	legacy := httptest.NewServer(http.HandlerFunc(answer))
	defer legacy.Close()
	candidate := httptest.NewServer(http.HandlerFunc(answer))
	defer candidate.Close()
	done := make(chan struct{}, 1)
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, comparedSignal{done})
	h := newHarness(b, twoSided, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
	const route = "GET /api/order/{id}"
	h.set(b, route, strangler.ModeShadow, 0)
	serveEach(b, h, func() { <-done })
}

// serveEach sends GET /api/order/42 through the proxy b.N times, calling
// after (when set) once each answer is in.
func serveEach(b *testing.B, h *harness, after func()) {
	req := httptest.NewRequest(http.MethodGet, "/api/order/42", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.px.ServeHTTP(w, req)
		if after != nil {
			after()
		}
	}
	b.StopTimer()
}

// comparedSignal is a recorder that keeps nothing and says when a copy has
// been compared (A/A baseline samples aside).
type comparedSignal struct{ done chan struct{} }

func (c comparedSignal) Record(shadow.Sample) {}

func (c comparedSignal) Wants(s shadow.Sample) bool {
	if !s.Baseline {
		c.done <- struct{}{}
	}
	return false
}

// planConfig is a route table shaped as `migrate plan` writes it: several
// services, each with its own legacy upstream, timeout, sticky key, shadow
// and gate blocks, ten operation shapes each; the access log at its
// default 1% sample.
func planConfig(services int, legacy string) string {
	var b strings.Builder
	b.WriteString("maxBufferedBody: 1MiB\ndefault: " + legacy + "\nservices:\n")
	for s := 0; s < services; s++ {
		fmt.Fprintf(&b, "  svc%02d:\n    legacy: %s\n    timeout: 30s\n    mode: legacy\n    weight: 10\n"+
			"    stickyBy: \"header:X-User\"\n    shadow: {sample: 100%%, writes: deny}\n"+
			"    gate: {minSamples: 1000, minMatch: 99.9%%, maxP99Ratio: 1.5, maxErrorRate: 0.1%%}\n    routes:\n", s, legacy)
		for _, r := range []string{"GET /api/s%02d/items", "POST /api/s%02d/items", "GET /api/s%02d/items/{id}",
			"PUT /api/s%02d/items/{id}", "DELETE /api/s%02d/items/{id}", "GET /api/s%02d/items/{id}/history",
			"GET /api/s%02d/search", "GET /api/s%02d/users/{user}/items", "POST /api/s%02d/users/{user}/items",
			"GET /api/s%02d/health"} {
			fmt.Fprintf(&b, "      - %q\n", fmt.Sprintf(r, s))
		}
	}
	return b.String()
}

// BenchmarkServeLegacyParallel is BenchmarkServeLegacy with 8 concurrent
// clients per core over a plan-shaped table of 20 services and 200 routes, metrics
// registered and the SQLite store open: run it with -cpu 1,2 to see
// whether the request path scales with cores, and with -mutexprofile or
// -blockprofile to see what it waits for.
func BenchmarkServeLegacyParallel(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"id":"1","name":"Car Engine","price":8500}]`)
	}))
	defer backend.Close()
	h := newHarness(b, planConfig(20, backend.URL), nil, nil)
	paths := []string{"/api/s03/items/42", "/api/s11/items", "/api/s19/users/u7/items", "/api/s07/items/9/history"}
	b.SetParallelism(8) // 8 clients per core, so the upstream pool holds many connections
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		reqs := make([]*http.Request, len(paths))
		for i, p := range paths {
			reqs[i] = httptest.NewRequest(http.MethodGet, p, nil)
		}
		for i := 0; pb.Next(); i++ {
			clear(w.h)
			h.px.ServeHTTP(w, reqs[i%len(reqs)])
		}
	})
}

// BenchmarkListener is a request through the whole proxy on loopback —
// client connection, listener, plan-shaped route table, keep-alive upstream
// — under this package's Server and under net/http's, in the same run: the
// difference is what the server in front of the handler costs. Clients
// keep their connections, 8 per core, as wrk does.
func BenchmarkListener(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		io.WriteString(w, `[{"id":"1","name":"Car Engine","price":8500}]`)
	}))
	defer backend.Close()
	h := newHarness(b, planConfig(20, backend.URL), nil, nil)
	for _, std := range []bool{false, true} {
		name := "proxy.Server"
		if std {
			name = "net/http"
		}
		b.Run(name, func(b *testing.B) {
			addr := startServer(b, h.px, std, nil)
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				for pb.Next() {
					if _, err := io.WriteString(c, "GET /api/s07/items/9 HTTP/1.1\r\nHost: shop\r\nUser-Agent: bench\r\n\r\n"); err != nil {
						b.Error(err)
						return
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
